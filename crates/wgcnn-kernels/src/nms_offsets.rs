//! `nms_offsets`: per image, the valid candidate count and largest coordinate that choose
//! torchvision's batched-NMS path. Shader: `shaders/nms_offsets.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "nms_offsets",
    source: shaders::NMS_OFFSETS,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/nms_offsets.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct NmsOffsetsParams {
    /// Candidate slots per image (segments per image x kmax).
    pub slots: u32,
    pub _pad: [u32; 3],
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the statistics of `images` images into `stats` (two u32 per image).
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &NmsOffsetsParams,
    images: usize,
    cand_boxes: &wgpu::Buffer,
    cand_scores: &wgpu::Buffer,
    stats: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[cand_boxes, cand_scores, stats],
        [images.max(1) as u32, 1, 1],
    )
}
