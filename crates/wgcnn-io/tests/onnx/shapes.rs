//! Shape and layout ops, element-wise arithmetic with constants, and constant folding.

use super::*;

// ---------------------------------------------------------------------------------------------
// Shape and layout ops

fn shape_only(
    test: &str,
    opset: i64,
    xs: &[usize],
    node: NodeProto,
    inits: Vec<TensorProto>,
) -> (OnnxModel, Tensor, Tensor) {
    let m = model(opset, &[("x", xs)], &["y"], vec![node], inits);
    let got = import(&m, test);
    let x = tensor(xs, 15);
    let y = run(&got.graph, std::slice::from_ref(&x));
    (got, x, y)
}

#[test]
fn reshape_zero_copies_a_dim_and_minus_one_infers() {
    let node = NodeProto::new("Reshape", "r", &["x", "s"], &["y"], vec![]);
    let (_, x, y) = shape_only(
        "reshape",
        13,
        &[1, 4, 3, 2],
        node,
        vec![TensorProto::int64s("s", &[3], &[0, -1, 2])],
    );
    assert_eq!(y.shape, [1, 12, 2]);
    assert_eq!(y.data, x.data);
    let node = NodeProto::new(
        "Reshape",
        "r",
        &["x", "s"],
        &["y"],
        vec![A::int("allowzero", 0)],
    );
    let (_, _, y) = shape_only(
        "reshape_keep",
        14,
        &[2, 3, 4],
        node,
        vec![TensorProto::int64s("s", &[3], &[-1, 0, 1])],
    );
    assert_eq!(y.shape, [8, 3, 1]);
}

#[test]
fn flatten_axis_positive_negative_and_zero() {
    for (axis, want) in [
        (2i64, [6usize, 20]),
        (-1, [24, 5]),
        (0, [1, 120]),
        (4, [120, 1]),
    ] {
        let node = NodeProto::new("Flatten", "f", &["x"], &["y"], vec![A::int("axis", axis)]);
        let (_, x, y) = shape_only(&format!("flatten{axis}"), 13, &[2, 3, 4, 5], node, vec![]);
        println!("flatten axis {axis}: {:?}", y.shape);
        assert_eq!(y.shape, want);
        assert_eq!(y.data, x.data);
    }
}

fn softmax_ref(x: &[f32], group: usize, stride: usize) -> Vec<f32> {
    // Softmax over `group` elements spaced `stride` apart, for every starting offset.
    let mut out = x.to_vec();
    let blocks = x.len() / (group * stride);
    for b in 0..blocks {
        for s in 0..stride {
            let idx: Vec<usize> = (0..group)
                .map(|g| b * group * stride + g * stride + s)
                .collect();
            let mx = idx.iter().fold(f32::MIN, |a, &i| a.max(x[i]));
            let sum: f32 = idx.iter().map(|&i| (x[i] - mx).exp()).sum();
            idx.iter().for_each(|&i| out[i] = (x[i] - mx).exp() / sum);
        }
    }
    out
}

#[test]
fn softmax_axis_opset13_and_coerced_2d_before_opset13() {
    let node = |attrs| NodeProto::new("Softmax", "sm", &["x"], &["y"], attrs);
    let (_, x, y) = shape_only(
        "softmax13_axis1",
        13,
        &[2, 3, 4],
        node(vec![A::int("axis", 1)]),
        vec![],
    );
    check(
        "softmax opset 13 axis 1",
        &y,
        &Tensor {
            shape: vec![2, 3, 4],
            data: softmax_ref(&x.data, 3, 4),
        },
        1e-6,
    );
    let (_, x, y) = shape_only("softmax13_default", 13, &[2, 3, 4], node(vec![]), vec![]);
    check(
        "softmax opset 13 default (last)",
        &y,
        &Tensor {
            shape: vec![2, 3, 4],
            data: softmax_ref(&x.data, 4, 1),
        },
        1e-6,
    );
    let (m, x, y) = shape_only("softmax11_2d", 11, &[2, 5], node(vec![]), vec![]);
    assert_eq!(
        m.graph.nodes.len(),
        1,
        "a 2-D softmax over axis 1 maps directly"
    );
    check(
        "softmax opset 11 2-D",
        &y,
        &Tensor {
            shape: vec![2, 5],
            data: softmax_ref(&x.data, 5, 1),
        },
        1e-6,
    );
    let (_, x, y) = shape_only(
        "softmax11_3d",
        11,
        &[2, 3, 4],
        node(vec![A::int("axis", 1)]),
        vec![],
    );
    check(
        "softmax opset 11 axis 1 over [3,4] flattened",
        &y,
        &Tensor {
            shape: vec![2, 3, 4],
            data: softmax_ref(&x.data, 12, 1),
        },
        1e-6,
    );
}

