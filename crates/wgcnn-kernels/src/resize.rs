//! `resize`: PyTorch's `F.interpolate` (nearest, bilinear with or without `align_corners`) over
//! NCHW. Shader: `shaders/resize.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "resize",
    source: shaders::RESIZE,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// The resampling rule (mirrors `wgcnn_graph::ResizeMode` without depending on the graph).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeKind {
    Nearest,
    Bilinear { align_corners: bool },
}

/// Mirrors `Params` in `shaders/resize.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ResizeParams {
    pub total: u32,
    pub height: u32,
    pub width: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub mode: u32,
    pub align_corners: u32,
    pub _pad0: u32,
    pub scale_h: f32,
    pub scale_w: f32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// PyTorch's source-coordinate scale along one axis, in f32 as PyTorch computes it.
fn axis_scale(kind: ResizeKind, input: usize, output: usize) -> f32 {
    match kind {
        ResizeKind::Bilinear {
            align_corners: true,
        } if output > 1 => (input as f32 - 1.0) / (output as f32 - 1.0),
        ResizeKind::Bilinear {
            align_corners: true,
        } => 0.0,
        _ => input as f32 / output as f32,
    }
}

impl ResizeParams {
    /// Resizes `input` `[N, C, H, W]` to `[N, C, out[0], out[1]]`.
    pub fn new(kind: ResizeKind, input: [usize; 4], out: [usize; 2]) -> Self {
        let [n, c, h, w] = input;
        let (mode, align_corners) = match kind {
            ResizeKind::Nearest => (0, 0),
            ResizeKind::Bilinear { align_corners } => (1, align_corners as u32),
        };
        ResizeParams {
            total: (n * c * out[0] * out[1]) as u32,
            height: h as u32,
            width: w as u32,
            out_height: out[0] as u32,
            out_width: out[1] as u32,
            mode,
            align_corners,
            _pad0: 0,
            scale_h: axis_scale(kind, h, out[0]),
            scale_w: axis_scale(kind, w, out[1]),
            _pad1: 0,
            _pad2: 0,
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the resize of `x` into `y`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &ResizeParams,
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
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{Op, ResizeMode, Tensor, interp};

    fn check(rng: &mut Rng, mode: ResizeMode, input: [usize; 4], out: [usize; 2]) {
        let ctx = ctx();
        let x = rng.tensor(&input, 3.0);
        let want = interp::eval_op(&Op::Resize { size: out, mode }, &[&x]).expect("interp");
        let kind = match mode {
            ResizeMode::Nearest => ResizeKind::Nearest,
            ResizeMode::Bilinear { align_corners } => ResizeKind::Bilinear { align_corners },
        };
        let p = ResizeParams::new(kind, input, out);
        let (xb, yb) = (
            ctx.upload("x", &x.data),
            ctx.storage("y", want.numel() as u64 * 4),
        );
        ctx.run(&[launch(ctx, "t", &p, &xb, &yb)]).expect("run");
        let got =
            Tensor::new(&want.shape, ctx.read(&yb, want.numel()).expect("read")).expect("shape");
        assert_close(
            &format!("resize {mode:?} {input:?} -> {out:?}"),
            &got,
            &want,
            1e-6,
        );
    }

    #[test]
    fn resize_nearest_up_down_and_fpn_doubling_match_interpreter() {
        let mut rng = Rng::new(3);
        for (input, out) in [
            ([1, 3, 5, 7], [10, 14]),
            ([2, 4, 20, 28], [40, 56]),
            ([1, 2, 3, 4], [5, 7]),
            ([1, 2, 13, 9], [6, 4]),
            ([1, 1, 7, 7], [7, 7]),
            ([1, 5, 1, 1], [3, 2]),
        ] {
            check(&mut rng, ResizeMode::Nearest, input, out);
        }
    }

    #[test]
    fn resize_bilinear_with_and_without_align_corners_match_interpreter() {
        let mut rng = Rng::new(4);
        for align_corners in [false, true] {
            for (input, out) in [
                ([1, 3, 120, 160], [160, 213]),
                ([2, 2, 5, 7], [9, 4]),
                ([1, 1, 4, 4], [1, 1]),
                ([1, 3, 8, 3], [8, 11]),
                ([1, 2, 1, 6], [3, 6]),
            ] {
                check(&mut rng, ResizeMode::Bilinear { align_corners }, input, out);
            }
        }
    }
}
