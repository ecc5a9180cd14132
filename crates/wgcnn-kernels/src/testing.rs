//! Test support: one shared GPU context per test binary, a seeded RNG, and a comparison that
//! prints the measured error.

use std::sync::OnceLock;

use wgcnn_graph::Tensor;

use crate::{Context, ContextOptions};

/// The context all kernel tests share (wgpu devices are thread-safe).
pub fn ctx() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        Context::new(&ContextOptions::default()).expect("a GPU adapter (lavapipe in CI)")
    })
}

/// xorshift64*: deterministic test data without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[lo, hi]` (inclusive).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Uniform in `[-scale, scale)`.
    pub fn uniform(&mut self, scale: f32) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }

    pub fn tensor(&mut self, shape: &[usize], scale: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor {
            shape: shape.to_vec(),
            data: (0..n).map(|_| self.uniform(scale)).collect(),
        }
    }
}

/// Asserts `max|got - want| <= tol * max(1, max|want|)` and prints the measured figure.
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    let diff = got.max_abs_diff(want);
    let scale = want.data.iter().fold(1f32, |m, v| m.max(v.abs()));
    println!("{what}: max abs diff {diff:.3e} (scale {scale:.3e})");
    assert!(
        diff <= tol * scale,
        "{what}: max abs diff {diff:e} exceeds {tol:e} x {scale:e}"
    );
}

/// A convolution test case: random input, weight, bias and residual (bias and residual made
/// whether `desc` uses them or not, so the random stream does not depend on it), `desc` with
/// `act` set, and the interpreter's output for it.
pub struct ConvCase {
    pub desc: crate::conv2d::ConvDesc,
    pub x: Tensor,
    pub w: Tensor,
    pub b: Tensor,
    pub r: Tensor,
    pub want: Tensor,
}

/// Draws a [`ConvCase`] for `desc` with activation `act`; `name` labels a failure.
pub fn conv_case(
    rng: &mut Rng,
    name: &str,
    desc: &crate::conv2d::ConvDesc,
    act: wgcnn_graph::Activation,
) -> ConvCase {
    use wgcnn_graph::{Conv2d, Op, interp};
    let desc = crate::conv2d::ConvDesc {
        act: act.code(),
        ..*desc
    };
    let out = desc.output().unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = rng.tensor(&desc.input, 1.0);
    let w = rng.tensor(&desc.weight, 1.0);
    let b = rng.tensor(&[desc.weight[0]], 1.0);
    let r = rng.tensor(&out, 1.0);
    let op = Op::Conv2d(Conv2d {
        stride: desc.stride,
        padding: desc.padding,
        dilation: desc.dilation,
        groups: desc.groups,
        bias: desc.bias,
        residual: desc.residual,
        act,
    });
    let mut inputs = vec![&x, &w];
    if desc.bias {
        inputs.push(&b);
    }
    if desc.residual {
        inputs.push(&r);
    }
    let want = interp::eval_op(&op, &inputs).unwrap_or_else(|e| panic!("{name}: interpreter: {e}"));
    ConvCase {
        desc,
        x,
        w,
        b,
        r,
        want,
    }
}
