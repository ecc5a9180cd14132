//! torchvision's `RoIHeads.postprocess_detections` on the GPU.

use super::nms::{self, Candidates, NmsLayout};
use super::{MAX_CANDIDATES, bad, pairs_buffer, to_u32};
use crate::box_decode::{self, BoxDecodeParams, DecodeBuffers, DecodeGroup};
use crate::segment_keys::{self, KeySegment, SegmentKeysParams};
use crate::softmax::{self, SoftmaxParams};
use crate::{Context, KernelError, Launch, topk_sort};

/// The sizes and thresholds of a box post-processing stage (`wgcnn_graph::BoxPostprocess`).
#[derive(Clone, Debug, PartialEq)]
pub struct BoxPostprocessDesc {
    pub images: usize,
    /// Proposals per image (R).
    pub rois: usize,
    /// Classes including the background (K).
    pub classes: usize,
    pub image_size: [usize; 2],
    pub weights: [f32; 4],
    pub bbox_clip: f32,
    pub score_thresh: f32,
    pub nms_thresh: f32,
    pub detections_per_img: usize,
    pub min_size: f32,
}

/// Records the post-processing of `class_logits [N * R, K]`, `box_regression [N * R, K * 4]`
/// and `proposals [N, R, 5]` into `out [N, detections_per_img, 6]`. Launches: softmax, keys,
/// sort (one block per class), decode, NMS (4).
pub fn box_postprocess(
    ctx: &Context,
    label: &str,
    d: &BoxPostprocessDesc,
    class_logits: &wgpu::Buffer,
    box_regression: &wgpu::Buffer,
    proposals: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Vec<Launch>, KernelError> {
    const K: &str = "box_postprocess";
    if d.rois > MAX_CANDIDATES {
        return Err(bad(
            K,
            format!("{} proposals per image; at most {MAX_CANDIDATES}", d.rois),
        ));
    }
    let groups = d.classes.saturating_sub(1);
    let layout = NmsLayout {
        images: d.images,
        groups,
        kmax: d.rois,
        cap: d.detections_per_img.min(d.rois),
        out_cap: d.detections_per_img,
        row_width: 6,
        label_offset: 1,
        group_offset: 1,
        thresh: d.nms_thresh,
    };
    let cand = Candidates::new(ctx, label, &layout)?;
    if groups == 0 || d.rois == 0 || d.images == 0 {
        return nms::launches(ctx, label, &layout, &cand, out);
    }
    let rows = d.images * d.rois;
    let probs = ctx.storage(
        &format!("{label}[probabilities]"),
        (rows * d.classes) as u64 * 4,
    );
    let sm = SoftmaxParams::new(ctx, &[rows, d.classes], 1);
    let mut launches = vec![softmax::launch(
        ctx,
        &format!("{label}[softmax]"),
        &sm,
        class_logits,
        &probs,
    )];

    let padded = topk_sort::padded_len(d.rois, topk_sort::BLOCK);
    let stride = groups * padded;
    let pairs = pairs_buffer(ctx, label, d.images * stride)?;
    let segments: Vec<KeySegment> = (0..groups)
        .map(|g| KeySegment {
            src_off: g + 1,
            len: d.rois,
            dst_off: g * padded,
            padded,
        })
        .collect();
    let keys = SegmentKeysParams {
        groups: groups as u32,
        src_img_stride: to_u32(K, "scores per image", d.rois * d.classes)?,
        src_elem_stride: d.classes as u32,
        dst_img_stride: to_u32(K, "sort pairs per image", stride)?,
        mode: 1,
        _pad: [0; 2],
        thresh: d.score_thresh,
    };
    launches.push(segment_keys::launch(
        ctx,
        &format!("{label}[keys]"),
        &keys,
        d.images,
        &segments,
        &probs,
        &pairs,
    ));
    let sort_segments: Vec<(usize, usize)> = (0..d.images * groups)
        .map(|s| (s * padded, padded))
        .collect();
    launches.extend(topk_sort::launches(
        ctx,
        label,
        &sort_segments,
        topk_sort::BLOCK,
        &pairs,
    ));
    let decode_groups: Vec<DecodeGroup> = (0..groups)
        .map(|g| DecodeGroup {
            item_off: 0,
            count: d.rois,
            pair_off: g * padded,
            class: g + 1,
        })
        .collect();
    let decode = BoxDecodeParams {
        groups: groups as u32,
        kmax: d.rois as u32,
        pair_img_stride: stride as u32,
        score_img_stride: (d.rois * d.classes) as u32,
        score_elem_stride: d.classes as u32,
        ref_img_stride: to_u32(K, "proposal values per image", d.rois * 5)?,
        ref_row: 5,
        sigmoid: 0,
        strict: 1,
        image_h: d.image_size[0] as f32,
        image_w: d.image_size[1] as f32,
        min_size: d.min_size,
        thresh: d.score_thresh,
        bbox_clip: d.bbox_clip,
        weights: d.weights,
        ..Default::default()
    };
    let buffers = DecodeBuffers {
        pairs: &pairs,
        scores: &probs,
        deltas: box_regression,
        refs: proposals,
        cand_boxes: &cand.boxes,
        cand_scores: &cand.scores,
    };
    launches.push(box_decode::launch(
        ctx,
        &format!("{label}[decode]"),
        &decode,
        d.images,
        &decode_groups,
        buffers,
    ));
    launches.extend(nms::launches(ctx, label, &layout, &cand, out)?);
    Ok(launches)
}
