//! Convolution, pooling, normalization, activations and the linear layers: each attribute
//! form against a directly built graph or hand-computed values.

use super::*;

// ---------------------------------------------------------------------------------------------
// Convolution and pooling against directly built graphs

/// Conv of x [1,3,8,7] by w [4,3,3,2], stride 2, with the attributes given; compared with
/// an IR conv of `padding`.
fn conv_case(test: &str, attrs: Vec<A>, padding: [usize; 4]) {
    let (xs, ws) = ([1, 3, 8, 7], [4, 3, 3, 2]);
    let w = values(72, 2);
    let mut attrs = attrs;
    attrs.push(A::ints("strides", &[2, 2]));
    attrs.push(A::ints("kernel_shape", &[3, 2]));
    let m = model(
        17,
        &[("x", &xs)],
        &["y"],
        vec![NodeProto::new("Conv", "conv", &["x", "w"], &["y"], attrs)],
        vec![TensorProto::float_raw("w", &dims(&ws), &w)],
    );
    let mut b = GraphBuilder::new();
    let x = b.input("x", &xs);
    let wid = b.constant("w", &ws, w).expect("w");
    let conv = Conv2d {
        stride: [2, 2],
        padding,
        ..Conv2d::new(1, 0, 1, false)
    };
    let y = b
        .node("conv", Op::Conv2d(conv.clone()), &[x, wid])
        .expect("conv");
    b.output(y);
    let got = check_against_builder(test, &m, b.finish(), &tensor(&xs, 1));
    assert_eq!(got.graph.nodes[0].op, Op::Conv2d(conv));
}

#[test]
fn conv_asymmetric_pads_are_top_left_bottom_right() {
    conv_case(
        "conv_pads",
        vec![A::ints("pads", &[1, 0, 2, 1])],
        [1, 0, 2, 1],
    );
}

#[test]
fn conv_auto_pad_same_upper_puts_odd_pixel_at_end() {
    // H: out 4, total (4-1)*2+3-8 = 1; W: out 4, total (4-1)*2+2-7 = 1.
    conv_case(
        "conv_same_upper",
        vec![A::string("auto_pad", "SAME_UPPER")],
        [0, 0, 1, 1],
    );
}

#[test]
fn conv_auto_pad_same_lower_puts_odd_pixel_at_start() {
    conv_case(
        "conv_same_lower",
        vec![A::string("auto_pad", "SAME_LOWER")],
        [1, 1, 0, 0],
    );
}

#[test]
fn conv_auto_pad_valid_pads_nothing() {
    conv_case(
        "conv_valid",
        vec![A::string("auto_pad", "VALID")],
        [0, 0, 0, 0],
    );
}

#[test]
fn conv_groups2_dilation2_with_bias() {
    let (xs, ws) = ([1, 4, 9, 9], [6, 2, 3, 3]);
    let (w, bias) = (values(108, 3), values(6, 4));
    let attrs = vec![
        A::int("group", 2),
        A::ints("dilations", &[2, 2]),
        A::ints("pads", &[2, 1, 2, 1]),
    ];
    let m = model(
        11,
        &[("x", &xs)],
        &["y"],
        vec![NodeProto::new("Conv", "", &["x", "w", "b"], &["y"], attrs)],
        vec![
            TensorProto::float_raw("w", &dims(&ws), &w),
            TensorProto::float_raw("b", &[6], &bias),
        ],
    );
    let mut b = GraphBuilder::new();
    let x = b.input("x", &xs);
    let (wid, bid) = (
        b.constant("w", &ws, w).expect("w"),
        b.constant("b", &[6], bias).expect("b"),
    );
    let conv = Conv2d {
        padding: [2, 1, 2, 1],
        dilation: [2, 2],
        ..Conv2d::new(1, 0, 2, true)
    };
    let y = b
        .node("conv", Op::Conv2d(conv), &[x, wid, bid])
        .expect("conv");
    b.output(y);
    let got = check_against_builder("conv_groups", &m, b.finish(), &tensor(&xs, 5));
    assert_eq!(
        got.graph.nodes[0].name, "y",
        "unnamed nodes take their output's name"
    );
    assert_eq!(
        got.graph.param_count(),
        108 + 6,
        "initializers become bound parameters"
    );
}

