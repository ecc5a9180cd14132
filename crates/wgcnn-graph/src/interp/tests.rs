//! Interpreter tests: hand-computed cases per op, and conv/linear against naive loops.

use super::eval_op;
use crate::{Activation, Conv2d, Lrn, Op, Pool2d, Tensor};

/// A small deterministic generator (splitmix64) for test data.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[-scale, scale)`.
    pub(crate) fn uniform(&mut self, scale: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }

    /// Uniform in `lo..hi`.
    pub(crate) fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }

    pub(crate) fn tensor(&mut self, shape: &[usize], scale: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor {
            shape: shape.to_vec(),
            data: (0..n).map(|_| self.uniform(scale)).collect(),
        }
    }
}

fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor {
        shape: shape.to_vec(),
        data: data.to_vec(),
    }
}

fn check(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let err = got.rel_error(want);
    println!("{what}: rel error {err:.3e}");
    assert_eq!(got.shape, want.shape, "{what}: shape");
    assert!(
        err <= tol,
        "{what}: rel error {err} > {tol}\n got {:?}\nwant {:?}",
        got.data,
        want.data
    );
}

/// Direct seven-loop convolution in f64: the reference for the im2col/GEMM path.
fn naive_conv(
    c: &Conv2d,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    r: Option<&Tensor>,
) -> Tensor {
    let [n, ch, h, wd] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let [k, cg, kh, kw] = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
    let oh = (h + c.padding[0] + c.padding[2] - c.dilation[0] * (kh - 1) - 1) / c.stride[0] + 1;
    let ow = (wd + c.padding[1] + c.padding[3] - c.dilation[1] * (kw - 1) - 1) / c.stride[1] + 1;
    let kg = k / c.groups;
    let mut out = Vec::new();
    for img in 0..n {
        for ko in 0..k {
            let g = ko / kg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = 0f64;
                    for ci in 0..cg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * c.stride[0] + ky * c.dilation[0]) as isize
                                    - c.padding[0] as isize;
                                let ix = (ox * c.stride[1] + kx * c.dilation[1]) as isize
                                    - c.padding[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xv = x.data[((img * ch + g * cg + ci) * h + iy as usize) * wd
                                    + ix as usize];
                                let wv = w.data[((ko * cg + ci) * kh + ky) * kw + kx];
                                s += xv as f64 * wv as f64;
                            }
                        }
                    }
                    let mut v = s as f32 + b.map_or(0.0, |b| b.data[ko]);
                    if let Some(r) = r {
                        v += r.data[((img * k + ko) * oh + oy) * ow + ox];
                    }
                    out.push(c.act.apply(v));
                }
            }
        }
    }
    t(&[n, k, oh, ow], &out)
}

