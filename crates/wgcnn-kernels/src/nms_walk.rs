//! `nms_walk`: the sequential NMS walk over the suppression mask, one invocation per segment.
//! Shader: `shaders/nms_walk.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "nms_walk",
    source: shaders::NMS_WALK,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// The most candidates per segment (64 words of suppressed bits per invocation).
pub const MAX_CANDIDATES: usize = 2048;

/// Mirrors `Params` in `shaders/nms_walk.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct NmsWalkParams {
    pub segments: u32,
    pub kmax: u32,
    pub words: u32,
    pub cap: u32,
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the walk writing `kept` (`segments x cap` ranks) and `counts`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &NmsWalkParams,
    cand_scores: &wgpu::Buffer,
    mask: &wgpu::Buffer,
    kept: &wgpu::Buffer,
    counts: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[cand_scores, mask, kept, counts],
        grid(p.segments.div_ceil(64), MAX_GROUPS),
    )
}
