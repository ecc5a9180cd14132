//! [`crate::Op::KeypointDecode`]: torchvision's `heatmaps_to_keypoints` (Keypoint R-CNN) and
//! `resize_keypoints`, in f32 as PyTorch computes them on the CPU.
//!
//! Each heatmap is resized bicubically to the box's ceiled size with the weights and clamped
//! taps of PyTorch's `upsample_bicubic2d` (`compute_indices_weights_cubic`, horizontal taps
//! summed first, then vertical), so the maximum found, and the value reported, are those
//! PyTorch finds.

use crate::{INVALID_SCORE, Tensor};

/// The largest box side decoded: detector boxes are clipped to the image, so only a broken
/// row is wider, and decoding it would resize a heatmap to billions of pixels (the GPU kernel
/// also indexes the resized map's pixels in u32).
pub const MAX_EXTENT: f32 = 32768.0;

/// PyTorch's bicubic coefficient `A`.
const CUBIC_A: f32 = -0.75;

/// One output pixel's four source taps along an axis (indices clamped to the input) and their
/// weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CubicTaps {
    pub index: [usize; 4],
    pub weight: [f32; 4],
}

/// The taps of output pixel `dst` when resizing `input` pixels to `output` pixels
/// (`align_corners=False`, no explicit scale): `real = in / out * (dst + 0.5) - 0.5`, the
/// integer part clamped to `in - 1` and the fraction to `[0, 1]` (PyTorch's
/// `guard_index_and_lambda`), taps `floor - 1 ..= floor + 2` clamped to the input.
pub fn cubic_taps(dst: usize, input: usize, output: usize) -> CubicTaps {
    let scale = input as f32 / output as f32;
    let real = scale * (dst as f32 + 0.5) - 0.5;
    let i = (real.floor() as i64).min(input as i64 - 1);
    let t = (real - i as f32).clamp(0.0, 1.0);
    let conv1 = |x: f32| ((CUBIC_A + 2.0) * x - (CUBIC_A + 3.0)) * x * x + 1.0;
    let conv2 = |x: f32| ((CUBIC_A * x - 5.0 * CUBIC_A) * x + 8.0 * CUBIC_A) * x - 4.0 * CUBIC_A;
    let weight = [conv2(t + 1.0), conv1(t), conv1(1.0 - t), conv2(2.0 - t)];
    let last = input as i64 - 1;
    let index = [0, 1, 2, 3].map(|j| (i - 1 + j).clamp(0, last) as usize);
    CubicTaps { index, weight }
}

