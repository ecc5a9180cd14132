//! [`crate::Op::PasteMasks`]: torchvision's `maskrcnn_inference` (sigmoid of the label's
//! channel) and `paste_masks_in_image` (`expand_masks`, `expand_boxes`, `paste_mask_in_image`),
//! in f32 as PyTorch computes them.

use super::resize::linear_tap;
use crate::{Activation, INVALID_SCORE, Tensor};

/// The integer box a mask is pasted into: torchvision's `expand_boxes(box, scale)` then
/// `.to(torch.int64)` (truncation toward zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasteBox {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
}

impl PasteBox {
    /// The expanded, truncated box of `b = [x1, y1, x2, y2]` for `mask` x `mask` masks padded
    /// by `padding`: `scale = float(M + 2 padding) / M` (f64, applied in f32 as a PyTorch
    /// scalar), half extents `(x2 - x1) * 0.5 * scale` about the centre `(x2 + x1) * 0.5`.
    pub fn new(b: &[f32], mask: usize, padding: usize) -> PasteBox {
        let scale = ((mask + 2 * padding) as f64 / mask as f64) as f32;
        let w_half = (b[2] - b[0]) * 0.5 * scale;
        let h_half = (b[3] - b[1]) * 0.5 * scale;
        let (x_c, y_c) = ((b[2] + b[0]) * 0.5, (b[3] + b[1]) * 0.5);
        PasteBox {
            x0: (x_c - w_half) as i64,
            y0: (y_c - h_half) as i64,
            x1: (x_c + w_half) as i64,
            y1: (y_c + h_half) as i64,
        }
    }

    /// The resized mask's `(height, width)`: `box extent + 1`, at least 1.
    pub fn extent(&self) -> (usize, usize) {
        (
            (self.y1 - self.y0 + 1).max(1) as usize,
            (self.x1 - self.x0 + 1).max(1) as usize,
        )
    }
}

