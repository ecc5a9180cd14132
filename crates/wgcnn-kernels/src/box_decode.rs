//! `box_decode`: NMS candidates in sorted order: decode (torchvision's `BoxCoder`), clip, the
//! small-box and score filters. Shader: `shaders/box_decode.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "box_decode",
    source: shaders::BOX_DECODE,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// Mirrors `Params` in `shaders/box_decode.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct BoxDecodeParams {
    pub groups: u32,
    pub kmax: u32,
    pub pair_img_stride: u32,
    pub score_img_stride: u32,
    pub score_elem_stride: u32,
    pub ref_img_stride: u32,
    /// 4: anchors `[A, 4]`; 5: proposals `[N, R, 5]` (score -1 marks an unused row).
    pub ref_row: u32,
    /// 1: score = sigmoid(raw).
    pub sigmoid: u32,
    /// 1: keep score > thresh; 0: score >= thresh.
    pub strict: u32,
    pub _pad0: [u32; 3],
    pub image_h: f32,
    pub image_w: f32,
    pub min_size: f32,
    pub thresh: f32,
    pub bbox_clip: f32,
    /// `(wx, wy, ww, wh)`.
    pub weights: [f32; 4],
    pub _pad1: [u32; 3],
}

/// One group's entry: `item_off` added to the sorted index, `count` valid ranks, the pairs at
/// `pair_off` (within an image), and `class` added to the score index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeGroup {
    pub item_off: usize,
    pub count: usize,
    pub pair_off: usize,
    pub class: usize,
}

/// The buffers a decode reads and writes.
#[derive(Clone, Copy, Debug)]
pub struct DecodeBuffers<'a> {
    pub pairs: &'a wgpu::Buffer,
    pub scores: &'a wgpu::Buffer,
    pub deltas: &'a wgpu::Buffer,
    pub refs: &'a wgpu::Buffer,
    pub cand_boxes: &'a wgpu::Buffer,
    pub cand_scores: &'a wgpu::Buffer,
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the decode of `images` x `groups.len()` segments of `p.kmax` candidates.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &BoxDecodeParams,
    images: usize,
    groups: &[DecodeGroup],
    b: DecodeBuffers<'_>,
) -> Launch {
    let table: Vec<u32> = groups
        .iter()
        .flat_map(|g| [g.item_off, g.count, g.pair_off, g.class].map(|v| v as u32))
        .collect();
    let table = ctx.device_buffer_u32(&table);
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[
            &table,
            b.pairs,
            b.scores,
            b.deltas,
            b.refs,
            b.cand_boxes,
            b.cand_scores,
        ],
        [
            p.kmax.div_ceil(256).max(1),
            (images * groups.len()).max(1) as u32,
            1,
        ],
    )
}
