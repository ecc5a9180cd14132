// mesh_cubify_verts: cubify's vertices: every marked lattice point (its scanned mark differs from
// the next one's) becomes vertex rank[p] at its "topleft" coordinates (x, y, z), through
// meshrcnn's voxel_to_world with MESH_WORLD; vert_lattice[rank] = p keeps the way back.
//
// Threads: one lattice point each (n = (H+1)(W+1)(D+1)), 256 per workgroup, 2-D grid.
//
// | binding | what                                  | access     |
// |---------|---------------------------------------|------------|
// | 0       | MeshParams (n, dim_*, flags)          | uniform    |
// | 1       | rank [n + 1] u32 (scanned marks)      | read       |
// | 2       | verts [V_cap, 3]                      | read_write |
// | 3       | vert_lattice [V_cap] u32              | read_write |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> rank: array<u32>;
@group(0) @binding(2) var<storage, read_write> verts: array<f32>;
@group(0) @binding(3) var<storage, read_write> vert_lattice: array<u32>;

@compute @workgroup_size(256)
fn mesh_cubify_verts(ids: IdxIds) {
    let p = idx_element(ids);
    if (p >= params.n) {
        return;
    }
    let r = rank[p];
    if (rank[p + 1u] == r) {
        return;
    }
    let z = p % (params.dim_d + 1u);
    let x = (p / (params.dim_d + 1u)) % (params.dim_w + 1u);
    let y = p / ((params.dim_d + 1u) * (params.dim_w + 1u));
    var v = vec3<f32>(mesh_topleft(x, params.dim_w), mesh_topleft(y, params.dim_h),
                      mesh_topleft(z, params.dim_d));
    if ((params.flags & MESH_WORLD) != 0u) {
        v = mesh_voxel_to_world(v);
    }
    verts[3u * r] = v.x;
    verts[3u * r + 1u] = v.y;
    verts[3u * r + 2u] = v.z;
    vert_lattice[r] = p;
}
