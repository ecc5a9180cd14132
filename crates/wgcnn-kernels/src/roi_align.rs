//! `roi_align`: torchvision's `MultiScaleRoIAlign` (FPN level mapper + `roi_align`), one
//! invocation per output element. Shader: `shaders/roi_align.wgsl`.
//!
//! The shader binds four feature levels; ops with more levels take one launch per four
//! ([`launches`]).

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelError, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "roi_align",
    source: shaders::ROI_ALIGN,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};

/// Feature levels bound by one launch.
pub const LEVELS_PER_LAUNCH: usize = 4;

/// Channels one invocation pools (`CPG` in the shader): the sampling taps are computed once
/// per bin and group. On lavapipe (2 shared Zen 3 cores, 1000 boxes x 256 channels x 7x7 from
/// the fixture's FPN levels) 8 channels took ~140 ms, 16 ~116 ms, 32 ~104 ms; 16 keeps the
/// accumulators few for discrete GPUs.
pub const CHANNELS_PER_INVOCATION: usize = 16;

/// Mirrors `Params` in `shaders/roi_align.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RoiAlignParams {
    pub total: u32,
    pub rows: u32,
    pub channels: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub sampling_ratio: u32,
    pub aligned: u32,
    pub level_base: u32,
    pub level_count: u32,
    pub levels: u32,
    /// `(height, width)` of the four bound levels.
    pub sizes: [[u32; 2]; 4],
    /// Values per box row: 5 (proposals) or 6 (detections).
    pub box_stride: u32,
    pub _pad: u32,
    pub scales: [f32; 4],
    pub canonical_scale: f32,
    pub canonical_level: f32,
    pub k_min: f32,
    pub k_max: f32,
}

/// What the op pools: `images` x `rows` boxes from `levels` feature maps.
#[derive(Clone, Debug, PartialEq)]
pub struct RoiAlignDesc {
    pub images: usize,
    pub rows: usize,
    /// Values per box row: 5 (`x1, y1, x2, y2, score`) or 6 (a detection's, label last).
    pub box_stride: usize,
    pub channels: usize,
    /// `(height, width)` of each level.
    pub levels: Vec<[usize; 2]>,
    pub scales: Vec<f32>,
    pub output: [usize; 2],
    pub sampling_ratio: usize,
    pub aligned: bool,
    pub canonical_scale: f32,
    pub canonical_level: f32,
}

/// torchvision's `int(-log2(scale))` for the level range of the mapper.
fn level_k(scale: f32) -> f32 {
    (-(scale.log2())).trunc()
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the pooling of `boxes` `[N, R, 5 or 6]` from `features` (one buffer per level) into
/// `out` `[N * R, C, OH, OW]`: one launch per [`LEVELS_PER_LAUNCH`] levels.
pub fn launches(
    ctx: &Context,
    label: &str,
    d: &RoiAlignDesc,
    boxes: &wgpu::Buffer,
    features: &[&wgpu::Buffer],
    out: &wgpu::Buffer,
) -> Result<Vec<Launch>, KernelError> {
    let bad = |detail: String| KernelError::BadShape {
        kernel: "roi_align",
        detail,
    };
    if d.levels.is_empty() || d.levels.len() != d.scales.len() || d.levels.len() != features.len() {
        return Err(bad(format!(
            "{} levels, {} scales and {} feature buffers must agree and be at least one",
            d.levels.len(),
            d.scales.len(),
            features.len()
        )));
    }
    if !(5..=6).contains(&d.box_stride) {
        return Err(bad(format!("box rows of {} values (5 or 6)", d.box_stride)));
    }
    if d.levels.iter().any(|l| l.contains(&0)) || d.output.contains(&0) {
        return Err(bad(format!(
            "empty feature map or output: levels {:?}, output {:?}",
            d.levels, d.output
        )));
    }
    let outputs = d.images * d.rows * d.channels * d.output[0] * d.output[1];
    if outputs > u32::MAX as usize {
        return Err(bad(format!("{outputs} outputs exceed the u32 index range")));
    }
    let total = d.images
        * d.rows
        * d.channels.div_ceil(CHANNELS_PER_INVOCATION)
        * d.output[0]
        * d.output[1];
    let (k_min, k_max) = (level_k(d.scales[0]), level_k(d.scales[d.scales.len() - 1]));
    let kernel = kernel(ctx);
    let mut out_launches = Vec::new();
    for base in (0..d.levels.len()).step_by(LEVELS_PER_LAUNCH) {
        let count = (d.levels.len() - base).min(LEVELS_PER_LAUNCH);
        let mut p = RoiAlignParams {
            total: total as u32,
            rows: d.rows as u32,
            channels: d.channels as u32,
            out_h: d.output[0] as u32,
            out_w: d.output[1] as u32,
            sampling_ratio: d.sampling_ratio as u32,
            aligned: d.aligned as u32,
            level_base: base as u32,
            level_count: count as u32,
            levels: d.levels.len() as u32,
            box_stride: d.box_stride as u32,
            canonical_scale: d.canonical_scale,
            canonical_level: d.canonical_level,
            k_min,
            k_max,
            ..Default::default()
        };
        let mut bound = [features[base]; LEVELS_PER_LAUNCH];
        for i in 0..count {
            p.sizes[i] = [d.levels[base + i][0] as u32, d.levels[base + i][1] as u32];
            p.scales[i] = d.scales[base + i];
            bound[i] = features[base + i];
        }
        let name = if d.levels.len() > LEVELS_PER_LAUNCH {
            format!("{label}[levels {base}..]")
        } else {
            label.to_string()
        };
        out_launches.push(ctx.launch(
            &name,
            &kernel,
            bytemuck::bytes_of(&p),
            &[boxes, bound[0], bound[1], bound[2], bound[3], out],
            grid(p.total.div_ceil(256), MAX_GROUPS),
        ));
    }
    Ok(out_launches)
}

#[cfg(test)]
mod tests;
