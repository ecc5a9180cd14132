// mesh_cubify_remap: cubify's faces from lattice indices to vertex numbers (rank), and the mesh's
// edges as bits: edge (u, v) of a face (lattice indices, u < v) sets bit k of edge_bits[u] where
// v - u is the k-th of the ascending lattice steps d0..d8 an edge can take (unit steps and face
// diagonals). pytorch3d's unique sorted edges are then the set bits in (u, k) order, since
// vertex numbers follow lattice order. Integer atomics only.
//
// Threads: one face each (n = face capacity, counts[MESH_FACES] faces), 256 per workgroup,
// 2-D grid.
//
// | binding | what                                     | access     |
// |---------|------------------------------------------|------------|
// | 0       | MeshParams (n, count_slot, deltas)       | uniform    |
// | 1       | lattice_faces [F_cap, 3] u32             | read       |
// | 2       | rank [lattice + 1] u32                   | read       |
// | 3       | counts u32                               | read       |
// | 4       | faces [F_cap, 3] u32                     | read_write |
// | 5       | edge_bits [lattice] u32                  | read_write |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> lattice_faces: array<u32>;
@group(0) @binding(2) var<storage, read> rank: array<u32>;
@group(0) @binding(3) var<storage, read> counts: array<u32>;
@group(0) @binding(4) var<storage, read_write> faces: array<u32>;
@group(0) @binding(5) var<storage, read_write> edge_bits: array<atomic<u32>>;

fn set_edge(a: u32, b: u32) {
    let u = min(a, b);
    let step = max(a, b) - u;
    let deltas = mesh_deltas(params);
    for (var k = 0u; k < params.n_deltas; k++) {
        if (deltas[k] == step) {
            atomicOr(&edge_bits[u], 1u << k);
            return;
        }
    }
}

@compute @workgroup_size(256)
fn mesh_cubify_remap(ids: IdxIds) {
    let f = idx_element(ids);
    if (f >= min(params.n, counts[params.count_slot])) {
        return;
    }
    let a = lattice_faces[3u * f];
    let b = lattice_faces[3u * f + 1u];
    let c = lattice_faces[3u * f + 2u];
    set_edge(b, c);
    set_edge(c, a);
    set_edge(a, b);
    faces[3u * f] = rank[a];
    faces[3u * f + 1u] = rank[b];
    faces[3u * f + 2u] = rank[c];
}
