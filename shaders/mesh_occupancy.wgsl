// mesh_occupancy: cubify's occupancy of a voxel grid [D, H, W]: occ = p >= thresh with
// p = sigmoid(value) (flag MESH_SIGMOID, the voxel head's logits) or the value itself; sets
// counts[MESH_ANY] when some p > thresh (meshrcnn's empty-grid test; mesh_fallback reads it).
//
// Threads: one voxel each (n = D*H*W), 256 per workgroup, 2-D grid.
//
// | binding | what                          | access     |
// |---------|-------------------------------|------------|
// | 0       | MeshParams (n, flags, thresh) | uniform    |
// | 1       | values [D*H*W]                | read       |
// | 2       | occ [D*H*W] u32               | read_write |
// | 3       | counts u32                    | read_write |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> occ: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;

@compute @workgroup_size(256)
fn mesh_occupancy(ids: IdxIds) {
    let i = idx_element(ids);
    if (i >= params.n) {
        return;
    }
    var p = values[i];
    if ((params.flags & MESH_SIGMOID) != 0u) {
        p = 1.0 / (1.0 + exp(-clamp(p, -80.0, 80.0)));
    }
    occ[i] = select(0u, 1u, p >= params.thresh);
    if (p > params.thresh) {
        atomicOr(&counts[MESH_ANY], 1u);
    }
}