/// A pool node on x [1,2,7,8] compared with the IR pool `want`.
fn pool_case(test: &str, op_type: &str, opset: i64, attrs: Vec<A>, want: Op) {
    let xs = [1, 2, 7, 8];
    let m = model(
        opset,
        &[("x", &xs)],
        &["y"],
        vec![NodeProto::new(op_type, "pool", &["x"], &["y"], attrs)],
        vec![],
    );
    let mut b = GraphBuilder::new();
    let x = b.input("x", &xs);
    let y = b.node("pool", want.clone(), &[x]).expect("pool");
    b.output(y);
    let got = check_against_builder(test, &m, b.finish(), &tensor(&xs, 6));
    assert_eq!(got.graph.nodes[0].op, want);
}

#[test]
fn maxpool_ceil_mode_with_asymmetric_pads() {
    let attrs = vec![
        A::ints("kernel_shape", &[3, 3]),
        A::ints("strides", &[2, 2]),
        A::ints("pads", &[1, 0, 1, 1]),
        A::int("ceil_mode", 1),
    ];
    let want = Pool2d {
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 0, 1, 1],
        ceil_mode: true,
        count_include_pad: false,
    };
    pool_case("maxpool_ceil", "MaxPool", 12, attrs, Op::MaxPool2d(want));
}

#[test]
fn maxpool_auto_pad_same_upper() {
    // H 7: out 4, total 3*2+2-7 = 1 -> (0, 1); W 8: out 4, total 3*2+2-8 = 0.
    let attrs = vec![
        A::ints("kernel_shape", &[2, 2]),
        A::ints("strides", &[2, 2]),
        A::string("auto_pad", "SAME_UPPER"),
    ];
    let want = Pool2d {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0, 1, 0],
        ceil_mode: false,
        count_include_pad: false,
    };
    pool_case("maxpool_same", "MaxPool", 8, attrs, Op::MaxPool2d(want));
}

#[test]
fn averagepool_count_include_pad_both_ways() {
    for cip in [0, 1] {
        let attrs = vec![
            A::ints("kernel_shape", &[3, 2]),
            A::ints("pads", &[1, 1, 1, 0]),
            A::int("count_include_pad", cip),
            A::int("ceil_mode", 1),
        ];
        let want = Pool2d {
            kernel: [3, 2],
            stride: [1, 1],
            padding: [1, 1, 1, 0],
            ceil_mode: true,
            count_include_pad: cip == 1,
        };
        pool_case(
            &format!("avgpool_cip{cip}"),
            "AveragePool",
            17,
            attrs,
            Op::AvgPool2d(want),
        );
    }
}

#[test]
fn maxpool_dilations_are_refused_as_unsupported() {
    let attrs = vec![
        A::ints("kernel_shape", &[2, 2]),
        A::ints("dilations", &[2, 2]),
    ];
    let m = model(
        12,
        &[("x", &[1, 1, 6, 6])],
        &["y"],
        vec![NodeProto::new("MaxPool", "mp", &["x"], &["y"], attrs)],
        vec![],
    );
    let reasons = unsupported_reasons(import_with(&m, "maxpool_dil", 1));
    println!("{reasons:?}");
    assert!(
        reasons[0].contains("node mp (#0): MaxPool (domain ai.onnx, opset 12)")
            && reasons[0].contains("dilations")
    );
}

