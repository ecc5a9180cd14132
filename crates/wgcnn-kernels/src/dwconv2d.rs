//! `dwconv2d`: depthwise convolution (groups == C, K = multiplier * C) with the fused epilogue
//! `act(conv + bias + residual)`. Shaders: `shaders/dwconv2d.wgsl` (any kernel size, stride,
//! dilation) and `shaders/dwconv2d_tile.wgsl` (4-column strips walked down with the input rows
//! kept in registers, one pipeline per kernel size up to 5x5 and stride up to 2, undilated: the
//! MobileNet and EfficientNet layers; its override `VEC4` stores each strip's row as one vec4
//! where the output width is a multiple of 4, and `XVEC4` loads the input rows as vec4s where
//! the input width is: [`DwConv2dParams::tile_loads_vec4`]); [`launch_for`] picks one. Takes the same
//! [`ConvDesc`] as [`crate::conv2d`].

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::conv2d::ConvDesc;
use crate::{Access, Context, Kernel, KernelError, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

/// The kernel's registry entry: params, then x, weight, bias, residual, y.
pub const SPEC: KernelSpec = KernelSpec {
    name: "dwconv2d",
    source: shaders::DWCONV2D,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};

/// The tiled variant's registry entry: the bindings of [`SPEC`], then y and x again (their
/// vec4 views; WGSL fixes a binding's type, so scalar and vec4 accesses need one binding each).
pub const TILE_SPEC: KernelSpec = KernelSpec {
    name: "dwconv2d_tile",
    source: shaders::DWCONV2D_TILE,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::Read,
    ],
};

/// Invocations per workgroup, each computing 4 outputs of a row; keep in step with the shader.
const LANES: usize = 64;
/// The tiled variant's output strips (4 columns, up to 16 rows), largest kernel side and
/// stride; keep in step with the shader.
const TILE: usize = 4;
const TILE_ROWS: usize = 16;
const TILE_MAX_KERNEL: usize = 5;
const TILE_MAX_STRIDE: usize = 2;

/// Whether `dwconv2d_tile` computes `desc` (depthwise, see [`is_depthwise`]): kernel sides up
/// to 5, strides up to 2, dilation 1.
pub fn tile_fits(desc: &ConvDesc) -> bool {
    let [_, _, kh, kw] = desc.weight;
    is_depthwise(desc)
        && desc.dilation == [1, 1]
        && (1..=TILE_MAX_KERNEL).contains(&kh)
        && (1..=TILE_MAX_KERNEL).contains(&kw)
        && desc
            .stride
            .iter()
            .all(|s| (1..=TILE_MAX_STRIDE).contains(s))
}

/// Mirrors `Params` in `shaders/dwconv2d.wgsl`; keep both in step (96 bytes, 16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DwConv2dParams {
    pub batch: u32,
    pub in_c: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    /// `K / C`.
    pub multiplier: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub dil_h: u32,
    pub dil_w: u32,
    /// `ceil(OW / 4)`.
    pub quads_w: u32,
    /// `ceil(OH * quads_w / 64)`: workgroups per output plane.
    pub plane_blocks: u32,
    pub has_bias: u32,
    pub has_residual: u32,
    pub act: u32,
    pub p0: f32,
    pub p1: f32,
    pub _pad: u32,
}

/// Whether `desc` is a depthwise convolution this kernel runs: one input channel per group,
/// every channel its own group, output channels a multiple of the input channels.
pub fn is_depthwise(desc: &ConvDesc) -> bool {
    let [_, c, _, _] = desc.input;
    let [k, cg, _, _] = desc.weight;
    c > 0 && desc.groups == c && cg == 1 && k % c == 0
}

