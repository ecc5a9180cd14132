// mesh_project: meshrcnn's project_verts(verts, K) (the MeshRefinementStage `pos` features):
// writes pos [V, 3] and the same three values into x at column col_x (the stage input
// [bottleneck | pos | prev]).
//
// Threads: one vertex each (n = V_cap, counts[count_slot] vertices), 256 per workgroup, 2-D grid.
//
// | binding | what                                 | access     |
// |---------|--------------------------------------|------------|
// | 0       | MeshParams (n, count_slot, k*, ld_x, col_x) | uniform |
// | 1       | verts [V_cap, 3]                     | read       |
// | 2       | counts u32                           | read       |
// | 3       | pos [V_cap, 3]                       | read_write |
// | 4       | x [V_cap, ld_x]                      | read_write |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> verts: array<f32>;
@group(0) @binding(2) var<storage, read> counts: array<u32>;
@group(0) @binding(3) var<storage, read_write> pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn mesh_project(ids: IdxIds) {
    let r = idx_element(ids);
    var n = params.n;
    if (params.count_slot != MESH_NO_SLOT) {
        n = min(n, counts[params.count_slot]);
    }
    if (r >= n) {
        return;
    }
    let v = vec3<f32>(verts[3u * r], verts[3u * r + 1u], verts[3u * r + 2u]);
    let q = mesh_project_point(params, v);
    for (var j = 0u; j < 3u; j++) {
        pos[3u * r + j] = q[j];
        x[r * params.ld_x + params.col_x + j] = q[j];
    }
}
