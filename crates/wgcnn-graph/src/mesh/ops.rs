//! The per-vertex operators of Mesh R-CNN's refinement stages, as pytorch3d and meshrcnn define
//! them: unique mesh edges, `vert_align` (grid_sample of feature maps at vertices), GraphConv,
//! and meshrcnn's `voxel_to_world` / `project_verts` coordinate transforms. All f32, in PyTorch's
//! operation order where the fixtures pin bits (see the fixtures README, mesh/ section).

use crate::interp::eval_op;
use crate::{Activation, GraphError, Op, Tensor};

/// pytorch3d `Meshes.edges_packed`: the unique undirected edges of `faces`, each as
/// `(min, max)`, sorted ascending. Triangle sides only; no self-loops unless a face repeats a
/// vertex.
pub fn edges_packed(faces: &[[u32; 3]]) -> Vec<[u32; 2]> {
    let mut edges: Vec<[u32; 2]> = faces
        .iter()
        .flat_map(|&[a, b, c]| [[b, c], [c, a], [a, b]])
        .map(|[u, v]| [u.min(v), u.max(v)])
        .collect();
    edges.sort_unstable();
    edges.dedup();
    edges
}

/// How `vert_align` treats taps outside the map (grid_sample's `padding_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplePadding {
    /// Each out-of-range tap contributes 0.
    Zeros,
    /// Sample positions are clamped to the map first.
    Border,
}

/// pytorch3d `vert_align(feats, verts, padding_mode, align_corners=True)`: each map `[N, C, H, W]`
/// sampled bilinearly at every vertex's `(x, y)` (z ignored) of `verts [N, V, 3]`, the maps'
/// samples concatenated per vertex: `[N, V, ΣC]`.
pub fn vert_align(
    feats: &[&Tensor],
    verts: &Tensor,
    padding: SamplePadding,
) -> Result<Tensor, GraphError> {
    let [n, v, k] = <[usize; 3]>::try_from(verts.shape.as_slice()).map_err(|_| {
        GraphError::Invalid(format!(
            "vert_align verts {:?}, want [N, V, 3]",
            verts.shape
        ))
    })?;
    if k < 2 {
        return Err(GraphError::Invalid(format!(
            "vert_align verts {:?}: need x and y",
            verts.shape
        )));
    }
    let mut dims = Vec::with_capacity(feats.len());
    for f in feats {
        match f.shape.as_slice() {
            &[fn_, c, h, w] if fn_ == n => dims.push([c, h, w]),
            s => {
                return Err(GraphError::Invalid(format!(
                    "vert_align feature map {s:?}, want [{n}, C, H, W]"
                )));
            }
        }
    }
    let total: usize = dims.iter().map(|d| d[0]).sum();
    let mut out = vec![0f32; n * v * total];
    for b in 0..n {
        for i in 0..v {
            let p = &verts.data[(b * v + i) * k..];
            let row = &mut out[(b * v + i) * total..(b * v + i + 1) * total];
            let mut at = 0;
            for (f, &[c, h, w]) in feats.iter().zip(&dims) {
                let map = &f.data[b * c * h * w..(b + 1) * c * h * w];
                sample(map, [c, h, w], p[0], p[1], padding, &mut row[at..at + c]);
                at += c;
            }
        }
    }
    Tensor::new(&[n, v, total], out)
}

