//! Strided 1x1 convolutions (ResNet's downsample shortcuts) as a subsample copy followed by
//! `conv2d_1x1_sg`: a 1x1 unpadded convolution with stride `s` is the stride-1 one on every
//! `s`-th row and column of its input. The copy (`shaders/subsample.wgsl`, into a scratch
//! buffer) is small next to the GEMM, and the GEMM then loads its input as vec4s, which on
//! lavapipe beats `conv2d_sg`'s (SG4 step) strided scalar loads.

use bytemuck::{Pod, Zeroable};

use super::{ChannelSlice, ConvDesc, Variant, launch_variant_into, variant};
use crate::{Access, Context, KernelError, KernelSpec, Launch, MAX_GROUPS, shaders};

/// The subsample kernel's registry entry: params, then x, y.
pub const SUBSAMPLE_SPEC: KernelSpec = KernelSpec {
    name: "subsample",
    source: shaders::SUBSAMPLE,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// Invocations per subsample workgroup; keep in step with the shader.
const LANES: u32 = 64;

/// Mirrors `Params` in `shaders/subsample.wgsl`; keep both in step (48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SubsampleParams {
    pub channels: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    /// `ceil(OW / 4)`.
    pub quads_w: u32,
    /// `N` (the grid's third axis).
    pub batch: u32,
    pub _pad: [u32; 3],
}

impl SubsampleParams {
    /// Every `stride`-th row and column of `input` `[N, C, H, W]`; an error names the shape
    /// when a stride is 0 or the grid does not fit the device's limits.
    pub fn new(input: [usize; 4], stride: [usize; 2]) -> Result<Self, KernelError> {
        let [n, c, h, w] = input;
        let u = |v: usize| v as u32;
        if stride.contains(&0) {
            return Err(KernelError::BadShape {
                kernel: "subsample",
                detail: format!("input {input:?}: stride {stride:?} has a 0"),
            });
        }
        let (oh, ow) = (h.div_ceil(stride[0]), w.div_ceil(stride[1]));
        let p = SubsampleParams {
            channels: u(c),
            in_h: u(h),
            in_w: u(w),
            out_h: u(oh),
            out_w: u(ow),
            stride_h: u(stride[0]),
            stride_w: u(stride[1]),
            quads_w: u(ow.div_ceil(4)),
            batch: u(n),
            _pad: [0; 3],
        };
        if p.grid().iter().any(|&g| g > MAX_GROUPS) {
            return Err(KernelError::BadShape {
                kernel: "subsample",
                detail: format!(
                    "input {input:?}: workgroup grid {:?} over {MAX_GROUPS} on an axis",
                    p.grid()
                ),
            });
        }
        Ok(p)
    }

    /// The launch's grid: (row-quad blocks per plane, C, N).
    pub fn grid(&self) -> [u32; 3] {
        [
            (self.out_h * self.quads_w).div_ceil(LANES),
            self.channels,
            self.batch,
        ]
    }
}

/// Records `y = x[:, :, ::SH, ::SW]` (`y` at least `N * C * OH * OW` values).
pub fn launch_subsample(
    ctx: &Context,
    label: &str,
    p: &SubsampleParams,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &ctx.kernel(&SUBSAMPLE_SPEC, &[]),
        bytemuck::bytes_of(p),
        &[x, y],
        p.grid(),
    )
}

/// The stride-1 convolution on the subsampled input `[N, C, OH, OW]` that computes `desc`,
/// when `desc` is a 1x1, unpadded, undilated, ungrouped convolution with a stride over 1 and
/// that stride-1 convolution runs on `conv2d_1x1_sg` on `ctx`'s device; `None` otherwise.
pub fn subsampled_pointwise(ctx: &Context, desc: &ConvDesc) -> Option<ConvDesc> {
    let [n, c, _, _] = desc.input;
    let [_, _, kh, kw] = desc.weight;
    if [kh, kw] != [1, 1]
        || desc.stride == [1, 1]
        || desc.padding != [0; 4]
        || desc.dilation != [1, 1]
        || desc.groups != 1
    {
        return None;
    }
    let [_, _, oh, ow] = desc.output().ok()?;
    let sub = ConvDesc {
        input: [n, c, oh, ow],
        stride: [1, 1],
        ..*desc
    };
    (variant(ctx, &sub) == Variant::Pointwise).then_some(sub)
}

/// Bytes of the scratch buffer [`launch_subsampled_into`] needs for `desc`: its subsampled
/// input.
pub fn scratch_bytes(desc: &ConvDesc) -> Result<u64, KernelError> {
    let [n, c, _, _] = desc.input;
    let [_, _, oh, ow] = desc.output()?;
    Ok((n * c * oh * ow * 4) as u64)
}

