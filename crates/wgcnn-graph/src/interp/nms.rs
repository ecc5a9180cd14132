//! Box arithmetic shared by the detection ops, mirroring torchvision's f32 expressions
//! operation by operation: `BoxCoder.decode_single`, `clip_boxes_to_image`,
//! `remove_small_boxes`, the IoU of the `nms` CPU kernel, and `batched_nms`.

/// A box `(x1, y1, x2, y2)`.
pub(crate) type BoxXyxy = [f32; 4];

/// `BoxCoder.decode_single` for one box: `widths = x2 - x1`, `ctr_x = x1 + 0.5 * widths`,
/// `dx = code / wx`, `dw = min(code / ww, clip)`, `pred_ctr_x = dx * widths + ctr_x`,
/// `pred_w = exp(dw) * widths`, `x1' = pred_ctr_x - 0.5 * pred_w`, `x2' = pred_ctr_x + 0.5 *
/// pred_w` (likewise for y). f32 throughout, no fused multiply-add, as PyTorch evaluates it.
pub(crate) fn decode(code: &[f32], reference: &[f32], weights: [f32; 4], clip: f32) -> BoxXyxy {
    let widths = reference[2] - reference[0];
    let heights = reference[3] - reference[1];
    let ctr_x = reference[0] + 0.5 * widths;
    let ctr_y = reference[1] + 0.5 * heights;
    let dx = code[0] / weights[0];
    let dy = code[1] / weights[1];
    // torch.clamp(max=...) propagates NaN; f32::min would drop it.
    let clamp = |v: f32| if v > clip { clip } else { v };
    let dw = clamp(code[2] / weights[2]);
    let dh = clamp(code[3] / weights[3]);
    let pred_ctr_x = dx * widths + ctr_x;
    let pred_ctr_y = dy * heights + ctr_y;
    let pred_w = dw.exp() * widths;
    let pred_h = dh.exp() * heights;
    [
        pred_ctr_x - 0.5 * pred_w,
        pred_ctr_y - 0.5 * pred_h,
        pred_ctr_x + 0.5 * pred_w,
        pred_ctr_y + 0.5 * pred_h,
    ]
}

/// `clip_boxes_to_image`: x into `[0, width]`, y into `[0, height]`; `size` is
/// `(height, width)`.
pub(crate) fn clip(b: BoxXyxy, size: [usize; 2]) -> BoxXyxy {
    let (h, w) = (size[0] as f32, size[1] as f32);
    // torch.clamp keeps NaN; f32::clamp does too.
    [
        b[0].clamp(0.0, w),
        b[1].clamp(0.0, h),
        b[2].clamp(0.0, w),
        b[3].clamp(0.0, h),
    ]
}

/// `remove_small_boxes`' test: both sides `>= min_size` (compared in f32, as PyTorch compares
/// an f32 tensor with a Python float).
pub(crate) fn big_enough(b: &BoxXyxy, min_size: f32) -> bool {
    b[2] - b[0] >= min_size && b[3] - b[1] >= min_size
}

/// `(x2 - x1) * (y2 - y1)`, no `+ 1`.
pub(crate) fn area(b: &BoxXyxy) -> f32 {
    (b[2] - b[0]) * (b[3] - b[1])
}

/// IoU as torchvision's CPU `nms` kernel computes it: `inter / (area_i + area_j - inter)` with
/// the intersection sides clamped at 0 (NaN for two empty boxes, which never suppresses).
pub(crate) fn iou(a: &BoxXyxy, area_a: f32, b: &BoxXyxy, area_b: f32) -> f32 {
    let xx1 = a[0].max(b[0]);
    let yy1 = a[1].max(b[1]);
    let xx2 = a[2].min(b[2]);
    let yy2 = a[3].min(b[3]);
    let w = (xx2 - xx1).max(0.0);
    let h = (yy2 - yy1).max(0.0);
    let inter = w * h;
    inter / (area_a + area_b - inter)
}

/// The NMS threshold as the double torchvision's kernel compares the f32 IoU against
/// (`ovr > iou_threshold` in C++ promotes to double). The op stores the threshold as f32;
/// its shortest decimal form is the Python literal it came from (`0.7`, `0.5`), so parsing
/// that back as f64 recovers the exact comparison, including an IoU equal to `f32(0.7)`.
fn threshold_f64(t: f32) -> f64 {
    format!("{t}").parse::<f64>().unwrap_or(t as f64)
}

