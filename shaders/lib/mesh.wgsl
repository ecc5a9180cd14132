// Mesh R-CNN's mesh kernels (mesh_*.wgsl): the params struct they share, the slots of the
// counts buffer, and the math of pytorch3d's cubify / meshrcnn's coordinate transforms and of
// grid_sample (bilinear, align_corners=True). Values in, values out.
//
// MeshParams mirrors `MeshParams` in crates/wgcnn-kernels/src/mesh/mod.rs; each kernel's header
// says which fields it reads.

struct MeshParams {
    n: u32,           // elements of the launch (a capacity when count_slot is set)
    count_slot: u32,  // counts[count_slot] bounds the elements further; NO_SLOT: n alone
    flags: u32,       // kernel-specific bits (MESH_*)
    act: u32,         // activation code (lib/activation.wgsl)
    dim_d: u32,       // voxel grid D (z), H (y), W (x)
    dim_h: u32,
    dim_w: u32,
    thresh: f32,      // cubify threshold
    in_f: u32,        // linear: input features, read from x[row * ld_x + col_x + k]
    out_f: u32,       // linear: output features, written to y[row * ld_y + col_y + o]
    ld_x: u32,
    ld_y: u32,
    col_x: u32,
    col_y: u32,
    map_c: u32,       // vert_align: the map's [C, H, W], and its first channel in the output/weight
    map_h: u32,
    map_w: u32,
    col_map: u32,
    n_deltas: u32,    // lattice index steps of possible edges, ascending (d0..d8)
    slot2: u32,       // a second counts slot (scans: where the total goes)
    aux0: u32,
    aux1: u32,
    d0: u32, d1: u32, d2: u32, d3: u32, d4: u32, d5: u32, d6: u32, d7: u32, d8: u32,
    _pad0: u32, _pad1: u32, _pad2: u32, _pad3: u32, _pad4: u32,
    k0: f32, k1: f32, k2: f32, k3: f32, k4: f32, k5: f32, k6: f32, k7: f32,
    k8: f32, k9: f32, k10: f32, k11: f32, k12: f32, k13: f32, k14: f32, k15: f32,
}

const MESH_NO_SLOT: u32 = 0xffffffffu;
// Slots of the counts buffer.
const MESH_ANY: u32 = 0u;     // 1 when some probability is > thresh (meshrcnn's empty check)
const MESH_FACES: u32 = 1u;
const MESH_VERTS: u32 = 2u;
const MESH_EDGES: u32 = 3u;
const MESH_ADJ: u32 = 4u;

// flags
const MESH_SIGMOID: u32 = 1u;     // occupancy: values are logits
const MESH_FALLBACK: u32 = 2u;    // occupancy: meshrcnn's centre block when nothing is occupied
const MESH_WORLD: u32 = 4u;       // cubify vertices through voxel_to_world
const MESH_FLIP_Y: u32 = 8u;      // vert_align samples (x, -y)
const MESH_BORDER: u32 = 16u;     // vert_align border padding (else zeros)
const MESH_FIRST: u32 = 32u;      // accumulate: start from the bias
const MESH_LAST: u32 = 64u;       // accumulate: apply the activation
const MESH_COPY2: u32 = 128u;     // gather: also write the result to out2

fn mesh_deltas(p: MeshParams) -> array<u32, 9> {
    return array<u32, 9>(p.d0, p.d1, p.d2, p.d3, p.d4, p.d5, p.d6, p.d7, p.d8);
}

// Lattice index i on an axis of s voxels, "topleft": i * 2 / (s - 1) - 1.
fn mesh_topleft(i: u32, s: u32) -> f32 {
    return f32(i) * 2.0 / (f32(s) - 1.0) - 1.0;
}

// meshrcnn voxel_to_world (ShapeNet zmin 0.67, zmax 0.92), PyTorch's f32 order.
fn mesh_voxel_to_world(v: vec3<f32>) -> vec3<f32> {
    let y = -v.y;
    let z = (v.z - -6.36) / 8.0;
    let zz = (1.0 / (-z - -1.002002)) * -0.2002002;
    return vec3<f32>(-0.45714286 * (zz * v.x), -0.45714286 * (zz * y), zz);
}

// meshrcnn project_verts with the row-major 4x4 matrix k0..k15.
fn mesh_project_point(p: MeshParams, v: vec3<f32>) -> vec3<f32> {
    let h0 = v.x * p.k0 + v.y * p.k1 + v.z * p.k2 + p.k3;
    let h1 = v.x * p.k4 + v.y * p.k5 + v.z * p.k6 + p.k7;
    let h2 = v.x * p.k8 + v.y * p.k9 + v.z * p.k10 + p.k11;
    let h3 = v.x * p.k12 + v.y * p.k13 + v.z * p.k14 + p.k15;
    let s = select(1.0, -1.0, h3 < 0.0);
    let w = s * max(abs(h3), 0.1);
    return vec3<f32>(h0 / w, h1 / w, h2 / w);
}

// The four bilinear taps of grid_sample (align_corners=True) at normalized (gx, gy) on an
// [h, w] plane, in ATen's order nw, ne, sw, se: plane offsets (-1 when the tap is outside,
// zeros padding) and weights.
struct MeshTaps {
    idx: vec4<i32>,
    wt: vec4<f32>,
}

fn mesh_taps(gx: f32, gy: f32, h: u32, w: u32, border: bool) -> MeshTaps {
    var ix = (gx + 1.0) / 2.0 * (f32(w) - 1.0);
    var iy = (gy + 1.0) / 2.0 * (f32(h) - 1.0);
    if (border) {
        ix = clamp(ix, 0.0, f32(w) - 1.0);
        iy = clamp(iy, 0.0, f32(h) - 1.0);
    }
    let x0 = floor(ix);
    let y0 = floor(iy);
    let x1 = x0 + 1.0;
    let y1 = y0 + 1.0;
    let xs = vec4<f32>(x0, x1, x0, x1);
    let ys = vec4<f32>(y0, y0, y1, y1);
    var t: MeshTaps;
    t.wt = vec4<f32>((x1 - ix) * (y1 - iy), (ix - x0) * (y1 - iy), (x1 - ix) * (iy - y0),
                     (ix - x0) * (iy - y0));
    for (var j = 0; j < 4; j++) {
        let inside = xs[j] >= 0.0 && ys[j] >= 0.0 && xs[j] < f32(w) && ys[j] < f32(h);
        t.idx[j] = select(-1, i32(ys[j]) * i32(w) + i32(xs[j]), inside);
    }
    return t;
}
