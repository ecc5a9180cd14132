//! Transpose → Permute (with constant folding and axis merging above rank 6), and
//! Resize / Upsample → the IR's resize: each accepted form against a directly built graph and
//! an independent f64 evaluation of ONNX's formulas, each refused combination named.

use super::*;
use wgcnn_graph::ResizeMode;

// ---------------------------------------------------------------------------------------------
// Transpose

fn permute_graph(xs: &[usize], perm: &[usize]) -> Graph {
    let mut b = GraphBuilder::new();
    let x = b.input("x", xs);
    let y = b
        .node(
            "t",
            Op::Permute {
                perm: perm.to_vec(),
            },
            &[x],
        )
        .expect("permute");
    b.output(y);
    b.finish()
}

fn op_kinds(m: &OnnxModel) -> Vec<&'static str> {
    m.graph.nodes.iter().map(|n| n.op.kind()).collect()
}

#[test]
fn transpose_nchw_to_nhwc_and_back_is_two_permutes_round_trip() {
    let xs = [2, 3, 4, 5];
    let x = tensor(&xs, 31);
    // NCHW → NHWC alone, against the builder and by hand.
    let to_nhwc = NodeProto::new(
        "Transpose",
        "t",
        &["x"],
        &["y"],
        vec![A::ints("perm", &[0, 2, 3, 1])],
    );
    let m = model(13, &[("x", &xs)], &["y"], vec![to_nhwc.clone()], vec![]);
    let got = check_against_builder("transpose_nhwc", &m, permute_graph(&xs, &[0, 2, 3, 1]), &x);
    assert_eq!(op_kinds(&got), ["permute"]);
    let y = run(&got.graph, std::slice::from_ref(&x));
    assert_eq!(y.shape, [2, 4, 5, 3]);
    let at = |n: usize, c: usize, h: usize, w: usize| x.data[((n * 3 + c) * 4 + h) * 5 + w];
    for (i, &v) in y.data.iter().enumerate() {
        let (n, h, w, c) = (i / 60, i / 15 % 4, i / 3 % 5, i % 3);
        assert_eq!(v, at(n, c, h, w), "NHWC element {i}");
    }
    // NHWC → NCHW (perm [0, 3, 1, 2]) after it gives x back exactly.
    let back = NodeProto::new(
        "Transpose",
        "back",
        &["y"],
        &["z"],
        vec![A::ints("perm", &[0, 3, 1, 2])],
    );
    let m = model(13, &[("x", &xs)], &["z"], vec![to_nhwc, back], vec![]);
    let got = import(&m, "transpose_round_trip");
    assert_eq!(op_kinds(&got), ["permute", "permute"]);
    check(
        "NCHW → NHWC → NCHW",
        &run(&got.graph, std::slice::from_ref(&x)),
        &x,
        0.0,
    );
}

#[test]
fn transpose_of_a_constant_is_folded_at_import() {
    // y = x [3, 2] + Transpose(c [2, 3]) with the default (reversed) permutation.
    let c = values(6, 32);
    let nodes = vec![
        NodeProto::new("Transpose", "tc", &["c"], &["ct"], vec![]),
        NodeProto::new("Add", "add", &["x", "ct"], &["y"], vec![]),
    ];
    let m = model(
        13,
        &[("x", &[3, 2])],
        &["y"],
        nodes,
        vec![TensorProto::float_raw("c", &[2, 3], &c)],
    );
    let got = import(&m, "transpose_const");
    println!("nodes {:?}", op_kinds(&got));
    assert_eq!(op_kinds(&got), ["add"]);
    let x = tensor(&[3, 2], 33);
    let want = Tensor {
        shape: vec![3, 2],
        data: (0..6).map(|i| x.data[i] + c[(i % 2) * 3 + i / 2]).collect(),
    };
    check(
        "x + transpose(c)",
        &run(&got.graph, std::slice::from_ref(&x)),
        &want,
        0.0,
    );
}

