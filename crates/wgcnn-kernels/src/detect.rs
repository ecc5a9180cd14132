//! The detector's post-processing stages, composed from the kernels into fixed launch lists:
//! no CPU round trip between top-k, decoding, NMS and compaction.
//!
//! - [`proposals`]: torchvision's `RegionProposalNetwork.filter_proposals` — per level top-k of
//!   the objectness logits ([`crate::segment_keys`] + [`crate::topk_sort`]), decode, clip,
//!   filter ([`crate::box_decode`]), NMS per level, best `post_nms_top_n` overall.
//! - [`box_postprocess`]: `RoIHeads.postprocess_detections` — softmax ([`crate::softmax`]),
//!   per class sort, decode, filter, NMS per class, best `detections_per_img`.
//!
//! - [`rows`]: indirect dispatch arguments for a head's launches on blocks of rows, from how
//!   many leading rows of a detection (or proposal) tensor are kept (`wgcnn-exec`'s
//!   `lower_rows.rs` runs the mask, keypoint and box heads only on those).
//!
//! - [`faces`]: MTCNN's cascade around its nets (pyramid from the 8-bit photo, candidates, NMS
//!   per level and over levels, crops, R-Net's and O-Net's post-processing with 'Min' NMS).
//!
//! NMS (shared): [`crate::nms_offsets`] (torchvision's batched-NMS path choice),
//! [`crate::nms_mask`] (IoU bitmask in parallel), [`crate::nms_walk`] (the sequential walk, one
//! invocation per level or class) and [`crate::nms_gather`] (merge of the kept lists by score
//! into the fixed-capacity output; unused rows zero with score -1).
//!
//! Scratch buffers are made here, at plan time, and live as long as the launches' bind groups.

pub mod faces;
#[cfg(test)]
mod nan_tests;
mod nms;
mod postprocess;
mod proposals;
pub mod rows;
#[cfg(test)]
mod tests;

pub use postprocess::{BoxPostprocessDesc, box_postprocess};
pub use proposals::{ProposalsDesc, proposals};

use crate::{Context, KernelError};

/// The most candidates per level (RPN `pre_nms_top_n`) or proposals per image (box head).
pub const MAX_CANDIDATES: usize = crate::topk_sort::BLOCK;

/// The error of a stage whose sizes the kernels cannot take.
fn bad(kernel: &'static str, detail: String) -> KernelError {
    KernelError::BadShape { kernel, detail }
}

/// `n` as a u32 kernel parameter, or an error naming `what`.
fn to_u32(kernel: &'static str, what: &str, n: usize) -> Result<u32, KernelError> {
    u32::try_from(n).map_err(|_| {
        bad(
            kernel,
            format!("{what} = {n} exceeds the u32 range of the kernels"),
        )
    })
}

/// The scratch buffer of `pairs` sort pairs (key, index: 8 bytes each), or an error when one
/// binding cannot hold them.
fn pairs_buffer(ctx: &Context, label: &str, pairs: usize) -> Result<wgpu::Buffer, KernelError> {
    let bytes = pairs as u64 * 8;
    if bytes > ctx.max_binding() {
        return Err(KernelError::TooLarge {
            what: format!("{label}: sort pairs"),
            needed: bytes,
            limit: ctx.max_binding(),
        });
    }
    Ok(ctx.storage(&format!("{label}[pairs]"), bytes))
}