/// Bilinear sample of a `[C, H, W]` map at normalized `(gx, gy)` with align_corners=True,
/// following ATen's grid_sampler_2d (source index, floor, four taps nw/ne/sw/se in that order).
fn sample(
    map: &[f32],
    [c, h, w]: [usize; 3],
    gx: f32,
    gy: f32,
    padding: SamplePadding,
    out: &mut [f32],
) {
    let mut ix = (gx + 1.0) / 2.0 * (w as f32 - 1.0);
    let mut iy = (gy + 1.0) / 2.0 * (h as f32 - 1.0);
    if padding == SamplePadding::Border {
        ix = ix.clamp(0.0, w as f32 - 1.0);
        iy = iy.clamp(0.0, h as f32 - 1.0);
    }
    let (x0, y0) = (ix.floor(), iy.floor());
    let (x1, y1) = (x0 + 1.0, y0 + 1.0);
    let taps = [
        (x0, y0, (x1 - ix) * (y1 - iy)),
        (x1, y0, (ix - x0) * (y1 - iy)),
        (x0, y1, (x1 - ix) * (iy - y0)),
        (x1, y1, (ix - x0) * (iy - y0)),
    ];
    let inside = |x: f32, y: f32| x >= 0.0 && y >= 0.0 && x < w as f32 && y < h as f32;
    for (ch, o) in out.iter_mut().enumerate().take(c) {
        let plane = &map[ch * h * w..(ch + 1) * h * w];
        let mut acc = 0f32;
        for &(x, y, wt) in &taps {
            if inside(x, y) {
                acc += plane[y as usize * w + x as usize] * wt;
            }
        }
        *o = acc;
    }
}

/// pytorch3d `GraphConv` (undirected): `out_i = W0·x_i + b0 + Σ_{j∈N(i)} (W1·x_j + b1)` for
/// `x [V, Din]`, Linear weights `[Dout, Din]` and biases `[Dout]`, over unique `edges`.
/// Neighbours are summed in ascending edge order per vertex (the order a sorted CSR gives).
pub fn graph_conv(
    x: &Tensor,
    edges: &[[u32; 2]],
    w0: (&Tensor, &Tensor),
    w1: (&Tensor, &Tensor),
) -> Result<Tensor, GraphError> {
    let linear = Op::Linear {
        bias: true,
        act: Activation::Identity,
    };
    let mut out = eval_op(&linear, &[x, w0.0, w0.1])?;
    let y1 = eval_op(&linear, &[x, w1.0, w1.1])?;
    let v = x.shape[0];
    let dout = out.shape[1];
    for &[a, b] in edges {
        let (a, b) = (a as usize, b as usize);
        if a >= v || b >= v {
            return Err(GraphError::Invalid(format!(
                "graph_conv edge ({a}, {b}) outside {v} vertices"
            )));
        }
        for k in 0..dout {
            out.data[a * dout + k] += y1.data[b * dout + k];
            out.data[b * dout + k] += y1.data[a * dout + k];
        }
    }
    Ok(out)
}

/// meshrcnn's `voxel_to_world` constants for ShapeNet (zmin 0.67, zmax 0.92) as f32.
const VOX_Z_B: f32 = -6.36;
const VOX_Z_M: f32 = 8.0;
const BLENDER_A3: f32 = -1.002002;
const BLENDER_B1: f32 = -0.2002002;
/// `b2 / a2 = -1 / 2.1875` rounded once to f32 (PyTorch folds the Python scalars first).
const BLENDER_INV_F: f32 = -0.45714286;

/// meshrcnn `voxel_to_world` on one vertex: voxel space `[-1, 1]^3` (y down, z rescaled) to the
/// Blender camera frame, in PyTorch's f32 operation order (reciprocal first, then the multiply).
pub fn voxel_to_world(p: [f32; 3]) -> [f32; 3] {
    let [x, y, z] = p;
    let y = -y;
    let z = (z - VOX_Z_B) / VOX_Z_M;
    let zz = (1.0 / (-z - BLENDER_A3)) * BLENDER_B1;
    [BLENDER_INV_F * (zz * x), BLENDER_INV_F * (zz * y), zz]
}

/// meshrcnn `project_verts(v, P)`: `h = [v, 1]·Pᵀ`, `w = sign(h3)·max(|h3|, 0.1)` with
/// sign(0) = 1,
/// result `h[0..3] / w`. `p` is row-major 4x4.
pub fn project_vert(v: [f32; 3], p: &[f32; 16]) -> [f32; 3] {
    let h: [f32; 4] = std::array::from_fn(|j| {
        v[0] * p[4 * j] + v[1] * p[4 * j + 1] + v[2] * p[4 * j + 2] + p[4 * j + 3]
    });
    let sign = if h[3] < 0.0 { -1.0 } else { 1.0 };
    let w = sign * h[3].abs().max(0.1);
    [h[0] / w, h[1] / w, h[2] / w]
}