#[test]
fn transpose_rank7_merges_neighbouring_axes_into_a_rank5_permute() {
    let xs = [2, 3, 2, 2, 3, 2, 2];
    let perm = [1, 2, 0, 3, 4, 6, 5];
    let node = NodeProto::new(
        "Transpose",
        "t7",
        &["x"],
        &["y"],
        vec![A::ints("perm", &dims(&perm))],
    );
    let m = model(13, &[("x", &xs)], &["y"], vec![node], vec![]);
    let got = import(&m, "transpose_rank7");
    assert_eq!(op_kinds(&got), ["reshape", "permute", "reshape"]);
    assert_eq!(
        got.graph.nodes[1].op,
        Op::Permute {
            perm: vec![1, 0, 2, 4, 3]
        }
    );
    let x = tensor(&xs, 34);
    let want = interp::eval_op(
        &Op::Permute {
            perm: perm.to_vec(),
        },
        &[&x],
    )
    .expect("rank-7 permute");
    check(
        "rank-7 transpose",
        &run(&got.graph, std::slice::from_ref(&x)),
        &want,
        0.0,
    );
}

#[test]
fn transpose_rank7_reversal_is_unsupported() {
    let node = NodeProto::new("Transpose", "rev7", &["x"], &["y"], vec![]);
    let m = model(13, &[("x", &[2; 7])], &["y"], vec![node], vec![]);
    let reasons = unsupported_reasons(import_with(&m, "transpose_rev7", 1));
    println!("{}", reasons.join("\n"));
    assert!(reasons[0].contains("node rev7 (#0): Transpose") && reasons[0].contains("7 groups"));
}

// ---------------------------------------------------------------------------------------------
// Resize and Upsample: an independent evaluation of ONNX's formulas

/// ONNX's source coordinate of output pixel `d` along an axis.
fn onnx_coord(d: usize, input: usize, output: usize, scale: f64, coord: &str) -> f64 {
    let d = d as f64;
    match coord {
        "asymmetric" => d / scale,
        "half_pixel" => (d + 0.5) / scale - 0.5,
        "pytorch_half_pixel" if output > 1 => (d + 0.5) / scale - 0.5,
        "pytorch_half_pixel" => 0.0,
        "align_corners" if output > 1 => d * (input as f64 - 1.0) / (output as f64 - 1.0),
        "align_corners" => 0.0,
        other => panic!("no reference for {other}"),
    }
}

/// The taps `(index, weight)` of output pixel `d` along an axis.
fn onnx_taps(
    d: usize,
    input: usize,
    output: usize,
    scale: f64,
    mode: &str,
    coord: &str,
) -> Vec<(usize, f64)> {
    let x = onnx_coord(d, input, output, scale, coord);
    let last = input as f64 - 1.0;
    match mode {
        "floor" => vec![(x.floor().clamp(0.0, last) as usize, 1.0)],
        "round_prefer_floor" => vec![((x - 0.5).ceil().clamp(0.0, last) as usize, 1.0)],
        "linear" => {
            let x = x.clamp(0.0, last);
            let i0 = x.floor() as usize;
            let i1 = (i0 + 1).min(input - 1);
            vec![(i0, 1.0 - (x - i0 as f64)), (i1, x - i0 as f64)]
        }
        other => panic!("no reference for {other}"),
    }
}

/// ONNX Resize of an NCHW tensor over H and W in f64: `mode` is `floor` /
/// `round_prefer_floor` (nearest) or `linear`.
fn onnx_resize(x: &Tensor, out: [usize; 2], scale: [f64; 2], mode: &str, coord: &str) -> Tensor {
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let mut data = Vec::with_capacity(n * c * out[0] * out[1]);
    for plane in x.data.chunks(h * w) {
        for oy in 0..out[0] {
            let rows = onnx_taps(oy, h, out[0], scale[0], mode, coord);
            for ox in 0..out[1] {
                let cols = onnx_taps(ox, w, out[1], scale[1], mode, coord);
                let mut v = 0.0f64;
                for &(iy, wy) in &rows {
                    for &(ix, wx) in &cols {
                        v += wy * wx * f64::from(plane[iy * w + ix]);
                    }
                }
                data.push(v as f32);
            }
        }
    }
    Tensor {
        shape: vec![n, c, out[0], out[1]],
        data,
    }
}

fn resize_graph(xs: &[usize], size: [usize; 2], mode: ResizeMode) -> Graph {
    let mut b = GraphBuilder::new();
    let x = b.input("x", xs);
    let y = b
        .node("resize", Op::Resize { size, mode }, &[x])
        .expect("resize");
    b.output(y);
    b.finish()
}