/// The decoded keypoints `[N, D, J, 3]` (`out_shape`, checked by `Op::infer`) of `heatmaps`
/// `[N * D, J, H, W]` in the boxes of `dets` `[N, D, 6]`.
pub(super) fn keypoint_decode(
    heatmaps: &Tensor,
    dets: &Tensor,
    scale: [f32; 2],
    out_shape: &[usize],
) -> Tensor {
    let (joints, h, w) = (heatmaps.shape[1], heatmaps.shape[2], heatmaps.shape[3]);
    let mut out = vec![0f32; out_shape.iter().product()];
    for (row, d) in dets.data.chunks_exact(6).enumerate() {
        let Some(map) = RoiMap::new(d) else {
            continue;
        };
        let (cols, rows) = map.taps(h, w);
        let maps = &heatmaps.data[row * joints * h * w..(row + 1) * joints * h * w];
        let dst = &mut out[row * joints * 3..(row + 1) * joints * 3];
        // The heatmap resized horizontally: `h` rows of `cw` values.
        let mut across = vec![0f32; h * cols.len()];
        for (plane, kp) in maps.chunks_exact(h * w).zip(dst.chunks_exact_mut(3)) {
            for (src, tmp) in plane
                .chunks_exact(w)
                .zip(across.chunks_exact_mut(cols.len()))
            {
                for (t, c) in tmp.iter_mut().zip(&cols) {
                    *t = tap_sum(c, |i| src[i]);
                }
            }
            let (mut best, mut at) = (f32::NEG_INFINITY, (0, 0));
            for (y, r) in rows.iter().enumerate() {
                for x in 0..cols.len() {
                    let v = tap_sum(r, |i| across[i * cols.len() + x]);
                    // The first maximum wins (the first pixel is taken whatever its value).
                    if v > best || (y == 0 && x == 0) {
                        (best, at) = (v, (x, y));
                    }
                }
            }
            let [x, y] = map.position(at);
            kp.copy_from_slice(&[x * scale[1], y * scale[0], best]);
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// `Σ w_j v(i_j)` in PyTorch's order: the first product, then each further one added.
fn tap_sum(t: &CubicTaps, v: impl Fn(usize) -> f32) -> f32 {
    let mut s = v(t.index[0]) * t.weight[0];
    for j in 1..4 {
        s += v(t.index[j]) * t.weight[j];
    }
    s
}

/// One detection's box as `heatmaps_to_keypoints` sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoiMap {
    pub x1: f32,
    pub y1: f32,
    /// Width and height, at least 1.
    pub width: f32,
    pub height: f32,
    /// `ceil(width)`, `ceil(height)`: the resized map's size.
    pub cols: usize,
    pub rows: usize,
}

impl RoiMap {
    /// The map of detection row `d` `(x1, y1, x2, y2, score, label)`, or `None` for an unused
    /// row or a box wider or taller than [`MAX_EXTENT`] (or NaN).
    pub fn new(d: &[f32]) -> Option<RoiMap> {
        let width = (d[2] - d[0]).max(1.0);
        let height = (d[3] - d[1]).max(1.0);
        if d[4] == INVALID_SCORE || !(width <= MAX_EXTENT && height <= MAX_EXTENT) {
            return None;
        }
        Some(RoiMap {
            x1: d[0],
            y1: d[1],
            width,
            height,
            cols: width.ceil() as usize,
            rows: height.ceil() as usize,
        })
    }

    /// The horizontal and vertical taps from an `h` x `w` heatmap.
    pub fn taps(&self, h: usize, w: usize) -> (Vec<CubicTaps>, Vec<CubicTaps>) {
        (
            (0..self.cols)
                .map(|x| cubic_taps(x, w, self.cols))
                .collect(),
            (0..self.rows)
                .map(|y| cubic_taps(y, h, self.rows))
                .collect(),
        )
    }

    /// `(x, y)` of the resized map's pixel `(x_int, y_int)` in the box's frame:
    /// `(x_int + 0.5) * (w / ceil(w)) + x1`.
    pub fn position(&self, (x, y): (usize, usize)) -> [f32; 2] {
        let cx = self.width / self.cols as f32;
        let cy = self.height / self.rows as f32;
        [
            (x as f32 + 0.5) * cx + self.x1,
            (y as f32 + 0.5) * cy + self.y1,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Op;
    use crate::interp::eval_op;

    #[test]
    fn cubic_taps_are_the_identity_at_the_same_size_and_sum_to_one() {
        for dst in 0..7 {
            let t = cubic_taps(dst, 7, 7);
            assert_eq!(t.weight, [0.0, 1.0, 0.0, 0.0], "dst {dst}");
            assert_eq!(t.index[1], dst);
        }
        for (input, output) in [(56, 3), (56, 130), (56, 1), (4, 9)] {
            for dst in 0..output {
                let t = cubic_taps(dst, input, output);
                let s: f32 = t.weight.iter().sum();
                assert!((s - 1.0).abs() < 1e-5, "{input}->{output} dst {dst}: {s}");
                assert!(t.index.iter().all(|&i| i < input));
            }
        }
        // Upsampling 2 -> 4: the first output pixel sits at -0.25: floor -1, fraction 0.75,
        // taps -2..1 clamped to 0, 0, 0, 1.
        let t = cubic_taps(0, 2, 4);
        assert_eq!(t.index, [0, 0, 0, 1]);
    }

    #[test]
    fn keypoint_decode_finds_the_peak_and_maps_it_into_the_box() {
        // One 8x8 heatmap with its peak at (x 5, y 2); box 10..26 x 20..28 (16 x 8 pixels):
        // upsampled x2 wide, x1 high, the peak lands at resized column 10 or 11, row 2.
        let mut map = vec![0f32; 64];
        map[2 * 8 + 5] = 10.0;
        let heat = Tensor::new(&[1, 1, 8, 8], map).expect("heatmap");
        let dets = Tensor::new(&[1, 1, 6], vec![10.0, 20.0, 26.0, 28.0, 0.9, 1.0]).expect("dets");
        let op = Op::KeypointDecode { scale: [1.0, 2.0] };
        let y = eval_op(&op, &[&heat, &dets]).expect("decode");
        assert_eq!(y.shape, [1, 1, 1, 3]);
        let (x, yy, s) = (y.data[0], y.data[1], y.data[2]);
        assert!(
            x == (10.0 + 10.5) * 2.0 || x == (10.0 + 11.5) * 2.0,
            "x {x} (scaled by 2)"
        );
        assert_eq!(yy, 20.0 + 2.5);
        // A quarter pixel off the peak: the cubic weight there is 0.879.
        assert!(s > 8.5, "score {s}");
    }

    #[test]
    fn keypoint_decode_takes_the_first_maximum_and_clamps_tiny_boxes_to_one_pixel() {
        // A constant map: every pixel ties, the first (0, 0) wins. A 0.25 x 0.5 box is a
        // 1 x 1 map: x = 0.5 * 1 / 1 + x1.
        let heat = Tensor::new(&[1, 2, 4, 4], vec![3.0; 32]).expect("heatmap");
        let dets = Tensor::new(&[1, 1, 6], vec![4.0, 6.0, 4.25, 6.5, 0.5, 1.0]).expect("dets");
        let op = Op::KeypointDecode { scale: [1.0, 1.0] };
        let y = eval_op(&op, &[&heat, &dets]).expect("decode");
        assert_eq!(y.data, [4.5, 6.5, 3.0, 4.5, 6.5, 3.0]);
    }

    #[test]
    fn keypoint_decode_leaves_unused_rows_zero_and_rejects_mismatched_rows() {
        let heat = Tensor::new(&[2, 1, 4, 4], vec![1.0; 32]).expect("heatmap");
        #[rustfmt::skip]
        let dets = Tensor::new(&[1, 2, 6], vec![
            0.0, 0.0, 4.0, 4.0, INVALID_SCORE, 1.0,
            0.0, 0.0, f32::INFINITY, 4.0, 0.5, 1.0,
        ]).expect("dets");
        let op = Op::KeypointDecode { scale: [1.0, 1.0] };
        let y = eval_op(&op, &[&heat, &dets]).expect("decode");
        assert!(y.data.iter().all(|&v| v == 0.0));
        let bad = Tensor::new(&[1, 1, 6], vec![0.0; 6]).expect("dets");
        assert!(eval_op(&op, &[&heat, &bad]).is_err(), "2 maps for 1 row");
    }
}
