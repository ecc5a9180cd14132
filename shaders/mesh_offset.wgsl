// mesh_offset: MeshRefinementStage's last step: offsets = tanh(vert_offset(h)) with
// h[r * ld_x + col_x + k] (k < in_f); verts_out = verts_in + offsets (each stage keeps its own
// vertices); the offsets are kept too.
//
// Threads: one vertex each (n = V_cap, counts[count_slot] vertices), 256 per workgroup, 2-D grid.
//
// | binding | what                       | access     |
// |---------|----------------------------|------------|
// | 0       | MeshParams (n, count_slot, in_f, ld_x, col_x, act) | uniform |
// | 1       | h [V_cap, ld_x]            | read       |
// | 2       | weight [3, in_f]           | read       |
// | 3       | bias [3]                   | read       |
// | 4       | counts u32                 | read       |
// | 5       | verts_in [V_cap, 3]        | read       |
// | 6       | verts_out [V_cap, 3]       | read_write |
// | 7       | offsets [V_cap, 3]         | read_write |
//
// Library: index, mesh, activation.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> counts: array<u32>;
@group(0) @binding(5) var<storage, read> verts_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> verts_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> offsets: array<f32>;

@compute @workgroup_size(256)
fn mesh_offset(ids: IdxIds) {
    let r = idx_element(ids);
    var n = params.n;
    if (params.count_slot != MESH_NO_SLOT) {
        n = min(n, counts[params.count_slot]);
    }
    if (r >= n) {
        return;
    }
    let hr = r * params.ld_x + params.col_x;
    for (var j = 0u; j < 3u; j++) {
        var s = bias[j];
        for (var k = 0u; k < params.in_f; k++) {
            s += weight[j * params.in_f + k] * h[hr + k];
        }
        let off = act_apply(s, params.act, 0.0, 0.0);
        offsets[3u * r + j] = off;
        verts_out[3u * r + j] = verts_in[3u * r + j] + off;
    }
}
