//! The choice among the convolution kernels, the weight layout each reads, and the launches
//! of the subgroup kernels (`conv2d_sg` in its two steps, `conv2d_1x1_sg`).
//!
//! Measured on lavapipe (ResNet-50's layers, GFLOP per CPU-second; `gemm_bench`): `conv2d`
//! 9-11, `conv2d_sg` 15-25 (21-27 with `SG4`), `conv2d_1x1_sg` 21-35 on 1x1 layers, the
//! Winograd path 27-50 (in direct-convolution FLOPs) on 3x3 stride-1 layers. On lavapipe every load
//! inside a loop is a bounds-checked scalar load per lane, so the kernels that load fewer
//! values per multiply-add win; a GPU with uniform loads and real vector loads may rank them
//! differently, which is why the subgroup kernels are only chosen where subgroups of at least
//! 8 lanes exist and the plain `conv2d` stays for every other device.

use std::borrow::Cow;

use super::{ChannelSlice, Conv2dParams, ConvDesc, SG_CHANNELS, SPEC, launch, winograd};
use crate::{Context, KernelError, KernelSpec, Launch, MAX_GROUPS, Variants, grid, shaders};

/// `conv2d_sg`'s registry entry: the same bindings as [`SPEC`] (weights as
/// [`prepare_weights`] makes them). Its `SG4` override picks the step: [`Variant::Subgroup`]
/// (false) or [`Variant::Subgroup4`] (true).
pub const SG_SPEC: KernelSpec = KernelSpec {
    name: "conv2d_sg",
    source: shaders::CONV2D_SG,
    buffers: SPEC.buffers,
};

/// `conv2d_1x1_sg`'s registry entry: the same bindings as [`SPEC`].
pub const POINTWISE_SPEC: KernelSpec = KernelSpec {
    name: "conv2d_1x1_sg",
    source: shaders::CONV2D_1X1_SG,
    buffers: SPEC.buffers,
};

/// The kernel that computes a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// [`crate::dwconv2d`]: one input channel per group.
    Depthwise,
    /// [`winograd`]: 3x3, stride 1, undilated, one group, input channels a multiple of 4;
    /// three launches and two scratch buffers, see [`winograd::launches`]. F(2x2, 3x3).
    Winograd,
    /// [`Variant::Winograd`] with F(4x4, 3x3) tiles ([`winograd::Tile::F4`]).
    Winograd4,
    /// `conv2d_1x1_sg.wgsl`: 1x1, stride 1, unpadded, one group, C and H*W multiples of 4.
    Pointwise,
    /// `conv2d_sg.wgsl` with `SG4` (4 input channels a step): input channels per group a
    /// multiple of 4.
    Subgroup4,
    /// `conv2d_sg.wgsl` (1 input channel a step).
    Subgroup,
    /// `conv2d.wgsl`.
    General,
}

impl Variant {
    /// The Winograd tile of [`Variant::Winograd`] / [`Variant::Winograd4`]; `None` for the
    /// one-launch kernels.
    pub fn winograd_tile(self) -> Option<winograd::Tile> {
        match self {
            Variant::Winograd => Some(winograd::Tile::F2),
            Variant::Winograd4 => Some(winograd::Tile::F4),
            _ => None,
        }
    }
}

/// Whether the device runs the subgroup kernels (`conv2d_sg*`, `conv2d_1x1_sg`, the Winograd
/// GEMM, `linear_sg`): the subgroup feature with subgroups of at least 8 lanes (the kernels
/// share values among groups of 8 lanes), unless the engine forces the portable kernels
/// ([`Variants::Portable`]).
///
/// The Winograd GEMM keeps 8-invocation workgroups and `subgroupBroadcast` from lanes 0..7 on
/// every device: a workgroup of 8 invocations lies in one subgroup whenever subgroups have at
/// least 8 lanes (lanes 0..7 of it, the rest of a wider subgroup idle), so it is correct on any
/// size this function admits, only not filling wider subgroups.
pub fn subgroups_usable(ctx: &Context) -> bool {
    ctx.variants != Variants::Portable
        && ctx.features.contains(wgpu::Features::SUBGROUP)
        && ctx.info.subgroup_min_size >= 8
}