fn strs(attrs: &[(&str, &str)]) -> Vec<A> {
    attrs.iter().map(|(k, v)| A::string(k, v)).collect()
}

/// Imports a one-node Resize/Upsample model, checks it against the builder graph
/// `Resize { size, mode }` exactly and against ONNX's formulas (`reference` = nearest rounding
/// or `linear`, `coord`) within `tol`.
#[allow(clippy::too_many_arguments)]
fn resize_case(
    test: &str,
    opset: i64,
    xs: &[usize],
    node: NodeProto,
    inits: Vec<TensorProto>,
    size: [usize; 2],
    mode: ResizeMode,
    reference: (&str, &str),
) {
    let m = model(opset, &[("x", xs)], &["y"], vec![node], inits);
    let x = tensor(xs, 40);
    let got = check_against_builder(test, &m, resize_graph(xs, size, mode), &x);
    assert_eq!(
        got.graph.nodes.last().map(|n| &n.op),
        Some(&Op::Resize { size, mode })
    );
    let scale = [size[0] as f64 / xs[2] as f64, size[1] as f64 / xs[3] as f64];
    check(
        &format!("{test} vs ONNX formulas"),
        &run(&got.graph, std::slice::from_ref(&x)),
        &onnx_resize(&x, size, scale, reference.0, reference.1),
        1e-6,
    );
}

/// PyTorch's `F.interpolate(scale_factor=2, mode="nearest")` export (opset 13).
fn pytorch_nearest_attrs() -> Vec<A> {
    let mut a = strs(&[
        ("coordinate_transformation_mode", "asymmetric"),
        ("mode", "nearest"),
        ("nearest_mode", "floor"),
    ]);
    a.push(A::float("cubic_coeff_a", -0.75));
    a
}

#[test]
fn resize_nearest_x2_scales_form_as_pytorch_exports_it() {
    let xs = [1, 2, 3, 5];
    let node = NodeProto::new(
        "Resize",
        "up",
        &["x", "", "scales"],
        &["y"],
        pytorch_nearest_attrs(),
    );
    let scales = TensorProto::float_raw("scales", &[4], &[1.0, 1.0, 2.0, 2.0]);
    resize_case(
        "resize_nearest_scales",
        13,
        &xs,
        node,
        vec![scales],
        [6, 10],
        ResizeMode::Nearest,
        ("floor", "asymmetric"),
    );
}

#[test]
fn resize_nearest_x2_sizes_form_with_folded_shape_arithmetic_opset11() {
    // F.interpolate(size=(8, 6)) at opset 11: empty roi and scales, sizes from
    // Concat(Slice(Shape(x), 0, 2), [8, 6]).
    let xs = [1, 3, 4, 3];
    let nodes = vec![
        NodeProto::new("Shape", "shape", &["x"], &["s"], vec![]),
        NodeProto::new("Slice", "nc", &["s", "zero", "two"], &["s01"], vec![]),
        NodeProto::new(
            "Concat",
            "sizes",
            &["s01", "hw"],
            &["sizes"],
            vec![A::int("axis", 0)],
        ),
        NodeProto::new(
            "Resize",
            "up",
            &["x", "roi", "scales", "sizes"],
            &["y"],
            pytorch_nearest_attrs(),
        ),
    ];
    let inits = vec![
        TensorProto::int64s("zero", &[1], &[0]),
        TensorProto::int64s("two", &[1], &[2]),
        TensorProto::int64s("hw", &[2], &[8, 6]),
        TensorProto::float_raw("roi", &[0], &[]),
        TensorProto::float_raw("scales", &[0], &[]),
    ];
    let m = model(11, &[("x", &xs)], &["y"], nodes, inits);
    let x = tensor(&xs, 41);
    let got = check_against_builder(
        "resize_nearest_sizes",
        &m,
        resize_graph(&xs, [8, 6], ResizeMode::Nearest),
        &x,
    );
    assert_eq!(op_kinds(&got), ["resize"]);
    // By hand: each pixel repeated 2 × 2.
    let y = run(&got.graph, std::slice::from_ref(&x));
    for (i, &v) in y.data.iter().enumerate() {
        let (p, oy, ox) = (i / 48, i / 6 % 8, i % 6);
        assert_eq!(v, x.data[p * 12 + oy / 2 * 3 + ox / 2], "element {i}");
    }
}