/// Records `desc` (a convolution [`subsampled_pointwise`] accepts) as two launches: the
/// subsample of `x` into `scratch` (at least [`scratch_bytes`]) and `conv2d_1x1_sg` on it,
/// writing channels `out` of `y`. `weight` is the plain `[K, C, 1, 1]` weight (the pointwise
/// kernel's layout); `bias` and `residual` as in [`super::launch`]. Errors name the shapes.
#[allow(clippy::too_many_arguments)]
pub fn launch_subsampled_into(
    ctx: &Context,
    label: &str,
    desc: &ConvDesc,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    residual: &wgpu::Buffer,
    y: &wgpu::Buffer,
    out: ChannelSlice,
    scratch: &wgpu::Buffer,
) -> Result<[Launch; 2], KernelError> {
    let Some(sub) = subsampled_pointwise(ctx, desc) else {
        return Err(KernelError::BadShape {
            kernel: "conv2d_1x1_sg",
            detail: format!(
                "{label}: weight {:?}, stride {:?}, padding {:?}, groups {} on input {:?} is \
                 not a strided 1x1 convolution the pointwise kernel runs after a subsample",
                desc.weight, desc.stride, desc.padding, desc.groups, desc.input
            ),
        });
    };
    let needed = scratch_bytes(desc)?;
    if scratch.size() < needed {
        return Err(KernelError::BadShape {
            kernel: "conv2d_1x1_sg",
            detail: format!(
                "{label}: subsample scratch of {} bytes, input {:?} subsampled needs {needed}",
                scratch.size(),
                desc.input
            ),
        });
    }
    let p = SubsampleParams::new(desc.input, desc.stride)?;
    let copy = launch_subsample(ctx, &format!("{label} subsample"), &p, x, scratch);
    let gemm = launch_variant_into(
        ctx,
        label,
        Variant::Pointwise,
        &sub,
        scratch,
        weight,
        bias,
        residual,
        y,
        out,
    )?;
    Ok([copy, gemm])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::tests::{ACTS, Which, check};
    use crate::testing::{Rng, ctx};

    #[test]
    fn subsample_matches_strided_indexing() {
        let ctx = ctx();
        let mut rng = Rng::new(41);
        for (input, stride) in [
            ([1, 3, 9, 14], [2, 2]),
            ([2, 5, 7, 7], [2, 2]),
            ([1, 4, 10, 11], [3, 2]),
            ([2, 2, 5, 33], [1, 3]),
        ] {
            let [n, c, h, w] = input;
            let x = rng.tensor(&input, 1.0);
            let p = SubsampleParams::new(input, stride).expect("valid shape");
            let (oh, ow) = (p.out_h as usize, p.out_w as usize);
            let mut want = Vec::with_capacity(n * c * oh * ow);
            for plane in 0..n * c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        want.push(x.data[(plane * h + oy * stride[0]) * w + ox * stride[1]]);
                    }
                }
            }
            let xb = ctx.upload("x", &x.data);
            let yb = ctx.storage("y", want.len() as u64 * 4);
            ctx.run(&[launch_subsample(ctx, "subsample", &p, &xb, &yb)])
                .expect("run");
            let got = ctx.read(&yb, want.len()).expect("read");
            let mismatches = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            println!("subsample {input:?} stride {stride:?}: {mismatches} mismatches");
            assert_eq!(got, want, "{input:?} stride {stride:?}");
        }
    }

    #[test]
    fn strided_1x1_resnet_downsample_shapes() {
        let mut rng = Rng::new(42);
        for (i, input) in [[1, 16, 28, 28], [2, 8, 16, 14], [1, 12, 15, 17]]
            .into_iter()
            .enumerate()
        {
            let d = ConvDesc {
                bias: true,
                residual: i == 1,
                ..ConvDesc::new(input, [24, input[1], 1, 1], [2, 2], [0; 4], [1, 1], 1)
            };
            assert!(subsampled_pointwise(ctx(), &d).is_some(), "{d:?}");
            check(
                &mut rng,
                "strided_1x1_resnet_downsample_shapes",
                &d,
                ACTS[i],
                Which::Subsampled,
            );
        }
    }

    #[test]
    fn strided_1x1_random_shapes_match_interpreter() {
        let mut rng = Rng::new(43);
        let mut worst = 0f32;
        let mut case = 0;
        while case < 30 {
            let c = 4 * rng.range(1, 12);
            let stride = [rng.range(1, 3), rng.range(1, 3)];
            let input = [rng.range(1, 2), c, rng.range(1, 23), rng.range(1, 23)];
            let d = ConvDesc {
                bias: rng.range(0, 1) == 1,
                residual: rng.range(0, 2) == 0,
                ..ConvDesc::new(
                    input,
                    [rng.range(6, 40), c, 1, 1],
                    stride,
                    [0; 4],
                    [1, 1],
                    1,
                )
            };
            // Only the shapes this path takes: a stride over 1, OH * OW a multiple of 4.
            if subsampled_pointwise(ctx(), &d).is_none() {
                continue;
            }
            worst = worst.max(check(
                &mut rng,
                &format!("strided 1x1 random case {case}"),
                &d,
                ACTS[case % ACTS.len()],
                Which::Subsampled,
            ));
            case += 1;
        }
        println!("strided 1x1: 30 random cases, worst relative error {worst:.3e}");
    }

    #[test]
    fn strided_1x1_path_rejects_other_convolutions() {
        for d in [
            ConvDesc::new([1, 8, 8, 8], [8, 8, 1, 1], [1, 1], [0; 4], [1, 1], 1),
            ConvDesc::new([1, 8, 8, 8], [8, 8, 3, 3], [2, 2], [1; 4], [1, 1], 1),
            ConvDesc::new([1, 8, 8, 8], [8, 8, 1, 1], [2, 2], [1; 4], [1, 1], 1),
            ConvDesc::new([1, 8, 8, 8], [8, 4, 1, 1], [2, 2], [0; 4], [1, 1], 2),
            // 7x7 output: OH * OW is not a multiple of 4.
            ConvDesc::new([1, 8, 14, 14], [8, 8, 1, 1], [2, 2], [0; 4], [1, 1], 1),
        ] {
            assert!(subsampled_pointwise(ctx(), &d).is_none(), "{d:?}");
            let b = ctx().upload("b", &[0.0; 4]);
            let err = launch_subsampled_into(
                ctx(),
                "other",
                &d,
                &b,
                &b,
                &b,
                &b,
                &b,
                ChannelSlice::whole(8),
                &b,
            )
            .expect_err("not a strided 1x1 convolution for this path");
            println!("{err}");
            assert!(err.to_string().contains("strided 1x1"), "{err}");
        }
    }
}
