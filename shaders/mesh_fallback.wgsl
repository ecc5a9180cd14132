// mesh_fallback: meshrcnn's VoxMeshHead.cubify fallback: when no probability is > thresh
// (counts[MESH_ANY] = 0), the block [S/4, S/4 + S/2) of every axis becomes occupied.
//
// Threads: one voxel each (n = D*H*W), 256 per workgroup, 2-D grid.
//
// | binding | what                      | access     |
// |---------|---------------------------|------------|
// | 0       | MeshParams (n, dim_*)     | uniform    |
// | 1       | occ [D*H*W] u32           | read_write |
// | 2       | counts u32                | read       |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read_write> occ: array<u32>;
@group(0) @binding(2) var<storage, read> counts: array<u32>;

fn in_block(i: u32, s: u32) -> bool {
    return i >= s / 4u && i < s / 4u + s / 2u;
}

@compute @workgroup_size(256)
fn mesh_fallback(ids: IdxIds) {
    let i = idx_element(ids);
    if (i >= params.n || counts[MESH_ANY] != 0u) {
        return;
    }
    let x = i % params.dim_w;
    let y = (i / params.dim_w) % params.dim_h;
    let z = i / (params.dim_w * params.dim_h);
    if (in_block(x, params.dim_w) && in_block(y, params.dim_h) && in_block(z, params.dim_d)) {
        occ[i] = 1u;
    }
}
