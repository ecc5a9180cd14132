//! Resampling and axis permutation: [`crate::Op::Resize`] (PyTorch's `F.interpolate` with
//! `mode="nearest"` / `"bilinear"`, an explicit output `size`, no antialiasing) and
//! [`crate::Op::Permute`].
//!
//! The index arithmetic follows PyTorch's CPU kernels in f32, so the chosen source pixels are
//! the same ones PyTorch picks (including its rounding of `dst * in / out`).

use crate::{ResizeMode, Tensor};

/// `F.interpolate(x, size, mode, align_corners)` for NCHW `x`; `out_shape` is
/// `[N, C, size[0], size[1]]` (checked by `Op::infer`).
pub(super) fn resize(x: &Tensor, mode: ResizeMode, out_shape: &[usize]) -> Tensor {
    let (h, w) = (x.shape[2], x.shape[3]);
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let planes = out_shape[0] * out_shape[1];
    let mut out = Vec::with_capacity(planes * oh * ow);
    match mode {
        ResizeMode::Nearest => {
            let rows: Vec<usize> = (0..oh).map(|o| nearest_index(o, h, oh)).collect();
            let cols: Vec<usize> = (0..ow).map(|o| nearest_index(o, w, ow)).collect();
            for pi in 0..planes {
                let plane = &x.data[pi * h * w..(pi + 1) * h * w];
                for &sy in &rows {
                    let row = &plane[sy * w..(sy + 1) * w];
                    out.extend(cols.iter().map(|&sx| row[sx]));
                }
            }
        }
        ResizeMode::Bilinear { align_corners } => {
            let rows: Vec<LinearTap> = (0..oh)
                .map(|o| linear_tap(o, h, oh, align_corners))
                .collect();
            let cols: Vec<LinearTap> = (0..ow)
                .map(|o| linear_tap(o, w, ow, align_corners))
                .collect();
            for pi in 0..planes {
                let plane = &x.data[pi * h * w..(pi + 1) * h * w];
                for ry in &rows {
                    let r0 = &plane[ry.i0 * w..(ry.i0 + 1) * w];
                    let r1 = &plane[ry.i1 * w..(ry.i1 + 1) * w];
                    for cx in &cols {
                        let top = cx.w0 * r0[cx.i0] + cx.w1 * r0[cx.i1];
                        let bottom = cx.w0 * r1[cx.i0] + cx.w1 * r1[cx.i1];
                        out.push(ry.w0 * top + ry.w1 * bottom);
                    }
                }
            }
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// [`crate::Op::ArgMax2d`]: per output pixel, the first largest channel of `x` resized
/// bilinearly (`align_corners=False`) to `out_shape` `[N, OH, OW]`, with the weights of
/// [`resize`] (so the values compared are exactly those `Resize` would produce).
pub(super) fn argmax2d(x: &Tensor, out_shape: &[usize]) -> Tensor {
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let rows: Vec<LinearTap> = (0..oh).map(|o| linear_tap(o, h, oh, false)).collect();
    let cols: Vec<LinearTap> = (0..ow).map(|o| linear_tap(o, w, ow, false)).collect();
    let mut out = Vec::with_capacity(n * oh * ow);
    for image in x.data.chunks_exact(c * h * w) {
        for ry in &rows {
            for cx in &cols {
                let (mut best, mut arg) = (f32::NEG_INFINITY, 0usize);
                for (k, plane) in image.chunks_exact(h * w).enumerate() {
                    let (r0, r1) = (&plane[ry.i0 * w..], &plane[ry.i1 * w..]);
                    let top = cx.w0 * r0[cx.i0] + cx.w1 * r0[cx.i1];
                    let bottom = cx.w0 * r1[cx.i0] + cx.w1 * r1[cx.i1];
                    let v = ry.w0 * top + ry.w1 * bottom;
                    // `>` keeps the first maximum (a NaN never wins).
                    if v > best {
                        best = v;
                        arg = k;
                    }
                }
                out.push(arg as f32);
            }
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// PyTorch's `nearest_idx`: `min(floor(dst * (in / out)), in - 1)` with the scale in f32
/// (identity when `in == out`, `dst / 2` when `out == 2 * in`, as PyTorch special-cases).
pub(crate) fn nearest_index(dst: usize, input: usize, output: usize) -> usize {
    if input == output {
        dst
    } else if output == 2 * input {
        dst / 2
    } else {
        let scale = input as f32 / output as f32;
        ((dst as f32 * scale).floor() as usize).min(input - 1)
    }
}

/// The two source indices along one axis and their weights for linear interpolation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LinearTap {
    pub(crate) i0: usize,
    pub(crate) i1: usize,
    pub(crate) w0: f32,
    pub(crate) w1: f32,
}

/// PyTorch's `area_pixel_compute_source_index` + `compute_indices_weights_linear`:
/// with `align_corners` the source coordinate is `dst * (in - 1) / (out - 1)` (0 when
/// `out == 1`); without it `max((dst + 0.5) * in / out - 0.5, 0)`. `i0 = floor(src)`,
/// `i1 = min(i0 + 1, in - 1)`, `w1 = src - i0`, `w0 = 1 - w1`.
pub(crate) fn linear_tap(
    dst: usize,
    input: usize,
    output: usize,
    align_corners: bool,
) -> LinearTap {
    let src = if align_corners {
        if output > 1 {
            (input as f32 - 1.0) / (output as f32 - 1.0) * dst as f32
        } else {
            0.0
        }
    } else {
        let scale = input as f32 / output as f32;
        (scale * (dst as f32 + 0.5) - 0.5).max(0.0)
    };
    let i0 = (src as usize).min(input - 1);
    let i1 = if i0 + 1 < input { i0 + 1 } else { i0 };
    let w1 = (src - i0 as f32).clamp(0.0, 1.0);
    LinearTap {
        i0,
        i1,
        w0: 1.0 - w1,
        w1,
    }
}

/// Moves data so that output axis `i` is input axis `perm[i]` (`perm` checked by `Op::infer`).
pub(super) fn permute(x: &Tensor, perm: &[usize], out_shape: &[usize]) -> Tensor {
    let rank = x.shape.len();
    let mut in_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * x.shape[i + 1];
    }
    // Input stride of each output axis.
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let n = x.data.len();
    let mut out = Vec::with_capacity(n);
    if n > 0 {
        let inner = out_shape.last().copied().unwrap_or(1);
        let inner_stride = strides.last().copied().unwrap_or(0);
        let outer = rank.saturating_sub(1);
        let mut idx = vec![0usize; outer];
        for _ in 0..n / inner.max(1) {
            let base: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
            out.extend((0..inner).map(|j| x.data[base + j * inner_stride]));
            for ax in (0..outer).rev() {
                idx[ax] += 1;
                if idx[ax] < out_shape[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}