fn pad_ref(x: &Tensor, p: [usize; 4], value: f32) -> Tensor {
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let (oh, ow) = (h + p[0] + p[2], w + p[1] + p[3]);
    let mut out = vec![value; n * c * oh * ow];
    for nc in 0..n * c {
        for i in 0..h {
            for j in 0..w {
                out[(nc * oh + i + p[0]) * ow + j + p[1]] = x.data[(nc * h + i) * w + j];
            }
        }
    }
    Tensor {
        shape: vec![n, c, oh, ow],
        data: out,
    }
}

#[test]
fn pad_input_form_opset11_and_attribute_form_before() {
    let xs = [1, 2, 3, 4];
    let pads = [0i64, 0, 1, 2, 0, 0, 3, 1];
    let node = NodeProto::new(
        "Pad",
        "pad",
        &["x", "p", "v"],
        &["y"],
        vec![A::string("mode", "constant")],
    );
    let inits = vec![
        TensorProto::int64s("p", &[8], &pads),
        TensorProto::float_raw("v", &[], &[0.5]),
    ];
    let (_, x, y) = shape_only("pad_inputs", 13, &xs, node, inits);
    check("pad inputs", &y, &pad_ref(&x, [1, 2, 3, 1], 0.5), 0.0);
    let node = NodeProto::new(
        "Pad",
        "pad",
        &["x"],
        &["y"],
        vec![A::ints("pads", &pads), A::float("value", -2.0)],
    );
    let (_, x, y) = shape_only("pad_attrs", 9, &xs, node, vec![]);
    check("pad attributes", &y, &pad_ref(&x, [1, 2, 3, 1], -2.0), 0.0);
    let node = NodeProto::new("Pad", "pad", &["x", "p", "", "axes"], &["y"], vec![]);
    let inits = vec![
        TensorProto::int64s("p", &[4], &[1, 0, 0, 2]),
        TensorProto::int64s("axes", &[2], &[2, -1]),
    ];
    let (_, x, y) = shape_only("pad_axes", 18, &xs, node, inits);
    check(
        "pad axes opset 18",
        &y,
        &pad_ref(&x, [1, 0, 0, 2], 0.0),
        0.0,
    );
    let m = model(
        13,
        &[("x", &xs)],
        &["y"],
        vec![NodeProto::new(
            "Pad",
            "pad",
            &["x", "p"],
            &["y"],
            vec![A::string("mode", "reflect")],
        )],
        vec![TensorProto::int64s("p", &[8], &pads)],
    );
    assert!(unsupported_reasons(import_with(&m, "pad_reflect", 1))[0].contains("reflect"));
}

