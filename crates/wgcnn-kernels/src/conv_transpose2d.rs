//! `conv_transpose2d`: PyTorch's `ConvTranspose2d` (any kernel, stride, padding, output
//! padding, dilation, groups) with a fused `act(sum + bias)` epilogue, as a gather over the taps
//! that reach each output pixel; 16 output channels per invocation from plan-time reordered
//! weights. Shader: `shaders/conv_transpose2d.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelError, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "conv_transpose2d",
    source: shaders::CONV_TRANSPOSE2D,
    buffers: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

/// Output channels per invocation (four vec4s of weights per input channel): each loaded input
/// value feeds 16 multiply-adds. lavapipe, Mask R-CNN's `conv5_mask` over 100 RoIs (5.1 GMAC):
/// 4 channels 4.5 s, 16 channels 1.7 s; the executor's GEMM form ([`launch_from_cols`] after a
/// 1x1 conv) 0.33 s, so this direct kernel serves grouped layers and cols over one binding.
const BLOCK: usize = 16;

/// A transposed convolution's shapes and settings (mirrors `wgcnn_graph::ConvTranspose2d`
/// without depending on the graph).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvTransposeDesc {
    /// `[N, C, H, W]`.
    pub input: [usize; 4],
    /// PyTorch's layout `[C, K / groups, kh, kw]`.
    pub weight: [usize; 4],
    /// `[N, K, OH, OW]` (from the graph's shape inference).
    pub output: [usize; 4],
    pub stride: [usize; 2],
    /// `[top, left, ...]`: only the top/left crop moves the gather; bottom/right only shorten
    /// the output, which `output` already says.
    pub padding: [usize; 4],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
    /// `Activation::code()`.
    pub act: (u32, f32, f32),
}

impl ConvTransposeDesc {
    fn kblocks(&self) -> usize {
        self.weight[1].div_ceil(BLOCK)
    }
}

/// Mirrors `Params` in `shaders/conv_transpose2d.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ConvTranspose2dParams {
    pub total: u32,
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    pub out_channels: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub group_in: u32,
    pub group_out: u32,
    pub kblocks: u32,
    pub groups: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub dilation_h: u32,
    pub dilation_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub has_bias: u32,
    pub act: u32,
    pub act_p0: f32,
    pub act_p1: f32,
    pub from_cols: u32,
}

/// Checks that `desc` is consistent and its buffers are indexable with u32.
fn check(desc: &ConvTransposeDesc) -> Result<(), KernelError> {
    let [n, c, h, w] = desc.input;
    let [wc, kg, kh, kw] = desc.weight;
    let [on, k, oh, ow] = desc.output;
    let bad = |detail: String| KernelError::BadShape {
        kernel: SPEC.name,
        detail,
    };
    if desc.groups == 0
        || c % desc.groups != 0
        || wc != c
        || on != n
        || k != kg * desc.groups
        || desc.stride.contains(&0)
        || desc.dilation.contains(&0)
        || [n, c, h, w, kg, kh, kw, oh, ow].contains(&0)
    {
        return Err(bad(format!("inconsistent transposed convolution {desc:?}")));
    }
    let invocations = n * desc.groups * desc.kblocks() * oh * ow;
    let largest = (n * k * oh * ow).max(n * c * h * w).max(invocations);
    if largest > u32::MAX as usize / 2 {
        return Err(bad(format!("{largest} elements overflow u32 indexing")));
    }
    Ok(())
}

