//! [`crate::Op::RoiAlign`]: torchvision's `MultiScaleRoIAlign` (`LevelMapper` + the CPU
//! `roi_align` kernel), with the kernel's f32 arithmetic mirrored step by step.

use crate::{INVALID_SCORE, RoiAlign, Tensor};

/// torchvision's `_infer_scale` for one feature map: `2^round(log2(feature / image))` along the
/// height (the first axis decides, as in torchvision), with `image` the largest resized image
/// height of the batch (before padding). `round` is half-to-even, like `torch.round`.
pub fn infer_roi_scale(feature: usize, image: usize) -> f32 {
    let approx = (feature as f64 / image as f64) as f32;
    2f32.powf(approx.log2().round_ties_even())
}

/// The feature level index of `LevelMapper` for a box: `floor(k0 + log2(sqrt(area) / s0) +
/// 1e-6)` clamped to `[k_min, k_max]`, minus `k_min`. f32 as torchvision.
pub(crate) fn level_of(b: &[f32], r: &RoiAlign, k_min: f32, k_max: f32) -> usize {
    let area = (b[2] - b[0]) * (b[3] - b[1]);
    let s = area.sqrt();
    let k = (r.canonical_level + (s / r.canonical_scale).log2() + 1e-6f32).floor();
    // torch.clamp(min, max) then .to(int64): NaN (a negative area) would cast to an arbitrary
    // value in PyTorch; it maps to the first level here.
    let k = if k.is_nan() {
        k_min
    } else {
        k.max(k_min).min(k_max)
    };
    (k - k_min) as usize
}