#[test]
fn shape_gather_unsqueeze_concat_reshape_chain_folds_with_symbolic_batch() {
    let nodes = vec![
        NodeProto::new("Shape", "shape", &["x"], &["s"], vec![]),
        NodeProto::new(
            "Constant",
            "zero",
            &[],
            &["i0"],
            vec![A::tensor("value", TensorProto::int64s("", &[], &[0]))],
        ),
        NodeProto::new(
            "Gather",
            "gather",
            &["s", "i0"],
            &["n"],
            vec![A::int("axis", 0)],
        ),
        NodeProto::new(
            "Constant",
            "ax",
            &[],
            &["axes"],
            vec![A::ints("value_ints", &[0])],
        ),
        NodeProto::new("Unsqueeze", "unsq", &["n", "axes"], &["n1"], vec![]),
        NodeProto::new(
            "Constant",
            "m1",
            &[],
            &["minus1"],
            vec![A::tensor("value", TensorProto::int64s("", &[1], &[-1]))],
        ),
        NodeProto::new(
            "Concat",
            "cat",
            &["n1", "minus1"],
            &["target"],
            vec![A::int("axis", 0)],
        ),
        NodeProto::new(
            "Cast",
            "cast",
            &["target"],
            &["target64"],
            vec![A::int("to", data_type::INT64 as i64)],
        ),
        NodeProto::new("Reshape", "reshape", &["x", "target64"], &["y"], vec![]),
    ];
    let mut m = model(13, &[], &["y"], nodes, vec![]);
    if let Some(g) = m.graph.as_mut() {
        g.input = vec![ValueInfoProto::tensor(
            "x",
            data_type::FLOAT,
            &[None, Some(2), Some(3), Some(4)],
        )];
    }
    for batch in [1, 3] {
        let got =
            import_with(&m, &format!("chain{batch}"), batch).unwrap_or_else(|e| panic!("{e}"));
        let ops: Vec<&str> = got.graph.nodes.iter().map(|n| n.op.kind()).collect();
        println!(
            "batch {batch}: input {:?}, nodes {ops:?}, output {:?}",
            got.inputs[0].shape, got.outputs[0].shape
        );
        assert_eq!(ops, ["reshape"], "the shape chain folds to one reshape");
        assert_eq!(got.outputs[0].shape, [batch, 24]);
        let x = tensor(&[batch, 2, 3, 4], 16);
        assert_eq!(run(&got.graph, std::slice::from_ref(&x)).data, x.data);
    }
}

#[test]
fn add_mul_sub_div_sum_with_constants_and_broadcasts() {
    let xs = [1, 3, 2, 2];
    let ch = [0.5f32, -1.0, 2.0];
    let nodes = vec![
        NodeProto::new("Mul", "scale", &["c", "x"], &["a"], vec![]),
        NodeProto::new("Add", "shift", &["a", "two"], &["b"], vec![]),
        NodeProto::new("Sub", "sub", &["b", "c"], &["d"], vec![]),
        NodeProto::new("Div", "div", &["d", "four"], &["e"], vec![]),
        NodeProto::new("Sub", "rsub", &["two", "e"], &["f"], vec![]),
        NodeProto::new("Sum", "sum", &["f", "x", "c"], &["y"], vec![]),
    ];
    let inits = vec![
        TensorProto::float_raw("c", &[1, 3, 1, 1], &ch),
        TensorProto::float_raw("two", &[], &[2.0]),
        TensorProto {
            double_data: vec![4.0],
            ..TensorProto {
                data_type: data_type::DOUBLE,
                name: "four".into(),
                ..Default::default()
            }
        },
    ];
    let m = model(13, &[("x", &xs)], &["y"], nodes, inits);
    let x = tensor(&xs, 17);
    let got = run(&import(&m, "arith").graph, std::slice::from_ref(&x));
    let want = x.data.iter().enumerate().map(|(i, &v)| {
        let c = ch[i / 4];
        let e = (c * v + 2.0 - c) / 4.0;
        (2.0 - e) + v + c
    });
    check(
        "arith",
        &got,
        &Tensor {
            shape: xs.to_vec(),
            data: want.collect(),
        },
        1e-6,
    );
}

