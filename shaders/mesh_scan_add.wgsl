// mesh_scan_add: last step of the exclusive prefix sum: adds each block's scanned total
// (mesh_scan_sums) to its elements.
//
// Threads: one element each, 256 per workgroup, 2-D grid.
//
// | binding | what                    | access     |
// |---------|-------------------------|------------|
// | 0       | MeshParams (n)          | uniform    |
// | 1       | data [n] u32            | read_write |
// | 2       | block_sums [blocks] u32 | read       |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read_write> data: array<u32>;
@group(0) @binding(2) var<storage, read> block_sums: array<u32>;

@compute @workgroup_size(256)
fn mesh_scan_add(ids: IdxIds) {
    let i = idx_element(ids);
    if (i >= params.n) {
        return;
    }
    data[i] += block_sums[i / 1024u];
}
