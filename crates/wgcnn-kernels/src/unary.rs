//! `unary`: element-wise activation, optionally after a per-channel affine (unfused BatchNorm).
//! Shader: `shaders/unary.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "unary",
    source: shaders::UNARY,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/unary.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct UnaryParams {
    pub len: u32,
    pub channels: u32,
    pub spatial: u32,
    pub has_affine: u32,
    pub act: u32,
    pub p0: f32,
    pub p1: f32,
    pub _pad: u32,
}

impl UnaryParams {
    /// `act` = `(code, p0, p1)` from `wgcnn_graph::Activation::code`.
    pub fn new(shape: &[usize], has_affine: bool, act: (u32, f32, f32)) -> Self {
        let len = shape.iter().product::<usize>() as u32;
        let channels = shape.get(1).copied().unwrap_or(1) as u32;
        let spatial = shape
            .get(2..)
            .map(|s| s.iter().product::<usize>())
            .unwrap_or(1) as u32;
        UnaryParams {
            len,
            channels,
            spatial,
            has_affine: has_affine as u32,
            act: act.0,
            p0: act.1,
            p1: act.2,
            _pad: 0,
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = act(x * scale + shift)`; `affine` holds `[scale[C], shift[C]]` (any small
/// buffer when `has_affine` is 0).
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &UnaryParams,
    x: &wgpu::Buffer,
    affine: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let groups = grid(p.len.div_ceil(256), MAX_GROUPS);
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[x, affine, y],
        groups,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{Activation, Op, Tensor, interp};

    const ACTS: [Activation; 8] = [
        Activation::Identity,
        Activation::Relu,
        Activation::RELU6,
        Activation::Sigmoid,
        Activation::Silu,
        Activation::HARDSIGMOID,
        Activation::HardSwish,
        Activation::Tanh,
    ];

    #[test]
    fn unary_every_activation_matches_interpreter() {
        let ctx = ctx();
        let mut rng = Rng::new(7);
        for (i, act) in ACTS.into_iter().enumerate() {
            let shape = [1 + i % 2, 3 + i, 5, 7 + i];
            let x = rng.tensor(&shape, 8.0);
            let want = interp::eval_op(&Op::Act(act), &[&x]).expect("interp");
            let p = UnaryParams::new(&shape, false, act.code());
            let (xb, yb, dummy) = (
                ctx.upload("x", &x.data),
                ctx.storage("y", x.numel() as u64 * 4),
                ctx.upload("d", &[0.0]),
            );
            ctx.run(&[launch(ctx, "t", &p, &xb, &dummy, &yb)])
                .expect("run");
            let got = Tensor::new(&shape, ctx.read(&yb, x.numel()).expect("read")).expect("shape");
            assert_close(&format!("unary {act:?} {shape:?}"), &got, &want, 1e-5);
        }
    }

    #[test]
    fn unary_batchnorm_affine_matches_interpreter() {
        let ctx = ctx();
        let mut rng = Rng::new(11);
        for case in 0..12 {
            let shape = [1 + case % 3, 1 + case * 3, 2 + case % 5, 3 + case % 4];
            let c = shape[1];
            let x = rng.tensor(&shape, 2.0);
            let gamma = rng.tensor(&[c], 1.0);
            let beta = rng.tensor(&[c], 1.0);
            let mean = rng.tensor(&[c], 1.0);
            let var = Tensor::new(
                &[c],
                rng.tensor(&[c], 1.0)
                    .data
                    .iter()
                    .map(|v| v.abs() + 0.1)
                    .collect(),
            )
            .expect("var");
            let eps = 1e-5;
            let bn = interp::eval_op(&Op::BatchNorm { eps }, &[&x, &gamma, &beta, &mean, &var])
                .expect("interp");
            let act = ACTS[case % ACTS.len()];
            let want = interp::eval_op(&Op::Act(act), &[&bn]).expect("interp");
            let scale: Vec<f32> = (0..c)
                .map(|i| gamma.data[i] / (var.data[i] + eps).sqrt())
                .collect();
            let mut affine = scale.clone();
            affine.extend((0..c).map(|i| beta.data[i] - mean.data[i] * scale[i]));
            let p = UnaryParams::new(&shape, true, act.code());
            let (xb, ab, yb) = (
                ctx.upload("x", &x.data),
                ctx.upload("a", &affine),
                ctx.storage("y", x.numel() as u64 * 4),
            );
            ctx.run(&[launch(ctx, "t", &p, &xb, &ab, &yb)])
                .expect("run");
            let got = Tensor::new(&shape, ctx.read(&yb, x.numel()).expect("read")).expect("shape");
            assert_close(&format!("batchnorm+{act:?} {shape:?}"), &got, &want, 1e-5);
        }
    }

    #[test]
    fn unary_every_activation_stays_finite_on_large_inputs() {
        // tanh, sigmoid and silu overflow exp (or lavapipe's tanh = (e^2x - 1) / (e^2x + 1)) to
        // inf and then NaN without the guards in lib/activation.wgsl.
        let ctx = ctx();
        let mut data = vec![100.0, -100.0, 1e4, -1e4, 88.8, -88.8, 1e30, -1e30, 0.0, 0.5];
        data.extend(data.clone().iter().map(|v| v * 0.37));
        let shape = [1, 2, 2, 5];
        let x = Tensor::new(&shape, data).expect("shape");
        for act in ACTS {
            let want = interp::eval_op(&Op::Act(act), &[&x]).expect("interp");
            let p = UnaryParams::new(&shape, false, act.code());
            let (xb, yb, dummy) = (
                ctx.upload("x", &x.data),
                ctx.storage("y", x.numel() as u64 * 4),
                ctx.upload("d", &[0.0]),
            );
            ctx.run(&[launch(ctx, "t", &p, &xb, &dummy, &yb)])
                .expect("run");
            let got = ctx.read(&yb, x.numel()).expect("read");
            for ((g, w), v) in got.iter().zip(&want.data).zip(&x.data) {
                assert!(!g.is_nan(), "{act:?}({v}) is NaN on the GPU");
                // Relative where the value is large (identity, relu, hardswish pass 1e30 on).
                let tol = 1e-6 * w.abs().max(1.0);
                assert!((g - w).abs() <= tol, "{act:?}({v}): GPU {g}, CPU {w}");
            }
        }
    }
}
