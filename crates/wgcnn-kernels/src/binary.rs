//! `binary`: `y = act(a + b)`, `y = act(a * b)` or PReLU (`a` where `a >= 0`, else `a * b`) with `b` broadcast to `a` (same shape, per
//! channel, or scalar). Shader: `shaders/binary.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "binary",
    source: shaders::BINARY,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// The arithmetic between `a` and `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Mul,
    /// `a` where `a >= 0`, else `a * b` (`b` holds the slopes, per channel or one).
    PRelu,
}

/// How `b` is laid over `a` (numpy broadcasting restricted to what the kernel handles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broadcast {
    /// `b` has `a`'s shape (possibly with leading 1-axes dropped).
    Same,
    /// `b` is `[N|1, C, 1, ...]` against `a` `[N, C, ...]`; `batched` when `b` has one row of
    /// `C` values per batch item (`N > 1`).
    Channel { batched: bool },
    /// `b` holds one element.
    Scalar,
}

impl Broadcast {
    /// Classifies how `b` broadcasts to `a`, or `None` when it does not broadcast or needs a
    /// pattern the kernel does not handle (e.g. `b` `[1, 1, H, W]`).
    pub fn classify(a: &[usize], b: &[usize]) -> Option<Broadcast> {
        if b.len() > a.len() {
            return None;
        }
        // `b` right-aligned to `a`'s rank with leading 1s (numpy's rule).
        let mut bp = vec![1; a.len() - b.len()];
        bp.extend_from_slice(b);
        if bp.iter().zip(a).any(|(&x, &y)| x != y && x != 1) {
            return None;
        }
        if bp == a {
            return Some(Broadcast::Same);
        }
        if bp.iter().all(|&x| x == 1) {
            return Some(Broadcast::Scalar);
        }
        let channel_only = a.len() >= 2 && bp[1] == a[1] && bp[2..].iter().all(|&x| x == 1);
        channel_only.then_some(Broadcast::Channel { batched: bp[0] > 1 })
    }
}

