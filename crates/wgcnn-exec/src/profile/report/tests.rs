use wgcnn_graph::{Activation, Conv2d, GraphBuilder, Op};

use super::*;

fn launch(label: &str, kernel: &'static str, ms: f64) -> LaunchTiming {
    LaunchTiming {
        label: label.to_string(),
        kernel,
        ms,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn summarize_odd_count_median_is_middle_sample() {
    let s = summarize(&[5.0, 1.0, 3.0, 9.0, 7.0]).unwrap();
    println!("{s:?}");
    assert_eq!((s.count, s.min, s.max, s.median), (5, 1.0, 9.0, 5.0));
    assert!(close(s.mean, 5.0));
    // Rank 0.9 * 4 = 3.6 between 7 and 9.
    assert!(close(s.p90, 8.2), "p90 {}", s.p90);
}

#[test]
fn summarize_even_count_median_interpolates_and_p90_matches_numpy() {
    let s = summarize(&[4.0, 1.0, 2.0, 3.0]).unwrap();
    println!("{s:?}");
    assert!(close(s.median, 2.5));
    // numpy.percentile([1, 2, 3, 4], 90) = 3.7
    assert!(close(s.p90, 3.7), "p90 {}", s.p90);
    let ten: Vec<f64> = (1..=10).map(f64::from).collect();
    let s = summarize(&ten).unwrap();
    // numpy.percentile(range(1, 11), 90) = 9.1
    assert!(close(s.p90, 9.1) && close(s.median, 5.5), "{s:?}");
}

#[test]
fn summarize_single_sample_and_empty_and_nan() {
    let s = summarize(&[2.5]).unwrap();
    assert_eq!((s.min, s.median, s.p90, s.max), (2.5, 2.5, 2.5, 2.5));
    assert_eq!(summarize(&[]), None);
    assert_eq!(summarize(&[f64::NAN]), None);
    let s = summarize(&[f64::NAN, 1.0, 3.0]).unwrap();
    assert_eq!((s.count, s.median), (2, 2.0));
}

#[test]
fn kernel_names_map_to_categories_including_suffixed_variants() {
    let cases = [
        ("conv2d", Category::Conv),
        ("dwconv2d", Category::Conv),
        ("conv2d_1x1", Category::Conv),
        ("linear", Category::Gemm),
        ("linear_splitk", Category::Gemm),
        ("pool2d", Category::Pooling),
        ("adaptive_avgpool2d", Category::Pooling),
        ("unary", Category::Elementwise),
        ("binary", Category::Elementwise),
        ("softmax", Category::Elementwise),
        ("lrn", Category::Elementwise),
        ("pad", Category::Elementwise),
        ("copy_channels", Category::Copy),
        ("preprocess", Category::Other),
        ("convolutional_thing", Category::Other),
    ];
    for (kernel, want) in cases {
        assert_eq!(Category::of_kernel(kernel), want, "{kernel}");
    }
}

#[test]
fn layer_name_strips_one_part_suffix() {
    assert_eq!(layer_name("classifier.0[0..2048]"), "classifier.0");
    assert_eq!(layer_name("features.concat[3]"), "features.concat");
    assert_eq!(layer_name("layer1.0.conv1"), "layer1.0.conv1");
    assert_eq!(layer_name("[0..2]"), "[0..2]");
    assert_eq!(layer_name("odd]"), "odd]");
}

/// A graph with a conv `c1` [1, 4, 8, 8] from [1, 2, 8, 8] (3x3, pad 1) and a linear `fc`
/// 256 -> 10.
fn small_graph() -> wgcnn_graph::Graph {
    let mut b = GraphBuilder::new();
    let x = b.input("input", &[1, 2, 8, 8]);
    let w = b.param("c1.weight", &[4, 2, 3, 3]);
    let mut conv = Conv2d::new(1, 1, 1, false);
    conv.act = Activation::Relu;
    let y = b.node("c1", Op::Conv2d(conv), &[x, w]).unwrap();
    let f = b.node("flatten", Op::Flatten { axis: 1 }, &[y]).unwrap();
    let fw = b.param("fc.weight", &[10, 256]);
    let z = b
        .node(
            "fc",
            Op::Linear {
                bias: false,
                act: Activation::Identity,
            },
            &[f, fw],
        )
        .unwrap();
    b.output(z);
    b.finish()
}

#[test]
fn layers_merge_split_linear_chunks_and_take_flops_and_shapes_from_the_graph() {
    let graph = small_graph();
    let launches = [
        launch("c1", "conv2d", 2.0),
        launch("fc[0..5]", "linear", 0.5),
        launch("fc[5..10]", "linear", 0.25),
        launch("unknown[1]", "copy_channels", 0.125),
    ];
    let layers = layers(&launches, &graph);
    println!("{layers:#?}");
    assert_eq!(layers.len(), 3);
    let c1 = &layers[0];
    assert_eq!(
        (
            c1.name.as_str(),
            c1.kernel.as_str(),
            c1.category,
            c1.launches
        ),
        ("c1", "conv2d", Category::Conv, 1)
    );
    // 4 * 8 * 8 outputs x 2 * 3 * 3 taps x 2 FLOPs.
    assert_eq!(c1.flops, 2 * 256 * 18);
    assert_eq!(c1.output_shape.as_deref(), Some(&[1, 4, 8, 8][..]));
    assert!(close(c1.gflops_per_s().unwrap(), 9216.0 / 2e6));
    let fc = &layers[1];
    assert_eq!(
        (fc.name.as_str(), fc.kernel.as_str(), fc.launches),
        ("fc", "linear", 2)
    );
    assert!(close(fc.ms, 0.75));
    assert_eq!(fc.flops, 2 * 10 * 256);
    assert_eq!(fc.output_shape.as_deref(), Some(&[1, 10][..]));
    let other = &layers[2];
    assert_eq!(
        (other.name.as_str(), other.flops, other.output_shape.clone()),
        ("unknown", 0, None)
    );
    assert_eq!(other.gflops_per_s(), None);
}

#[test]
fn layers_list_each_distinct_kernel_once() {
    let graph = small_graph();
    let launches = [
        launch("c1", "conv2d", 1.0),
        launch("c1", "unary", 1.0),
        launch("c1", "conv2d", 1.0),
    ];
    let layers = layers(&launches, &graph);
    assert_eq!(layers.len(), 1);
    assert_eq!(
        (layers[0].kernel.as_str(), layers[0].launches),
        ("conv2d+unary", 3)
    );
    assert!(close(layers[0].ms, 3.0));
}

#[test]
fn category_shares_sum_to_one_and_count_launches() {
    let launches = [
        launch("a", "conv2d", 6.0),
        launch("b", "dwconv2d", 2.0),
        launch("c", "linear", 1.0),
        launch("d", "binary", 0.5),
        launch("e", "copy_channels", 0.25),
        launch("f", "pool2d", 0.125),
        launch("g", "mystery", 0.125),
    ];
    let shares = category_shares(&launches);
    for s in &shares {
        println!(
            "{:<12} {:>3} launches {:>6.3} ms {:>5.1}%",
            s.category.name(),
            s.launches,
            s.ms,
            s.share * 100.0
        );
    }
    assert_eq!(
        shares.iter().map(|s| s.category).collect::<Vec<_>>(),
        Category::ALL.to_vec()
    );
    let total: f64 = shares.iter().map(|s| s.share).sum();
    assert!(close(total, 1.0), "shares sum to {total}");
    assert_eq!((shares[0].launches, shares[0].ms), (2, 8.0));
    assert!(close(shares[0].share, 0.8));
    assert_eq!((shares[1].launches, shares[1].ms), (1, 1.0));
    assert_eq!(shares[3].launches, 1);
    assert_eq!(shares[4].launches, 1);
    assert_eq!(shares[5].launches, 1);
}

#[test]
fn category_shares_of_no_time_are_zero() {
    let shares = category_shares(&[launch("a", "conv2d", 0.0)]);
    assert!(shares.iter().all(|s| s.share == 0.0));
    assert_eq!(shares[0].launches, 1);
}

#[test]
fn median_profile_takes_per_launch_medians() {
    let run = |ms: [f64; 2], wall: f64| super::super::Profile {
        method: super::super::ProfileMethod::InsidePass,
        launches: vec![launch("a", "conv2d", ms[0]), launch("b", "linear", ms[1])],
        outputs: Vec::new(),
        wall_ms: wall,
    };
    let m = super::super::Profile::median(vec![
        run([1.0, 9.0], 10.0),
        run([3.0, 7.0], 30.0),
        run([2.0, 8.0], 20.0),
    ])
    .unwrap();
    let got: Vec<f64> = m.launches.iter().map(|l| l.ms).collect();
    assert_eq!(got, [2.0, 8.0]);
    assert_eq!(m.wall_ms, 20.0);
    assert!(close(m.total_ms(), 10.0));
    assert!(super::super::Profile::median(Vec::new()).is_none());
}
