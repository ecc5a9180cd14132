// mesh_cubify_faces: cubify's triangles as lattice indices (point (x, y, z) of the
// (H+1)(W+1)(D+1) lattice is (y * (W+1) + x) * (D+1) + z), each voxel's at its scanned offset,
// sides in pytorch3d's order (left, bottom, front, up, right, back); marks every lattice point a
// triangle uses (mark = 1; the exclusive scan of the marks is the vertex numbering).
//
// Threads: one voxel each in visiting order (n = D*H*W), 256 per workgroup, 2-D grid.
//
// | binding | what                                 | access     |
// |---------|--------------------------------------|------------|
// | 0       | MeshParams (n, dim_*)                | uniform    |
// | 1       | occ [D, H, W] u32                    | read       |
// | 2       | face_offset [n + 1] (scanned counts) | read       |
// | 3       | lattice_faces [F_cap, 3] u32         | read_write |
// | 4       | marks [(H+1)(W+1)(D+1) + 1] u32      | read_write |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> occ: array<u32>;
@group(0) @binding(2) var<storage, read> face_offset: array<u32>;
@group(0) @binding(3) var<storage, read_write> lattice_faces: array<u32>;
@group(0) @binding(4) var<storage, read_write> marks: array<u32>;

fn occupied(x: i32, y: i32, z: i32) -> bool {
    let d = i32(params.dim_d);
    let h = i32(params.dim_h);
    let w = i32(params.dim_w);
    if (x < 0 || y < 0 || z < 0 || x >= w || y >= h || z >= d) {
        return false;
    }
    return occ[u32((z * h + y) * w + x)] != 0u;
}

// Corner c = 4dx + 2dy + dz of voxel (x, y, z) as a lattice index.
fn corner(x: u32, y: u32, z: u32, c: u32) -> u32 {
    let lx = x + (c >> 2u);
    let ly = y + ((c >> 1u) & 1u);
    let lz = z + (c & 1u);
    return (ly * (params.dim_w + 1u) + lx) * (params.dim_d + 1u) + lz;
}

// pytorch3d's cube faces: side s has triangles TRIS[2s], TRIS[2s + 1].
const TRIS = array<vec3<u32>, 12>(
    vec3<u32>(0u, 1u, 2u), vec3<u32>(1u, 3u, 2u),  // left
    vec3<u32>(2u, 3u, 6u), vec3<u32>(3u, 7u, 6u),  // bottom
    vec3<u32>(0u, 2u, 6u), vec3<u32>(0u, 6u, 4u),  // front
    vec3<u32>(0u, 5u, 1u), vec3<u32>(0u, 4u, 5u),  // up
    vec3<u32>(6u, 7u, 5u), vec3<u32>(6u, 5u, 4u),  // right
    vec3<u32>(1u, 7u, 3u), vec3<u32>(1u, 5u, 7u),  // back
);
const NEIGHBOUR = array<vec3<i32>, 6>(
    vec3<i32>(-1, 0, 0), vec3<i32>(0, 1, 0), vec3<i32>(0, 0, -1),
    vec3<i32>(0, -1, 0), vec3<i32>(1, 0, 0), vec3<i32>(0, 0, 1),
);

@compute @workgroup_size(256)
fn mesh_cubify_faces(ids: IdxIds) {
    let i = idx_element(ids);
    if (i >= params.n) {
        return;
    }
    let z = i % params.dim_d;
    let x = (i / params.dim_d) % params.dim_w;
    let y = i / (params.dim_d * params.dim_w);
    if (!occupied(i32(x), i32(y), i32(z))) {
        return;
    }
    var f = face_offset[i];
    for (var s = 0u; s < 6u; s++) {
        let nb = vec3<i32>(i32(x), i32(y), i32(z)) + NEIGHBOUR[s];
        if (occupied(nb.x, nb.y, nb.z)) {
            continue;
        }
        for (var t = 0u; t < 2u; t++) {
            let tri = TRIS[2u * s + t];
            for (var j = 0u; j < 3u; j++) {
                let p = corner(x, y, z, tri[j]);
                lattice_faces[3u * f + j] = p;
                marks[p] = 1u;
            }
            f += 1u;
        }
    }
}
