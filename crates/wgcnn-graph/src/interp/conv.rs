//! Convolution and linear layers: im2col tiles fed to a small register-blocked GEMM.
//!
//! The GEMM accumulates `C += A * B` with `A` row-major `[m, k]`: a 4x8 block of `C` stays in
//! registers while the `k` loop streams four weights and eight `B` values per step, and the
//! leftover columns and rows run as "axpy" loops along a row of `B`. The hot loops iterate over
//! fixed-size arrays and zipped slices, so no per-element index arithmetic or bounds check sits
//! in them, and the compiler vectorizes them. Sums are f32, in `k` order.

use crate::{Activation, Conv2d, Tensor};

/// How many f32 values one im2col tile may hold (about 512 KiB): keeps a tile in L2.
const TILE_FLOATS: usize = 128 * 1024;

/// Below this many rows of `x`, a linear layer is computed as dot products per output.
const LINEAR_DOT_ROWS: usize = 8;

/// `act(conv(x, w) + bias + residual)`; shapes were checked by `Op::infer`.
pub(super) fn conv2d(
    c: &Conv2d,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    residual: Option<&Tensor>,
    out_shape: &[usize],
) -> Tensor {
    let [n, ch, h, wd] = dims4(&x.shape);
    let [k, cg, kh, kw] = dims4(&w.shape);
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let groups = c.groups;
    let kg = k / groups;
    let ckk = cg * kh * kw;
    let p = oh * ow;
    let mut out = vec![0f32; n * k * p];

    let pointwise = kh == 1 && kw == 1 && c.stride == [1, 1] && c.padding == [0; 4];
    let rows_per_tile = (TILE_FLOATS / (ckk * ow).max(1)).clamp(1, oh.max(1));
    let mut col = if pointwise {
        Vec::new()
    } else {
        vec![0f32; ckk * rows_per_tile * ow]
    };

    for img in 0..n {
        for g in 0..groups {
            let a = &w.data[g * kg * ckk..(g + 1) * kg * ckk];
            let xin = &x.data[(img * ch + g * cg) * h * wd..(img * ch + (g + 1) * cg) * h * wd];
            let cblock = &mut out[(img * k + g * kg) * p..(img * k + (g + 1) * kg) * p];
            let mut oy0 = 0;
            while oy0 < oh {
                let rows = rows_per_tile.min(oh - oy0);
                let nt = rows * ow;
                let p0 = oy0 * ow;
                if pointwise {
                    gemm_acc(kg, ckk, nt, a, xin, p, p0, cblock, p, p0);
                } else {
                    let tile = &mut col[..ckk * nt];
                    im2col(c, xin, [h, wd], [kh, kw], ow, oy0, rows, tile);
                    gemm_acc(kg, ckk, nt, a, tile, nt, 0, cblock, p, p0);
                }
                oy0 += rows;
            }
        }
    }

    for (img_ch, plane) in out.chunks_exact_mut(p.max(1)).enumerate() {
        let b = bias.map_or(0.0, |b| b.data[img_ch % k]);
        match residual {
            Some(r) => {
                let rp = &r.data[img_ch * p..(img_ch + 1) * p];
                for (v, &rv) in plane.iter_mut().zip(rp) {
                    *v = c.act.apply(*v + b + rv);
                }
            }
            None => epilogue(plane, b, c.act),
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// `act(x W^T + b)` for `x [N,K]`, `w [M,K]`.
pub(super) fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, act: Activation) -> Tensor {
    let (n, kdim) = (x.shape[0], x.shape[1]);
    let m = w.shape[0];
    let mut out = vec![0f32; n * m];
    if kdim == 0 || n * m == 0 {
        // Empty sums: only the bias remains.
    } else if n < LINEAR_DOT_ROWS {
        // Few rows: stream each weight row once and dot it with every input row.
        for (j, wrow) in w.data.chunks_exact(kdim).enumerate() {
            for (i, xrow) in x.data.chunks_exact(kdim).enumerate() {
                out[i * m + j] = dot(xrow, wrow);
            }
        }
    } else {
        // Many rows: Y^T [M,N] = W [M,K] * X^T [K,N], tiled along N.
        let xt = transpose(&x.data, n, kdim);
        let mut yt = vec![0f32; m * n];
        let nt_max = (TILE_FLOATS / kdim).max(16).min(n);
        let mut n0 = 0;
        while n0 < n {
            let nt = nt_max.min(n - n0);
            gemm_acc(m, kdim, nt, &w.data, &xt, n, n0, &mut yt, n, n0);
            n0 += nt;
        }
        out = transpose(&yt, m, n);
    }
    for row in out.chunks_exact_mut(m.max(1)) {
        for (j, v) in row.iter_mut().enumerate() {
            let b = bias.map_or(0.0, |b| b.data[j]);
            *v = act.apply(*v + b);
        }
    }
    Tensor {
        shape: vec![n, m],
        data: out,
    }
}

fn dims4(s: &[usize]) -> [usize; 4] {
    [s[0], s[1], s[2], s[3]]
}

fn epilogue(plane: &mut [f32], bias: f32, act: Activation) {
    if act == Activation::Identity {
        for v in plane.iter_mut() {
            *v += bias;
        }
    } else {
        for v in plane.iter_mut() {
            *v = act.apply(*v + bias);
        }
    }
}

/// Fills `tile` (`[cg*kh*kw, rows*ow]`, row-major) with the input values each output position
/// `(oy0 + r, ox)` of the tile reads, zero where the window leaves the input.
#[allow(clippy::too_many_arguments)]
fn im2col(
    c: &Conv2d,
    xin: &[f32],
    [h, w]: [usize; 2],
    [kh, kw]: [usize; 2],
    ow: usize,
    oy0: usize,
    rows: usize,
    tile: &mut [f32],
) {
    let nt = rows * ow;
    let (sh, sw) = (c.stride[0], c.stride[1]);
    let (dh, dw) = (c.dilation[0], c.dilation[1]);
    let (pt, pl) = (c.padding[0], c.padding[1]);
    for (r, trow) in tile.chunks_exact_mut(nt.max(1)).enumerate() {
        let ci = r / (kh * kw);
        let ky = (r / kw) % kh;
        let kx = r % kw;
        let plane = &xin[ci * h * w..(ci + 1) * h * w];
        // Output columns whose input column `ox*sw + kx*dw - pl` lies in [0, w).
        let off = kx * dw;
        let lo = pl.saturating_sub(off).div_ceil(sw).min(ow);
        let hi = if w + pl > off {
            ((w + pl - off - 1) / sw + 1).min(ow)
        } else {
            0
        }
        .max(lo);
        for (ry, orow) in trow.chunks_exact_mut(ow.max(1)).enumerate() {
            let iy = (oy0 + ry) * sh + ky * dh;
            if iy < pt || iy - pt >= h || hi == lo {
                orow.fill(0.0);
                continue;
            }
            let irow = &plane[(iy - pt) * w..(iy - pt + 1) * w];
            orow[..lo].fill(0.0);
            orow[hi..].fill(0.0);
            let start = lo * sw + off - pl;
            if sw == 1 {
                orow[lo..hi].copy_from_slice(&irow[start..start + (hi - lo)]);
            } else {
                for (o, i) in orow[lo..hi]
                    .iter_mut()
                    .zip(irow[start..].iter().step_by(sw))
                {
                    *o = *i;
                }
            }
        }
    }
}

/// `C[:, coff..coff+nt] += A[m,k] * B[:, boff..boff+nt]`; `B` and `C` have row strides `ldb`
/// and `ldc`.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_acc(
    m: usize,
    k: usize,
    nt: usize,
    a: &[f32],
    b: &[f32],
    ldb: usize,
    boff: usize,
    c: &mut [f32],
    ldc: usize,
    coff: usize,
) {
    if m == 0 || k == 0 || nt == 0 {
        return;
    }
    let brow = |kk: usize| &b[kk * ldb + boff..kk * ldb + boff + nt];
    for (cb, ab) in c[..m * ldc].chunks_mut(4 * ldc).zip(a.chunks(4 * k)) {
        if cb.len() == 4 * ldc {
            let (r0, rest) = cb.split_at_mut(ldc);
            let (r1, rest) = rest.split_at_mut(ldc);
            let (r2, r3) = rest.split_at_mut(ldc);
            let (r0, r1) = (&mut r0[coff..coff + nt], &mut r1[coff..coff + nt]);
            let (r2, r3) = (&mut r2[coff..coff + nt], &mut r3[coff..coff + nt]);
            let (a0, a1, a2, a3) = (
                &ab[..k],
                &ab[k..2 * k],
                &ab[2 * k..3 * k],
                &ab[3 * k..4 * k],
            );
            // Full 8-column strips: a 4x8 block of C held in registers across the whole k loop.
            let strips = nt / 8;
            for s in 0..strips {
                let j = s * 8;
                let mut acc = [[0f32; 8]; 4];
                for kk in 0..k {
                    let at = kk * ldb + boff + j;
                    // Slicing checks the range once per k step; the array type fixes the width.
                    let Some(bv) = b[at..].first_chunk::<8>() else {
                        unreachable!("8-column strip at {j} lies inside the {nt}-column tile")
                    };
                    let w = [a0[kk], a1[kk], a2[kk], a3[kk]];
                    for (row, &wr) in acc.iter_mut().zip(&w) {
                        for (y, &x) in row.iter_mut().zip(bv) {
                            *y += wr * x;
                        }
                    }
                }
                for (r, row) in [&mut *r0, &mut *r1, &mut *r2, &mut *r3]
                    .into_iter()
                    .zip(&acc)
                {
                    for (y, &v) in r[j..j + 8].iter_mut().zip(row) {
                        *y += v;
                    }
                }
            }
            // Leftover columns: axpy over the tail.
            let j = strips * 8;
            if j < nt {
                for kk in 0..k {
                    let (w0, w1, w2, w3) = (a0[kk], a1[kk], a2[kk], a3[kk]);
                    let bv = &brow(kk)[j..];
                    for ((((x, y0), y1), y2), y3) in bv
                        .iter()
                        .zip(r0[j..].iter_mut())
                        .zip(r1[j..].iter_mut())
                        .zip(r2[j..].iter_mut())
                        .zip(r3[j..].iter_mut())
                    {
                        *y0 += w0 * x;
                        *y1 += w1 * x;
                        *y2 += w2 * x;
                        *y3 += w3 * x;
                    }
                }
            }
        } else {
            for (crow, arow) in cb.chunks_exact_mut(ldc).zip(ab.chunks_exact(k)) {
                let r = &mut crow[coff..coff + nt];
                for (kk, &wv) in arow.iter().enumerate() {
                    for (y, x) in r.iter_mut().zip(brow(kk)) {
                        *y += wv * x;
                    }
                }
            }
        }
    }
}

/// Dot product with eight partial sums (vectorizes; f32 throughout).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ar.iter().zip(br) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Transposes a row-major `[rows, cols]` matrix.
pub(super) fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const B: usize = 32;
    let mut dst = vec![0f32; rows * cols];
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
    dst
}