#[test]
fn resize_nearest_onnx_defaults_half_pixel_round_prefer_floor_at_whole_factors() {
    // ONNX's default sampling picks floor(dst / s) for whole upscale factors s.
    let xs = [1, 2, 3, 4];
    let node = NodeProto::new("Resize", "up", &["x", "", "scales"], &["y"], vec![]);
    let scales = TensorProto::float_raw("scales", &[4], &[1.0, 1.0, 3.0, 2.0]);
    resize_case(
        "resize_nearest_defaults",
        13,
        &xs,
        node,
        vec![scales],
        [9, 8],
        ResizeMode::Nearest,
        ("round_prefer_floor", "half_pixel"),
    );
}

#[test]
fn resize_nearest_non_integral_scale_accepted_when_pixels_agree() {
    // 5 × 1.5 → 7: asymmetric x / 1.5 and wgcnn's x · 5 / 7 pick the same pixels.
    let xs = [1, 1, 5, 4];
    let node = NodeProto::new(
        "Resize",
        "up",
        &["x", "", "scales"],
        &["y"],
        pytorch_nearest_attrs(),
    );
    let scales = TensorProto::float_raw("scales", &[4], &[1.0, 1.0, 1.5, 1.0]);
    let m = model(13, &[("x", &xs)], &["y"], vec![node], vec![scales]);
    let x = tensor(&xs, 42);
    let got = check_against_builder(
        "resize_nearest_1.5",
        &m,
        resize_graph(&xs, [7, 4], ResizeMode::Nearest),
        &x,
    );
    check(
        "resize_nearest_1.5 vs ONNX formulas",
        &run(&got.graph, std::slice::from_ref(&x)),
        &onnx_resize(&x, [7, 4], [1.5, 1.0], "floor", "asymmetric"),
        0.0,
    );
}

#[test]
fn resize_linear_half_pixel_x2_as_pytorch_bilinear_exports_it() {
    // F.interpolate(scale_factor=2, mode="bilinear", align_corners=False).
    let xs = [1, 2, 4, 3];
    let node = NodeProto::new(
        "Resize",
        "up",
        &["x", "", "scales"],
        &["y"],
        strs(&[
            ("coordinate_transformation_mode", "pytorch_half_pixel"),
            ("mode", "linear"),
            ("nearest_mode", "floor"),
        ]),
    );
    let scales = TensorProto::float_raw("scales", &[4], &[1.0, 1.0, 2.0, 2.0]);
    resize_case(
        "resize_linear_x2",
        13,
        &xs,
        node,
        vec![scales],
        [8, 6],
        ResizeMode::Bilinear {
            align_corners: false,
        },
        ("linear", "half_pixel"),
    );
}

#[test]
fn resize_linear_half_pixel_to_odd_sizes_up_and_down() {
    let xs = [1, 2, 4, 6];
    let node = NodeProto::new(
        "Resize",
        "odd",
        &["x", "", "", "sizes"],
        &["y"],
        strs(&[("mode", "linear")]),
    );
    let sizes = TensorProto::int64s("sizes", &[4], &[1, 2, 7, 3]);
    resize_case(
        "resize_linear_odd",
        13,
        &xs,
        node,
        vec![sizes],
        [7, 3],
        ResizeMode::Bilinear {
            align_corners: false,
        },
        ("linear", "half_pixel"),
    );
}

#[test]
fn resize_linear_align_corners_to_odd_sizes() {
    let xs = [2, 1, 4, 5];
    let node = NodeProto::new(
        "Resize",
        "ac",
        &["x", "", "", "sizes"],
        &["y"],
        strs(&[
            ("mode", "linear"),
            ("coordinate_transformation_mode", "align_corners"),
        ]),
    );
    let sizes = TensorProto::int64s("sizes", &[4], &[2, 1, 7, 9]);
    resize_case(
        "resize_align_corners",
        13,
        &xs,
        node,
        vec![sizes],
        [7, 9],
        ResizeMode::Bilinear {
            align_corners: true,
        },
        ("linear", "align_corners"),
    );
}