#[test]
fn concat_of_branches_odd_lrn_and_size1_transpose() {
    let xs = [1, 3, 4, 4];
    let nodes = vec![
        NodeProto::new("Relu", "r", &["x"], &["a"], vec![]),
        NodeProto::new(
            "Concat",
            "cat",
            &["x", "a"],
            &["b"],
            vec![A::int("axis", -3)],
        ),
        NodeProto::new(
            "LRN",
            "lrn",
            &["b"],
            &["c"],
            vec![
                A::int("size", 3),
                A::float("alpha", 0.1),
                A::float("beta", 0.5),
                A::float("bias", 2.0),
            ],
        ),
        NodeProto::new("GlobalAveragePool", "gap", &["c"], &["d"], vec![]),
        NodeProto::new(
            "Transpose",
            "t",
            &["d"],
            &["y"],
            vec![A::ints("perm", &[0, 2, 3, 1])],
        ),
    ];
    let m = model(13, &[("x", &xs)], &["y"], nodes, vec![]);
    let x = tensor(&xs, 18);
    let got = run(&import(&m, "cat_lrn").graph, std::slice::from_ref(&x));
    let mut b: Vec<f32> = x.data.clone();
    b.extend(x.data.iter().map(|v| v.max(0.0)));
    let (c, hw) = (6, 16);
    let mut want = vec![0.0; c];
    for ch in 0..c {
        for p in 0..hw {
            let lo = ch.saturating_sub(1);
            let hi = (ch + 1).min(c - 1);
            let sq: f32 = (lo..=hi).map(|k| b[k * hw + p].powi(2)).sum();
            want[ch] += b[ch * hw + p] / (2.0 + 0.1 / 3.0 * sq).sqrt() / hw as f32;
        }
    }
    check(
        "concat+lrn+gap+transpose",
        &got,
        &Tensor {
            shape: vec![1, 1, 1, 6],
            data: want,
        },
        1e-5,
    );
}

#[test]
fn lrn_even_size_is_unsupported() {
    let nodes = vec![NodeProto::new(
        "LRN",
        "lrn_even",
        &["x"],
        &["y"],
        vec![A::int("size", 4)],
    )];
    let m = model(13, &[("x", &[1, 3, 4, 4])], &["y"], nodes, vec![]);
    let reasons = unsupported_reasons(import_with(&m, "lrn_even", 1));
    println!("{}", reasons.join("\n"));
    assert!(
        reasons[0].contains("node lrn_even (#0): LRN") && reasons[0].contains("size 4 is even")
    );
}

#[test]
fn reduce_mean_spatial_then_unsqueeze_and_squeeze_are_pool_and_reshapes() {
    let xs = [1, 3, 4, 4];
    let nodes = vec![
        NodeProto::new(
            "ReduceMean",
            "mean",
            &["x"],
            &["m"],
            vec![A::ints("axes", &[-1, 2]), A::int("keepdims", 0)],
        ),
        NodeProto::new("Unsqueeze", "unsq", &["m", "ax"], &["u"], vec![]),
        NodeProto::new("Squeeze", "sq", &["u"], &["y"], vec![]),
    ];
    let m = model(
        13,
        &[("x", &xs)],
        &["y"],
        nodes,
        vec![TensorProto::int64s("ax", &[1], &[2])],
    );
    let got = import(&m, "reduce_mean");
    let ops: Vec<&str> = got.graph.nodes.iter().map(|n| n.op.kind()).collect();
    println!("nodes {ops:?}, output {:?}", got.outputs[0].shape);
    assert_eq!(ops, ["adaptive_avgpool2d", "reshape", "reshape", "reshape"]);
    let x = tensor(&xs, 20);
    let want: Vec<f32> = x
        .data
        .chunks(16)
        .map(|c| c.iter().sum::<f32>() / 16.0)
        .collect();
    check(
        "reducemean+unsqueeze+squeeze",
        &run(&got.graph, std::slice::from_ref(&x)),
        &Tensor {
            shape: vec![3],
            data: want,
        },
        1e-6,
    );
}