/// The largest number of 8-lane groups a wide workgroup holds (64 invocations: AMD's wave64,
/// and within every device's 256-invocation limit).
pub const MAX_SUBGROUP_GROUPS: u32 = 8;

/// How the subgroup kernels `conv2d_sg`, `conv2d_1x1_sg` and `linear_sg` lay out their lanes:
/// their `GROUPS` override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubgroupForm {
    /// Workgroups of 8 invocations sharing weights by `subgroupBroadcast` from lanes 0..7
    /// (`GROUPS` = 0): the fastest form on lavapipe's 8-lane subgroups.
    Broadcast,
    /// Workgroups of `8 * groups` invocations, each group of 8 lanes of a subgroup owning its
    /// own block and sharing weights by `subgroupShuffle` (`GROUPS` = `groups`): fills
    /// subgroups of 16 to 64 lanes. The grid is a `groups`-th of the blocks.
    Wide { groups: u32 },
}

impl SubgroupForm {
    /// The form [`ContextOptions::subgroup_groups`] asks for: 0 the broadcast form, else the
    /// wide form with `groups` groups, at most [`MAX_SUBGROUP_GROUPS`].
    ///
    /// [`ContextOptions::subgroup_groups`]: crate::ContextOptions::subgroup_groups
    pub fn forced(groups: u32) -> Self {
        match groups {
            0 => SubgroupForm::Broadcast,
            g => SubgroupForm::Wide {
                groups: g.min(MAX_SUBGROUP_GROUPS),
            },
        }
    }

    /// Blocks per workgroup.
    pub fn groups(self) -> u32 {
        match self {
            SubgroupForm::Broadcast => 1,
            SubgroupForm::Wide { groups } => groups,
        }
    }

    /// The kernels' `GROUPS` override constant.
    pub fn constant(self) -> (&'static str, f64) {
        match self {
            SubgroupForm::Broadcast => ("GROUPS", 0.0),
            SubgroupForm::Wide { groups } => ("GROUPS", f64::from(groups)),
        }
    }

    /// Workgroups for `blocks` blocks (before folding onto a 2-D grid).
    pub fn workgroups(self, blocks: u32) -> u32 {
        blocks.div_ceil(self.groups())
    }

    /// `broadcast8` or `wide<G>`, for `wgcnn info` and logs.
    pub fn name(self) -> String {
        match self {
            SubgroupForm::Broadcast => "broadcast8".into(),
            SubgroupForm::Wide { groups } => format!("wide{groups}"),
        }
    }
}

/// The subgroup kernels' form on `ctx`'s device ([`ContextOptions::subgroup_groups`] forces
/// one): CPU adapters (lavapipe) take [`SubgroupForm::Broadcast`] whatever their subgroup size,
/// GPUs the form [`form_for_sizes`] picks from their subgroup sizes. On lavapipe a shuffle
/// from a per-lane index is a gather over the lanes where a constant-lane broadcast is one
/// element extract: measured at 16 lanes (`LP_NATIVE_VECTOR_WIDTH=512`, `wgcnn bench`, CPU
/// time per run), the wide form (2 groups) took 4.1x the broadcast form's on ResNet-50 and
/// 3.9x on MobileNetV2; at 8 lanes, where the shuffle lanes are constants, forcing 4 groups
/// changed nothing measurable (within 1%). A GPU's shuffle is one instruction. Meaningful only
/// where [`subgroups_usable`].
///
/// [`ContextOptions::subgroup_groups`]: crate::ContextOptions::subgroup_groups
pub fn subgroup_form(ctx: &Context) -> SubgroupForm {
    if let Some(g) = ctx.subgroup_groups {
        return SubgroupForm::forced(g);
    }
    if ctx.info.device_type == wgpu::DeviceType::Cpu {
        return SubgroupForm::Broadcast;
    }
    form_for_sizes(ctx.info.subgroup_min_size, ctx.info.subgroup_max_size)
}

