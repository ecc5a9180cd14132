// mesh_gconv_gather: GraphConv's neighbour sum and the stage's concatenation:
// out[r, o] = act(y0[r, o] + sum over the CSR neighbours j of r (ascending) of y1[j, o]),
// written to out[r * ld_y + col_y + o]; with aux0 = 1 the first 3 threads of a row also copy
// pos[r] after the out_f outputs (cat[gconv, pos]); with MESH_COPY2 the result also goes to
// out2[r * ld_x + col_x + o] (the next stage's `prev`). A fixed order, no float atomics.
//
// Threads: one (vertex, output) each (n = V_cap, counts[count_slot] vertices), 256 per
// workgroup, 2-D grid.
//
// | binding | what                            | access     |
// |---------|---------------------------------|------------|
// | 0       | MeshParams (n, count_slot, act, out_f,    | uniform    |
// |         | ld_y, col_y, ld_x, col_x, flags, aux0)    |            |
// | 1       | y0 [V_cap, out_f]               | read       |
// | 2       | y1 [V_cap, out_f]               | read       |
// | 3       | adj_offset [V_cap + 1] u32      | read       |
// | 4       | adj [2 E_cap] u32               | read       |
// | 5       | pos [V_cap, 3]                  | read       |
// | 6       | counts u32                      | read       |
// | 7       | out [V_cap, ld_y]               | read_write |
// | 8       | out2 [V_cap, ld_x]              | read_write |
//
// Library: index, mesh, activation.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> y0: array<f32>;
@group(0) @binding(2) var<storage, read> y1: array<f32>;
@group(0) @binding(3) var<storage, read> adj_offset: array<u32>;
@group(0) @binding(4) var<storage, read> adj: array<u32>;
@group(0) @binding(5) var<storage, read> pos: array<f32>;
@group(0) @binding(6) var<storage, read> counts: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read_write> out2: array<f32>;

@compute @workgroup_size(256)
fn mesh_gconv_gather(ids: IdxIds) {
    let i = idx_element(ids);
    let r = i / params.out_f;
    let o = i % params.out_f;
    var n = params.n;
    if (params.count_slot != MESH_NO_SLOT) {
        n = min(n, counts[params.count_slot]);
    }
    if (r >= n) {
        return;
    }
    var acc = y0[r * params.out_f + o];
    for (var a = adj_offset[r]; a < adj_offset[r + 1u]; a++) {
        acc += y1[adj[a] * params.out_f + o];
    }
    let v = act_apply(acc, params.act, 0.0, 0.0);
    let dst = r * params.ld_y + params.col_y;
    out[dst + o] = v;
    if (o < 3u && params.aux0 != 0u) {
        out[dst + params.out_f + o] = pos[3u * r + o];
    }
    if ((params.flags & MESH_COPY2) != 0u) {
        out2[r * params.ld_x + params.col_x + o] = v;
    }
}