#[test]
fn resize_opset18_axes_and_keep_aspect_ratio_not_larger() {
    let xs = [1, 2, 4, 3];
    // scales over axes [3, 2] only.
    let node = NodeProto::new(
        "Resize",
        "axes",
        &["x", "", "scales"],
        &["y"],
        vec![A::ints("axes", &[-1, 2])],
    );
    let scales = TensorProto::float_raw("scales", &[2], &[3.0, 2.0]);
    resize_case(
        "resize_axes",
        18,
        &xs,
        node,
        vec![scales],
        [8, 9],
        ResizeMode::Nearest,
        ("round_prefer_floor", "half_pixel"),
    );
    // sizes [12, 6] on H, W with not_larger: scale min(3, 2) = 2 → [8, 6].
    let mut attrs = strs(&[
        ("keep_aspect_ratio_policy", "not_larger"),
        ("coordinate_transformation_mode", "asymmetric"),
        ("nearest_mode", "floor"),
    ]);
    attrs.push(A::ints("axes", &[2, 3]));
    let node = NodeProto::new("Resize", "keep", &["x", "", "", "sizes"], &["y"], attrs);
    let sizes = TensorProto::int64s("sizes", &[2], &[12, 6]);
    resize_case(
        "resize_not_larger",
        18,
        &xs,
        node,
        vec![sizes],
        [8, 6],
        ResizeMode::Nearest,
        ("floor", "asymmetric"),
    );
}

#[test]
fn resize_by_one_passes_the_input_through() {
    let node = NodeProto::new("Resize", "same", &["x", "", "scales"], &["y"], vec![]);
    let scales = TensorProto::float_raw("scales", &[4], &[1.0; 4]);
    let m = model(
        13,
        &[("x", &[1, 2, 3, 3])],
        &["y"],
        vec![node],
        vec![scales],
    );
    let got = import(&m, "resize_identity");
    assert!(got.graph.nodes.is_empty(), "nodes {:?}", op_kinds(&got));
    assert_eq!(got.outputs[0].shape, [1, 2, 3, 3]);
}

#[test]
fn upsample_opset9_input_and_opset7_attribute_and_resize_opset10() {
    let xs = [1, 2, 3, 2];
    let scales = || TensorProto::float_raw("scales", &[4], &[1.0, 1.0, 2.0, 3.0]);
    let up9 = NodeProto::new("Upsample", "up9", &["x", "scales"], &["y"], vec![]);
    resize_case(
        "upsample_opset9",
        9,
        &xs,
        up9,
        vec![scales()],
        [6, 6],
        ResizeMode::Nearest,
        ("floor", "asymmetric"),
    );
    let up7 = NodeProto::new(
        "Upsample",
        "up7",
        &["x"],
        &["y"],
        vec![
            A::string("mode", "nearest"),
            A::floats("scales", &[1.0, 1.0, 2.0, 3.0]),
        ],
    );
    resize_case(
        "upsample_opset7",
        7,
        &xs,
        up7,
        vec![],
        [6, 6],
        ResizeMode::Nearest,
        ("floor", "asymmetric"),
    );
    let r10 = NodeProto::new("Resize", "r10", &["x", "scales"], &["y"], vec![]);
    resize_case(
        "resize_opset10",
        10,
        &xs,
        r10,
        vec![scales()],
        [6, 6],
        ResizeMode::Nearest,
        ("floor", "asymmetric"),
    );
}

// ---------------------------------------------------------------------------------------------
// Refused combinations

