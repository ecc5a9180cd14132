//! `lrn`: PyTorch's LocalResponseNorm across channels. Shader: `shaders/lrn.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "lrn",
    source: shaders::LRN,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/lrn.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LrnParams {
    pub total: u32,
    pub channels: u32,
    pub spatial: u32,
    pub size: u32,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
    pub _pad: u32,
}

impl LrnParams {
    /// Normalizes `shape` `[N, C, H, W]` (or `[N, C, ...]`) over windows of `size >= 1`
    /// channels: `y = x / (k + alpha / size * sum x^2)^beta`.
    pub fn new(shape: &[usize], size: usize, alpha: f32, beta: f32, k: f32) -> Self {
        LrnParams {
            total: shape.iter().product::<usize>() as u32,
            channels: shape.get(1).copied().unwrap_or(1) as u32,
            spatial: shape
                .get(2..)
                .map(|s| s.iter().product::<usize>())
                .unwrap_or(1) as u32,
            size: size.max(1) as u32,
            alpha,
            beta,
            k,
            _pad: 0,
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = lrn(x)`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &LrnParams,
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
    use wgcnn_graph::{Lrn, Op, Tensor, interp};

    fn check(x: &Tensor, lrn: Lrn) {
        let ctx = ctx();
        let what = format!("lrn {lrn:?} {:?}", x.shape);
        let p = LrnParams::new(&x.shape, lrn.size, lrn.alpha, lrn.beta, lrn.k);
        let want = interp::eval_op(&Op::Lrn(lrn), &[x]).expect("interpreter");
        let (xb, yb) = (
            ctx.upload("x", &x.data),
            ctx.storage("y", x.numel() as u64 * 4),
        );
        ctx.run(&[launch(ctx, &what, &p, &xb, &yb)]).expect("run");
        let got = Tensor::new(&x.shape, ctx.read(&yb, x.numel()).expect("read")).expect("shape");
        assert_close(&what, &got, &want, 1e-5);
    }

    #[test]
    fn lrn_random_sizes_one_to_five_including_even() {
        let mut rng = Rng::new(61);
        for case in 0..20 {
            let shape = [
                rng.range(1, 3),
                rng.range(1, 67),
                rng.range(1, 17),
                rng.range(1, 17),
            ];
            let lrn = Lrn {
                size: 1 + case % 5,
                alpha: [1e-4, 2e-5, 0.5, 1.0][case % 4],
                beta: [0.75, 0.5, 1.0][case % 3],
                k: [1.0, 2.0][case % 2],
            };
            check(&rng.tensor(&shape, 4.0), lrn);
        }
    }

    #[test]
    fn lrn_alexnet_size5_and_googlenet_size2() {
        let mut rng = Rng::new(67);
        // AlexNet (original): size 5, alpha 1e-4, beta 0.75, k 2; GoogLeNet (Caffe): size 5 too.
        check(
            &rng.tensor(&[1, 96, 13, 13], 30.0),
            Lrn {
                size: 5,
                alpha: 1e-4,
                beta: 0.75,
                k: 2.0,
            },
        );
        // An even window is lopsided: [c - 1, c] for size 2.
        check(
            &rng.tensor(&[2, 9, 3, 4], 3.0),
            Lrn {
                size: 2,
                alpha: 0.8,
                beta: 0.75,
                k: 1.0,
            },
        );
        check(
            &rng.tensor(&[2, 9, 3, 4], 3.0),
            Lrn {
                size: 4,
                alpha: 0.8,
                beta: 0.75,
                k: 1.0,
            },
        );
    }
}
