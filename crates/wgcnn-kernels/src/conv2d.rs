//! `conv2d`: general 2-D convolution (any kernel, stride, asymmetric padding, dilation, groups)
//! as an implicit GEMM with a fused epilogue `act(conv + bias + residual)`.
//! Shaders: `shaders/conv2d.wgsl` (any device) and `shaders/conv2d_sg.wgsl` (the same
//! computation with weights shared through subgroup broadcasts: devices with subgroups of at
//! least 8 lanes). Depthwise convolutions have their own kernel ([`crate::dwconv2d`]), and 3x3
//! stride-1 layers a Winograd path ([`winograd`]); all take their geometry as a [`ConvDesc`],
//! and [`variant`] picks one per layer and device.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelError, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub mod strided;
mod variants;
pub mod winograd;

pub use variants::{
    MAX_SUBGROUP_GROUPS, POINTWISE_SPEC, SG_SPEC, SubgroupForm, Variant, form_for_sizes,
    launch_for, launch_sg, launch_variant, launch_variant_into, prepare_weights, subgroup_form,
    subgroups_usable, variant,
};

/// The kernel's registry entry: params, then x, weight, bias, residual, y.
pub const SPEC: KernelSpec = KernelSpec {
    name: "conv2d",
    source: shaders::CONV2D,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};

/// Output pixels per workgroup (64 invocations x 4 pixels); keep in step with the shader.
const PIXELS_PER_GROUP: usize = 256;
/// Output pixels and channels per workgroup of `conv2d_sg` (8 lanes x 4 pixels, 16 channels).
const SG_PIXELS_PER_GROUP: usize = 32;
const SG_CHANNELS: usize = 16;

/// The channel blocks the shader's `override CB` supports.
const BLOCKS: [usize; 2] = [16, 4];

/// Output channels per workgroup for a group of `kg` output channels: the `CB` whose measured
/// rate (lavapipe, GFLOP per CPU-second: 11 for 16, 7 for 4) times the share of sums kept is
/// higher. 16 for wide layers; 4 for ResNeXt-style groups of 4 or 8 channels.
pub fn channel_block(kg: usize) -> usize {
    let useful = |cb: usize, rate: usize| rate * kg * 1000 / kg.next_multiple_of(cb).max(1);
    if useful(16, 11) >= useful(4, 7) {
        16
    } else {
        4
    }
}

/// Where a kernel writes its `[N, K, ...]` output: channels `offset..offset + K` of an
/// `[N, total, ...]` tensor. [`ChannelSlice::whole`] is the plain case (its own tensor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelSlice {
    /// Channels of the tensor written into.
    pub total: usize,
    /// First channel written.
    pub offset: usize,
}

impl ChannelSlice {
    /// The output is a tensor of its own with `channels` channels.
    pub fn whole(channels: usize) -> Self {
        ChannelSlice {
            total: channels,
            offset: 0,
        }
    }
}

/// One convolution in plain numbers (this crate knows no graph): shapes, geometry, epilogue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvDesc {
    /// `[N, C, H, W]`.
    pub input: [usize; 4],
    /// `[K, C / groups, kh, kw]`.
    pub weight: [usize; 4],
    /// `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    /// `[vertical, horizontal]`.
    pub dilation: [usize; 2],
    pub groups: usize,
    /// A bias `[K]` is added.
    pub bias: bool,
    /// A residual `[N, K, OH, OW]` is added before the activation.
    pub residual: bool,
    /// `(code, p0, p1)` from `wgcnn_graph::Activation::code`.
    pub act: (u32, f32, f32),
}

impl ConvDesc {
    /// A convolution without bias, residual or activation.
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 4],
        dilation: [usize; 2],
        groups: usize,
    ) -> Self {
        ConvDesc {
            input,
            weight,
            stride,
            padding,
            dilation,
            groups,
            bias: false,
            residual: false,
            act: (0, 0.0, 0.0),
        }
    }

    /// Checks that the shapes fit together and returns the output shape `[N, K, OH, OW]`.
    pub fn output(&self) -> Result<[usize; 4], KernelError> {
        let bad = |detail: String| {
            Err(KernelError::BadShape {
                kernel: "conv2d",
                detail,
            })
        };
        let [n, c, h, w] = self.input;
        let [k, cg, kh, kw] = self.weight;
        let g = self.groups;
        if g == 0 || c % g != 0 || k % g != 0 || cg * g != c {
            return bad(format!(
                "input {:?} and weight {:?} do not fit groups {g}",
                self.input, self.weight
            ));
        }
        if self.stride.contains(&0)
            || self.dilation.contains(&0)
            || kh == 0
            || kw == 0
            || n == 0
            || k == 0
        {
            return bad(format!(
                "zero extent: input {:?}, weight {:?}, stride {:?}, dilation {:?}",
                self.input, self.weight, self.stride, self.dilation
            ));
        }
        let extent = |len: usize, kk: usize, axis: usize| {
            let span = len + self.padding[axis] + self.padding[axis + 2];
            span.checked_sub(self.dilation[axis] * (kk - 1) + 1)
                .map(|d| d / self.stride[axis] + 1)
        };
        match (extent(h, kh, 0), extent(w, kw, 1)) {
            (Some(oh), Some(ow)) => {
                let out = [n, k, oh, ow];
                let elements = [
                    self.input.iter().product::<usize>(),
                    self.weight.iter().product(),
                    out.iter().product(),
                ];
                if elements.iter().any(|&e| e > u32::MAX as usize) {
                    return bad(format!(
                        "input {:?} / weight {:?} / output {out:?} exceed 2^32 elements",
                        self.input, self.weight
                    ));
                }
                Ok(out)
            }
            _ => bad(format!(
                "kernel {kh}x{kw} (dilation {:?}) larger than padded input {h}x{w} (padding {:?})",
                self.dilation, self.padding
            )),
        }
    }

    /// Multiply-adds times two, for throughput figures.
    pub fn flops(&self) -> Result<f64, KernelError> {
        let [n, k, oh, ow] = self.output()?;
        let [_, cg, kh, kw] = self.weight;
        Ok(2.0 * (n * k * oh * ow) as f64 * (cg * kh * kw) as f64)
    }
}