/// Pastes each detection's mask into a zero image; `out_shape` is `[N, D, H, W]` (checked by
/// `Op::infer`).
pub(super) fn paste_masks(
    logits: &Tensor,
    dets: &Tensor,
    padding: usize,
    out_shape: &[usize],
) -> Tensor {
    let (k, m) = (logits.shape[1], logits.shape[2]);
    let (ih, iw) = (out_shape[2], out_shape[3]);
    let padded = m + 2 * padding;
    let mut out = vec![0f32; out_shape.iter().product()];
    for (row, d) in dets.data.chunks_exact(6).enumerate() {
        // A label that is not a channel index (negative, NaN, too large) pastes nothing.
        let label = d[5];
        if d[4] == INVALID_SCORE || !(label >= 0.0 && (label as usize) < k) {
            continue;
        }
        let channel = &logits.data[(row * k + label as usize) * m * m..][..m * m];
        // The padded probability map, row-major `padded` x `padded`.
        let mut prob = vec![0f32; padded * padded];
        for (y, src) in channel.chunks_exact(m).enumerate() {
            let dst = &mut prob[(y + padding) * padded + padding..][..m];
            for (p, &v) in dst.iter_mut().zip(src) {
                *p = Activation::Sigmoid.apply(v);
            }
        }
        let pb = PasteBox::new(d, m, padding);
        let (h, w) = pb.extent();
        let ys = pb.y0.max(0)..(pb.y1 + 1).min(ih as i64);
        let xs = pb.x0.max(0)..(pb.x1 + 1).min(iw as i64);
        let image = &mut out[row * ih * iw..(row + 1) * ih * iw];
        for y in ys {
            let ty = linear_tap((y - pb.y0) as usize, padded, h, false);
            let (r0, r1) = (&prob[ty.i0 * padded..], &prob[ty.i1 * padded..]);
            for x in xs.clone() {
                let tx = linear_tap((x - pb.x0) as usize, padded, w, false);
                let top = tx.w0 * r0[tx.i0] + tx.w1 * r0[tx.i1];
                let bottom = tx.w0 * r1[tx.i0] + tx.w1 * r1[tx.i1];
                image[y as usize * iw + x as usize] = ty.w0 * top + ty.w1 * bottom;
            }
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// [`crate::Op::MaskBits`]: each `[H, W]` mask of `x` thresholded (`> threshold`) and packed 32
/// pixels a word, low bit first, each mask starting on a word; words as f32 bit patterns.
pub(crate) fn mask_bits(x: &Tensor, threshold: f32, out_shape: &[usize]) -> Tensor {
    let pixels = x.shape[2] * x.shape[3];
    let words = pixels.div_ceil(32);
    let mut data = Vec::with_capacity(out_shape.iter().product());
    for mask in x.data.chunks_exact(pixels.max(1)) {
        for w in 0..words {
            let mut bits = 0u32;
            for (b, &p) in mask[w * 32..pixels.min(w * 32 + 32)].iter().enumerate() {
                bits |= u32::from(p > threshold) << b;
            }
            data.push(f32::from_bits(bits));
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::PasteBox;
    use crate::interp::eval_op;
    use crate::{INVALID_SCORE, Op, Tensor};

    #[test]
    fn paste_box_expands_by_padded_ratio_and_truncates_toward_zero() {
        // 28x28 masks padded by 1: scale 30/28. Box 10..36 x 4..20: half extents 13 * 30/28 =
        // 13.93 and 8 * 30/28 = 8.57 about (23, 12).
        let b = PasteBox::new(&[10.0, 4.0, 36.0, 20.0], 28, 1);
        assert_eq!(
            b,
            PasteBox {
                x0: 9,
                y0: 3,
                x1: 36,
                y1: 20
            }
        );
        assert_eq!(b.extent(), (18, 28));
        // Near the top-left corner -0.35 truncates toward zero (floor would give -1).
        let b = PasteBox::new(&[0.1, 0.1, 1.0, 1.0], 2, 1);
        assert_eq!((b.x0, b.y0, b.x1, b.y1), (0, 0, 1, 1));
    }

    #[test]
    fn paste_masks_of_a_constant_mask_fill_its_box_and_fade_at_the_padding() {
        // One 2x2 mask of logit +inf-ish (probability 1) for label 1 in a 3-channel head; box
        // 2..4 x 1..3 in a 6x8 image: expanded by 4/2 about (3, 2) -> 1..5 x 0..4, 5x5 pixels.
        let mut logits = vec![-20.0f32; 3 * 4];
        logits[4..8].fill(20.0);
        let logits = Tensor::new(&[1, 3, 2, 2], logits).expect("logits");
        let dets = Tensor::new(&[1, 1, 6], vec![2.0, 1.0, 4.0, 3.0, 0.9, 1.0]).expect("dets");
        let op = Op::PasteMasks {
            size: [6, 8],
            padding: 1,
        };
        let y = eval_op(&op, &[&logits, &dets]).expect("paste");
        assert_eq!(y.shape, [1, 1, 6, 8]);
        let at = |r: usize, c: usize| y.data[r * 8 + c];
        // Outside the 1..=5 x 0..=4 box: zero.
        assert_eq!(at(5, 3), 0.0);
        assert_eq!(at(2, 0), 0.0);
        assert_eq!(at(2, 6), 0.0);
        // The centre samples the inner 2x2 (probability 1).
        assert!((at(2, 3) - 1.0).abs() < 1e-6, "{}", at(2, 3));
        // The box's first column samples between the zero padding and the mask:
        // src = (0 + 0.5) * 4/5 - 0.5 = -0.1 -> 0, i.e. the padding itself.
        assert!(at(2, 1) < 1e-6, "{}", at(2, 1));
        // Symmetric about the centre column.
        assert!((at(2, 2) - at(2, 4)).abs() < 1e-6);
    }

    #[test]
    fn paste_masks_skips_unused_rows_and_labels_past_the_channels() {
        let logits = Tensor::new(&[3, 2, 2, 2], vec![5.0; 24]).expect("logits");
        #[rustfmt::skip]
        let dets = Tensor::new(&[1, 3, 6], vec![
            0.0, 0.0, 4.0, 4.0, INVALID_SCORE, 1.0,
            0.0, 0.0, 4.0, 4.0, 0.5, 2.0,
            0.0, 0.0, 4.0, 4.0, 0.5, f32::NAN,
        ]).expect("dets");
        let op = Op::PasteMasks {
            size: [5, 5],
            padding: 1,
        };
        let y = eval_op(&op, &[&logits, &dets]).expect("paste");
        assert!(y.data.iter().all(|&v| v == 0.0));
        let bad = Tensor::new(&[1, 2, 6], vec![0.0; 12]).expect("dets");
        assert!(
            eval_op(&op, &[&logits, &bad]).is_err(),
            "3 masks for 2 detections"
        );
    }
}