/// The form for a GPU whose subgroups have `min..=max` lanes: at most 8 lanes take
/// [`SubgroupForm::Broadcast`]; subgroups that may be wider take [`SubgroupForm::Wide`] with
/// `min(max, 64) / 8` groups, a workgroup of the widest subgroup the driver may pick (NVIDIA
/// and Apple 32: 4 groups; AMD 64 or 32/64: 8; Intel 8 to 32: 4). The wide form is correct for
/// any subgroup size that is a multiple of 8 (lanes find their group through `subgroup_id`),
/// so Intel, whose compiler picks SIMD8, 16 or 32 per shader, takes it too: at SIMD8 its
/// workgroup is 4 subgroups of one group each, the case the tests force on lavapipe's 8 lanes.
pub fn form_for_sizes(min: u32, max: u32) -> SubgroupForm {
    if max <= 8 || min < 8 {
        SubgroupForm::Broadcast
    } else {
        SubgroupForm::Wide {
            groups: (max.min(64) / 8).clamp(1, MAX_SUBGROUP_GROUPS),
        }
    }
}

/// The kernel for `desc` on `ctx`'s device: depthwise layers take their own kernel. With
/// subgroups ([`subgroups_usable`]): 3x3 stride-1 layers the Winograd path where it pays
/// ([`winograd::pays`]) and its scratch fits one binding, 1x1 layers `conv2d_1x1_sg`, others
/// `conv2d_sg` (with `SG4` where C/groups is a multiple of 4), when each group has at least 6
/// output channels (with fewer, a 16-channel block is mostly dropped sums:
/// [`subgroup_blocks_pay`]). Otherwise `conv2d`.
/// Forced sets ([`Context::variants`]): `Subgroup` takes a subgroup kernel wherever one fits
/// and never Winograd; `Winograd` takes Winograd for every layer it fits, paying or not.
pub fn variant(ctx: &Context, desc: &ConvDesc) -> Variant {
    let [_, c, h, w] = desc.input;
    let [k, cg, kh, kw] = desc.weight;
    if crate::dwconv2d::is_depthwise(desc) {
        return Variant::Depthwise;
    }
    let forced = ctx.variants;
    let blocks_pay = forced == Variants::Subgroup || subgroup_blocks_pay(k / desc.groups.max(1));
    if !subgroups_usable(ctx) || !blocks_pay {
        return Variant::General;
    }
    if let Some(tile) = winograd::choose(ctx, desc) {
        match tile {
            winograd::Tile::F2 => Variant::Winograd,
            winograd::Tile::F4 => Variant::Winograd4,
        }
    } else if [kh, kw] == [1, 1]
        && desc.stride == [1, 1]
        && desc.padding == [0; 4]
        && desc.groups == 1
        && c.is_multiple_of(4)
        && (h * w).is_multiple_of(4)
    {
        Variant::Pointwise
    } else if cg.is_multiple_of(4) {
        Variant::Subgroup4
    } else {
        Variant::Subgroup
    }
}

/// Whether the subgroup kernels' 16-channel blocks beat `conv2d`'s 4-channel blocks for groups
/// of `kg` output channels: their measured rates (GFLOP per CPU-second on lavapipe: about 22
/// against 7) times the share of the block's sums kept. True from 6 channels per group on.
fn subgroup_blocks_pay(kg: usize) -> bool {
    kg > 0 && 22 * kg >= 7 * kg.next_multiple_of(SG_CHANNELS)
}