#[test]
fn conv2d_1ch_3x3_pad1_by_hand() {
    // x = 1..9 in a 3x3 plane, w = all ones except centre 2: each output is the 3x3
    // neighbourhood sum plus the centre once more.
    let x = t(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    let w = t(&[1, 1, 3, 3], &[1., 1., 1., 1., 2., 1., 1., 1., 1.]);
    let b = t(&[1], &[0.5]);
    let got = eval_op(&Op::Conv2d(Conv2d::new(1, 1, 1, true)), &[&x, &w, &b]).expect("conv");
    let want = t(
        &[1, 1, 3, 3],
        &[13.5, 23.5, 19.5, 31.5, 50.5, 39.5, 31.5, 47.5, 37.5],
    );
    check("conv 3x3 by hand", &got, &want, 0.0);
}

#[test]
fn conv2d_random_shapes_match_naive_loops() {
    let mut rng = Rng::new(1);
    let acts = [
        Activation::Identity,
        Activation::Relu,
        Activation::RELU6,
        Activation::Silu,
    ];
    for case in 0..60 {
        let groups = [1, 1, 2, 3, 4][case % 5];
        let depthwise = case % 7 == 3;
        let cg = if depthwise { 1 } else { rng.range(1, 5) };
        let kg = if depthwise { 1 } else { rng.range(1, 6) };
        let (kh, kw) = (rng.range(1, 4), rng.range(1, 5));
        let c = Conv2d {
            stride: [rng.range(1, 4), rng.range(1, 3)],
            padding: [
                rng.range(0, 3),
                rng.range(0, 3),
                rng.range(0, 3),
                rng.range(0, 2),
            ],
            dilation: [rng.range(1, 3), rng.range(1, 3)],
            groups,
            bias: case % 2 == 0,
            residual: case % 3 == 0,
            act: acts[case % acts.len()],
        };
        let (h, w) = (rng.range(6, 14), rng.range(6, 17));
        let n = rng.range(1, 3);
        let x = rng.tensor(&[n, cg * groups, h, w], 1.0);
        let wt = rng.tensor(&[kg * groups, cg, kh, kw], 1.0);
        let b = rng.tensor(&[kg * groups], 1.0);
        let mut r = None;
        if c.residual {
            let probe = naive_conv(
                &Conv2d {
                    residual: false,
                    ..c.clone()
                },
                &x,
                &wt,
                None,
                None,
            );
            r = Some(rng.tensor(&probe.shape, 1.0));
        }
        let want = naive_conv(&c, &x, &wt, c.bias.then_some(&b), r.as_ref());
        let mut ins = vec![&x, &wt];
        if c.bias {
            ins.push(&b);
        }
        if let Some(r) = &r {
            ins.push(r);
        }
        let got = eval_op(&Op::Conv2d(c.clone()), &ins).expect("conv");
        check(
            &format!("conv case {case} {c:?} x {:?} w {:?}", x.shape, wt.shape),
            &got,
            &want,
            1e-5,
        );
    }
}

#[test]
fn conv2d_1x1_pointwise_and_large_tile_match_naive_loops() {
    let mut rng = Rng::new(2);
    // Pointwise (GEMM straight on the input) and a case whose im2col spans several tiles.
    for (c, xs, ws) in [
        (Conv2d::new(1, 0, 1, true), [2, 37, 9, 11], [19, 37, 1, 1]),
        (Conv2d::new(1, 0, 2, false), [1, 8, 5, 5], [6, 4, 1, 1]),
        (Conv2d::new(2, 0, 1, true), [1, 5, 9, 9], [7, 5, 1, 1]),
        (Conv2d::new(1, 1, 1, true), [1, 160, 40, 40], [9, 160, 3, 3]),
        (
            Conv2d::new(1, 0, 1, false),
            [1, 1100, 3, 130],
            [5, 1100, 1, 1],
        ),
    ] {
        let x = rng.tensor(&xs, 1.0);
        let w = rng.tensor(&ws, 1.0);
        let b = rng.tensor(&[ws[0]], 1.0);
        let mut ins = vec![&x, &w];
        if c.bias {
            ins.push(&b);
        }
        let got = eval_op(&Op::Conv2d(c.clone()), &ins).expect("conv");
        let want = naive_conv(&c, &x, &w, c.bias.then_some(&b), None);
        check(&format!("conv {xs:?} * {ws:?}"), &got, &want, 1e-5);
    }
}

#[test]
fn linear_matches_naive_loops_small_and_large_batch() {
    let mut rng = Rng::new(3);
    for (n, k, m, bias, act) in [
        (1, 3, 2, true, Activation::Identity),
        (2, 37, 11, false, Activation::Relu),
        (5, 8, 16, true, Activation::Tanh),
        (10, 300, 17, true, Activation::Silu),
        (23, 70, 9, true, Activation::Relu),
        (40, 5000, 3, false, Activation::Identity),
        (64, 129, 33, false, Activation::Identity),
    ] {
        let x = rng.tensor(&[n, k], 1.0);
        let w = rng.tensor(&[m, k], 1.0);
        let b = rng.tensor(&[m], 1.0);
        let mut want = Vec::new();
        for i in 0..n {
            for j in 0..m {
                let s: f64 = (0..k)
                    .map(|q| x.data[i * k + q] as f64 * w.data[j * k + q] as f64)
                    .sum();
                want.push(act.apply(s as f32 + if bias { b.data[j] } else { 0.0 }));
            }
        }
        let mut ins = vec![&x, &w];
        if bias {
            ins.push(&b);
        }
        let got = eval_op(&Op::Linear { bias, act }, &ins).expect("linear");
        check(
            &format!("linear {n}x{k} -> {m}"),
            &got,
            &t(&[n, m], &want),
            1e-5,
        );
    }
}

#[test]
fn linear_by_hand() {
    let x = t(&[1, 3], &[1., 2., 3.]);
    let w = t(&[2, 3], &[1., 0., -1., 0.5, 0.5, 0.5]);
    let b = t(&[2], &[10., -1.]);
    let got = eval_op(
        &Op::Linear {
            bias: true,
            act: Activation::Identity,
        },
        &[&x, &w, &b],
    )
    .expect("linear");
    check("linear by hand", &got, &t(&[1, 2], &[8., 2.]), 0.0);
}

#[test]
fn eval_op_rejects_bad_shapes_and_counts() {
    let x = t(&[1, 2, 3, 3], &[0.; 18]);
    let w = t(&[4, 3, 1, 1], &[0.; 12]);
    let err =
        eval_op(&Op::Conv2d(Conv2d::new(1, 0, 1, false)), &[&x, &w]).expect_err("channels differ");
    println!("{err}");
    assert!(err.to_string().contains("conv2d"), "{err}");
    assert!(eval_op(&Op::Add, &[&x]).is_err());
    let bad = Tensor {
        shape: vec![2, 2],
        data: vec![1.0],
    };
    assert!(eval_op(&Op::Act(Activation::Relu), &[&bad]).is_err());
    assert!(eval_op(&Op::Concat { axis: 0 }, &[]).is_err());
}

#[test]
fn maxpool_ceil_mode_drops_window_starting_in_padding() {
    // 3x3 input, kernel 2, stride 2, pad 1, ceil: a third window would start in the bottom
    // padding, so the output is 2x2, not 3x3.
    let x = t(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    let got = eval_op(&Op::MaxPool2d(Pool2d::new(2, 2, 1, true)), &[&x]).expect("maxpool");
    check(
        "maxpool ceil drop",
        &got,
        &t(&[1, 1, 2, 2], &[1., 3., 7., 9.]),
        0.0,
    );
}

#[test]
fn maxpool_ceil_mode_keeps_partial_last_window() {
    let x = Tensor {
        shape: vec![1, 1, 5, 5],
        data: (1..=25).map(|v| v as f32).collect(),
    };
    let got = eval_op(&Op::MaxPool2d(Pool2d::new(2, 2, 0, true)), &[&x]).expect("maxpool");
    let want = t(&[1, 1, 3, 3], &[7., 9., 10., 17., 19., 20., 22., 24., 25.]);
    check("maxpool ceil partial", &got, &want, 0.0);
    let floor = eval_op(&Op::MaxPool2d(Pool2d::new(2, 2, 0, false)), &[&x]).expect("maxpool");
    check(
        "maxpool floor",
        &floor,
        &t(&[1, 1, 2, 2], &[7., 9., 17., 19.]),
        0.0,
    );
}

#[test]
fn maxpool_padding_never_wins_over_negative_values() {
    let x = t(&[1, 1, 2, 2], &[-4., -3., -2., -1.]);
    let got = eval_op(&Op::MaxPool2d(Pool2d::new(3, 1, 1, false)), &[&x]).expect("maxpool");
    check(
        "maxpool negative",
        &got,
        &t(&[1, 1, 2, 2], &[-1., -1., -1., -1.]),
        0.0,
    );
}

#[test]
fn avgpool_3x3_pad1_count_include_pad_true_and_false() {
    let x = t(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    let mut p = Pool2d::new(3, 1, 1, false);
    let incl = eval_op(&Op::AvgPool2d(p.clone()), &[&x]).expect("avgpool");
    let want_incl: Vec<f32> = [12., 21., 16., 27., 45., 33., 24., 39., 28.]
        .iter()
        .map(|s| s / 9.0)
        .collect();
    check(
        "avgpool include pad",
        &incl,
        &t(&[1, 1, 3, 3], &want_incl),
        1e-7,
    );
    p.count_include_pad = false;
    let excl = eval_op(&Op::AvgPool2d(p), &[&x]).expect("avgpool");
    let want_excl = [
        12. / 4.,
        21. / 6.,
        16. / 4.,
        27. / 6.,
        5.,
        33. / 6.,
        24. / 4.,
        39. / 6.,
        28. / 4.,
    ];
    check(
        "avgpool exclude pad",
        &excl,
        &t(&[1, 1, 3, 3], &want_excl),
        1e-7,
    );
}

#[test]
fn avgpool_ceil_mode_divisor_clipped_to_padded_extent() {
    // PyTorch: avg_pool1d([1,2,3,4], 3, stride 2, pad 1, ceil_mode) = [1, 3, 2]: the last
    // window [3, 6) is clipped to the padded end 5 before counting (divisor 2, not 3).
    let x = t(&[1, 1, 1, 4], &[1., 2., 3., 4.]);
    let mut p = Pool2d {
        kernel: [1, 3],
        stride: [1, 2],
        padding: [0, 1, 0, 1],
        ceil_mode: true,
        count_include_pad: true,
    };
    let got = eval_op(&Op::AvgPool2d(p.clone()), &[&x]).expect("avgpool");
    check(
        "avgpool ceil include pad",
        &got,
        &t(&[1, 1, 1, 3], &[1., 3., 2.]),
        1e-7,
    );
    p.count_include_pad = false;
    let got = eval_op(&Op::AvgPool2d(p), &[&x]).expect("avgpool");
    check(
        "avgpool ceil exclude pad",
        &got,
        &t(&[1, 1, 1, 3], &[1.5, 3., 4.]),
        1e-7,
    );
}

#[test]
fn avgpool_asymmetric_padding_counts_each_side() {
    // Padding [0, 0, 0, 1] (right only), kernel 2, stride 2 on a row of 3: windows [0,2) and
    // [2,4) -> the second holds one real value and one padded zero.
    let x = t(&[1, 1, 1, 3], &[2., 4., 6.]);
    let p = Pool2d {
        kernel: [1, 2],
        stride: [1, 2],
        padding: [0, 0, 0, 1],
        ceil_mode: false,
        count_include_pad: true,
    };
    let got = eval_op(&Op::AvgPool2d(p), &[&x]).expect("avgpool");
    check(
        "avgpool asymmetric",
        &got,
        &t(&[1, 1, 1, 2], &[3., 3.]),
        1e-7,
    );
}

#[test]
fn adaptive_avgpool_5_to_3_overlapping_windows() {
    // Windows along 5 -> 3: [0,2), [1,4), [3,5); x[i][j] = 10 i + j.
    let x = Tensor {
        shape: vec![1, 1, 5, 5],
        data: (0..25).map(|v| (10 * (v / 5) + v % 5) as f32).collect(),
    };
    let got = eval_op(&Op::AdaptiveAvgPool2d { output: [3, 3] }, &[&x]).expect("adaptive");
    let m = [0.5f32, 2.0, 3.5];
    let want: Vec<f32> = (0..9).map(|i| 10.0 * m[i / 3] + m[i % 3]).collect();
    check("adaptive 5->3", &got, &t(&[1, 1, 3, 3], &want), 1e-7);
    let global = eval_op(&Op::AdaptiveAvgPool2d { output: [1, 1] }, &[&x]).expect("global");
    check("adaptive global", &global, &t(&[1, 1, 1, 1], &[22.0]), 1e-7);
    // Upsampling: 2 -> 3 windows [0,1), [0,2), [1,2).
    let y = t(&[1, 1, 1, 2], &[1., 3.]);
    let up = eval_op(&Op::AdaptiveAvgPool2d { output: [1, 3] }, &[&y]).expect("adaptive up");
    check("adaptive 2->3", &up, &t(&[1, 1, 1, 3], &[1., 2., 3.]), 1e-7);
}

#[test]
fn lrn_size2_and_size3_by_hand() {
    let x = t(&[1, 3, 1, 1], &[1., 2., 3.]);
    // size 2: window [c-1, c]; size 3: [c-1, c+1]; alpha 1, beta 1, k 1.
    let l2 = Lrn {
        size: 2,
        alpha: 1.0,
        beta: 1.0,
        k: 1.0,
    };
    let got = eval_op(&Op::Lrn(l2), &[&x]).expect("lrn");
    check(
        "lrn size 2",
        &got,
        &t(&[1, 3, 1, 1], &[1. / 1.5, 2. / 3.5, 3. / 7.5]),
        1e-6,
    );
    let l3 = Lrn {
        size: 3,
        alpha: 1.0,
        beta: 1.0,
        k: 1.0,
    };
    let got = eval_op(&Op::Lrn(l3), &[&x]).expect("lrn");
    let want = [
        1. / (1. + 5. / 3.),
        2. / (1. + 14. / 3.),
        3. / (1. + 13. / 3.),
    ];
    check("lrn size 3", &got, &t(&[1, 3, 1, 1], &want), 1e-6);
    // AlexNet's parameters with beta 0.75 and k 2, on two pixels.
    let x = t(&[1, 2, 1, 2], &[1., -2., 3., 4.]);
    let l = Lrn {
        size: 5,
        alpha: 1e-4,
        beta: 0.75,
        k: 2.0,
    };
    let got = eval_op(&Op::Lrn(l), &[&x]).expect("lrn");
    let d = |s: f32| (2.0 + 1e-4 / 5.0 * s).powf(0.75);
    let want = [1. / d(10.), -2. / d(20.), 3. / d(10.), 4. / d(20.)];
    check("lrn alexnet", &got, &t(&[1, 2, 1, 2], &want), 1e-6);
}

#[test]
fn softmax_any_axis_sums_to_one_and_survives_large_values() {
    let mut rng = Rng::new(4);
    let x = rng.tensor(&[2, 3, 4], 5.0);
    for axis in 0..3 {
        let got = eval_op(&Op::Softmax { axis }, &[&x]).expect("softmax");
        let (len, inner) = (x.shape[axis], x.shape[axis + 1..].iter().product::<usize>());
        let outer = x.data.len() / (len * inner);
        let mut worst = 0f32;
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| (o * len + j) * inner + i;
                let z: f32 = (0..len).map(|j| x.data[at(j)].exp()).sum();
                for j in 0..len {
                    worst = worst.max((got.data[at(j)] - x.data[at(j)].exp() / z).abs());
                }
                let s: f32 = (0..len).map(|j| got.data[at(j)]).sum();
                worst = worst.max((s - 1.0).abs());
            }
        }
        println!("softmax axis {axis}: max error {worst:.3e}");
        assert!(worst < 1e-6, "axis {axis}: {worst}");
    }
    let big = t(&[1, 3], &[1000., 1000., 990.]);
    let got = eval_op(&Op::Softmax { axis: 1 }, &[&big]).expect("softmax");
    let e = (-10f32).exp();
    check(
        "softmax large",
        &got,
        &t(&[1, 3], &[1. / (2. + e), 1. / (2. + e), e / (2. + e)]),
        1e-6,
    );
}

#[test]
fn mul_add_broadcast_channel_scalar_and_trailing() {
    let a = Tensor {
        shape: vec![2, 3, 1, 2],
        data: (0..12).map(|v| v as f32).collect(),
    };
    let scale = t(&[1, 3, 1, 1], &[1., 10., 100.]);
    let got = eval_op(&Op::Mul, &[&a, &scale]).expect("mul");
    let want = [0., 1., 20., 30., 400., 500., 6., 7., 80., 90., 1000., 1100.];
    check("mul [1,C,1,1]", &got, &t(&[2, 3, 1, 2], &want), 0.0);
    let one = t(&[1], &[0.5]);
    let got = eval_op(&Op::Add, &[&a, &one]).expect("add");
    let want: Vec<f32> = a.data.iter().map(|v| v + 0.5).collect();
    check("add scalar", &got, &t(&a.shape, &want), 0.0);
    let row = t(&[2], &[100., 200.]);
    let got = eval_op(&Op::Add, &[&a, &row]).expect("add");
    let want: Vec<f32> = a
        .data
        .iter()
        .enumerate()
        .map(|(i, v)| v + [100., 200.][i % 2])
        .collect();
    check("add trailing [W]", &got, &t(&a.shape, &want), 0.0);
    let per_n = t(&[2, 1, 1, 1], &[1., -1.]);
    let got = eval_op(&Op::Mul, &[&a, &per_n]).expect("mul");
    let want: Vec<f32> = a
        .data
        .iter()
        .enumerate()
        .map(|(i, v)| if i < 6 { *v } else { -v })
        .collect();
    check("mul [N,1,1,1]", &got, &t(&a.shape, &want), 0.0);
    let same = eval_op(&Op::Add, &[&a, &a]).expect("add");
    check(
        "add same shape",
        &same,
        &t(&a.shape, &a.data.iter().map(|v| 2. * v).collect::<Vec<_>>()),
        0.0,
    );
    assert!(
        eval_op(&Op::Add, &[&scale, &a]).is_err(),
        "a must not broadcast up"
    );
}

#[test]
fn concat_on_axes_0_1_3_flatten_reshape() {
    let a = t(&[1, 2, 1, 2], &[1., 2., 3., 4.]);
    let b = t(&[1, 1, 1, 2], &[5., 6.]);
    let got = eval_op(&Op::Concat { axis: 1 }, &[&a, &b]).expect("concat");
    check(
        "concat axis 1",
        &got,
        &t(&[1, 3, 1, 2], &[1., 2., 3., 4., 5., 6.]),
        0.0,
    );
    let got = eval_op(&Op::Concat { axis: 0 }, &[&a, &a]).expect("concat");
    check(
        "concat axis 0",
        &got,
        &t(&[2, 2, 1, 2], &[1., 2., 3., 4., 1., 2., 3., 4.]),
        0.0,
    );
    let c = t(&[1, 2, 1, 1], &[9., 8.]);
    let got = eval_op(&Op::Concat { axis: 3 }, &[&a, &c]).expect("concat");
    check(
        "concat axis 3",
        &got,
        &t(&[1, 2, 1, 3], &[1., 2., 9., 3., 4., 8.]),
        0.0,
    );
    let flat = eval_op(&Op::Flatten { axis: 1 }, &[&a]).expect("flatten");
    check("flatten", &flat, &t(&[1, 4], &[1., 2., 3., 4.]), 0.0);
    let r = eval_op(&Op::Reshape { shape: vec![2, 2] }, &[&a]).expect("reshape");
    check("reshape", &r, &t(&[2, 2], &[1., 2., 3., 4.]), 0.0);
    assert!(eval_op(&Op::Reshape { shape: vec![3] }, &[&a]).is_err());
}

#[test]
fn pad_constant_asymmetric() {
    let x = t(&[1, 1, 1, 2], &[1., 2.]);
    let got = eval_op(
        &Op::Pad {
            padding: [1, 0, 0, 2],
            value: -1.0,
        },
        &[&x],
    )
    .expect("pad");
    check(
        "pad",
        &got,
        &t(&[1, 1, 2, 4], &[-1., -1., -1., -1., 1., 2., -1., -1.]),
        0.0,
    );
}

#[test]
fn batchnorm_and_activation_by_hand() {
    let x = t(&[1, 2, 1, 2], &[1., 2., 3., 4.]);
    let (g, b) = (t(&[2], &[2., 1.]), t(&[2], &[0.5, -1.]));
    let (m, v) = (t(&[2], &[1., 3.]), t(&[2], &[4., 0.25]));
    let got = eval_op(&Op::BatchNorm { eps: 0.0 }, &[&x, &g, &b, &m, &v]).expect("bn");
    check(
        "batchnorm",
        &got,
        &t(&[1, 2, 1, 2], &[0.5, 1.5, -1., 1.]),
        1e-7,
    );
    // BatchNorm1d on [N, C].
    let x2 = t(&[2, 2], &[1., 3., 3., 4.]);
    let got = eval_op(&Op::BatchNorm { eps: 0.0 }, &[&x2, &g, &b, &m, &v]).expect("bn1d");
    check(
        "batchnorm 2-D",
        &got,
        &t(&[2, 2], &[0.5, -1., 2.5, 1.]),
        1e-7,
    );
    let y = t(&[4], &[-7., -1., 2., 8.]);
    let cases = [
        (Activation::Relu, [0., 0., 2., 8.]),
        (Activation::RELU6, [0., 0., 2., 6.]),
        (Activation::HARDSIGMOID, [0., 1. / 3., 5. / 6., 1.]),
        (Activation::HardSwish, [0., -1. / 3., 5. / 3., 8.]),
    ];
    for (a, want) in cases {
        let got = eval_op(&Op::Act(a), &[&y]).expect("act");
        check(&format!("{a:?}"), &got, &t(&[4], &want), 1e-7);
    }
}
