// mesh_edges: pytorch3d's edges_packed (unique (min, max) pairs, ascending) and the CSR
// adjacency GraphConv sums over (each vertex's neighbours ascending: lower ones, then higher),
// written at the scanned offsets of mesh_edge_count. Deterministic: no atomics, no sort.
//
// Threads: one vertex each (n = V_cap, counts[MESH_VERTS] vertices), 256 per workgroup, 2-D grid.
//
// | binding | what                               | access     |
// |---------|------------------------------------|------------|
// | 0       | MeshParams (n, deltas)             | uniform    |
// | 1       | edge_bits [lattice] u32            | read       |
// | 2       | vert_lattice [V_cap] u32           | read       |
// | 3       | rank [lattice + 1] u32             | read       |
// | 4       | counts u32                         | read       |
// | 5       | edge_offset [V_cap + 1] u32        | read       |
// | 6       | adj_offset [V_cap + 1] u32         | read       |
// | 7       | edges [E_cap, 2] u32               | read_write |
// | 8       | adj [2 E_cap] u32                  | read_write |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> edge_bits: array<u32>;
@group(0) @binding(2) var<storage, read> vert_lattice: array<u32>;
@group(0) @binding(3) var<storage, read> rank: array<u32>;
@group(0) @binding(4) var<storage, read> counts: array<u32>;
@group(0) @binding(5) var<storage, read> edge_offset: array<u32>;
@group(0) @binding(6) var<storage, read> adj_offset: array<u32>;
@group(0) @binding(7) var<storage, read_write> edges: array<u32>;
@group(0) @binding(8) var<storage, read_write> adj: array<u32>;

@compute @workgroup_size(256)
fn mesh_edges(ids: IdxIds) {
    let r = idx_element(ids);
    if (r >= min(params.n, counts[MESH_VERTS])) {
        return;
    }
    let p = vert_lattice[r];
    let deltas = mesh_deltas(params);
    let bits = edge_bits[p];
    var e = edge_offset[r];
    var a = adj_offset[r];
    // Lower neighbours, ascending: largest step first.
    for (var j = 0u; j < params.n_deltas; j++) {
        let k = params.n_deltas - 1u - j;
        if (p >= deltas[k] && ((edge_bits[p - deltas[k]] >> k) & 1u) != 0u) {
            adj[a] = rank[p - deltas[k]];
            a += 1u;
        }
    }
    for (var k = 0u; k < params.n_deltas; k++) {
        if (((bits >> k) & 1u) != 0u) {
            let q = rank[p + deltas[k]];
            edges[2u * e] = r;
            edges[2u * e + 1u] = q;
            e += 1u;
            adj[a] = q;
            a += 1u;
        }
    }
}
