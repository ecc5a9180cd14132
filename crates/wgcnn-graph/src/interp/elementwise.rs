//! Element-wise and data-movement ops: BatchNorm, binary ops with broadcasting, concat, LRN,
//! softmax, padding.

use crate::{Lrn, Tensor};

/// Inference BatchNorm over axis 1: `(x - mean) * gamma / sqrt(var + eps) + beta`.
pub(super) fn batch_norm(x: &Tensor, p: [&Tensor; 4], eps: f32) -> Tensor {
    let [gamma, beta, mean, var] = p;
    let c = x.shape[1];
    let inner: usize = x.shape[2..].iter().product();
    let mut out = x.data.clone();
    for (i, plane) in out.chunks_exact_mut(inner.max(1)).enumerate() {
        let ch = i % c;
        let scale = gamma.data[ch] / (var.data[ch] + eps).sqrt();
        let (m, b) = (mean.data[ch], beta.data[ch]);
        for v in plane.iter_mut() {
            *v = (*v - m) * scale + b;
        }
    }
    Tensor {
        shape: x.shape.clone(),
        data: out,
    }
}

/// PReLU: `x` where `x >= 0`, else `slope[c] * x`, `c` the index along axis 1 (a one-element
/// slope serves every channel; shapes checked by `Op::infer`).
pub(super) fn prelu(x: &Tensor, slope: &Tensor) -> Tensor {
    let c = x.shape.get(1).copied().unwrap_or(1).max(1);
    let inner: usize = x.shape.get(2..).map_or(1, |s| s.iter().product());
    let mut out = x.data.clone();
    for (i, plane) in out.chunks_exact_mut(inner.max(1)).enumerate() {
        let a = slope.data[if slope.data.len() == 1 { 0 } else { i % c }];
        for v in plane.iter_mut() {
            if *v < 0.0 {
                *v *= a;
            }
        }
    }
    Tensor {
        shape: x.shape.clone(),
        data: out,
    }
}

/// `f(a, b)` with `b` broadcast to `a`'s shape by numpy rules (checked by `Op::infer`).
pub(super) fn broadcast(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Tensor {
    let data = if a.shape == b.shape {
        a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect()
    } else if b.data.len() == 1 {
        let y = b.data[0];
        a.data.iter().map(|&x| f(x, y)).collect()
    } else {
        // b's strides over a's axes: 0 where b has extent 1 or no axis at all.
        let rank = a.shape.len();
        let lead = rank - b.shape.len();
        let mut strides = vec![0usize; rank];
        let mut s = 1;
        for i in (0..b.shape.len()).rev() {
            strides[lead + i] = if b.shape[i] == 1 { 0 } else { s };
            s *= b.shape[i];
        }
        // The innermost axis runs inside a contiguous loop; the rest through an odometer.
        let inner = a.shape.last().copied().unwrap_or(1).max(1);
        let inner_stride = strides.last().copied().unwrap_or(0);
        let mut idx = vec![0usize; rank.saturating_sub(1)];
        let mut out = Vec::with_capacity(a.data.len());
        for arow in a.data.chunks_exact(inner) {
            let base: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
            if inner_stride == 0 {
                let y = b.data[base];
                out.extend(arow.iter().map(|&x| f(x, y)));
            } else {
                out.extend(
                    arow.iter()
                        .zip(&b.data[base..base + inner])
                        .map(|(&x, &y)| f(x, y)),
                );
            }
            for ax in (0..idx.len()).rev() {
                idx[ax] += 1;
                if idx[ax] < a.shape[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        out
    };
    Tensor {
        shape: a.shape.clone(),
        data,
    }
}

/// Concatenation along `axis`.
pub(super) fn concat(inputs: &[&Tensor], axis: usize, out_shape: &[usize]) -> Tensor {
    let outer: usize = out_shape[..axis].iter().product();
    let inner: usize = out_shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for o in 0..outer {
        for t in inputs {
            let chunk = t.shape[axis] * inner;
            out.extend_from_slice(&t.data[o * chunk..(o + 1) * chunk]);
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// PyTorch's `LocalResponseNorm` across channels of an NCHW tensor.
pub(super) fn lrn(l: &Lrn, x: &Tensor) -> Tensor {
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let hw = h * w;
    let sq: Vec<f32> = x.data.iter().map(|v| v * v).collect();
    let mut out = vec![0f32; x.data.len()];
    let mut sum = vec![0f32; hw];
    for img in 0..n {
        let base = img * c * hw;
        for ch in 0..c {
            let lo = ch.saturating_sub(l.size / 2);
            let hi = (ch + (l.size - 1) / 2).min(c - 1);
            sum.fill(0.0);
            for j in lo..=hi {
                for (s, v) in sum.iter_mut().zip(&sq[base + j * hw..base + (j + 1) * hw]) {
                    *s += v;
                }
            }
            let xs = &x.data[base + ch * hw..base + (ch + 1) * hw];
            let ys = &mut out[base + ch * hw..base + (ch + 1) * hw];
            for ((y, &v), &s) in ys.iter_mut().zip(xs).zip(&sum) {
                *y = v / (l.k + l.alpha / l.size as f32 * s).powf(l.beta);
            }
        }
    }
    Tensor {
        shape: x.shape.clone(),
        data: out,
    }
}

/// Softmax along `axis`, with the maximum subtracted first.
pub(super) fn softmax(x: &Tensor, axis: usize) -> Tensor {
    let len = x.shape[axis];
    let inner: usize = x.shape[axis + 1..].iter().product();
    let outer: usize = x.shape[..axis].iter().product();
    let mut out = x.data.clone();
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * len + j) * inner + i;
            let m = (0..len)
                .map(|j| out[at(j)])
                .fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for j in 0..len {
                let e = (out[at(j)] - m).exp();
                out[at(j)] = e;
                sum += e;
            }
            for j in 0..len {
                out[at(j)] /= sum;
            }
        }
    }
    Tensor {
        shape: x.shape.clone(),
        data: out,
    }
}

/// Constant padding of the two spatial axes, `[top, left, bottom, right]`.
pub(super) fn pad(x: &Tensor, padding: [usize; 4], value: f32, out_shape: &[usize]) -> Tensor {
    let (h, w) = (x.shape[2], x.shape[3]);
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let mut out = vec![value; out_shape.iter().product()];
    for pi in 0..out_shape[0] * out_shape[1] {
        for y in 0..h {
            let src = &x.data[(pi * h + y) * w..(pi * h + y + 1) * w];
            let dst = (pi * oh + y + padding[0]) * ow + padding[1];
            out[dst..dst + w].copy_from_slice(src);
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}
