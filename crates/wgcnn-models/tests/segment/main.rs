//! torchvision's segmenters (FCN, DeepLabV3, LR-ASPP) against its tensors on the CPU
//! interpreter (`checks.rs`; the GPU runs the same checks in `tests/segment_gpu.rs`), plus the
//! registry's contract, the ASPP image-pooling branch and the LR-ASPP gate by hand, and an input
//! whose size is not a multiple of 8.

use std::collections::HashSet;
use std::error::Error;

use wgcnn_graph::{Graph, GraphBuilder, Op, Tensor, TensorId, interp};
use wgcnn_io::RuleWeights;
use wgcnn_models::segment::{SegmentBuildOptions, find_segmenter, heads, segmenters, with_argmax};

mod checks;

use checks::TestResult;

/// The CPU interpreter runs the stages here (`checks::run` routes to this).
pub fn backend_run(stage: &Graph, feeds: Vec<Tensor>) -> Result<Vec<Tensor>, Box<dyn Error>> {
    Ok(interp::run(stage, &feeds)?)
}

segmenter_tests! {
    fcn_resnet50 => "fcn_resnet50",
    fcn_resnet101 => "fcn_resnet101",
    deeplabv3_resnet50 => "deeplabv3_resnet50",
    deeplabv3_resnet101 => "deeplabv3_resnet101",
    deeplabv3_mobilenet_v3_large => "deeplabv3_mobilenet_v3_large",
    lraspp_mobilenet_v3_large => "lraspp_mobilenet_v3_large",
}

/// Learned parameters (BatchNorm running statistics are buffers, not parameters).
fn parameter_count(graph: &Graph) -> usize {
    let mut buffers: HashSet<TensorId> = HashSet::new();
    for node in &graph.nodes {
        if matches!(node.op, Op::BatchNorm { .. }) {
            buffers.extend(&node.inputs[3..5]);
        }
    }
    graph
        .params()
        .filter(|id| !buffers.contains(id))
        .map(|id| graph.tensor(id).numel())
        .sum()
}

/// torchvision's `num_params` of the COCO-with-VOC-labels weights (aux head included).
#[test]
fn registry_segmenters_have_torchvision_parameter_counts_and_unique_names() -> TestResult {
    let expected = [
        ("fcn_resnet50", 35_322_218),
        ("fcn_resnet101", 54_314_346),
        ("deeplabv3_resnet50", 42_004_074),
        ("deeplabv3_resnet101", 60_996_202),
        ("deeplabv3_mobilenet_v3_large", 11_029_328),
        ("lraspp_mobilenet_v3_large", 3_221_538),
    ];
    let names: Vec<&str> = segmenters().iter().map(|s| s.name).collect();
    assert_eq!(names, expected.map(|e| e.0), "registered segmenters");
    for (name, params) in expected {
        let info = find_segmenter(name)?;
        let options = SegmentBuildOptions {
            aux: info.has_aux(),
            ..SegmentBuildOptions::new(1, 520, 693)
        };
        let graph = info.graph(&options)?;
        let mut seen = HashSet::new();
        let duplicate = graph.nodes.iter().find(|n| !seen.insert(n.name.as_str()));
        assert!(duplicate.is_none(), "{name}: duplicate node {duplicate:?}");
        let count = parameter_count(&graph);
        println!(
            "{name}: {count} parameters, {:.1} GMACs at 520x693, outputs {:?}",
            graph.macs() as f64 / 1e9,
            graph
                .outputs
                .iter()
                .map(|&o| graph.shape(o).to_vec())
                .collect::<Vec<_>>()
        );
        assert_eq!(count, params, "{name}: parameters");
        assert_eq!(graph.shape(graph.outputs[0]), [1, 21, 520, 693]);
    }
    Ok(())
}