/// Mirrors `Params` in `shaders/conv2d.wgsl` (and the subgroup variants); keep all in step
/// (112 bytes, 16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Conv2dParams {
    pub batch: u32,
    pub in_c: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub groups: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub dil_h: u32,
    pub dil_w: u32,
    /// `ceil(N*OH*OW / 256)`.
    pub pixel_blocks: u32,
    /// `ceil((K / groups) / cb)`: channel blocks per group.
    pub chan_blocks: u32,
    pub has_bias: u32,
    pub has_residual: u32,
    pub act: u32,
    pub p0: f32,
    pub p1: f32,
    /// Output channels per workgroup: the `CB` override of the pipeline ([`channel_block`]).
    pub cb: u32,
    /// Channels of the tensor the output is written into (`out_c` unless it is a channel slice
    /// of a wider tensor, see [`Conv2dParams::into_channels`]).
    pub out_c_total: u32,
    /// First channel of that tensor the output is written at.
    pub out_c_offset: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl Conv2dParams {
    /// Params of `desc`, or an error naming the shapes that do not fit.
    pub fn new(desc: &ConvDesc) -> Result<Self, KernelError> {
        let [n, k, oh, ow] = desc.output()?;
        let [_, c, h, w] = desc.input;
        let [_, _, kh, kw] = desc.weight;
        let u = |v: usize| v as u32;
        let cb = channel_block(k / desc.groups);
        Ok(Conv2dParams {
            batch: u(n),
            in_c: u(c),
            in_h: u(h),
            in_w: u(w),
            out_c: u(k),
            out_h: u(oh),
            out_w: u(ow),
            groups: u(desc.groups),
            kernel_h: u(kh),
            kernel_w: u(kw),
            stride_h: u(desc.stride[0]),
            stride_w: u(desc.stride[1]),
            pad_top: u(desc.padding[0]),
            pad_left: u(desc.padding[1]),
            dil_h: u(desc.dilation[0]),
            dil_w: u(desc.dilation[1]),
            pixel_blocks: u((n * oh * ow).div_ceil(PIXELS_PER_GROUP)),
            chan_blocks: u((k / desc.groups).div_ceil(cb)),
            has_bias: desc.bias as u32,
            has_residual: desc.residual as u32,
            act: desc.act.0,
            p0: desc.act.1,
            p1: desc.act.2,
            cb: u(cb),
            out_c_total: u(k),
            out_c_offset: 0,
            _pad0: 0,
            _pad1: 0,
        })
    }

    /// The same convolution writing its `[N, K, OH, OW]` output as channels
    /// `offset..offset + K` of an `[N, total, OH, OW]` tensor (a concatenation's buffer).
    pub fn into_channels(self, slice: ChannelSlice) -> Self {
        Conv2dParams {
            out_c_total: slice.total as u32,
            out_c_offset: slice.offset as u32,
            ..self
        }
    }

    /// Params of `desc` for `conv2d_sg` (32-pixel, 16-channel workgroups), or an error naming
    /// the shapes that do not fit.
    pub fn subgroup(desc: &ConvDesc) -> Result<Self, KernelError> {
        let p = Conv2dParams::new(desc)?;
        let [n, k, oh, ow] = desc.output()?;
        Ok(Conv2dParams {
            pixel_blocks: (n * oh * ow).div_ceil(SG_PIXELS_PER_GROUP) as u32,
            chan_blocks: (k / desc.groups).div_ceil(SG_CHANNELS) as u32,
            cb: SG_CHANNELS as u32,
            ..p
        })
    }

    /// Workgroups the launch needs (before folding onto a 2-D grid).
    pub fn workgroups(&self) -> u32 {
        self.pixel_blocks * self.chan_blocks * self.groups
    }

    /// Elements of the output `[N, K, OH, OW]`.
    pub fn output_len(&self) -> usize {
        (self.batch * self.out_c * self.out_h * self.out_w) as usize
    }
}

/// The compiled kernel for channel block `cb` (16 or 4, see [`channel_block`]; any other value
/// is taken as 16).
pub fn kernel(ctx: &Context, cb: u32) -> Arc<Kernel> {
    let cb = if BLOCKS.contains(&(cb as usize)) {
        cb
    } else {
        16
    };
    ctx.kernel(&SPEC, &[("CB", f64::from(cb))])
}

/// Records `y = act(conv(x, weight) + bias + residual)`. `bias` and `residual` may be any small
/// buffer when the params say they are absent.
#[allow(clippy::too_many_arguments)]
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &Conv2dParams,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    residual: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let groups = grid(p.workgroups(), MAX_GROUPS);
    ctx.launch(
        label,
        &kernel(ctx, p.cb),
        bytemuck::bytes_of(p),
        &[x, weight, bias, residual, y],
        groups,
    )
}

#[cfg(test)]
mod slice_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod wide_tests;