impl ConvTranspose2dParams {
    pub fn new(desc: &ConvTransposeDesc) -> Result<Self, KernelError> {
        check(desc)?;
        let [n, c, h, w] = desc.input;
        let [_, kg, kh, kw] = desc.weight;
        let [_, k, oh, ow] = desc.output;
        let kblocks = desc.kblocks();
        let (act, act_p0, act_p1) = desc.act;
        let u = |v: usize| v as u32;
        Ok(ConvTranspose2dParams {
            total: u(n * desc.groups * kblocks * oh * ow),
            channels: u(c),
            height: u(h),
            width: u(w),
            out_channels: u(k),
            out_height: u(oh),
            out_width: u(ow),
            group_in: u(c / desc.groups),
            group_out: u(kg),
            kblocks: u(kblocks),
            groups: u(desc.groups),
            kernel_h: u(kh),
            kernel_w: u(kw),
            stride_h: u(desc.stride[0]),
            stride_w: u(desc.stride[1]),
            dilation_h: u(desc.dilation[0]),
            dilation_w: u(desc.dilation[1]),
            pad_top: u(desc.padding[0]),
            pad_left: u(desc.padding[1]),
            has_bias: desc.bias as u32,
            act,
            act_p0,
            act_p1,
            from_cols: 0,
        })
    }
}

/// Reorders PyTorch's `[C, Kg, kh, kw]` weights to the kernel's `[groups, kh, kw, Cg, kblocks,
/// 16]`, zero past `Kg`, so each invocation reads its 16 channels' weights as four vec4s.
pub fn prepare_weights(desc: &ConvTransposeDesc, weight: &[f32]) -> Result<Vec<f32>, KernelError> {
    check(desc)?;
    let [c, kg, kh, kw] = desc.weight;
    if weight.len() != c * kg * kh * kw {
        return Err(KernelError::BadShape {
            kernel: SPEC.name,
            detail: format!("{} weight values for shape {:?}", weight.len(), desc.weight),
        });
    }
    let cg = c / desc.groups;
    let kpad = desc.kblocks() * BLOCK;
    let mut out = vec![0f32; desc.groups * kh * kw * cg * kpad];
    for (ci, per_in) in weight.chunks_exact(kg * kh * kw).enumerate() {
        let (g, cl) = (ci / cg, ci % cg);
        for (co, taps) in per_in.chunks_exact(kh * kw).enumerate() {
            for (tap, &v) in taps.iter().enumerate() {
                out[((g * kh * kw + tap) * cg + cl) * kpad + co] = v;
            }
        }
    }
    Ok(out)
}

/// The weights of the 1x1 convolution that computes `cols = W^T x` `[N, K * kh * kw, H, W]`
/// for [`launch_from_cols`] (groups 1): `[K * kh * kw, C, 1, 1]`, the transpose of PyTorch's
/// `[C, K * kh * kw]`.
pub fn gemm_weights(desc: &ConvTransposeDesc, weight: &[f32]) -> Result<Vec<f32>, KernelError> {
    check(desc)?;
    let [c, kg, kh, kw] = desc.weight;
    let rows = kg * kh * kw;
    if desc.groups != 1 || weight.len() != c * rows {
        return Err(KernelError::BadShape {
            kernel: SPEC.name,
            detail: format!(
                "the GEMM form needs groups 1 and {} weights, got groups {} and {}",
                c * rows,
                desc.groups,
                weight.len()
            ),
        });
    }
    let mut out = vec![0f32; rows * c];
    for (ci, row) in weight.chunks_exact(rows).enumerate() {
        for (r, &v) in row.iter().enumerate() {
            out[r * c + ci] = v;
        }
    }
    Ok(out)
}

/// Bytes of the cols buffer [`launch_from_cols`] reads.
pub fn cols_bytes(desc: &ConvTransposeDesc) -> u64 {
    let [n, _, h, w] = desc.input;
    let [_, kg, kh, kw] = desc.weight;
    (n * kg * desc.groups * kh * kw * h * w) as u64 * 4
}