#[test]
fn global_pools_reduce_the_whole_image() {
    let xs = [2, 3, 4, 5];
    let x = tensor(&xs, 7);
    for (op, is_max) in [("GlobalAveragePool", false), ("GlobalMaxPool", true)] {
        let m = model(
            17,
            &[("x", &xs)],
            &["y"],
            vec![NodeProto::new(op, "", &["x"], &["y"], vec![])],
            vec![],
        );
        let got = run(&import(&m, op).graph, std::slice::from_ref(&x));
        let want: Vec<f32> = x
            .data
            .chunks(20)
            .map(|c| {
                if is_max {
                    c.iter().fold(f32::MIN, |a, &v| a.max(v))
                } else {
                    c.iter().sum::<f32>() / 20.0
                }
            })
            .collect();
        check(
            op,
            &got,
            &Tensor {
                shape: vec![2, 3, 1, 1],
                data: want,
            },
            1e-6,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Normalization, activations, linear layers: hand-computed values

#[test]
fn batchnorm_uses_scale_bias_mean_var_and_epsilon() {
    let xs = [1, 3, 2, 2];
    let (s, bb, mean, var) = (
        [0.5f32, 2.0, -1.0],
        [0.1f32, 0.0, -0.3],
        [0.2f32, -0.5, 0.0],
        [1.0f32, 0.25, 4.0],
    );
    let init = |n: &str, v: &[f32]| TensorProto::float_raw(n, &[3], v);
    let node = NodeProto::new(
        "BatchNormalization",
        "bn",
        &["x", "s", "b", "m", "v"],
        &["y"],
        vec![A::float("epsilon", 1e-3)],
    );
    let m = model(
        15,
        &[("x", &xs)],
        &["y"],
        vec![node],
        vec![
            init("s", &s),
            init("b", &bb),
            init("m", &mean),
            init("v", &var),
        ],
    );
    let x = tensor(&xs, 8);
    let got = run(&import(&m, "bn").graph, std::slice::from_ref(&x));
    let want = x.data.iter().enumerate().map(|(i, &v)| {
        let c = i / 4;
        (v - mean[c]) / (var[c] + 1e-3).sqrt() * s[c] + bb[c]
    });
    check(
        "batchnorm",
        &got,
        &Tensor {
            shape: xs.to_vec(),
            data: want.collect(),
        },
        1e-6,
    );
}

fn unary_model(
    op: &str,
    opset: i64,
    inputs: &[&str],
    attrs: Vec<A>,
    inits: Vec<TensorProto>,
) -> ModelProto {
    model(
        opset,
        &[("x", &[2, 8])],
        &["y"],
        vec![NodeProto::new(op, "", inputs, &["y"], attrs)],
        inits,
    )
}

fn check_unary(test: &str, m: &ModelProto, f: impl Fn(f32) -> f32) {
    let x = Tensor {
        shape: vec![2, 8],
        data: values(16, 9).iter().map(|v| v * 8.0).collect(),
    };
    let got = run(&import(m, test).graph, std::slice::from_ref(&x));
    check(
        test,
        &got,
        &Tensor {
            shape: vec![2, 8],
            data: x.data.iter().map(|&v| f(v)).collect(),
        },
        1e-6,
    );
}

#[test]
fn clip_attribute_form_before_opset11_and_input_form_after() {
    check_unary(
        "clip_attr",
        &unary_model(
            "Clip",
            10,
            &["x"],
            vec![A::float("min", -1.5), A::float("max", 2.0)],
            vec![],
        ),
        |v| v.clamp(-1.5, 2.0),
    );
    let (lo, hi) = (
        TensorProto::float_raw("lo", &[], &[-0.5]),
        TensorProto::float_raw("hi", &[], &[6.0]),
    );
    check_unary(
        "clip_inputs",
        &unary_model("Clip", 13, &["x", "lo", "hi"], vec![], vec![lo, hi.clone()]),
        |v| v.clamp(-0.5, 6.0),
    );
    check_unary(
        "clip_max_only",
        &unary_model("Clip", 13, &["x", "", "hi"], vec![], vec![hi]),
        |v| v.min(6.0),
    );
    let relu6 = unary_model(
        "Clip",
        11,
        &["x", "z", "six"],
        vec![],
        vec![
            TensorProto::float_raw("z", &[], &[0.0]),
            TensorProto::float_raw("six", &[], &[6.0]),
        ],
    );
    assert_eq!(
        import(&relu6, "relu6").graph.nodes[0].op,
        Op::Act(Activation::RELU6)
    );
}

#[test]
fn activations_hardsigmoid_alpha_beta_hardswish_sigmoid_tanh_relu() {
    let hs = unary_model(
        "HardSigmoid",
        6 + 11,
        &["x"],
        vec![A::float("alpha", 0.25), A::float("beta", 0.4)],
        vec![],
    );
    check_unary("hardsigmoid", &hs, |v| (0.25 * v + 0.4).clamp(0.0, 1.0));
    check_unary(
        "hardsigmoid_default",
        &unary_model("HardSigmoid", 9, &["x"], vec![], vec![]),
        |v| (0.2 * v + 0.5).clamp(0.0, 1.0),
    );
    check_unary(
        "hardswish",
        &unary_model("HardSwish", 14, &["x"], vec![], vec![]),
        |v| v * ((v + 3.0).clamp(0.0, 6.0) / 6.0),
    );
    check_unary(
        "sigmoid",
        &unary_model("Sigmoid", 13, &["x"], vec![], vec![]),
        |v| 1.0 / (1.0 + (-v).exp()),
    );
    check_unary(
        "tanh",
        &unary_model("Tanh", 13, &["x"], vec![], vec![]),
        f32::tanh,
    );
    check_unary(
        "relu",
        &unary_model("Relu", 14, &["x"], vec![], vec![]),
        |v| v.max(0.0),
    );
}

/// Reference `alpha * A op(B) + beta * C` for row-major matrices.
fn gemm_ref(
    a: &Tensor,
    b: &[f32],
    [k, n]: [usize; 2],
    trans_b: bool,
    [alpha, beta]: [f32; 2],
    c: &dyn Fn(usize, usize) -> f32,
) -> Tensor {
    let m = a.shape[0];
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let dot: f32 = (0..k)
                .map(|p| a.data[i * k + p] * if trans_b { b[j * k + p] } else { b[p * n + j] })
                .sum();
            out[i * n + j] = alpha * dot + beta * c(i, j);
        }
    }
    Tensor {
        shape: vec![m, n],
        data: out,
    }
}

#[test]
fn gemm_transb_alpha_beta_and_bias_forms() {
    let (m_, k, n) = (3, 5, 4);
    let a = tensor(&[m_, k], 10);
    let b = values(k * n, 11);
    let c = values(n, 12);
    // (name, transB, alpha, beta, dims of C)
    type Case = (&'static str, bool, f32, f32, Option<Vec<i64>>);
    let cases: Vec<Case> = vec![
        ("transB1_bias_vector", true, 1.0, 1.0, Some(vec![n as i64])),
        (
            "transB0_alpha_beta_row",
            false,
            0.5,
            2.0,
            Some(vec![1, n as i64]),
        ),
        ("transB1_scalar_c", true, 1.5, -1.0, Some(vec![])),
        ("transB0_no_c", false, 1.0, 1.0, None),
    ];
    for (name, tb, alpha, beta, cdims) in cases {
        let bdims = if tb {
            vec![n as i64, k as i64]
        } else {
            vec![k as i64, n as i64]
        };
        let mut inits = vec![TensorProto::float_raw("B", &bdims, &b)];
        let mut ins = vec!["a", "B"];
        let cvals = cdims
            .as_ref()
            .map(|d| if d.is_empty() { vec![c[0]] } else { c.clone() });
        if let (Some(d), Some(v)) = (&cdims, &cvals) {
            inits.push(TensorProto::float_raw("C", d, v));
            ins.push("C");
        }
        let attrs = vec![
            A::int("transB", tb as i64),
            A::float("alpha", alpha),
            A::float("beta", beta),
        ];
        let mdl = model(
            13,
            &[("a", &[m_, k])],
            &["y"],
            vec![NodeProto::new("Gemm", name, &ins, &["y"], attrs)],
            inits,
        );
        let got = import(&mdl, name);
        assert!(
            matches!(got.graph.nodes[0].op, Op::Linear { .. }),
            "{name}: {:?}",
            got.graph.nodes[0].op
        );
        let cf = |_: usize, j: usize| {
            cvals
                .as_ref()
                .map_or(0.0, |v| if v.len() == 1 { v[0] } else { v[j] })
        };
        let want = gemm_ref(&a, &b, [k, n], tb, [alpha, beta], &cf);
        check(
            name,
            &run(&got.graph, std::slice::from_ref(&a)),
            &want,
            1e-5,
        );
    }
}

#[test]
fn gemm_with_transposed_runtime_a_is_unsupported() {
    let m = model(
        13,
        &[("a", &[5, 3])],
        &["y"],
        vec![NodeProto::new(
            "Gemm",
            "g",
            &["a", "B"],
            &["y"],
            vec![A::int("transA", 1)],
        )],
        vec![TensorProto::float_raw("B", &[5, 2], &values(10, 1))],
    );
    let reasons = unsupported_reasons(import_with(&m, "gemm_ta", 1));
    assert!(reasons[0].contains("transA"), "{reasons:?}");
}

#[test]
fn matmul_by_constant_is_linear_without_bias() {
    let a = tensor(&[2, 6], 13);
    let b = values(18, 14);
    let m = model(
        13,
        &[("a", &[2, 6])],
        &["y"],
        vec![NodeProto::new("MatMul", "mm", &["a", "B"], &["y"], vec![])],
        vec![TensorProto::float_raw("B", &[6, 3], &b)],
    );
    let got = import(&m, "matmul");
    assert_eq!(
        got.graph.nodes[0].op,
        Op::Linear {
            bias: false,
            act: Activation::Identity
        }
    );
    check(
        "matmul",
        &run(&got.graph, std::slice::from_ref(&a)),
        &gemm_ref(&a, &b, [6, 3], false, [1.0, 0.0], &|_, _| 0.0),
        1e-5,
    );
}

/// PyTorch exports `nn.PReLU(C)` as `PRelu(x, slope [C, 1, 1])`: one slope per channel.
#[test]
fn prelu_per_channel_slopes_and_single_slope() {
    let x = Tensor {
        shape: vec![2, 3, 4, 5],
        data: values(120, 5).iter().map(|v| v * 4.0).collect(),
    };
    for (test, slope_shape) in [("prelu_c11", vec![3usize, 1, 1]), ("prelu_1", vec![1])] {
        let slope = values(slope_shape.iter().product(), 6);
        let m = model(
            16,
            &[("x", &[2, 3, 4, 5])],
            &["y"],
            vec![NodeProto::new("PRelu", "", &["x", "s"], &["y"], vec![])],
            vec![TensorProto::float_raw("s", &dims(&slope_shape), &slope)],
        );
        let got = import(&m, test);
        assert!(
            matches!(got.graph.nodes[0].op, Op::PRelu),
            "{test}: one PRelu node"
        );
        let want: Vec<f32> = x
            .data
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let a = slope[if slope.len() == 1 { 0 } else { (i / 20) % 3 }];
                if v >= 0.0 { v } else { a * v }
            })
            .collect();
        check(
            test,
            &run(&got.graph, std::slice::from_ref(&x)),
            &Tensor::new(&x.shape, want).expect("shape"),
            0.0,
        );
    }
    // Slopes along W ([5]) are numpy-legal but not PyTorch's PReLU: refused with a reason.
    let m = model(
        16,
        &[("x", &[2, 3, 4, 5])],
        &["y"],
        vec![NodeProto::new("PRelu", "", &["x", "s"], &["y"], vec![])],
        vec![TensorProto::float_raw("s", &[5], &values(5, 7))],
    );
    let reasons = unsupported_reasons(import_with(&m, "prelu_w", 1));
    assert!(
        reasons.iter().any(|r| r.contains("per channel")),
        "{reasons:?}"
    );
}