/// Mirrors `Params` in `shaders/binary.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct BinaryParams {
    pub len: u32,
    pub mode: u32,
    pub op: u32,
    pub channels: u32,
    pub spatial: u32,
    pub b_batched: u32,
    pub act: u32,
    pub p0: f32,
    pub p1: f32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl BinaryParams {
    /// `y = act(a op b)` over `a_shape` with `b` laid over it per `broadcast`
    /// ([`Broadcast::classify`]); `act` = `(code, p0, p1)` from `wgcnn_graph::Activation::code`.
    pub fn new(
        a_shape: &[usize],
        broadcast: Broadcast,
        op: BinaryOp,
        act: (u32, f32, f32),
    ) -> Self {
        let len = a_shape.iter().product::<usize>() as u32;
        let channels = a_shape.get(1).copied().unwrap_or(1) as u32;
        let spatial = a_shape
            .get(2..)
            .map(|s| s.iter().product::<usize>())
            .unwrap_or(1) as u32;
        let (mode, b_batched) = match broadcast {
            Broadcast::Same => (0, 0),
            Broadcast::Channel { batched } => (1, batched as u32),
            Broadcast::Scalar => (2, 0),
        };
        BinaryParams {
            len,
            mode,
            op: match op {
                BinaryOp::Add => 0,
                BinaryOp::Mul => 1,
                BinaryOp::PRelu => 2,
            },
            channels,
            spatial,
            b_batched,
            act: act.0,
            p0: act.1,
            p1: act.2,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = act(a op b)`; `y` must not be `a` or `b` (no in-place aliasing in a launch).
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &BinaryParams,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let groups = grid(p.len.div_ceil(256), MAX_GROUPS);
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[a, b, y],
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

    /// The GPU result of `act(a op b)` against the interpreter's `op` followed by `act`.
    fn check(a: &Tensor, b: &Tensor, op: BinaryOp, act: Activation) {
        let ctx = ctx();
        let graph_op = match op {
            BinaryOp::Add => Op::Add,
            BinaryOp::Mul => Op::Mul,
            BinaryOp::PRelu => Op::PRelu,
        };
        let sum = interp::eval_op(&graph_op, &[a, b]).expect("interpreter");
        let want = interp::eval_op(&Op::Act(act), &[&sum]).expect("interpreter");
        let broadcast = Broadcast::classify(&a.shape, &b.shape).expect("supported broadcast");
        let what = format!(
            "binary {op:?} {:?} {:?} ({broadcast:?}) then {act:?}",
            a.shape, b.shape
        );
        let p = BinaryParams::new(&a.shape, broadcast, op, act.code());
        let (ab, bb, yb) = (
            ctx.upload("a", &a.data),
            ctx.upload("b", &b.data),
            ctx.storage("y", a.numel() as u64 * 4),
        );
        ctx.run(&[launch(ctx, &what, &p, &ab, &bb, &yb)])
            .expect("run");
        let got = Tensor::new(&a.shape, ctx.read(&yb, a.numel()).expect("read")).expect("shape");
        assert_close(&what, &got, &want, 1e-5);
    }

    #[test]
    fn binary_random_shapes_every_broadcast_mode() {
        let mut rng = Rng::new(41);
        for case in 0..36 {
            let a_shape = [
                rng.range(1, 3),
                rng.range(1, 67),
                rng.range(1, 17),
                rng.range(1, 17),
            ];
            let b_shape: Vec<usize> = match case % 6 {
                0 => a_shape.to_vec(),
                1 => vec![a_shape[0], a_shape[1], 1, 1], // SE scale per batch item
                2 => vec![1, a_shape[1], 1, 1],
                3 => vec![a_shape[1], 1, 1], // lower rank, right-aligned
                4 => vec![1],
                _ => vec![1, 1, 1, 1],
            };
            let a = rng.tensor(&a_shape, 3.0);
            let b = rng.tensor(&b_shape, 3.0);
            let op = if case % 2 == 0 {
                BinaryOp::Add
            } else {
                BinaryOp::Mul
            };
            check(&a, &b, op, ACTS[case % ACTS.len()]);
        }
    }

    #[test]
    fn binary_residual_add_relu_and_squeeze_excitation_scale() {
        let mut rng = Rng::new(43);
        let a = rng.tensor(&[2, 64, 15, 15], 2.0);
        check(
            &a,
            &rng.tensor(&[2, 64, 15, 15], 2.0),
            BinaryOp::Add,
            Activation::Relu,
        );
        check(
            &a,
            &rng.tensor(&[2, 64, 1, 1], 2.0),
            BinaryOp::Mul,
            Activation::Identity,
        );
        // 2-D tensors ([N, K] linear outputs) with a per-column row.
        let a = rng.tensor(&[3, 17], 2.0);
        check(
            &a,
            &rng.tensor(&[17], 2.0),
            BinaryOp::Add,
            Activation::Identity,
        );
        check(
            &a,
            &rng.tensor(&[1, 17], 2.0),
            BinaryOp::Mul,
            Activation::Sigmoid,
        );
    }

    /// PReLU's slopes reach the kernel as `[1, C, 1, 1]` (per channel) or `[1]` (one slope);
    /// the interpreter takes them as `[C]` along axis 1.
    #[test]
    fn binary_prelu_per_channel_and_single_slope_match_interpreter() {
        let ctx = ctx();
        let mut rng = Rng::new(47);
        for case in 0..12 {
            let shape: Vec<usize> = if case % 3 == 2 {
                vec![rng.range(1, 5), rng.range(1, 130)] // after a dense layer (R-Net, O-Net)
            } else {
                vec![
                    rng.range(1, 3),
                    rng.range(1, 33),
                    rng.range(1, 20),
                    rng.range(1, 20),
                ]
            };
            let c = shape[1];
            let single = case % 4 == 3;
            let slope = rng.tensor(&[if single { 1 } else { c }], 1.0);
            let x = rng.tensor(&shape, 3.0);
            let want = interp::eval_op(&Op::PRelu, &[&x, &slope]).expect("interpreter");
            let mut b_shape = vec![1; shape.len()];
            b_shape[1] = if single { 1 } else { c };
            let broadcast = Broadcast::classify(&shape, &b_shape).expect("supported broadcast");
            let what = format!("prelu {shape:?} slope {:?} ({broadcast:?})", slope.shape);
            let p = BinaryParams::new(&shape, broadcast, BinaryOp::PRelu, (0, 0.0, 0.0));
            let (xb, sb, yb) = (
                ctx.upload("x", &x.data),
                ctx.upload("slope", &slope.data),
                ctx.storage("y", x.numel() as u64 * 4),
            );
            ctx.run(&[launch(ctx, &what, &p, &xb, &sb, &yb)])
                .expect("run");
            let got = Tensor::new(&shape, ctx.read(&yb, x.numel()).expect("read")).expect("shape");
            assert_close(&what, &got, &want, 1e-6);
        }
    }

    #[test]
    fn binary_classify_broadcasts() {
        use Broadcast::*;
        let a = [2, 8, 5, 5];
        assert_eq!(Broadcast::classify(&a, &[2, 8, 5, 5]), Some(Same));
        assert_eq!(Broadcast::classify(&[1, 8, 5, 5], &[8, 5, 5]), Some(Same));
        assert_eq!(
            Broadcast::classify(&a, &[2, 8, 1, 1]),
            Some(Channel { batched: true })
        );
        assert_eq!(
            Broadcast::classify(&a, &[1, 8, 1, 1]),
            Some(Channel { batched: false })
        );
        assert_eq!(
            Broadcast::classify(&[1, 8, 5, 5], &[1, 8, 1, 1]),
            Some(Channel { batched: false })
        );
        assert_eq!(
            Broadcast::classify(&a, &[8, 1, 1]),
            Some(Channel { batched: false })
        );
        assert_eq!(Broadcast::classify(&a, &[1]), Some(Scalar));
        assert_eq!(Broadcast::classify(&a, &[]), Some(Scalar));
        assert_eq!(Broadcast::classify(&a, &[1, 1, 1, 1]), Some(Scalar));
        // Unsupported or invalid.
        assert_eq!(Broadcast::classify(&a, &[1, 1, 5, 5]), None);
        assert_eq!(Broadcast::classify(&a, &[8]), None); // aligns with W = 5: not a broadcast
        assert_eq!(Broadcast::classify(&a, &[2, 1, 1, 1]), None);
        assert_eq!(Broadcast::classify(&a, &[3, 8, 1, 1]), None);
        assert_eq!(Broadcast::classify(&a, &[1, 2, 8, 5, 5]), None);
        assert_eq!(Broadcast::classify(&a, &[8, 5, 1]), None);
    }
}
