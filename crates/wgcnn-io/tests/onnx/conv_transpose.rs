//! ConvTranspose: the spec's worked example, every padding form (`pads`, `output_shape`,
//! `auto_pad`) against a directly built graph, and what is refused.

use super::*;
use wgcnn_graph::ConvTranspose2d;

/// ConvTranspose of x `xs` by w `ws` with `attrs`, compared with an IR transposed conv `want`
/// (weights and bias as constants of the same values).
fn transpose_case(
    test: &str,
    xs: [usize; 4],
    ws: [usize; 4],
    attrs: Vec<A>,
    want: ConvTranspose2d,
) {
    let n: usize = ws.iter().product();
    let (w, bias) = (values(n, 7), values(ws[1] * want.groups, 8));
    let names: &[&str] = if want.bias {
        &["x", "w", "b"]
    } else {
        &["x", "w"]
    };
    let mut inits = vec![TensorProto::float_raw("w", &dims(&ws), &w)];
    if want.bias {
        inits.push(TensorProto::float_raw("b", &[bias.len() as i64], &bias));
    }
    let m = model(
        17,
        &[("x", &xs)],
        &["y"],
        vec![NodeProto::new("ConvTranspose", "up", names, &["y"], attrs)],
        inits,
    );
    let mut b = GraphBuilder::new();
    let x = b.input("x", &xs);
    let mut ins = vec![x, b.constant("w", &ws, w).expect("w")];
    if want.bias {
        ins.push(b.constant("b", &[bias.len()], bias).expect("b"));
    }
    let y = b
        .node("up", Op::ConvTranspose2d(want.clone()), &ins)
        .expect("node");
    b.output(y);
    let got = check_against_builder(test, &m, b.finish(), &tensor(&xs, 9));
    assert_eq!(got.graph.nodes[0].op, Op::ConvTranspose2d(want));
}

#[test]
fn conv_transpose_reproduces_the_onnx_spec_example() {
    // onnx's `convtranspose` example: x = 0..9 as 1x1x3x3, w = ones 1x2x3x3, no padding.
    let xs = [1, 1, 3, 3];
    let x: Vec<f32> = (0..9).map(|v| v as f32).collect();
    let m = model(
        11,
        &[("x", &xs)],
        &["y"],
        vec![NodeProto::new(
            "ConvTranspose",
            "",
            &["x", "w"],
            &["y"],
            vec![],
        )],
        vec![TensorProto::float_raw("w", &[1, 2, 3, 3], &[1.0; 18])],
    );
    let got = import(&m, "convtranspose_example");
    let y = run(&got.graph, &[Tensor::new(&xs, x).expect("x")]);
    #[rustfmt::skip]
    let plane = [
        0.0, 1.0, 3.0, 3.0, 2.0,
        3.0, 8.0, 15.0, 12.0, 7.0,
        9.0, 21.0, 36.0, 27.0, 15.0,
        9.0, 20.0, 33.0, 24.0, 13.0,
        6.0, 13.0, 21.0, 15.0, 8.0,
    ];
    assert_eq!(y.shape, [1, 2, 5, 5]);
    assert_eq!(y.data, [plane, plane].concat());
}

#[test]
fn conv_transpose_pads_output_padding_groups_dilations_and_bias() {
    let attrs = vec![
        A::ints("strides", &[3, 2]),
        A::ints("pads", &[1, 0, 2, 1]),
        A::ints("output_padding", &[1, 1]),
        A::ints("dilations", &[2, 1]),
        A::int("group", 2),
        A::ints("kernel_shape", &[3, 2]),
    ];
    let want = ConvTranspose2d {
        stride: [3, 2],
        padding: [1, 0, 2, 1],
        output_padding: [1, 1],
        dilation: [2, 1],
        groups: 2,
        bias: true,
        act: Activation::Identity,
    };
    transpose_case(
        "convtranspose_pads",
        [1, 4, 5, 6],
        [4, 3, 3, 2],
        attrs,
        want,
    );
}

#[test]
fn conv_transpose_output_shape_sets_pads_with_the_odd_pixel_at_the_start() {
    // Full extent (4-1)*2 + 3 = 9 along both axes; output_shape [8, 6] leaves totals 1 and 3,
    // split total - total/2 at the start (the spec's rule without SAME_UPPER).
    let attrs = vec![
        A::ints("strides", &[2, 2]),
        A::ints("output_shape", &[8, 6]),
    ];
    let want = ConvTranspose2d {
        padding: [1, 2, 0, 1],
        ..ConvTranspose2d::new(2, 0, 1, false)
    };
    transpose_case(
        "convtranspose_output_shape",
        [1, 2, 4, 4],
        [2, 3, 3, 3],
        attrs,
        want,
    );
}

#[test]
fn conv_transpose_auto_pad_same_upper_and_lower_give_input_times_stride() {
    // Output 4*2 = 8 of a full 9: total 1, at the end for SAME_UPPER, the start for SAME_LOWER.
    for (mode, padding) in [("SAME_UPPER", [0, 0, 1, 1]), ("SAME_LOWER", [1, 1, 0, 0])] {
        let attrs = vec![A::ints("strides", &[2, 2]), A::string("auto_pad", mode)];
        let want = ConvTranspose2d {
            padding,
            ..ConvTranspose2d::new(2, 0, 1, true)
        };
        transpose_case(mode, [2, 2, 4, 4], [2, 3, 3, 3], attrs, want);
    }
}

#[test]
fn conv_transpose_output_shape_beyond_the_full_extent_is_unsupported() {
    let attrs = vec![A::ints("output_shape", &[12, 12])];
    let m = model(
        17,
        &[("x", &[1, 1, 3, 3])],
        &["y"],
        vec![NodeProto::new(
            "ConvTranspose",
            "up",
            &["x", "w"],
            &["y"],
            attrs,
        )],
        vec![TensorProto::float_raw("w", &[1, 1, 3, 3], &[1.0; 9])],
    );
    let reasons = unsupported_reasons(import_with(&m, "convtranspose_too_big", 1));
    println!("{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("beyond the full transposed extent")),
        "{reasons:?}"
    );
}