#[test]
fn aux_keys_are_ignored_without_aux_and_required_with_it() -> TestResult {
    let info = find_segmenter("fcn_resnet50")?;
    let fx = checks::fixture("fcn_resnet50")?;
    // The fixture's state carries `aux_classifier.1.running_*`: accepted, unused.
    let mut graph = info.graph(&SegmentBuildOptions::new(1, 64, 64))?;
    graph.bind(&fx.weights_for(&graph))?;
    let options = SegmentBuildOptions {
        aux: true,
        ..SegmentBuildOptions::new(1, 64, 64)
    };
    let with_aux = info.graph(&options)?;
    assert_eq!(with_aux.outputs.len(), 2);
    assert_eq!(with_aux.shape(with_aux.outputs[1]), [1, 21, 64, 64]);
    // A checkpoint without the aux head binds the aux-less graph but not the aux one.
    let plain = RuleWeights::for_graph(&info.graph(&SegmentBuildOptions::new(1, 64, 64))?);
    let err = info
        .graph(&options)?
        .bind(&plain)
        .expect_err("aux keys are missing");
    assert!(err.to_string().contains("aux_classifier.0.weight"), "{err}");
    let lraspp = find_segmenter("lraspp_mobilenet_v3_large")?;
    assert!(lraspp.graph(&options).is_err(), "LR-ASPP has no aux head");
    Ok(())
}

/// A graph of one head on a random `[1, c, h, w]` input with rule weights; returns it with the
/// input's id.
fn head_graph(
    c: usize,
    hw: [usize; 2],
    build: impl FnOnce(&mut GraphBuilder, TensorId) -> Result<TensorId, wgcnn_graph::GraphError>,
) -> Result<Graph, Box<dyn Error>> {
    let mut b = GraphBuilder::new();
    let x = b.input("x", &[1, c, hw[0], hw[1]]);
    let y = build(&mut b, x)?;
    b.output(y);
    let mut graph = b.finish();
    graph.bind(&RuleWeights::for_graph(&graph))?;
    Ok(graph)
}

fn random(shape: &[usize], seed: u32) -> Result<Tensor, Box<dyn Error>> {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / 8388608.0 - 1.0
        })
        .collect();
    Ok(Tensor::new(shape, data)?)
}

fn param(graph: &Graph, key: &str) -> Vec<f32> {
    let id = graph.find(key).expect("parameter");
    graph.tensor(id).data.as_deref().expect("bound").to_vec()
}

