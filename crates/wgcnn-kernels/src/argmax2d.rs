//! `argmax2d`: a segmenter's class map, the per-pixel argmax over channels of NCHW logits
//! bilinearly resized (`align_corners=False`) to any size, without storing the resized logits.
//! Shader: `shaders/argmax2d.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "argmax2d",
    source: shaders::ARGMAX2D,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/argmax2d.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ArgMax2dParams {
    pub total: u32,
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub scale_h: f32,
    pub scale_w: f32,
}

impl ArgMax2dParams {
    /// The class map of `input` `[N, C, H, W]` at `out` `[OH, OW]`: `[N, OH, OW]`.
    pub fn new(input: [usize; 4], out: [usize; 2]) -> Self {
        let [n, c, h, w] = input;
        ArgMax2dParams {
            total: (n * out[0] * out[1]) as u32,
            channels: c as u32,
            height: h as u32,
            width: w as u32,
            out_height: out[0] as u32,
            out_width: out[1] as u32,
            // PyTorch's scale, in f32 as it computes it on the host.
            scale_h: h as f32 / out[0] as f32,
            scale_w: w as f32 / out[1] as f32,
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the class map of `x` into `y`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &ArgMax2dParams,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[x, y],
        grid(p.total.div_ceil(256), MAX_GROUPS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, ctx};
    use wgcnn_graph::{Op, Tensor, interp};

    fn check(rng: &mut Rng, input: [usize; 4], out: [usize; 2]) {
        let ctx = ctx();
        let x = rng.tensor(&input, 3.0);
        let want = interp::eval_op(&Op::ArgMax2d { size: out }, &[&x]).expect("interp");
        let p = ArgMax2dParams::new(input, out);
        let (xb, yb) = (
            ctx.upload("x", &x.data),
            ctx.storage("y", want.numel() as u64 * 4),
        );
        ctx.run(&[launch(ctx, "t", &p, &xb, &yb)]).expect("run");
        let got =
            Tensor::new(&want.shape, ctx.read(&yb, want.numel()).expect("read")).expect("shape");
        // Random logits are far from ties (a tie needs two channels within f32 rounding), so
        // every pixel must agree exactly.
        let differ = got
            .data
            .iter()
            .zip(&want.data)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differ, 0,
            "argmax2d {input:?} -> {out:?}: {differ} pixels differ"
        );
    }

    #[test]
    fn argmax2d_at_input_size_up_and_down_matches_interpreter() {
        let mut rng = Rng::new(11);
        for (input, out) in [
            ([1, 21, 15, 20], [15, 20]),
            ([1, 21, 15, 20], [120, 160]),
            ([2, 5, 7, 9], [13, 4]),
            ([1, 3, 1, 1], [3, 5]),
            ([1, 21, 65, 87], [37, 50]),
            ([1, 1, 4, 4], [4, 4]),
        ] {
            check(&mut rng, input, out);
        }
    }
}
