//! `scale_boxes`: detections `[N, D, 6]` scaled back to the input image (torchvision's
//! `resize_boxes`). Shader: `shaders/scale_boxes.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "scale_boxes",
    source: shaders::SCALE_BOXES,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/scale_boxes.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ScaleBoxesParams {
    pub rows: u32,
    pub _pad: u32,
    pub scale_x: f32,
    pub scale_y: f32,
}

impl ScaleBoxesParams {
    /// `rows` = N * D; `scale` = original / resized as `(height, width)`.
    pub fn new(rows: usize, scale: [f32; 2]) -> Self {
        ScaleBoxesParams {
            rows: rows as u32,
            _pad: 0,
            scale_x: scale[1],
            scale_y: scale[0],
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the scaling of `detections` into `out`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &ScaleBoxesParams,
    detections: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[detections, out],
        grid(p.rows.div_ceil(256), MAX_GROUPS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{INVALID_SCORE, Op, Tensor, interp};

    #[test]
    fn scale_boxes_keeps_scores_labels_and_unused_rows() {
        let ctx = ctx();
        let mut rng = Rng::new(21);
        let (n, d) = (2, 7);
        let mut data = Vec::new();
        for i in 0..n * d {
            if i % d >= 5 {
                data.extend([0.0, 0.0, 0.0, 0.0, INVALID_SCORE, 0.0]);
            } else {
                let (x, y) = (rng.uniform(100.0).abs(), rng.uniform(80.0).abs());
                data.extend([
                    x,
                    y,
                    x + 10.0,
                    y + 5.0,
                    rng.uniform(1.0).abs(),
                    (i % 90) as f32,
                ]);
            }
        }
        let x = Tensor::new(&[n, d, 6], data).expect("shape");
        let scale = [120.0 / 160.0, 160.0 / 213.0];
        let want = interp::eval_op(&Op::ScaleBoxes { scale }, &[&x]).expect("interp");
        let p = ScaleBoxesParams::new(n * d, scale);
        let (xb, yb) = (
            ctx.upload("x", &x.data),
            ctx.storage("y", x.numel() as u64 * 4),
        );
        ctx.run(&[launch(ctx, "t", &p, &xb, &yb)]).expect("run");
        let got = Tensor::new(&want.shape, ctx.read(&yb, x.numel()).expect("read")).expect("shape");
        assert_close("scale_boxes [2, 7, 6]", &got, &want, 0.0);
    }
}