/// Records the col2im half of the GEMM form: `y = act(gather of cols + bias)` with `cols`
/// `[N, K * kh * kw, H, W]` computed by a 1x1 convolution with [`gemm_weights`] (groups 1).
/// `unused` is any storage buffer of at least 16 bytes (the weight binding is not read).
pub fn launch_from_cols(
    ctx: &Context,
    label: &str,
    desc: &ConvTransposeDesc,
    cols: &wgpu::Buffer,
    unused: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Launch, KernelError> {
    if desc.groups != 1 {
        return Err(KernelError::BadShape {
            kernel: SPEC.name,
            detail: format!("the GEMM form needs groups 1, got {}", desc.groups),
        });
    }
    let p = ConvTranspose2dParams {
        from_cols: 1,
        ..ConvTranspose2dParams::new(desc)?
    };
    Ok(ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(&p),
        &[cols, unused, bias, y],
        grid(p.total.div_ceil(256), MAX_GROUPS),
    ))
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = act(conv_transpose(x, w) + bias)`; `w` holds [`prepare_weights`]' layout and
/// `bias` is any buffer when `desc.bias` is false.
pub fn launch(
    ctx: &Context,
    label: &str,
    desc: &ConvTransposeDesc,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Launch, KernelError> {
    let p = ConvTranspose2dParams::new(desc)?;
    Ok(ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(&p),
        &[x, w, bias, y],
        grid(p.total.div_ceil(256), MAX_GROUPS),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{Activation, ConvTranspose2d, Op, Tensor, interp};

    fn run(rng: &mut Rng, c: &ConvTranspose2d, input: [usize; 4], weight: [usize; 4]) {
        let ctx = ctx();
        let x = rng.tensor(&input, 1.0);
        let w = rng.tensor(&weight, 1.0);
        let b = rng.tensor(&[weight[1] * c.groups], 1.0);
        let mut ins = vec![&x, &w];
        if c.bias {
            ins.push(&b);
        }
        let want = interp::eval_op(&Op::ConvTranspose2d(c.clone()), &ins).expect("interp");
        let desc = ConvTransposeDesc {
            input,
            weight,
            output: <[usize; 4]>::try_from(want.shape.as_slice()).expect("4-D"),
            stride: c.stride,
            padding: c.padding,
            dilation: c.dilation,
            groups: c.groups,
            bias: c.bias,
            act: c.act.code(),
        };
        let prepared = prepare_weights(&desc, &w.data).expect("weights");
        let (xb, wb, bb, yb) = (
            ctx.upload("x", &x.data),
            ctx.upload("w", &prepared),
            ctx.upload("b", &b.data),
            ctx.storage("y", want.numel() as u64 * 4),
        );
        let l = launch(ctx, "t", &desc, &xb, &wb, &bb, &yb).expect("launch");
        ctx.run(&[l]).expect("run");
        let got =
            Tensor::new(&want.shape, ctx.read(&yb, want.numel()).expect("read")).expect("shape");
        assert_close(
            &format!("conv_transpose2d {input:?} {weight:?} {c:?}"),
            &got,
            &want,
            1e-5,
        );
    }

    #[test]
    fn conv_transpose2d_matches_interpreter_on_random_shapes() {
        let mut rng = Rng::new(12);
        for case in 0..40 {
            let groups = [1, 1, 2, 3][rng.range(0, 3)];
            let (cg, kg) = (rng.range(1, 6), rng.range(1, 9));
            let (kh, kw) = (rng.range(1, 4), rng.range(1, 4));
            let stride = [rng.range(1, 3), rng.range(1, 3)];
            let dilation = [rng.range(1, 2), rng.range(1, 2)];
            let output_padding = [
                rng.range(0, stride[0].max(dilation[0]) - 1),
                rng.range(0, stride[1].max(dilation[1]) - 1),
            ];
            let (h, w) = (rng.range(1, 9), rng.range(1, 9));
            let full_h = (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0];
            let full_w = (w - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1];
            let (ch, cw) = (rng.range(0, full_h - 1), rng.range(0, full_w - 1));
            let (top, left) = (rng.range(0, ch), rng.range(0, cw));
            let c = ConvTranspose2d {
                stride,
                padding: [top, left, ch - top, cw - left],
                output_padding,
                dilation,
                groups,
                bias: case % 2 == 0,
                act: [Activation::Identity, Activation::Relu, Activation::Sigmoid][case % 3],
            };
            let n = rng.range(1, 2);
            run(
                &mut rng,
                &c,
                [n, cg * groups, h, w],
                [cg * groups, kg, kh, kw],
            );
        }
    }

    #[test]
    fn conv_transpose2d_mask_and_keypoint_head_upsamplers_match_interpreter() {
        let mut rng = Rng::new(5);
        // Mask R-CNN's `mask_head` upsampler (2x2 stride 2 + ReLU) and Keypoint R-CNN's
        // `kps_score_lowres` (4x4 stride 2 padding 1), on a few RoIs and narrower channels.
        let mask = ConvTranspose2d {
            act: Activation::Relu,
            ..ConvTranspose2d::new(2, 0, 1, true)
        };
        run(&mut rng, &mask, [3, 64, 14, 14], [64, 64, 2, 2]);
        let kps = ConvTranspose2d::new(2, 1, 1, true);
        run(&mut rng, &kps, [2, 64, 14, 14], [64, 17, 4, 4]);
    }

    /// The GEMM form: cols from the interpreter's 1x1 conv with [`gemm_weights`], then the
    /// col2im launch, against the interpreter's transposed conv.
    #[test]
    fn conv_transpose2d_from_cols_matches_interpreter() {
        let ctx = ctx();
        let mut rng = Rng::new(21);
        for (input, weight, stride, padding) in [
            ([3, 32, 14, 14], [32, 20, 2, 2], 2, 0),
            ([2, 16, 7, 9], [16, 17, 4, 4], 2, 1),
            ([1, 5, 6, 5], [5, 3, 3, 2], 1, 1),
        ] {
            let c = ConvTranspose2d {
                act: Activation::Relu,
                ..ConvTranspose2d::new(stride, padding, 1, true)
            };
            let x = rng.tensor(&input, 1.0);
            let w = rng.tensor(&weight, 1.0);
            let b = rng.tensor(&[weight[1]], 1.0);
            let want =
                interp::eval_op(&Op::ConvTranspose2d(c.clone()), &[&x, &w, &b]).expect("interp");
            let desc = ConvTransposeDesc {
                input,
                weight,
                output: <[usize; 4]>::try_from(want.shape.as_slice()).expect("4-D"),
                stride: c.stride,
                padding: c.padding,
                dilation: c.dilation,
                groups: 1,
                bias: true,
                act: c.act.code(),
            };
            let rows = weight[1] * weight[2] * weight[3];
            let gw = Tensor::new(
                &[rows, input[1], 1, 1],
                gemm_weights(&desc, &w.data).expect("w"),
            )
            .expect("gemm weights");
            let one = wgcnn_graph::Conv2d::new(1, 0, 1, false);
            let cols = interp::eval_op(&Op::Conv2d(one), &[&x, &gw]).expect("cols");
            assert_eq!(cols.numel() as u64 * 4, cols_bytes(&desc));
            let (cb, ub, bb, yb) = (
                ctx.upload("cols", &cols.data),
                ctx.upload("unused", &[0.0; 4]),
                ctx.upload("b", &b.data),
                ctx.storage("y", want.numel() as u64 * 4),
            );
            let l = launch_from_cols(ctx, "t", &desc, &cb, &ub, &bb, &yb).expect("launch");
            ctx.run(&[l]).expect("run");
            let got = Tensor::new(&want.shape, ctx.read(&yb, want.numel()).expect("read"))
                .expect("shape");
            assert_close(
                &format!("conv_transpose2d from cols {input:?} {weight:?}"),
                &got,
                &want,
                1e-5,
            );
        }
    }

    #[test]
    fn conv_transpose2d_rejects_inconsistent_shapes() {
        let desc = ConvTransposeDesc {
            input: [1, 4, 3, 3],
            weight: [3, 2, 2, 2],
            output: [1, 2, 4, 4],
            stride: [1, 1],
            padding: [0; 4],
            dilation: [1, 1],
            groups: 1,
            bias: false,
            act: (0, 0.0, 0.0),
        };
        assert!(matches!(
            ConvTranspose2dParams::new(&desc),
            Err(KernelError::BadShape { .. })
        ));
        let ok = ConvTransposeDesc {
            weight: [4, 2, 2, 2],
            ..desc
        };
        assert!(prepare_weights(&ok, &[0.0; 5]).is_err());
    }
}
