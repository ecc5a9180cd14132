// mesh_edge_count: per vertex, its edges to higher vertices (set bits of edge_bits at its
// lattice point) and its degree (those plus the lower vertices whose bits point at it), for
// the scans that place pytorch3d's edge list and the CSR adjacency. Writes 0 past the vertex
// count so the scans can run over the capacity.
//
// Threads: one vertex each (n = V_cap + 1), 256 per workgroup, 2-D grid.
//
// | binding | what                             | access     |
// |---------|----------------------------------|------------|
// | 0       | MeshParams (n, deltas)           | uniform    |
// | 1       | edge_bits [lattice] u32          | read       |
// | 2       | vert_lattice [V_cap] u32         | read       |
// | 3       | counts u32                       | read       |
// | 4       | edge_count [V_cap + 1] u32       | read_write |
// | 5       | degree [V_cap + 1] u32           | read_write |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> edge_bits: array<u32>;
@group(0) @binding(2) var<storage, read> vert_lattice: array<u32>;
@group(0) @binding(3) var<storage, read> counts: array<u32>;
@group(0) @binding(4) var<storage, read_write> edge_count: array<u32>;
@group(0) @binding(5) var<storage, read_write> degree: array<u32>;

@compute @workgroup_size(256)
fn mesh_edge_count(ids: IdxIds) {
    let r = idx_element(ids);
    if (r >= params.n) {
        return;
    }
    if (r >= counts[MESH_VERTS]) {
        edge_count[r] = 0u;
        degree[r] = 0u;
        return;
    }
    let p = vert_lattice[r];
    let up = countOneBits(edge_bits[p]);
    var low = 0u;
    let deltas = mesh_deltas(params);
    for (var k = 0u; k < params.n_deltas; k++) {
        if (p >= deltas[k] && ((edge_bits[p - deltas[k]] >> k) & 1u) != 0u) {
            low += 1u;
        }
    }
    edge_count[r] = up;
    degree[r] = up + low;
}
