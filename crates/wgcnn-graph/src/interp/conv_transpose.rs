//! Transposed convolution as GEMM + col2im: per group, `cols [Kg*kh*kw, pixels] = W^T x`
//! (the same register-blocked GEMM as the convolutions), then each column scattered into the
//! output window it covers. Input rows are tiled so a `cols` tile stays near L2 size.

use super::conv::{gemm_acc, transpose};
use crate::{ConvTranspose2d, Tensor};

/// How many f32 values one `cols` tile may hold (about 512 KiB).
const TILE_FLOATS: usize = 128 * 1024;

/// `act(conv_transpose(x, w) + bias)`; shapes were checked by `Op::infer`.
pub(super) fn conv_transpose2d(
    c: &ConvTranspose2d,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_shape: &[usize],
) -> Tensor {
    let [n, ch, h, wd] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let [_, kg, kh, kw] = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
    let (k, oh, ow) = (out_shape[1], out_shape[2], out_shape[3]);
    let groups = c.groups;
    let cg = ch / groups;
    let taps = kg * kh * kw;
    let (hw, ohw) = (h * wd, oh * ow);
    let mut out = vec![0f32; n * k * ohw];
    let rows_per_tile = (TILE_FLOATS / (taps * wd).max(1)).clamp(1, h.max(1));
    let mut cols = vec![0f32; taps * rows_per_tile * wd];

    for g in 0..groups {
        // Group g's weights are rows [g*cg, (g+1)*cg) of [C, Kg*kh*kw]; the GEMM wants W^T.
        let wt = transpose(&w.data[g * cg * taps..(g + 1) * cg * taps], cg, taps);
        for img in 0..n {
            let xin = &x.data[(img * ch + g * cg) * hw..(img * ch + (g + 1) * cg) * hw];
            let oblock = &mut out[(img * k + g * kg) * ohw..(img * k + (g + 1) * kg) * ohw];
            let mut iy0 = 0;
            while iy0 < h {
                let rows = rows_per_tile.min(h - iy0);
                let nt = rows * wd;
                let tile = &mut cols[..taps * nt];
                tile.fill(0.0);
                gemm_acc(taps, cg, nt, &wt, xin, hw, iy0 * wd, tile, nt, 0);
                col2im(c, tile, [kh, kw], [iy0, rows, wd], [oh, ow], oblock);
                iy0 += rows;
            }
        }
    }

    for (img_ch, plane) in out.chunks_exact_mut(ohw.max(1)).enumerate() {
        let b = bias.map_or(0.0, |b| b.data[img_ch % k]);
        for v in plane.iter_mut() {
            *v = c.act.apply(*v + b);
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// Adds each row of `tile` (`[Kg*kh*kw, rows*w]`: output channel, tap, then the input pixels
/// of rows `iy0..iy0+rows`) into the output positions its tap sends those pixels to.
fn col2im(
    c: &ConvTranspose2d,
    tile: &[f32],
    [kh, kw]: [usize; 2],
    [iy0, rows, w]: [usize; 3],
    [oh, ow]: [usize; 2],
    oblock: &mut [f32],
) {
    let (sh, sw) = (c.stride[0], c.stride[1]);
    let (dh, dw) = (c.dilation[0], c.dilation[1]);
    let (pt, pl) = (c.padding[0], c.padding[1]);
    for (r, trow) in tile.chunks_exact(rows * w).enumerate() {
        let co = r / (kh * kw);
        let (ky, kx) = ((r / kw) % kh, r % kw);
        let plane = &mut oblock[co * oh * ow..(co + 1) * oh * ow];
        for (ry, irow) in trow.chunks_exact(w).enumerate() {
            // Output row (iy0 + ry) * sh + ky * dh - pt, when it lies in [0, oh).
            let Some(oy) = ((iy0 + ry) * sh + ky * dh)
                .checked_sub(pt)
                .filter(|&oy| oy < oh)
            else {
                continue;
            };
            let orow = &mut plane[oy * ow..(oy + 1) * ow];
            for (ix, &v) in irow.iter().enumerate() {
                if let Some(ox) = (ix * sw + kx * dw).checked_sub(pl).filter(|&ox| ox < ow) {
                    orow[ox] += v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::eval_op;
    use crate::interp::tests::Rng;
    use crate::{Activation, Conv2d, ConvTranspose2d, Op, Tensor};

    /// The definition, scattered in f64: every input pixel times every weight of its group.
    fn naive(c: &ConvTranspose2d, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
        let [n, ch, h, wd] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
        let [_, kg, kh, kw] = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
        let k = kg * c.groups;
        let cg = ch / c.groups;
        let oh = c.out_extent(h, kh, 0).expect("extent");
        let ow = c.out_extent(wd, kw, 1).expect("extent");
        let mut out = vec![0f64; n * k * oh * ow];
        for img in 0..n {
            for ci in 0..ch {
                let g = ci / cg;
                for iy in 0..h {
                    for ix in 0..wd {
                        let xv = x.data[((img * ch + ci) * h + iy) * wd + ix] as f64;
                        for j in 0..kg {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let oy = (iy * c.stride[0] + ky * c.dilation[0]) as isize
                                        - c.padding[0] as isize;
                                    let ox = (ix * c.stride[1] + kx * c.dilation[1]) as isize
                                        - c.padding[1] as isize;
                                    if oy < 0 || ox < 0 || oy as usize >= oh || ox as usize >= ow {
                                        continue;
                                    }
                                    let wv = w.data[((ci * kg + j) * kh + ky) * kw + kx] as f64;
                                    let co = g * kg + j;
                                    out[((img * k + co) * oh + oy as usize) * ow + ox as usize] +=
                                        xv * wv;
                                }
                            }
                        }
                    }
                }
            }
        }
        let data = out
            .chunks_exact(oh * ow)
            .enumerate()
            .flat_map(|(p, plane)| {
                let bv = b.map_or(0.0, |b| b.data[p % k] as f64);
                plane.iter().map(move |v| c.act.apply((v + bv) as f32))
            })
            .collect();
        Tensor {
            shape: vec![n, k, oh, ow],
            data,
        }
    }

    #[test]
    fn conv_transpose_2x2_stride2_tiles_each_pixel_times_the_kernel() {
        // Mask R-CNN's upsampler shape: each input pixel becomes a 2x2 block x * w, plus bias.
        let x = Tensor::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).expect("x");
        let w = Tensor::new(&[1, 1, 2, 2], vec![1.0, 10.0, 100.0, 1000.0]).expect("w");
        let b = Tensor::new(&[1], vec![0.5]).expect("b");
        let op = Op::ConvTranspose2d(ConvTranspose2d::new(2, 0, 1, true));
        let y = eval_op(&op, &[&x, &w, &b]).expect("eval");
        assert_eq!(y.shape, [1, 1, 4, 4]);
        #[rustfmt::skip]
        let want = [
            1.5, 10.5, 2.5, 20.5,
            100.5, 1000.5, 200.5, 2000.5,
            3.5, 30.5, 4.5, 40.5,
            300.5, 3000.5, 400.5, 4000.5,
        ];
        assert_eq!(y.data, want);
    }

    #[test]
    fn conv_transpose_matches_naive_scatter_on_random_shapes() {
        let mut rng = Rng::new(41);
        for case in 0..60 {
            let groups = [1, 1, 2, 3][rng.range(0, 4)];
            let cg = rng.range(1, 5);
            let kg = rng.range(1, 5);
            let (kh, kw) = (rng.range(1, 5), rng.range(1, 5));
            let stride = [rng.range(1, 4), rng.range(1, 4)];
            let dilation = [rng.range(1, 3), rng.range(1, 3)];
            let output_padding = [
                rng.range(0, stride[0].max(dilation[0])),
                rng.range(0, stride[1].max(dilation[1])),
            ];
            let (h, w) = (rng.range(1, 9), rng.range(1, 9));
            let full_h = (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0];
            let full_w = (w - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1];
            // Crop at most all but one row/column, split unevenly between the two sides.
            let (ch, cw) = (rng.range(0, full_h), rng.range(0, full_w));
            let (top, left) = (rng.range(0, ch + 1), rng.range(0, cw + 1));
            let c = ConvTranspose2d {
                stride,
                padding: [top, left, ch - top, cw - left],
                output_padding,
                dilation,
                groups,
                bias: case % 2 == 0,
                act: [Activation::Identity, Activation::Relu][case % 3 / 2],
            };
            let n = rng.range(1, 3);
            let x = rng.tensor(&[n, cg * groups, h, w], 1.0);
            let wt = rng.tensor(&[cg * groups, kg, kh, kw], 1.0);
            let b = rng.tensor(&[kg * groups], 1.0);
            let mut ins = vec![&x, &wt];
            if c.bias {
                ins.push(&b);
            }
            let got = eval_op(&Op::ConvTranspose2d(c.clone()), &ins).expect("eval");
            let want = naive(&c, &x, &wt, c.bias.then_some(&b));
            let err = got.max_abs_diff(&want);
            assert_eq!(got.shape, want.shape, "case {case} {c:?}");
            assert!(err <= 1e-5, "case {case} {c:?}: max abs diff {err:e}");
        }
    }

    /// `<conv(x, w), y> == <x, conv_transpose(y, w)>`: the transposed conv is the adjoint of the
    /// convolution with the same weight tensor, which pins it to the independent conv reference.
    #[test]
    fn conv_transpose_is_the_adjoint_of_conv2d_with_the_same_weights() {
        let mut rng = Rng::new(7);
        for case in 0..20 {
            let groups = rng.range(1, 3);
            let (c_in, k_out) = (groups * rng.range(1, 4), groups * rng.range(1, 4));
            let (kh, kw) = (rng.range(1, 4), rng.range(1, 4));
            let s = rng.range(1, 4);
            let d = rng.range(1, 3);
            let p = rng.range(0, kh.min(kw));
            let (h, w) = (rng.range(kh * d, 12), rng.range(kw * d, 12));
            let conv = Conv2d {
                stride: [s, s],
                padding: [p; 4],
                dilation: [d, d],
                groups,
                bias: false,
                residual: false,
                act: Activation::Identity,
            };
            let weight = rng.tensor(&[k_out, c_in / groups, kh, kw], 1.0);
            let x = rng.tensor(&[1, c_in, h, w], 1.0);
            let y_shape = Op::Conv2d(conv.clone())
                .infer(&[&x.shape, &weight.shape])
                .expect("conv shape");
            let y = rng.tensor(&y_shape, 1.0);
            // The output padding that brings the transposed extent back to the input's.
            let op = |len: usize, k: usize| (len + 2 * p - d * (k - 1) - 1) % s;
            let t = ConvTranspose2d {
                stride: [s, s],
                padding: [p; 4],
                output_padding: [op(h, kh), op(w, kw)],
                dilation: [d, d],
                groups,
                bias: false,
                act: Activation::Identity,
            };
            let cx = eval_op(&Op::Conv2d(conv), &[&x, &weight]).expect("conv");
            let ty = eval_op(&Op::ConvTranspose2d(t), &[&y, &weight]).expect("transpose");
            assert_eq!(ty.shape, x.shape, "case {case}");
            let dot = |a: &Tensor, b: &Tensor| -> f64 {
                a.data
                    .iter()
                    .zip(&b.data)
                    .map(|(&u, &v)| u as f64 * v as f64)
                    .sum()
            };
            let (lhs, rhs) = (dot(&cx, &y), dot(&x, &ty));
            assert!(
                (lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0),
                "case {case}: <conv x, y> {lhs} vs <x, convT y> {rhs}"
            );
        }
    }

    #[test]
    fn conv_transpose_rejects_bad_shapes_with_messages() {
        let x = Tensor::zeros(&[1, 4, 3, 3]);
        let cases = [
            (
                ConvTranspose2d::new(1, 0, 1, false),
                vec![3, 2, 2, 2],
                "input channels",
            ),
            (
                ConvTranspose2d::new(1, 0, 3, false),
                vec![4, 2, 2, 2],
                "groups",
            ),
            (
                ConvTranspose2d::new(1, 2, 1, false),
                vec![4, 2, 2, 2],
                "crops away",
            ),
            (
                ConvTranspose2d {
                    output_padding: [2, 0],
                    ..ConvTranspose2d::new(2, 0, 1, false)
                },
                vec![4, 2, 2, 2],
                "output_padding",
            ),
        ];
        for (c, w, msg) in cases {
            let wt = Tensor::zeros(&w);
            let err = eval_op(&Op::ConvTranspose2d(c), &[&x, &wt]).expect_err("must fail");
            assert!(err.to_string().contains(msg), "{err} should mention {msg}");
        }
    }
}