/// The ASPP image-pooling branch by hand: the mean of each channel, a 1x1 conv, BatchNorm,
/// ReLU, and a bilinear resize from 1x1, which is the same value at every pixel.
#[test]
fn aspp_pooling_branch_is_a_broadcast_of_the_pooled_conv() -> TestResult {
    let (c, hw) = (8, [5, 7]);
    let graph = head_graph(c, hw, |b, x| heads::aspp(b, "aspp", x, [1, 2, 3]))?;
    let x = random(&[1, c, hw[0], hw[1]], 7)?;
    let values = interp::run_all(&graph, std::slice::from_ref(&x))?;
    let up = graph.find("aspp.convs.4.upsample").expect("pooling branch");
    let got = values[up.0].as_ref().expect("computed");
    assert_eq!(got.shape, [1, 256, 5, 7]);
    let plane = hw[0] * hw[1];
    let mean: Vec<f32> = (0..c)
        .map(|k| x.data[k * plane..(k + 1) * plane].iter().sum::<f32>() / plane as f32)
        .collect();
    let w = param(&graph, "aspp.convs.4.1.weight");
    let (g, beta) = (
        param(&graph, "aspp.convs.4.2.weight"),
        param(&graph, "aspp.convs.4.2.bias"),
    );
    let (m, v) = (
        param(&graph, "aspp.convs.4.2.running_mean"),
        param(&graph, "aspp.convs.4.2.running_var"),
    );
    for o in 0..256 {
        let conv: f32 = (0..c).map(|k| w[o * c + k] * mean[k]).sum();
        let want = ((conv - m[o]) / (v[o] + 1e-5).sqrt() * g[o] + beta[o]).max(0.0);
        for p in 0..plane {
            let have = got.data[o * plane + p];
            assert!(
                (have - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "channel {o} pixel {p}: {have} vs {want}"
            );
        }
    }
    let out = graph.shape(graph.outputs[0]);
    assert_eq!(out, [1, 256, 5, 7], "project output");
    Ok(())
}

/// The LR-ASPP gate by hand: `cbr(high) * sigmoid(conv1x1(mean(high)))`, per channel.
#[test]
fn lraspp_gate_scales_each_channel_by_the_pooled_sigmoid() -> TestResult {
    let (c, hw) = (16, [3, 4]);
    let mut b = GraphBuilder::new();
    let high = b.input("high", &[1, c, hw[0], hw[1]]);
    let low = b.input("low", &[1, 8, 5, 7]);
    let y = heads::lraspp_head(&mut b, "head", low, high, 21)?;
    b.output(y);
    let mut graph = b.finish();
    graph.bind(&RuleWeights::for_graph(&graph))?;
    let (xh, xl) = (random(&[1, c, hw[0], hw[1]], 3)?, random(&[1, 8, 5, 7], 5)?);
    let values = interp::run_all(&graph, &[xh.clone(), xl])?;
    let get = |name: &str| values[graph.find(name).expect(name).0].clone().expect(name);
    let (cbr, gated) = (get("head.cbr.2"), get("head.gate"));
    let plane = hw[0] * hw[1];
    let mean: Vec<f32> = (0..c)
        .map(|k| xh.data[k * plane..(k + 1) * plane].iter().sum::<f32>() / plane as f32)
        .collect();
    let w = param(&graph, "head.scale.1.weight");
    for o in 0..128 {
        let s = 1.0 / (1.0 + (-(0..c).map(|k| w[o * c + k] * mean[k]).sum::<f32>()).exp());
        for p in 0..plane {
            let want = cbr.data[o * plane + p] * s;
            let have = gated.data[o * plane + p];
            assert!(
                (have - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "channel {o} pixel {p}"
            );
        }
    }
    assert_eq!(
        get("head.upsample").shape,
        [1, 128, 5, 7],
        "resized to low's size"
    );
    assert_eq!(graph.shape(graph.outputs[0]), [1, 21, 5, 7]);
    Ok(())
}

/// An input whose sides are not multiples of 8 (nor of 16): the strides round as PyTorch's
/// convolutions do (115 -> 58 -> 29 -> 15 for the ResNets' stride 8, -> 8 for MobileNetV3's 16)
/// and the output comes back at the input size, for both class maps.
#[test]
fn odd_input_sizes_build_and_run_back_to_the_input_size() -> TestResult {
    for (model, feature) in [
        ("deeplabv3_resnet50", [15, 19]),
        ("lraspp_mobilenet_v3_large", [8, 10]),
    ] {
        let info = find_segmenter(model)?;
        let mut graph = info.graph(&SegmentBuildOptions::new(1, 115, 147))?;
        let high = graph.find(if model.starts_with("lraspp") {
            "backbone.high"
        } else {
            "backbone.out"
        });
        assert_eq!(&graph.shape(high.expect("stage"))[2..], feature, "{model}");
        with_argmax(&mut graph, [115, 147])?;
        assert_eq!(graph.shape(graph.outputs[0]), [1, 21, 115, 147]);
        assert_eq!(graph.shape(graph.outputs[1]), [1, 115, 147]);
    }
    // Run the cheaper one end to end on the interpreter.
    let info = find_segmenter("lraspp_mobilenet_v3_large")?;
    let mut graph = info.graph(&SegmentBuildOptions::new(1, 45, 61))?;
    with_argmax(&mut graph, [45, 61])?;
    graph.bind(&RuleWeights::for_graph(&graph))?;
    let out = interp::run(&graph, &[random(&[1, 3, 45, 61], 9)?])?;
    assert_eq!(out[1].shape, [1, 45, 61]);
    assert!(out[0].data.iter().all(|v| v.is_finite()));
    assert!(
        out[1]
            .data
            .iter()
            .all(|&k| (0.0..21.0).contains(&k) && k.fract() == 0.0)
    );
    Ok(())
}