/// The weights `variant`'s kernel reads, from the `[K, C/groups, kh, kw]` weight of `desc`:
/// `[K, kh, kw, C/groups]` for [`Variant::Subgroup4`] (4 input channels' weights side by
/// side), the Winograd transform for [`Variant::Winograd`] ([`winograd::transform_weights`]),
/// for [`Variant::Subgroup`] the weight zero-padded to a multiple of 4 values (`conv2d_sg`
/// binds it as vec4s, and a binding holds only whole ones), the weight itself otherwise. Made
/// once, at plan time.
pub fn prepare_weights<'w>(
    variant: Variant,
    desc: &ConvDesc,
    weight: &'w [f32],
) -> Result<Cow<'w, [f32]>, KernelError> {
    let [k, cg, kh, kw] = desc.weight;
    if weight.len() != k * cg * kh * kw {
        return Err(KernelError::BadShape {
            kernel: "conv2d",
            detail: format!(
                "weight has {} values, {:?} needs {}",
                weight.len(),
                desc.weight,
                k * cg * kh * kw
            ),
        });
    }
    Ok(match variant {
        Variant::Winograd => Cow::Owned(winograd::transform_weights(weight, k, cg)?),
        Variant::Winograd4 => Cow::Owned(winograd::transform_weights_for(
            winograd::Tile::F4,
            weight,
            k,
            cg,
        )?),
        Variant::Subgroup4 if kh * kw > 1 => {
            let khw = kh * kw;
            let mut out = vec![0f32; weight.len()];
            for kk in 0..k {
                for c in 0..cg {
                    for r in 0..khw {
                        out[(kk * khw + r) * cg + c] = weight[(kk * cg + c) * khw + r];
                    }
                }
            }
            Cow::Owned(out)
        }
        Variant::Subgroup if !weight.len().is_multiple_of(4) => {
            let mut out = weight.to_vec();
            out.resize(weight.len().next_multiple_of(4), 0.0);
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(weight),
    })
}

/// Records `y = act(conv(x, weight) + bias + residual)` on `spec` ([`SG_SPEC`] or
/// [`POINTWISE_SPEC`]) with its override `constants` (`SG4` for [`SG_SPEC`]; the device's
/// [`subgroup_form`] adds `GROUPS` and sets the grid), params from [`Conv2dParams::subgroup`]
/// and weights from [`prepare_weights`]; the device must have subgroups
/// ([`subgroups_usable`]). Buffers as in [`launch`].
#[allow(clippy::too_many_arguments)]
pub fn launch_sg(
    ctx: &Context,
    label: &str,
    spec: &KernelSpec,
    constants: &[(&str, f64)],
    p: &Conv2dParams,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    residual: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let form = subgroup_form(ctx);
    let mut constants = constants.to_vec();
    constants.push(form.constant());
    ctx.launch(
        label,
        &ctx.kernel(spec, &constants),
        bytemuck::bytes_of(p),
        &[x, weight, bias, residual, y],
        grid(form.workgroups(p.workgroups()), MAX_GROUPS),
    )
}