/// One NMS candidate: its box, score and group (the RPN level or the class label).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub(crate) bbox: BoxXyxy,
    pub(crate) score: f32,
    pub(crate) group: usize,
}

/// torchvision's CPU threshold between `_batched_nms_coordinate_trick` (at most this many box
/// coordinates) and `_batched_nms_vanilla` (more).
const VANILLA_ABOVE_NUMEL: usize = 4000;

/// `batched_nms(boxes, scores, groups, thresh)[:cap]`: the indices of the kept candidates,
/// best score first.
///
/// Order: candidates are visited by score descending; equal scores go by lower candidate
/// index first (torchvision's unstable sort leaves ties unspecified). A kept candidate
/// suppresses the later ones of its group whose IoU with it is `> thresh`; candidates of
/// different groups never interact. As torchvision on a CPU, with at most 1000 candidates the
/// IoU is computed on boxes shifted by `group * (max_coordinate + 1)` (the coordinate trick,
/// which only changes f32 rounding); with more, on the boxes as they are (one NMS per group).
pub(crate) fn batched_nms(cands: &[Candidate], thresh: f32, cap: usize) -> Vec<usize> {
    let n = cands.len();
    if n == 0 || cap == 0 {
        return Vec::new();
    }
    let boxes: Vec<BoxXyxy> = if n * 4 > VANILLA_ABOVE_NUMEL {
        cands.iter().map(|c| c.bbox).collect()
    } else {
        // offsets = idxs.to(boxes) * (boxes.max() + 1); boxes + offsets[:, None].
        let max_coord = cands
            .iter()
            .flat_map(|c| c.bbox)
            .fold(
                f32::NEG_INFINITY,
                |m, v| if v > m || v.is_nan() { v } else { m },
            );
        cands
            .iter()
            .map(|c| {
                let off = c.group as f32 * (max_coord + 1.0);
                c.bbox.map(|v| v + off)
            })
            .collect()
    };
    let areas: Vec<f32> = boxes.iter().map(area).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| desc_score(cands[a].score, cands[b].score).then(a.cmp(&b)));

    // Each group's members in visiting order, and each candidate's place in its group.
    let groups = cands.iter().map(|c| c.group).max().unwrap_or(0) + 1;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    let mut place = vec![0usize; n];
    for &i in &order {
        place[i] = members[cands[i].group].len();
        members[cands[i].group].push(i);
    }
    let thresh = threshold_f64(thresh);
    let mut suppressed = vec![false; n];
    let mut keep = Vec::new();
    for &i in &order {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        if keep.len() == cap {
            break;
        }
        for &j in &members[cands[i].group][place[i] + 1..] {
            if !suppressed[j] && (iou(&boxes[i], areas[i], &boxes[j], areas[j]) as f64) > thresh {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// Descending order of scores with NaN last. NaN never reaches a sort here ([`top_k`] drops
/// it, the score thresholds reject it); the order only keeps the comparison total.
fn desc_score(a: f32, b: f32) -> std::cmp::Ordering {
    b.partial_cmp(&a)
        .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

/// Indices `0..values.len()` of the `k` largest values, largest first, equal values by lower
/// index first (`torch.topk` leaves the order of ties unspecified).
///
/// NaN values are dropped, so fewer than `k` indices may come back. `torch.topk` ranks NaN
/// above every number, which would let NaN logits push real candidates out of the top-k (and
/// torchvision then drops the NaN boxes anyway); dropping them first is the defined behaviour,
/// the one the GPU kernels implement (`segment_keys` gives NaN the key of an unwanted entry).
pub(crate) fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).filter(|&i| !values[i].is_nan()).collect();
    let by = |a: &usize, b: &usize| desc_score(values[*a], values[*b]).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k, by);
        idx.truncate(k);
    }
    idx.sort_by(by);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_drops_nan_instead_of_ranking_it_first() {
        let neg_nan = f32::from_bits(0xffc0_0000);
        let v = [f32::NAN, 2.0, neg_nan, 1.0, f32::INFINITY, 2.0, f32::NAN];
        // torch.topk would return the NaNs first; here they never take a slot.
        assert_eq!(top_k(&v, 3), vec![4, 1, 5]);
        assert_eq!(top_k(&v, 7), vec![4, 1, 5, 3]);
        assert!(top_k(&[f32::NAN; 4], 2).is_empty());
    }
}