impl DwConv2dParams {
    /// Params of `desc`, or an error naming the shapes when they do not fit or are not
    /// depthwise ([`is_depthwise`]).
    pub fn new(desc: &ConvDesc) -> Result<Self, KernelError> {
        let [n, k, oh, ow] = desc.output()?;
        if !is_depthwise(desc) {
            return Err(KernelError::BadShape {
                kernel: "dwconv2d",
                detail: format!(
                    "input {:?}, weight {:?}, groups {} is not depthwise",
                    desc.input, desc.weight, desc.groups
                ),
            });
        }
        let [_, c, h, w] = desc.input;
        let [_, _, kh, kw] = desc.weight;
        let u = |v: usize| v as u32;
        let quads_w = ow.div_ceil(4);
        Ok(DwConv2dParams {
            batch: u(n),
            in_c: u(c),
            in_h: u(h),
            in_w: u(w),
            out_c: u(k),
            out_h: u(oh),
            out_w: u(ow),
            multiplier: u(k / c),
            kernel_h: u(kh),
            kernel_w: u(kw),
            stride_h: u(desc.stride[0]),
            stride_w: u(desc.stride[1]),
            pad_top: u(desc.padding[0]),
            pad_left: u(desc.padding[1]),
            dil_h: u(desc.dilation[0]),
            dil_w: u(desc.dilation[1]),
            quads_w: u(quads_w),
            plane_blocks: u((oh * quads_w).div_ceil(LANES)),
            has_bias: desc.bias as u32,
            has_residual: desc.residual as u32,
            act: desc.act.0,
            p0: desc.act.1,
            p1: desc.act.2,
            _pad: 0,
        })
    }

    /// Params of `desc` for `dwconv2d_tile` (see [`tile_fits`]): `quads_w` counts 4-column
    /// strips per row and `plane_blocks` 16-row blocks per plane.
    pub fn tile(desc: &ConvDesc) -> Result<Self, KernelError> {
        let p = DwConv2dParams::new(desc)?;
        if !tile_fits(desc) {
            return Err(KernelError::BadShape {
                kernel: "dwconv2d_tile",
                detail: format!(
                    "weight {:?}, stride {:?}, dilation {:?}: the tiled kernel takes sides up to \
                     {TILE_MAX_KERNEL}, strides up to {TILE_MAX_STRIDE}, dilation 1",
                    desc.weight, desc.stride, desc.dilation
                ),
            });
        }
        // y's and x's vec4 views are bound in every tiled launch, and wgpu wants a binding to
        // hold one element of its array (16 bytes); such tiny tensors run on `dwconv2d`.
        if p.output_len() < TILE || p.input_len() < TILE {
            return Err(KernelError::BadShape {
                kernel: "dwconv2d_tile",
                detail: format!(
                    "input [{}, {}, {}, {}] or output [{}, {}, {}, {}] holds fewer than {TILE} \
                     elements",
                    p.batch, p.in_c, p.in_h, p.in_w, p.batch, p.out_c, p.out_h, p.out_w
                ),
            });
        }
        let p = DwConv2dParams {
            quads_w: p.out_w.div_ceil(TILE as u32),
            plane_blocks: p.out_h.div_ceil(TILE_ROWS as u32),
            ..p
        };
        if p.tile_grid().iter().any(|&g| g > MAX_GROUPS) {
            return Err(KernelError::BadShape {
                kernel: "dwconv2d_tile",
                detail: format!(
                    "output [{}, {}, {}, {}] needs a workgroup grid {:?} over {MAX_GROUPS} on an axis",
                    p.batch,
                    p.out_c,
                    p.out_h,
                    p.out_w,
                    p.tile_grid()
                ),
            });
        }
        Ok(p)
    }

    /// Whether these `dwconv2d_tile` params (from [`DwConv2dParams::tile`]) also run with vec4
    /// stores ([`launch_tile4`]): the output width is a multiple of 4, so every strip is full and its
    /// 4 outputs of a row are one aligned vec4.
    pub fn tile4_fits(&self) -> bool {
        self.out_w.is_multiple_of(TILE as u32)
    }

    /// Whether a `dwconv2d_tile` launch with these params loads its input as vec4s (every
    /// launch does where it can): the input width is a multiple of 4, so every input row
    /// starts 16-byte aligned and a vec4 never straddles two rows.
    pub fn tile_loads_vec4(&self) -> bool {
        self.in_w.is_multiple_of(TILE as u32)
    }

    /// Workgroups the launch needs (before folding onto a 2-D grid).
    pub fn workgroups(&self) -> u32 {
        self.plane_blocks * self.batch * self.out_c
    }

    /// The 3-D grid of 8-invocation workgroups a `dwconv2d_tile` launch with these params
    /// needs: (8-channel groups, strips per row, row blocks x images).
    pub fn tile_grid(&self) -> [u32; 3] {
        [
            self.out_c.div_ceil(8),
            self.quads_w,
            self.plane_blocks * self.batch,
        ]
    }

    /// Elements of the input `[N, C, H, W]`.
    pub fn input_len(&self) -> usize {
        (self.batch * self.in_c * self.in_h * self.in_w) as usize
    }

