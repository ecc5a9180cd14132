//! `nms_gather`: merges the kept lists of an image's segments into the fixed-capacity output,
//! best score first, unused rows zero with score -1. Shader: `shaders/nms_gather.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "nms_gather",
    source: shaders::NMS_GATHER,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};

/// Mirrors `Params` in `shaders/nms_gather.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct NmsGatherParams {
    pub groups: u32,
    pub images: u32,
    pub kmax: u32,
    pub cap: u32,
    pub out_cap: u32,
    /// 5: `(box, score)`; 6: `(box, score, label)`; 7: `(box, score, label, slot)`.
    pub row_width: u32,
    pub label_offset: u32,
    pub _pad: u32,
}

/// The candidate and kept buffers the gather reads.
#[derive(Clone, Copy, Debug)]
pub struct GatherInputs<'a> {
    pub cand_boxes: &'a wgpu::Buffer,
    pub cand_scores: &'a wgpu::Buffer,
    pub kept: &'a wgpu::Buffer,
    pub counts: &'a wgpu::Buffer,
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the gather into `out` `[images, out_cap, row_width]`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &NmsGatherParams,
    inputs: GatherInputs<'_>,
    out: &wgpu::Buffer,
) -> Launch {
    let chunks = p.cap.max(p.out_cap).div_ceil(256).max(1);
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[
            inputs.cand_boxes,
            inputs.cand_scores,
            inputs.kept,
            inputs.counts,
            out,
        ],
        [chunks, p.images * p.groups + p.images, 1],
    )
}
