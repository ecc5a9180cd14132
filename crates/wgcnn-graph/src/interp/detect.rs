//! The detection post-processing ops: [`crate::Op::Proposals`] (the RPN's `filter_proposals`),
//! [`crate::Op::BoxPostprocess`] (`RoIHeads.postprocess_detections`) and
//! [`crate::Op::ScaleBoxes`] (`GeneralizedRCNNTransform.postprocess`'s `resize_boxes`).
//!
//! Each image's survivors fill the first rows of its fixed-capacity output, best score first;
//! the remaining rows are zero with score [`INVALID_SCORE`]. Candidates keep torchvision's
//! order (RPN: level by level, each level by descending logit; box head: proposal by proposal,
//! class by class), which is the order equal scores are resolved in (see
//! [`super::nms::batched_nms`]).

use super::nms::{Candidate, batched_nms, big_enough, clip, decode, top_k};
use crate::{BoxPostprocess, INVALID_SCORE, Proposals, Tensor};

/// A fixed-capacity `[N, cap, width]` output with every row unused.
fn empty_rows(out_shape: &[usize]) -> Vec<f32> {
    let width = out_shape[2];
    let mut out = vec![0f32; out_shape.iter().product()];
    for row in out.chunks_exact_mut(width) {
        row[4] = INVALID_SCORE;
    }
    out
}

/// `torch.sigmoid` in f32.
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `filter_proposals` per image: top-`pre_nms_top_n` logits per level, decode against the
/// anchors (weights 1), clip, `remove_small_boxes(min_size)`, sigmoid, `score >=
/// score_thresh`, NMS per level, best `post_nms_top_n`. NaN logits are dropped before the
/// top-k ([`top_k`]) rather than ranked first as `torch.topk` would; NaN deltas give NaN
/// boxes, which `big_enough` rejects.
pub(super) fn proposals(
    p: &Proposals,
    objectness: &Tensor,
    deltas: &Tensor,
    anchors: &Tensor,
    out_shape: &[usize],
) -> Tensor {
    let total = objectness.shape[1];
    let cap = out_shape[1];
    let mut out = empty_rows(out_shape);
    for n in 0..out_shape[0] {
        let logits = &objectness.data[n * total..(n + 1) * total];
        let codes = &deltas.data[n * total * 4..(n + 1) * total * 4];
        let mut cands = Vec::new();
        let mut offset = 0;
        for (level, &size) in p.level_sizes.iter().enumerate() {
            let level_logits = &logits[offset..offset + size];
            for a in top_k(level_logits, p.pre_nms_top_n.min(size)) {
                let i = offset + a;
                let decoded = decode(
                    &codes[i * 4..i * 4 + 4],
                    &anchors.data[i * 4..i * 4 + 4],
                    [1.0; 4],
                    p.bbox_clip,
                );
                let bbox = clip(decoded, p.image_size);
                if !big_enough(&bbox, p.min_size) {
                    continue;
                }
                let score = sigmoid(level_logits[a]);
                // `scores >= score_thresh` (NaN fails).
                if score >= p.score_thresh {
                    cands.push(Candidate {
                        bbox,
                        score,
                        group: level,
                    });
                }
            }
            offset += size;
        }
        let keep = batched_nms(&cands, p.nms_thresh, cap);
        let rows = &mut out[n * cap * 5..(n + 1) * cap * 5];
        for (row, &k) in rows.chunks_exact_mut(5).zip(&keep) {
            let c = &cands[k];
            row[..4].copy_from_slice(&c.bbox);
            row[4] = c.score;
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// `postprocess_detections` per image: softmax over the classes, per-class decode against the
/// proposal (`weights`), clip, drop the background class 0, `score > score_thresh`,
/// `remove_small_boxes(min_size)`, NMS per class, best `detections_per_img`. Proposal rows with
/// score [`INVALID_SCORE`] or NaN are not proposals and are skipped.
///
/// NaN never survives: a NaN probability fails `score > score_thresh`, and a NaN in the
/// regression or the proposal box makes the decoded box NaN, which `clip` keeps and
/// `big_enough` rejects (as in torchvision). The GPU kernels test the same cases explicitly.
pub(super) fn box_postprocess(
    p: &BoxPostprocess,
    logits: &Tensor,
    regression: &Tensor,
    proposals: &Tensor,
    out_shape: &[usize],
) -> Tensor {
    let classes = logits.shape[1];
    let rois = proposals.shape[1];
    let cap = out_shape[1];
    let mut out = empty_rows(out_shape);
    let mut probs = vec![0f32; classes];
    for n in 0..out_shape[0] {
        let mut cands = Vec::new();
        for r in 0..rois {
            let row = n * rois + r;
            let prop = &proposals.data[row * 5..row * 5 + 5];
            // torchvision ignores proposal scores; a NaN one marks a row no proposal stage
            // writes, so it is treated as unused rather than pooled and decoded.
            if prop[4] == INVALID_SCORE || prop[4].is_nan() {
                continue;
            }
            softmax(&logits.data[row * classes..(row + 1) * classes], &mut probs);
            let codes = &regression.data[row * classes * 4..(row + 1) * classes * 4];
            for (c, &score) in probs.iter().enumerate().skip(1) {
                // `scores > score_thresh` (NaN fails).
                if score.partial_cmp(&p.score_thresh) != Some(std::cmp::Ordering::Greater) {
                    continue;
                }
                let decoded = decode(&codes[c * 4..c * 4 + 4], &prop[..4], p.weights, p.bbox_clip);
                let bbox = clip(decoded, p.image_size);
                if big_enough(&bbox, p.min_size) {
                    cands.push(Candidate {
                        bbox,
                        score,
                        group: c,
                    });
                }
            }
        }
        let keep = batched_nms(&cands, p.nms_thresh, cap);
        let rows = &mut out[n * cap * 6..(n + 1) * cap * 6];
        for (row, &k) in rows.chunks_exact_mut(6).zip(&keep) {
            let c = &cands[k];
            row[..4].copy_from_slice(&c.bbox);
            row[4] = c.score;
            row[5] = c.group as f32;
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// `F.softmax(x, -1)` of one row into `out`: `exp(x - max) * (1 / sum)`.
fn softmax(x: &[f32], out: &mut [f32]) {
    let max = x.iter().fold(
        f32::NEG_INFINITY,
        |m, &v| if v > m || v.is_nan() { v } else { m },
    );
    let mut sum = 0f32;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - max).exp();
        sum += *o;
    }
    // PyTorch's CPU kernel multiplies by the reciprocal of the sum.
    let inv = 1.0 / sum;
    for o in out.iter_mut() {
        *o *= inv;
    }
}

/// `resize_boxes`: x coordinates times `scale[1]`, y times `scale[0]`; score and label (and
/// the zeros of unused rows) unchanged.
pub(super) fn scale_boxes(x: &Tensor, scale: [f32; 2]) -> Tensor {
    let mut data = x.data.clone();
    for row in data.chunks_exact_mut(6) {
        row[0] *= scale[1];
        row[1] *= scale[0];
        row[2] *= scale[1];
        row[3] *= scale[0];
    }
    Tensor {
        shape: x.shape.clone(),
        data,
    }
}
