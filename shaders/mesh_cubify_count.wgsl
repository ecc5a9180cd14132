// mesh_cubify_count: triangles each voxel of cubify emits: 2 per side whose neighbour is empty
// or outside the grid, 0 for an empty voxel. Voxels are in pytorch3d's visiting order
// (y, x, z; z fastest), so an exclusive scan gives each voxel's first face.
//
// Threads: one voxel each (n = D*H*W), 256 per workgroup, 2-D grid.
//
// | binding | what                            | access     |
// |---------|---------------------------------|------------|
// | 0       | MeshParams (n, dim_*)           | uniform    |
// | 1       | occ [D, H, W] u32               | read       |
// | 2       | face_count [n + 1] (y, x, z)    | read_write |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> occ: array<u32>;
@group(0) @binding(2) var<storage, read_write> face_count: array<u32>;

fn occupied(x: i32, y: i32, z: i32) -> bool {
    let d = i32(params.dim_d);
    let h = i32(params.dim_h);
    let w = i32(params.dim_w);
    if (x < 0 || y < 0 || z < 0 || x >= w || y >= h || z >= d) {
        return false;
    }
    return occ[u32((z * h + y) * w + x)] != 0u;
}

@compute @workgroup_size(256)
fn mesh_cubify_count(ids: IdxIds) {
    let i = idx_element(ids);
    if (i > params.n) {
        return;
    }
    if (i == params.n) {
        face_count[i] = 0u;
        return;
    }
    // i in visiting order: y-major, then x, then z.
    let z = i32(i % params.dim_d);
    let x = i32((i / params.dim_d) % params.dim_w);
    let y = i32(i / (params.dim_d * params.dim_w));
    var c = 0u;
    if (occupied(x, y, z)) {
        c += select(0u, 2u, !occupied(x - 1, y, z));
        c += select(0u, 2u, !occupied(x, y + 1, z));
        c += select(0u, 2u, !occupied(x, y, z - 1));
        c += select(0u, 2u, !occupied(x, y - 1, z));
        c += select(0u, 2u, !occupied(x + 1, y, z));
        c += select(0u, 2u, !occupied(x, y, z + 1));
    }
    face_count[i] = c;
}
