//! Batched NMS over candidates already decoded in descending score order, per segment (a level
//! or a class of one image), into a fixed-capacity output.

use crate::nms_gather::{GatherInputs, NmsGatherParams};
use crate::nms_mask::{NmsMaskParams, threshold_for_f32_compare};
use crate::nms_offsets::NmsOffsetsParams;
use crate::nms_walk::NmsWalkParams;
use crate::{Context, KernelError, Launch, nms_gather, nms_mask, nms_offsets, nms_walk};

/// torchvision's CPU `batched_nms` uses the coordinate trick up to 4000 box coordinates.
pub(super) const TRICK_MAX: u32 = 1000;

/// The candidate layout and the output of one batched NMS.
#[derive(Clone, Copy, Debug)]
pub(super) struct NmsLayout {
    pub images: usize,
    /// Segments per image.
    pub groups: usize,
    /// Candidate slots per segment (<= 2048).
    pub kmax: usize,
    /// The most kept per segment.
    pub cap: usize,
    /// Output rows per image.
    pub out_cap: usize,
    pub row_width: usize,
    /// Label written for segment g (row width 6): g + label_offset.
    pub label_offset: usize,
    /// Group id of segment g in the coordinate trick: g + group_offset.
    pub group_offset: usize,
    pub thresh: f32,
}

/// Candidate buffers: `[images * groups * kmax]` boxes (vec4) and scores.
pub(super) struct Candidates {
    pub boxes: wgpu::Buffer,
    pub scores: wgpu::Buffer,
}

impl Candidates {
    pub fn new(ctx: &Context, label: &str, l: &NmsLayout) -> Result<Self, KernelError> {
        // At least one slot: the kernels bind the boxes as vec4 (16 bytes) even when empty.
        let slots = (l.images * l.groups * l.kmax).max(1) as u64;
        check_size(ctx, label, "candidate boxes", slots * 16)?;
        Ok(Candidates {
            boxes: ctx.storage(&format!("{label}[candidate boxes]"), slots * 16),
            scores: ctx.storage(&format!("{label}[candidate scores]"), slots * 4),
        })
    }
}

fn check_size(ctx: &Context, label: &str, what: &str, bytes: u64) -> Result<(), KernelError> {
    if bytes > ctx.max_binding() {
        return Err(KernelError::TooLarge {
            what: format!("{label}: {what}"),
            needed: bytes,
            limit: ctx.max_binding(),
        });
    }
    Ok(())
}

/// Records offsets, mask, walk and gather into `out` `[images, out_cap, row_width]`.
pub(super) fn launches(
    ctx: &Context,
    label: &str,
    l: &NmsLayout,
    cand: &Candidates,
    out: &wgpu::Buffer,
) -> Result<Vec<Launch>, KernelError> {
    launches_with(ctx, label, l, Overlap::BatchedIou, cand, out)
}

/// How [`launches_with`] measures overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Overlap {
    /// torchvision's `batched_nms`: IoU, with its coordinate trick between segments.
    BatchedIou,
    /// torchvision's `nms` run on each segment alone (MTCNN's per-level NMS): IoU, no trick.
    Iou,
    /// MTCNN's `nms_numpy(..., 'Min')`: intersection over the smaller box, +1 pixel widths,
    /// the threshold compared in f32; each segment alone.
    Min,
}

/// [`launches`] with the overlap measure chosen.
pub(super) fn launches_with(
    ctx: &Context,
    label: &str,
    l: &NmsLayout,
    overlap: Overlap,
    cand: &Candidates,
    out: &wgpu::Buffer,
) -> Result<Vec<Launch>, KernelError> {
    let k = "nms";
    let segments = l.images * l.groups;
    let words = l.kmax.div_ceil(32);
    let gather = NmsGatherParams {
        groups: super::to_u32(k, "segments per image", l.groups)?,
        images: super::to_u32(k, "images", l.images)?,
        kmax: super::to_u32(k, "candidates", l.kmax)?,
        cap: super::to_u32(k, "kept per segment", l.cap)?,
        out_cap: super::to_u32(k, "output rows", l.out_cap)?,
        row_width: l.row_width as u32,
        label_offset: l.label_offset as u32,
        _pad: 0,
    };
    if segments + l.images > crate::MAX_GROUPS as usize {
        return Err(super::bad(
            k,
            format!(
                "{} images x {} segments exceed one grid axis",
                l.images, l.groups
            ),
        ));
    }
    let kept = ctx.storage(&format!("{label}[kept]"), (segments * l.cap) as u64 * 4);
    let counts = ctx.storage(&format!("{label}[counts]"), segments as u64 * 4);
    let inputs = GatherInputs {
        cand_boxes: &cand.boxes,
        cand_scores: &cand.scores,
        kept: &kept,
        counts: &counts,
    };
    if segments == 0 || l.kmax == 0 {
        // Nothing to keep: the gather only blanks the rows.
        let p = NmsGatherParams {
            groups: 0,
            ..gather
        };
        return Ok(vec![nms_gather::launch(
            ctx,
            &format!("{label}[gather]"),
            &p,
            inputs,
            out,
        )]);
    }
    if l.kmax > nms_walk::MAX_CANDIDATES {
        return Err(super::bad(
            k,
            format!(
                "{} candidates per segment; at most {}",
                l.kmax,
                nms_walk::MAX_CANDIDATES
            ),
        ));
    }
    let mask_bytes = (segments * l.kmax * words) as u64 * 4;
    check_size(ctx, label, "NMS mask", mask_bytes)?;
    let stats = ctx.storage(&format!("{label}[nms stats]"), l.images as u64 * 8);
    let mask = ctx.storage(&format!("{label}[nms mask]"), mask_bytes);
    let offsets = NmsOffsetsParams {
        slots: (l.groups * l.kmax) as u32,
        _pad: [0; 3],
    };
    let mask_p = NmsMaskParams {
        kmax: l.kmax as u32,
        words: words as u32,
        groups: l.groups as u32,
        group_offset: l.group_offset as u32,
        // 0: the trick's offset only applies to images with no valid candidate (no effect).
        trick_max: if overlap == Overlap::BatchedIou {
            TRICK_MAX
        } else {
            0
        },
        mode: (overlap == Overlap::Min) as u32,
        _pad: 0,
        thresh: if overlap == Overlap::Min {
            l.thresh
        } else {
            threshold_for_f32_compare(l.thresh)
        },
    };
    let walk = NmsWalkParams {
        segments: segments as u32,
        kmax: l.kmax as u32,
        words: words as u32,
        cap: l.cap as u32,
    };
    Ok(vec![
        nms_offsets::launch(
            ctx,
            &format!("{label}[nms offsets]"),
            &offsets,
            l.images,
            &cand.boxes,
            &cand.scores,
            &stats,
        ),
        nms_mask::launch(
            ctx,
            &format!("{label}[nms mask]"),
            &mask_p,
            segments,
            &cand.boxes,
            &cand.scores,
            &stats,
            &mask,
        ),
        nms_walk::launch(
            ctx,
            &format!("{label}[nms walk]"),
            &walk,
            &cand.scores,
            &mask,
            &kept,
            &counts,
        ),
        nms_gather::launch(ctx, &format!("{label}[gather]"), &gather, inputs, out),
    ])
}
