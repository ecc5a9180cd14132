//! `pad`: constant padding of the spatial axes of NCHW tensors. Shader: `shaders/pad.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "pad",
    source: shaders::PAD,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/pad.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PadParams {
    pub total: u32,
    pub height: u32,
    pub width: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub top: u32,
    pub left: u32,
    pub value: f32,
}

impl PadParams {
    /// Pads `input` `[N, C, H, W]` by `padding` `[top, left, bottom, right]` with `value`.
    pub fn new(input: [usize; 4], padding: [usize; 4], value: f32) -> Self {
        let [n, c, h, w] = input;
        let (oh, ow) = (h + padding[0] + padding[2], w + padding[1] + padding[3]);
        PadParams {
            total: (n * c * oh * ow) as u32,
            height: h as u32,
            width: w as u32,
            out_height: oh as u32,
            out_width: ow as u32,
            top: padding[0] as u32,
            left: padding[1] as u32,
            value,
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = pad(x)`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &PadParams,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let groups = grid(p.total.div_ceil(256), MAX_GROUPS);
    ctx.launch(label, &kernel(ctx), bytemuck::bytes_of(p), &[x, y], groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{Op, Tensor, interp};

    #[test]
    fn pad_random_asymmetric_with_values() {
        let ctx = ctx();
        let mut rng = Rng::new(81);
        for case in 0..16 {
            let shape = [
                rng.range(1, 3),
                rng.range(1, 67),
                rng.range(1, 17),
                rng.range(1, 17),
            ];
            let padding = [
                rng.range(0, 3),
                rng.range(0, 3),
                rng.range(0, 3),
                rng.range(0, 3),
            ];
            let value = [0.0, -1.5, -100.0, 3.25][case % 4];
            let x = rng.tensor(&shape, 2.0);
            let want = interp::eval_op(&Op::Pad { padding, value }, &[&x]).expect("interpreter");
            let what = format!("pad {shape:?} by {padding:?} with {value}");
            let p = PadParams::new(shape, padding, value);
            let (xb, yb) = (
                ctx.upload("x", &x.data),
                ctx.storage("y", want.numel() as u64 * 4),
            );
            ctx.run(&[launch(ctx, &what, &p, &xb, &yb)]).expect("run");
            let got = Tensor::new(&want.shape, ctx.read(&yb, want.numel()).expect("read"))
                .expect("shape");
            assert_close(&what, &got, &want, 0.0);
        }
    }
}
