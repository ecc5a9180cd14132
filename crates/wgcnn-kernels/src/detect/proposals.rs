//! torchvision's `RegionProposalNetwork.filter_proposals` on the GPU.

use super::nms::{self, Candidates, NmsLayout};
use super::{MAX_CANDIDATES, bad, pairs_buffer, to_u32};
use crate::box_decode::{self, BoxDecodeParams, DecodeBuffers, DecodeGroup};
use crate::segment_keys::{self, KeySegment, SegmentKeysParams};
use crate::{Context, KernelError, Launch, topk_sort};

/// The sizes and thresholds of a proposal stage (`wgcnn_graph::Proposals` for `images`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProposalsDesc {
    pub images: usize,
    /// Anchors per level, level-major.
    pub level_sizes: Vec<usize>,
    pub pre_nms_top_n: usize,
    pub post_nms_top_n: usize,
    pub nms_thresh: f32,
    pub score_thresh: f32,
    pub min_size: f32,
    /// `(height, width)` boxes are clipped to.
    pub image_size: [usize; 2],
    pub bbox_clip: f32,
}

/// Records the proposal stage: `objectness [N, A]`, `deltas [N, A, 4]`, `anchors [A, 4]` into
/// `out [N, post_nms_top_n, 5]`. Launches: keys, block sort, one merge per halving of the
/// largest level's blocks, decode, NMS (4).
pub fn proposals(
    ctx: &Context,
    label: &str,
    d: &ProposalsDesc,
    objectness: &wgpu::Buffer,
    deltas: &wgpu::Buffer,
    anchors: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Vec<Launch>, KernelError> {
    const K: &str = "proposals";
    let total: usize = d.level_sizes.iter().sum();
    let ks: Vec<usize> = d
        .level_sizes
        .iter()
        .map(|&s| s.min(d.pre_nms_top_n))
        .collect();
    let kmax = ks.iter().copied().max().unwrap_or(0);
    if kmax > MAX_CANDIDATES {
        return Err(bad(
            K,
            format!(
                "pre_nms_top_n {} over a level of {:?} anchors; at most {MAX_CANDIDATES} per level",
                d.pre_nms_top_n, d.level_sizes
            ),
        ));
    }
    let groups = d.level_sizes.len();
    let layout = NmsLayout {
        images: d.images,
        groups,
        kmax,
        cap: d.post_nms_top_n.min(kmax),
        out_cap: d.post_nms_top_n,
        row_width: 5,
        label_offset: 0,
        group_offset: 0,
        thresh: d.nms_thresh,
    };
    let cand = Candidates::new(ctx, label, &layout)?;
    if kmax == 0 || d.images == 0 {
        return nms::launches(ctx, label, &layout, &cand, out);
    }
    // Pair segments: level g of image n at n * stride + pair_off[g], in blocks that hold k.
    let block = topk_sort::block_for(kmax);
    let mut segments = Vec::with_capacity(groups);
    let mut decode_groups = Vec::with_capacity(groups);
    let (mut pair_off, mut item_off) = (0, 0);
    for (g, &size) in d.level_sizes.iter().enumerate() {
        let padded = topk_sort::padded_len(size, block);
        segments.push(KeySegment {
            src_off: item_off,
            len: size,
            dst_off: pair_off,
            padded,
        });
        decode_groups.push(DecodeGroup {
            item_off,
            count: ks[g],
            pair_off,
            class: 0,
        });
        pair_off += padded;
        item_off += size;
    }
    let stride = pair_off;
    if segments
        .iter()
        .any(|s| s.padded.div_ceil(256) > crate::MAX_GROUPS as usize)
    {
        return Err(bad(
            K,
            format!(
                "a level of {:?} anchors exceeds one grid axis of 256-pair chunks",
                d.level_sizes
            ),
        ));
    }
    let pairs = pairs_buffer(ctx, label, d.images * stride)?;
    let keys = SegmentKeysParams {
        groups: groups as u32,
        src_img_stride: to_u32(K, "anchors", total)?,
        src_elem_stride: 1,
        dst_img_stride: to_u32(K, "sort pairs per image", stride)?,
        mode: 0,
        _pad: [0; 2],
        thresh: 0.0,
    };
    let mut launches = vec![segment_keys::launch(
        ctx,
        &format!("{label}[keys]"),
        &keys,
        d.images,
        &segments,
        objectness,
        &pairs,
    )];
    let sort_segments: Vec<(usize, usize)> = (0..d.images)
        .flat_map(|n| {
            segments
                .iter()
                .map(move |s| (n * stride + s.dst_off, s.padded))
        })
        .collect();
    launches.extend(topk_sort::launches(
        ctx,
        label,
        &sort_segments,
        block,
        &pairs,
    ));
    let decode = BoxDecodeParams {
        groups: groups as u32,
        kmax: kmax as u32,
        pair_img_stride: stride as u32,
        score_img_stride: total as u32,
        score_elem_stride: 1,
        ref_img_stride: 0,
        ref_row: 4,
        sigmoid: 1,
        strict: 0,
        image_h: d.image_size[0] as f32,
        image_w: d.image_size[1] as f32,
        min_size: d.min_size,
        thresh: d.score_thresh,
        bbox_clip: d.bbox_clip,
        weights: [1.0; 4],
        ..Default::default()
    };
    let buffers = DecodeBuffers {
        pairs: &pairs,
        scores: objectness,
        deltas,
        refs: anchors,
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
