//! Test support: one shared GPU context per test binary, a seeded RNG, a comparison that
//! prints the measured error, random convolution and linear cases with their buffers, and
//! ([`lanes`]) child processes at other lavapipe subgroup sizes.

use std::ops::Range;
use std::sync::OnceLock;

use wgcnn_graph::{Activation, Conv2d, Op, Tensor, interp};

use crate::conv2d::ConvDesc;
use crate::linear::LinearDesc;
use crate::{Context, ContextOptions};

pub mod lanes;

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

/// Reads `shape`'s element count of f32s from `buffer` as a tensor of that shape.
pub fn read_tensor(ctx: &Context, buffer: &wgpu::Buffer, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, ctx.read(buffer, n).expect("read")).expect("shape")
}

/// The interpreter's output of `op` on `inputs` and those of `optional` whose flag is set (in
/// that order); `name` labels a failure.
fn reference<const N: usize>(
    name: &str,
    op: &Op,
    inputs: [&Tensor; 2],
    optional: [(bool, &Tensor); N],
) -> Tensor {
    let mut inputs = inputs.to_vec();
    inputs.extend(optional.into_iter().filter(|(on, _)| *on).map(|(_, t)| t));
    interp::eval_op(op, &inputs).unwrap_or_else(|e| panic!("{name}: interpreter: {e}"))
}

/// A convolution test case: random input, weight, bias and residual (bias and residual made
/// whether `desc` uses them or not, so the random stream does not depend on it), `desc` with
/// `act` set, and the interpreter's output for it.
pub struct ConvCase {
    pub desc: ConvDesc,
    pub x: Tensor,
    pub w: Tensor,
    pub b: Tensor,
    pub r: Tensor,
    pub want: Tensor,
}

/// Draws a [`ConvCase`] for `desc` with activation `act`; `name` labels a failure.
pub fn conv_case(rng: &mut Rng, name: &str, desc: &ConvDesc, act: Activation) -> ConvCase {
    let desc = ConvDesc {
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
    let want = reference(name, &op, [&x, &w], [(desc.bias, &b), (desc.residual, &r)]);
    ConvCase {
        desc,
        x,
        w,
        b,
        r,
        want,
    }
}

/// A [`ConvCase`]'s tensors on the GPU, and its output buffer.
pub struct ConvBuffers {
    pub x: wgpu::Buffer,
    /// The weights in the form the kernel takes (see [`ConvCase::upload`]).
    pub w: wgpu::Buffer,
    pub b: wgpu::Buffer,
    pub r: wgpu::Buffer,
    /// Room for `want`.
    pub y: wgpu::Buffer,
}

impl ConvCase {
    /// Uploads the input, `weights` (`w` as the kernel under test takes it: prepared or
    /// transformed), the bias and the residual, and makes the output buffer.
    pub fn upload(&self, ctx: &Context, weights: &[f32]) -> ConvBuffers {
        ConvBuffers {
            x: ctx.upload("x", &self.x.data),
            w: ctx.upload("w", weights),
            b: ctx.upload("b", &self.b.data),
            r: ctx.upload("r", &self.r.data),
            y: ctx.storage("y", self.want.numel() as u64 * 4),
        }
    }

    /// Reads `y` back in the shape of `want`.
    pub fn read(&self, ctx: &Context, y: &wgpu::Buffer) -> Tensor {
        read_tensor(ctx, y, &self.want.shape)
    }
}

/// A linear test case: random input `[batch, K]`, weight `[M, K]` and bias `[M]` (made whether
/// `desc` uses a bias or not), `desc` with `act` set, and the interpreter's output for it.
pub struct LinearCase {
    pub desc: LinearDesc,
    pub x: Tensor,
    pub w: Tensor,
    pub b: Tensor,
    pub want: Tensor,
}

/// Draws a [`LinearCase`] for `desc` with activation `act`; `name` labels a failure.
pub fn linear_case(rng: &mut Rng, name: &str, desc: &LinearDesc, act: Activation) -> LinearCase {
    let desc = LinearDesc {
        act: act.code(),
        ..*desc
    };
    let x = rng.tensor(&[desc.batch, desc.in_features], 1.0);
    let w = rng.tensor(&[desc.out_features, desc.in_features], 1.0);
    let b = rng.tensor(&[desc.out_features], 1.0);
    let op = Op::Linear {
        bias: desc.bias,
        act,
    };
    let want = reference(name, &op, [&x, &w], [(desc.bias, &b)]);
    LinearCase {
        desc,
        x,
        w,
        b,
        want,
    }
}

impl LinearCase {
    /// Uploads the weight as one buffer per row range of `chunks`.
    pub fn upload_chunks(&self, ctx: &Context, chunks: &[Range<usize>]) -> Vec<wgpu::Buffer> {
        let k = self.desc.in_features;
        chunks
            .iter()
            .map(|r| ctx.upload("w", &self.w.data[r.start * k..r.end * k]))
            .collect()
    }
}