/// `MultiScaleRoIAlign` over `boxes [N, R, 5 or 6]` and the feature levels; `out_shape` is
/// `[N * R, C, oh, ow]` (checked by `Op::infer`). Rows whose score is [`INVALID_SCORE`] stay
/// zero, as do boxes mapped to a level beyond the given ones (possible only when `scales`
/// does not halve level by level; torchvision skips such boxes too).
pub(super) fn roi_align(
    r: &RoiAlign,
    boxes: &Tensor,
    features: &[&Tensor],
    out_shape: &[usize],
) -> Tensor {
    let (rois, c) = (boxes.shape[1], out_shape[1]);
    let (oh, ow) = (r.output[0], r.output[1]);
    let per_roi = c * oh * ow;
    let mut out = vec![0f32; out_shape.iter().product()];
    let levels = features.len();
    // -log2(scale) as torchvision's `int(lvl)` (truncation; exact for powers of two).
    let k_of = |scale: f32| (-(scale.log2())).trunc();
    let (k_min, k_max) = match (r.scales.first(), r.scales.last()) {
        (Some(&first), Some(&last)) => (k_of(first), k_of(last)),
        _ => {
            return Tensor {
                shape: out_shape.to_vec(),
                data: out,
            };
        }
    };
    for (row, b) in boxes.data.chunks_exact(boxes.shape[2]).enumerate() {
        if b[4] == INVALID_SCORE {
            continue;
        }
        let n = row / rois.max(1);
        let level = if levels == 1 {
            0
        } else {
            level_of(b, r, k_min, k_max)
        };
        let Some(feature) = features.get(level) else {
            continue;
        };
        let dst = &mut out[row * per_roi..(row + 1) * per_roi];
        pool_one(r, b, r.scales[level], feature, n, dst);
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// Largest adaptive sampling grid per axis (`sampling_ratio == 0`): far beyond any box inside
/// the image (torchvision has no cap; its result for such boxes is an overflow).
const MAX_GRID: usize = 1024;

/// One sampling point: the four corner offsets within a plane and their weights.
#[derive(Clone, Copy, Default)]
struct Tap {
    pos: [usize; 4],
    w: [f32; 4],
}

/// `roi_align_forward_kernel_impl` for one RoI of image `n` into `dst [C, oh, ow]`.
fn pool_one(r: &RoiAlign, b: &[f32], scale: f32, feature: &Tensor, n: usize, dst: &mut [f32]) {
    let (channels, height, width) = (feature.shape[1], feature.shape[2], feature.shape[3]);
    let (oh, ow) = (r.output[0], r.output[1]);
    let offset = if r.aligned { 0.5f32 } else { 0.0 };
    let start_w = b[0] * scale - offset;
    let start_h = b[1] * scale - offset;
    let end_w = b[2] * scale - offset;
    let end_h = b[3] * scale - offset;
    let mut roi_w = end_w - start_w;
    let mut roi_h = end_h - start_h;
    if !r.aligned {
        // Malformed RoIs become 1x1.
        roi_w = roi_w.max(1.0);
        roi_h = roi_h.max(1.0);
    }
    let bin_h = roi_h / oh as f32;
    let bin_w = roi_w / ow as f32;
    let (grid_h, grid_w) = if r.sampling_ratio > 0 {
        (r.sampling_ratio, r.sampling_ratio)
    } else {
        // C++ `int = ceil(float)`; a negative extent (aligned) gives an empty grid. Capped at
        // MAX_GRID so that a garbage box cannot request billions of samples.
        let cells = |v: f32| (v.ceil().max(0.0) as usize).min(MAX_GRID);
        (cells(roi_h / oh as f32), cells(roi_w / ow as f32))
    };
    let count = (grid_h * grid_w).max(1) as f32;

    // pre_calc_for_bilinear_interpolate: taps shared by all channels.
    let mut taps = Vec::with_capacity(oh * ow * grid_h * grid_w);
    for ph in 0..oh {
        for pw in 0..ow {
            for iy in 0..grid_h {
                let yy = start_h + ph as f32 * bin_h + (iy as f32 + 0.5) * bin_h / grid_h as f32;
                for ix in 0..grid_w {
                    let xx =
                        start_w + pw as f32 * bin_w + (ix as f32 + 0.5) * bin_w / grid_w as f32;
                    taps.push(tap(yy, xx, height, width));
                }
            }
        }
    }
    let plane_len = height * width;
    if plane_len == 0 {
        return;
    }
    let per_bin = grid_h * grid_w;
    for ch in 0..channels {
        let base = (n * channels + ch) * plane_len;
        let plane = &feature.data[base..base + plane_len];
        let out = &mut dst[ch * oh * ow..(ch + 1) * oh * ow];
        for (bin, o) in out.iter_mut().enumerate() {
            let mut acc = 0f32;
            for t in &taps[bin * per_bin..(bin + 1) * per_bin] {
                acc += t.w[0] * plane[t.pos[0]]
                    + t.w[1] * plane[t.pos[1]]
                    + t.w[2] * plane[t.pos[2]]
                    + t.w[3] * plane[t.pos[3]];
            }
            *o = acc / count;
        }
    }
}

/// The bilinear tap at `(y, x)`: zero weights outside `[-1, height] x [-1, width]` (NaN
/// included), coordinates clamped at 0 below and to the last row/column above.
fn tap(y: f32, x: f32, height: usize, width: usize) -> Tap {
    let (hf, wf) = (height as f32, width as f32);
    if !(y >= -1.0 && y <= hf && x >= -1.0 && x <= wf) || height == 0 || width == 0 {
        return Tap::default();
    }
    let mut y = y.max(0.0);
    let mut x = x.max(0.0);
    let mut y_low = y as usize;
    let mut x_low = x as usize;
    let y_high;
    let x_high;
    if y_low >= height - 1 {
        y_low = height - 1;
        y_high = y_low;
        y = y_low as f32;
    } else {
        y_high = y_low + 1;
    }
    if x_low >= width - 1 {
        x_low = width - 1;
        x_high = x_low;
        x = x_low as f32;
    } else {
        x_high = x_low + 1;
    }
    let ly = y - y_low as f32;
    let lx = x - x_low as f32;
    let hy = 1.0 - ly;
    let hx = 1.0 - lx;
    Tap {
        pos: [
            y_low * width + x_low,
            y_low * width + x_high,
            y_high * width + x_low,
            y_high * width + x_high,
        ],
        w: [hy * hx, hy * lx, ly * hx, ly * lx],
    }
}