/// Records `desc` on `variant`'s kernel with `weight` prepared for it ([`prepare_weights`]).
/// [`Variant::Winograd`] is three launches with scratch buffers ([`winograd::launches`]) and
/// is refused here. Buffers as in [`launch`]; errors name the shapes.
#[allow(clippy::too_many_arguments)]
pub fn launch_variant(
    ctx: &Context,
    label: &str,
    variant: Variant,
    desc: &ConvDesc,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    residual: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Launch, KernelError> {
    let whole = ChannelSlice::whole(desc.weight[0]);
    launch_variant_into(
        ctx, label, variant, desc, x, weight, bias, residual, y, whole,
    )
}

/// [`launch_variant`] writing the output as channel slice `out` of a wider `[N, total, OH,
/// OW]` tensor in `y` (a concatenation written in place). The depthwise kernel only writes
/// whole tensors: a narrower slice is an error there.
#[allow(clippy::too_many_arguments)]
pub fn launch_variant_into(
    ctx: &Context,
    label: &str,
    variant: Variant,
    desc: &ConvDesc,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    residual: &wgpu::Buffer,
    y: &wgpu::Buffer,
    out: ChannelSlice,
) -> Result<Launch, KernelError> {
    let whole = out == ChannelSlice::whole(desc.weight[0]);
    if variant == Variant::Depthwise && !whole {
        return Err(KernelError::BadShape {
            kernel: "dwconv2d",
            detail: format!(
                "{label}: writes whole tensors only, not channels {}.. of {}",
                out.offset, out.total
            ),
        });
    }
    if out.offset + desc.weight[0] > out.total {
        return Err(KernelError::BadShape {
            kernel: "conv2d",
            detail: format!(
                "{label}: {} output channels at channel {} do not fit in {}",
                desc.weight[0], out.offset, out.total
            ),
        });
    }
    let sg = |sg4: bool| -> Result<Launch, KernelError> {
        let p = Conv2dParams::subgroup(desc)?.into_channels(out);
        let constants = [("SG4", f64::from(u8::from(sg4)))];
        Ok(launch_sg(
            ctx, label, &SG_SPEC, &constants, &p, x, weight, bias, residual, y,
        ))
    };
    match variant {
        Variant::Depthwise => {
            crate::dwconv2d::launch_for(ctx, label, desc, x, weight, bias, residual, y)
        }
        Variant::Winograd | Variant::Winograd4 => Err(KernelError::BadShape {
            kernel: "conv2d",
            detail: format!(
                "{label}: the Winograd path is three launches with scratch buffers \
                 (conv2d::winograd::launches), not one"
            ),
        }),
        Variant::Pointwise => {
            // conv2d_1x1_sg reads the residual as vec4s: where there is none, bind x (at least
            // 16 bytes: C and H*W are multiples of 4) rather than a placeholder too small for one.
            let residual = if desc.residual { residual } else { x };
            let p = Conv2dParams::subgroup(desc)?.into_channels(out);
            Ok(launch_sg(
                ctx,
                label,
                &POINTWISE_SPEC,
                &[],
                &p,
                x,
                weight,
                bias,
                residual,
                y,
            ))
        }
        Variant::Subgroup4 => sg(true),
        Variant::Subgroup => sg(false),
        Variant::General => Ok(launch(
            ctx,
            label,
            &Conv2dParams::new(desc)?.into_channels(out),
            x,
            weight,
            bias,
            residual,
            y,
        )),
    }
}

/// Records `desc` on the kernel [`variant`] picks, reading the weight in its plain
/// `[K, C/groups, kh, kw]` layout: layers whose kernel wants another layout
/// ([`Variant::Winograd`], [`Variant::Subgroup4`] with kernels larger than 1x1) take
/// `conv2d_sg`'s scalar step instead, and that only where `weight` holds whole vec4s (else
/// `conv2d`: [`prepare_weights`] pads, a caller's buffer need not). Buffers as in [`launch`];
/// errors name the shapes.
#[allow(clippy::too_many_arguments)]
pub fn launch_for(
    ctx: &Context,
    label: &str,
    desc: &ConvDesc,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    residual: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Launch, KernelError> {
    let [k, cg, kh, kw] = desc.weight;
    let whole_vec4s = weight.size() >= (k * cg * kh * kw).next_multiple_of(4) as u64 * 4;
    let scalar_step = if whole_vec4s {
        Variant::Subgroup
    } else {
        Variant::General
    };
    let v = match variant(ctx, desc) {
        Variant::Winograd | Variant::Winograd4 => scalar_step,
        Variant::Subgroup4 if kh * kw > 1 => scalar_step,
        Variant::Subgroup => scalar_step,
        v => v,
    };
    launch_variant(ctx, label, v, desc, x, weight, bias, residual, y)
}