#[test]
fn resize_combinations_wgcnn_cannot_match_are_unsupported_and_named() {
    let xs = [1, 2, 5, 4];
    let scales = |name: &str, s: [f32; 4]| TensorProto::float_raw(name, &[4], &s);
    let sizes = |name: &str, s: [i64; 4]| TensorProto::int64s(name, &[4], &s);
    let resize = |name: &str, inputs: &[&str], attrs: &[(&str, &str)]| {
        NodeProto::new("Resize", name, inputs, &[name], strs(attrs))
    };
    let mut antialias = resize("antialias", &["x", "", "s2"], &[("mode", "linear")]);
    antialias.attribute.push(A::int("antialias", 1));
    let cases: Vec<(NodeProto, &str)> = vec![
        (
            resize("cubic", &["x", "", "s2"], &[("mode", "cubic")]),
            "mode \"cubic\"",
        ),
        (
            resize(
                "crop",
                &["x", "roi", "s2"],
                &[("coordinate_transformation_mode", "tf_crop_and_resize")],
            ),
            "\"tf_crop_and_resize\"",
        ),
        (antialias, "antialias = 1"),
        (
            resize("scale_c", &["x", "", "sc"], &pytorch_strs()),
            "axis 1 (C: 2 → 4, scale 2)",
        ),
        (
            resize("scale_n", &["x", "", "", "zn"], &pytorch_strs()),
            "axis 0 (N: 1 → 2, scale 2)",
        ),
        (
            resize(
                "to_one",
                &["x", "", "", "z1"],
                &[
                    ("mode", "linear"),
                    ("coordinate_transformation_mode", "pytorch_half_pixel"),
                ],
            ),
            "pytorch_half_pixel samples an output of size 1",
        ),
        (
            resize("ceil", &["x", "", "s2"], &[("nearest_mode", "ceil")]),
            "nearest_mode \"ceil\"",
        ),
        (
            resize(
                "prefer_ceil",
                &["x", "", "s2"],
                &[("nearest_mode", "round_prefer_ceil")],
            ),
            "nearest_mode \"round_prefer_ceil\"",
        ),
        (
            resize(
                "lin_asym",
                &["x", "", "s2"],
                &[
                    ("mode", "linear"),
                    ("coordinate_transformation_mode", "asymmetric"),
                ],
            ),
            "coordinate_transformation_mode \"asymmetric\" (wgcnn's bilinear",
        ),
        (
            resize("lin_frac", &["x", "", "s15"], &[("mode", "linear")]),
            "in × scale is not a whole number",
        ),
        (
            resize(
                "asym_round",
                &["x", "", "s3"],
                &[
                    ("coordinate_transformation_mode", "asymmetric"),
                    ("nearest_mode", "round_prefer_floor"),
                ],
            ),
            "ONNX takes source pixel 1 for output pixel 2",
        ),
        (
            resize(
                "hp_floor",
                &["x", "", "s2"],
                &[
                    ("coordinate_transformation_mode", "half_pixel"),
                    ("nearest_mode", "floor"),
                ],
            ),
            "ONNX takes source pixel 0 for output pixel 2",
        ),
        (
            NodeProto::new(
                "Upsample",
                "up_linear",
                &["x", "s2"],
                &["up_linear"],
                vec![A::string("mode", "linear")],
            ),
            "Upsample mode \"linear\" (asymmetric",
        ),
        (
            resize("rank3", &["x3", "", "s3d"], &[]),
            "Resize of a 3-D input [2, 5, 4]",
        ),
        (
            NodeProto::new("LeakyRelu", "leaky", &["x"], &["leaky"], vec![]),
            "LeakyRelu is not supported",
        ),
    ];
    let inits = vec![
        scales("s2", [1.0, 1.0, 2.0, 2.0]),
        scales("s3", [1.0, 1.0, 3.0, 1.0]),
        scales("s15", [1.0, 1.0, 1.5, 1.0]),
        scales("sc", [1.0, 2.0, 1.0, 1.0]),
        TensorProto::float_raw("s3d", &[3], &[1.0, 2.0, 2.0]),
        TensorProto::float_raw("roi", &[8], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]),
        sizes("zn", [2, 2, 5, 4]),
        sizes("z1", [1, 2, 1, 4]),
    ];
    let (nodes, wants): (Vec<NodeProto>, Vec<&str>) = cases.into_iter().unzip();
    let outputs: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let m = model(
        18,
        &[("x", &xs), ("x3", &[2, 5, 4])],
        &outputs,
        nodes.clone(),
        inits,
    );
    let reasons = unsupported_reasons(import_with(&m, "resize_refused", 1));
    println!("{}", reasons.join("\n"));
    assert_eq!(reasons.len(), wants.len());
    for ((reason, want), node) in reasons.iter().zip(&wants).zip(&nodes) {
        assert!(
            reason.contains(&format!("node {} (", node.name)) && reason.contains(want),
            "{reason:?} should name {want:?}"
        );
    }
    assert!(wgcnn_io::onnx::is_supported_op("Resize"));
    assert!(wgcnn_io::onnx::is_supported_op("Upsample"));
    assert!(!wgcnn_io::onnx::is_supported_op("LeakyRelu"));
}

fn pytorch_strs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("coordinate_transformation_mode", "asymmetric"),
        ("mode", "nearest"),
        ("nearest_mode", "floor"),
    ]
}