    /// Elements of the output `[N, K, OH, OW]`.
    pub fn output_len(&self) -> usize {
        (self.batch * self.out_c * self.out_h * self.out_w) as usize
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = act(dwconv(x, weight) + bias + residual)`. `bias` and `residual` may be any
/// small buffer when the params say they are absent.
#[allow(clippy::too_many_arguments)]
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &DwConv2dParams,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    residual: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let groups = grid(p.workgroups(), MAX_GROUPS);
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[x, weight, bias, residual, y],
        groups,
    )
}

/// Records `y = act(dwconv(x, weight) + bias + residual)` on `dwconv2d_tile` with params from
/// [`DwConv2dParams::tile`]; its pipeline is specialized to the params' kernel size and stride.
/// Buffers as in [`launch`].
#[allow(clippy::too_many_arguments)]
pub fn launch_tile(
    ctx: &Context,
    label: &str,
    p: &DwConv2dParams,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    residual: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    launch_tiled(ctx, label, p, false, [x, weight, bias, residual, y])
}

/// Records `y = act(dwconv(x, weight) + bias + residual)` on `dwconv2d_tile` with vec4 output
/// stores, with params from [`DwConv2dParams::tile`] whose output width is a
/// multiple of 4 ([`DwConv2dParams::tile4_fits`]; an error names the shapes otherwise).
/// Buffers as in [`launch`].
#[allow(clippy::too_many_arguments)]
pub fn launch_tile4(
    ctx: &Context,
    label: &str,
    p: &DwConv2dParams,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    residual: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Launch, KernelError> {
    if !p.tile4_fits() {
        return Err(KernelError::BadShape {
            kernel: "dwconv2d_tile",
            detail: format!(
                "output [{}, {}, {}, {}]: the vec4 stores needs an output width that is a \
                 multiple of {TILE}",
                p.batch, p.out_c, p.out_h, p.out_w
            ),
        });
    }
    Ok(launch_tiled(
        ctx,
        label,
        p,
        true,
        [x, weight, bias, residual, y],
    ))
}

/// `dwconv2d_tile` specialized to the params' kernel size and stride, to vec4 or scalar
/// stores, and to vec4 loads where [`DwConv2dParams::tile_loads_vec4`], on its grid; y and x
/// bind twice (scalar and vec4 views).
fn launch_tiled(
    ctx: &Context,
    label: &str,
    p: &DwConv2dParams,
    vec4: bool,
    [x, weight, bias, residual, y]: [&wgpu::Buffer; 5],
) -> Launch {
    let loads4 = p.tile_loads_vec4();
    let constants = [
        ("KH", f64::from(p.kernel_h)),
        ("KW", f64::from(p.kernel_w)),
        ("SH", f64::from(p.stride_h)),
        ("SW", f64::from(p.stride_w)),
        ("VEC4", f64::from(u8::from(vec4))),
        ("XVEC4", f64::from(u8::from(loads4))),
        // The first column of every strip's segment within its vec4: -pad_left mod 4. The
        // scalar loads ignore it; 0 keeps them to one pipeline.
        (
            "XOFF",
            f64::from(if loads4 { (4 - p.pad_left % 4) % 4 } else { 0 }),
        ),
    ];
    ctx.launch(
        label,
        &ctx.kernel(&TILE_SPEC, &constants),
        bytemuck::bytes_of(p),
        &[x, weight, bias, residual, y, y, x],
        p.tile_grid(),
    )
}

/// Records the depthwise convolution `desc` on `dwconv2d_tile` with vec4 stores where it fits
/// ([`tile_fits`] and [`DwConv2dParams::tile4_fits`]), with scalar stores where only the
/// tiled params do ([`DwConv2dParams::tile`]), on
/// `dwconv2d` otherwise. Buffers as in [`launch`]; errors name the shapes.
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
    let tiled = if tile_fits(desc) {
        DwConv2dParams::tile(desc).ok()
    } else {
        None
    };
    Ok(if let Some(p) = tiled {
        if p.tile4_fits() {
            launch_tile4(ctx, label, &p, x, weight, bias, residual, y)?
        } else {
            launch_tile(ctx, label, &p, x, weight, bias, residual, y)
        }
    } else {
        launch(
            ctx,
            label,
            &DwConv2dParams::new(desc)?,
            x,
            weight,
            bias,
            residual,
            y,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::tests::{ACTS, Which, check};
    use crate::testing::Rng;
    use wgcnn_graph::Activation;

    fn dw(
        input: [usize; 4],
        mult: usize,
        k: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 4],
        dil: [usize; 2],
    ) -> ConvDesc {
        let c = input[1];
        ConvDesc::new(input, [c * mult, 1, k[0], k[1]], stride, pad, dil, c)
    }

    #[test]
    fn dwconv2d_mobilenet_3x3_stride2_relu6() {
        let mut rng = Rng::new(21);
        let d = ConvDesc {
            bias: true,
            ..dw([1, 32, 17, 16], 1, [3, 3], [2, 2], [1; 4], [1, 1])
        };
        check(
            &mut rng,
            "dwconv2d_mobilenet_3x3_stride2_relu6",
            &d,
            Activation::RELU6,
            Which::Depthwise,
        );
    }

    #[test]
    fn dwconv2d_tf_same_5x5_stride2_asymmetric() {
        let mut rng = Rng::new(22);
        let d = ConvDesc {
            bias: true,
            ..dw([2, 12, 14, 14], 1, [5, 5], [2, 2], [1, 1, 2, 2], [1, 1])
        };
        check(
            &mut rng,
            "dwconv2d_tf_same_5x5_stride2_asymmetric",
            &d,
            Activation::Silu,
            Which::Depthwise,
        );
    }

    #[test]
    fn dwconv2d_multiplier_2_with_residual() {
        let mut rng = Rng::new(23);
        let d = ConvDesc {
            bias: true,
            residual: true,
            ..dw([2, 7, 9, 13], 2, [3, 3], [1, 1], [1; 4], [1, 1])
        };
        check(
            &mut rng,
            "dwconv2d_multiplier_2_with_residual",
            &d,
            Activation::HardSwish,
            Which::Depthwise,
        );
    }

    #[test]
    fn dwconv2d_rejects_non_depthwise() {
        let d = ConvDesc::new([1, 8, 5, 5], [8, 2, 3, 3], [1, 1], [1; 4], [1, 1], 4);
        let err = DwConv2dParams::new(&d).expect_err("grouped conv is not depthwise");
        println!("{err}");
        assert!(err.to_string().contains("not depthwise"), "{err}");
    }

    #[test]
    fn dwconv2d_random_shapes_match_interpreter() {
        let mut rng = Rng::new(99);
        let mut worst = 0f32;
        for case in 0..120 {
            let kk = [1, 3, 5, 7][rng.range(0, 3)];
            let k = match rng.range(0, 5) {
                0 => [1, 7],
                1 => [7, 1],
                _ => [kk, kk],
            };
            let dil = [rng.range(1, 3), rng.range(1, 2)];
            let stride = [rng.range(1, 3), rng.range(1, 3)];
            let pad = if case % 2 == 0 {
                [rng.range(0, 3); 4]
            } else {
                [
                    rng.range(0, 2),
                    rng.range(0, 2),
                    rng.range(0, 3),
                    rng.range(0, 3),
                ]
            };
            let min_h = (dil[0] * (k[0] - 1) + 1)
                .saturating_sub(pad[0] + pad[2])
                .max(1);
            let min_w = (dil[1] * (k[1] - 1) + 1)
                .saturating_sub(pad[1] + pad[3])
                .max(1);
            let input = [
                rng.range(1, 3),
                rng.range(1, 67),
                rng.range(min_h, min_h.max(17)),
                rng.range(min_w, min_w.max(17)),
            ];
            let mult = if case % 4 == 3 { 2 } else { 1 };
            let d = ConvDesc {
                bias: rng.range(0, 1) == 1,
                residual: rng.range(0, 2) == 0,
                ..dw(input, mult, k, stride, pad, dil)
            };
            let act = ACTS[case % ACTS.len()];
            worst = worst.max(check(
                &mut rng,
                &format!("dw random case {case}"),
                &d,
                act,
                Which::Depthwise,
            ));
            // Every fourth case also through the general kernel: both must agree on depthwise.
            if case % 4 == 0 {
                worst = worst.max(check(
                    &mut rng,
                    &format!("dw random case {case} (general)"),
                    &d,
                    act,
                    Which::General,
                ));
            }
        }
        println!("dwconv2d: 120 random cases (+30 via conv2d), worst relative error {worst:.3e}");
    }

    #[test]
    fn dwconv2d_tile_mobilenet_and_efficientnet_shapes() {
        // 3x3 and 5x5, strides 1 and 2, symmetric and TF "SAME" padding, partial 4x4 blocks.
        let mut rng = Rng::new(31);
        for (i, (k, s, pad)) in [
            (3, 1, [1; 4]),
            (3, 2, [1; 4]),
            (3, 2, [0, 0, 1, 1]),
            (5, 1, [2; 4]),
            (5, 2, [1, 1, 2, 2]),
        ]
        .into_iter()
        .enumerate()
        {
            let d = ConvDesc {
                bias: true,
                residual: s == 1,
                ..dw([1, 6, 15, 13], 1, [k, k], [s, s], pad, [1, 1])
            };
            check(
                &mut rng,
                "dwconv2d_tile_mobilenet_and_efficientnet_shapes",
                &d,
                ACTS[i],
                Which::DepthwiseTile,
            );
        }
    }

    #[test]
    fn dwconv2d_tile_random_shapes_match_interpreter() {
        let mut rng = Rng::new(32);
        let mut worst = 0f32;
        for case in 0..60 {
            // A few kernel shapes and strides: each pair is a pipeline of its own to compile.
            let (kh, kw): (usize, usize) = [(3, 3), (5, 5), (1, 3), (3, 5)][rng.range(0, 3)];
            let stride = [[1, 1], [2, 2], [1, 2]][rng.range(0, 2)];
            let pad = [
                rng.range(0, 2),
                rng.range(0, 2),
                rng.range(0, 2),
                rng.range(0, 2),
            ];
            let h = rng.range(kh.saturating_sub(pad[0] + pad[2]).max(1), 19);
            let w = rng.range(kw.saturating_sub(pad[1] + pad[3]).max(1), 19);
            let d = ConvDesc {
                bias: rng.range(0, 1) == 1,
                residual: rng.range(0, 2) == 0,
                ..dw(
                    [rng.range(1, 2), rng.range(1, 9), h, w],
                    rng.range(1, 2),
                    [kh, kw],
                    stride,
                    pad,
                    [1, 1],
                )
            };
            assert!(tile_fits(&d), "{d:?}");
            worst = worst.max(check(
                &mut rng,
                &format!("tile random case {case}"),
                &d,
                ACTS[case % ACTS.len()],
                Which::DepthwiseTile,
            ));
        }
        println!("dwconv2d_tile: 60 random cases, worst relative error {worst:.3e}");
    }

    #[test]
    fn dwconv2d_tile4_mobilenet_and_efficientnet_shapes() {
        // 3x3 and 5x5, strides 1 and 2, symmetric and TF "SAME" padding; every output width a
        // multiple of 4, heights past one 16-row block.
        let mut rng = Rng::new(33);
        for (i, (k, s, pad, w)) in [
            (3, 1, [1; 4], 16),
            (3, 2, [1; 4], 16),
            (3, 2, [0, 0, 1, 1], 16),
            (5, 1, [2; 4], 12),
            (5, 2, [1, 1, 2, 2], 17),
        ]
        .into_iter()
        .enumerate()
        {
            let d = ConvDesc {
                bias: true,
                residual: s == 1,
                ..dw([1, 10, 19, w], 1, [k, k], [s, s], pad, [1, 1])
            };
            let p = DwConv2dParams::tile(&d).expect("fits the tiled kernel");
            assert!(p.tile4_fits(), "{d:?}: output width {}", p.out_w);
            check(
                &mut rng,
                "dwconv2d_tile4_mobilenet_and_efficientnet_shapes",
                &d,
                ACTS[i],
                Which::DepthwiseTile4,
            );
        }
    }

    #[test]
    fn dwconv2d_tile4_random_shapes_match_interpreter() {
        let mut rng = Rng::new(34);
        let mut worst = 0f32;
        let mut case = 0;
        while case < 40 {
            let (kh, kw): (usize, usize) = [(3, 3), (5, 5), (1, 3), (3, 5)][rng.range(0, 3)];
            let stride = [[1, 1], [2, 2], [1, 2]][rng.range(0, 2)];
            let pad = [
                rng.range(0, 2),
                rng.range(0, 2),
                rng.range(0, 2),
                rng.range(0, 2),
            ];
            let h = rng.range(kh.saturating_sub(pad[0] + pad[2]).max(1), 37);
            let w = rng.range(kw.saturating_sub(pad[1] + pad[3]).max(1), 27);
            let d = ConvDesc {
                bias: rng.range(0, 1) == 1,
                residual: rng.range(0, 2) == 0,
                ..dw(
                    [rng.range(1, 2), rng.range(1, 19), h, w],
                    rng.range(1, 2),
                    [kh, kw],
                    stride,
                    pad,
                    [1, 1],
                )
            };
            // Only shapes whose output width is a multiple of 4 run on this kernel.
            let p = DwConv2dParams::tile(&d).expect("fits the tiled kernel");
            if !p.tile4_fits() {
                continue;
            }
            worst = worst.max(check(
                &mut rng,
                &format!("tile4 random case {case}"),
                &d,
                ACTS[case % ACTS.len()],
                Which::DepthwiseTile4,
            ));
            case += 1;
        }
        println!("dwconv2d_tile4: 40 random cases, worst relative error {worst:.3e}");
    }

    #[test]
    fn dwconv2d_tile_vec4_loads_every_left_pad_mod_4() {
        // Input widths a multiple of 4 load through x's vec4 view; the left padding 0..3 makes
        // each of the 4 offsets of a segment within its first vec4 (XOFF), with 3x3 and 5x5
        // windows at strides 1 and 2, 2 images, strips clipped at both edges, with scalar and
        // (where the output width allows) vec4 stores.
        let mut rng = Rng::new(35);
        let mut case = 0;
        for (k, s) in [(3usize, 1), (3, 2), (5, 1), (5, 2), (1, 1)] {
            for left in 0..4 {
                let pad = [left.min(k - 1), left, (k - 1).saturating_sub(left), 1];
                let d = ConvDesc {
                    bias: true,
                    residual: case % 2 == 0,
                    ..dw([2, 9, 13, 20], 1, [k, k], [s, s], pad, [1, 1])
                };
                let p = DwConv2dParams::tile(&d).expect("fits the tiled kernel");
                assert!(p.tile_loads_vec4(), "{d:?}");
                let which = if p.tile4_fits() {
                    Which::DepthwiseTile4
                } else {
                    Which::DepthwiseTile
                };
                check(
                    &mut rng,
                    &format!("tile vec4 loads {k}x{k}/{s} pad {pad:?} ({which:?})"),
                    &d,
                    ACTS[case % ACTS.len()],
                    which,
                );
                case += 1;
            }
        }
        // A width off the multiple keeps the scalar loads.
        let d = dw([1, 4, 9, 14], 1, [3, 3], [1, 1], [1; 4], [1, 1]);
        assert!(!DwConv2dParams::tile(&d).expect("fits").tile_loads_vec4());
    }

    #[test]
    fn dwconv2d_tile4_rejects_ragged_output_width() {
        let d = dw([1, 4, 9, 14], 1, [3, 3], [1, 1], [1; 4], [1, 1]);
        let p = DwConv2dParams::tile(&d).expect("fits the tiled kernel");
        assert!(!p.tile4_fits());
        let ctx = crate::testing::ctx();
        let b = ctx.upload("b", &[0.0; 4]);
        let err = launch_tile4(ctx, "ragged", &p, &b, &b, &b, &b, &b)
            .expect_err("output width 14 is not a multiple of 4");
        println!("{err}");
        assert!(err.to_string().contains("vec4 stores"), "{err}");
    }

    #[test]
    fn dwconv2d_tile_leaves_outputs_under_4_elements_to_dwconv2d() {
        // The tiled launch binds y's vec4 view too, which wgpu refuses on a buffer under 16
        // bytes: such outputs take the general kernel, and still match the interpreter.
        let d = dw([1, 1, 3, 3], 1, [3, 3], [1, 1], [0; 4], [1, 1]);
        assert!(tile_fits(&d));
        let err = DwConv2dParams::tile(&d).expect_err("a 1x1 output has 1 element");
        assert!(err.to_string().contains("fewer than 4 elements"), "{err}");
        let mut rng = Rng::new(31);
        check(
            &mut rng,
            "dwconv2d_tile_leaves_outputs_under_4_elements_to_dwconv2d",
            &d,
            Activation::RELU6,
            Which::Auto,
        );
    }

    #[test]
    fn dwconv2d_tile_rejects_dilation_and_large_kernels() {
        for d in [
            dw([1, 4, 9, 9], 1, [3, 3], [1, 1], [2; 4], [2, 2]),
            dw([1, 4, 9, 9], 1, [7, 7], [1, 1], [3; 4], [1, 1]),
            dw([1, 4, 9, 9], 1, [3, 3], [3, 3], [1; 4], [1, 1]),
        ] {
            assert!(!tile_fits(&d), "{d:?}");
            let err = DwConv2dParams::tile(&d).expect_err("not for the tiled kernel");
            println!("{err}");
            assert!(err.to_string().contains("dwconv2d_tile"), "{err}");
        }
    }
}
