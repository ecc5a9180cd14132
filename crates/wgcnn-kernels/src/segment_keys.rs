//! `segment_keys`: (order key, index) pairs of padded segments for [`crate::topk_sort`].
//! Shader: `shaders/segment_keys.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "segment_keys",
    source: shaders::SEGMENT_KEYS,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/segment_keys.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct SegmentKeysParams {
    pub groups: u32,
    pub src_img_stride: u32,
    pub src_elem_stride: u32,
    pub dst_img_stride: u32,
    /// 0: every value; 1: key 0 unless value > `thresh`.
    pub mode: u32,
    pub _pad: [u32; 2],
    pub thresh: f32,
}

/// One group's segment: `len` values from `src_off` (stride `src_elem_stride`) into `padded`
/// pairs at `dst_off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySegment {
    pub src_off: usize,
    pub len: usize,
    pub dst_off: usize,
    pub padded: usize,
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the pairs of `images` x `segments` into `pairs` (vec2<u32> per element).
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &SegmentKeysParams,
    images: usize,
    segments: &[KeySegment],
    scores: &wgpu::Buffer,
    pairs: &wgpu::Buffer,
) -> Launch {
    let table: Vec<u32> = segments
        .iter()
        .flat_map(|s| [s.src_off, s.len, s.dst_off, s.padded].map(|v| v as u32))
        .collect();
    let table = ctx.device_buffer_u32(&table);
    let chunks = segments
        .iter()
        .map(|s| s.padded.div_ceil(256))
        .max()
        .unwrap_or(1)
        .max(1) as u32;
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[&table, scores, pairs],
        [chunks, (images * segments.len()).max(1) as u32, 1],
    )
}
