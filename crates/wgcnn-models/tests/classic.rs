//! GoogLeNet, Inception-v3/v4, Inception-ResNet-v2, DenseNet, MobileNetV2/V3, EfficientNet and
//! SE-ResNet against the PyTorch reference outputs of their small golden fixtures.
//!
//! Each test looks the network up in the registry, builds it at the fixture input's shape,
//! binds the fixture's weights (weight rule + stored BatchNorm statistics; a key or shape that
//! differs from the reference `state_dict` fails the bind), runs the CPU interpreter and checks
//! the logits within the fixtures' tolerance. On failure the message lists every stored
//! `stage.<child>` tensor's error, so the first module that differs stands out.

use std::time::Instant;

use wgcnn_graph::{Graph, Tensor, interp};
use wgcnn_io::{Fixture, fixture_path};
use wgcnn_models::{BuildOptions, KeyNaming, ModelStats, find};

/// The last node of PyTorch child module `child` (named `child` or `child.…`): its output is
/// what the reference recorded as `stage.<child>`.
fn last_node_of(graph: &Graph, child: &str) -> Option<usize> {
    let dotted = format!("{child}.");
    (0..graph.nodes.len()).rev().find(|&i| {
        let name = &graph.nodes[i].name;
        name == child || name.starts_with(&dotted)
    })
}

/// One line per `stage.*` tensor of the fixture: the interpreter's error at that module.
fn stages(graph: &Graph, input: &Tensor, fixture: &Fixture) -> String {
    let values = match interp::run_all(graph, std::slice::from_ref(input)) {
        Ok(values) => values,
        Err(e) => return format!("  (run_all failed: {e})"),
    };
    let mut out = String::new();
    for child in fixture
        .keys()
        .iter()
        .filter_map(|k| k.strip_prefix("stage."))
    {
        let line = match (
            fixture.tensor(&format!("stage.{child}")),
            last_node_of(graph, child),
        ) {
            (Err(e), _) => format!("{e}"),
            (_, None) => "no node of this module (identity at inference)".to_string(),
            (Ok(want), Some(i)) => match &values[graph.nodes[i].output.0] {
                None => format!("node {} not computed", graph.nodes[i].name),
                Some(got) if got.numel() != want.numel() => {
                    format!(
                        "node {} is {:?}, reference {:?}",
                        graph.nodes[i].name, got.shape, want.shape
                    )
                }
                Some(got) => {
                    let got = Tensor {
                        shape: want.shape.clone(),
                        data: got.data.clone(),
                    };
                    format!(
                        "rel_error {:.3e} at node {}",
                        got.rel_error(&want),
                        graph.nodes[i].name
                    )
                }
            },
        };
        out.push_str(&format!("  stage.{child}: {line}\n"));
    }
    out
}

/// Runs registry network `name` on `classify/<name>.small.safetensors` and checks its logits.
fn check(name: &str, naming: KeyNaming) {
    let started = Instant::now();
    let path = fixture_path(&format!("classify/{name}.small.safetensors"));
    let fixture = Fixture::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let input = fixture.tensor("input").unwrap_or_else(|e| panic!("{e}"));
    let want = fixture.tensor("output").unwrap_or_else(|e| panic!("{e}"));
    let info = find(name).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.key_naming, naming, "{name}: key naming");
    let (&[batch, channels, height, width], &[_, classes]) =
        (input.shape.as_slice(), want.shape.as_slice())
    else {
        panic!(
            "{name}: fixture input {:?} / output {:?} are not NCHW / [N, classes]",
            input.shape, want.shape
        );
    };
    assert_eq!(channels, info.channels, "{name}: input channels");
    let mut graph = info
        .graph(&BuildOptions {
            batch,
            height,
            width,
            classes,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    graph
        .bind(&fixture.weights_for(&graph))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let got =
        interp::run(&graph, std::slice::from_ref(&input)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let got = &got[0];
    println!(
        "{name} at {height}x{width}: rel_error {:.3e} (max|diff| {:.3e}), {} nodes, {:.2} s",
        got.rel_error(&want),
        got.max_abs_diff(&want),
        graph.nodes.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        got.allclose_fixture(&want),
        "{name}: logits differ from the reference (rel_error {:.3e}); per stage:\n{}",
        got.rel_error(&want),
        stages(&graph, &input, &fixture)
    );
}

#[test]
fn googlenet_matches_torchvision() {
    check("googlenet", KeyNaming::Torchvision);
}

#[test]
fn inception_v3_matches_torchvision() {
    check("inception_v3", KeyNaming::Torchvision);
}

#[test]
fn densenet121_matches_torchvision() {
    check("densenet121", KeyNaming::Torchvision);
}

#[test]
fn mobilenet_v2_matches_torchvision() {
    check("mobilenet_v2", KeyNaming::Torchvision);
}

#[test]
fn mobilenet_v3_large_matches_torchvision() {
    check("mobilenet_v3_large", KeyNaming::Torchvision);
}

#[test]
fn mobilenet_v3_small_matches_torchvision() {
    check("mobilenet_v3_small", KeyNaming::Torchvision);
}

#[test]
fn efficientnet_b0_matches_torchvision() {
    check("efficientnet_b0", KeyNaming::Torchvision);
}

#[test]
fn efficientnet_lite0_pytorch_padding_matches_timm() {
    check("efficientnet_lite0", KeyNaming::Timm);
}

#[test]
fn tf_efficientnet_lite0_same_padding_matches_timm() {
    check("tf_efficientnet_lite0", KeyNaming::Timm);
}

#[test]
fn seresnet50_matches_timm() {
    check("seresnet50", KeyNaming::Timm);
}

#[test]
fn inception_v4_matches_timm() {
    check("inception_v4", KeyNaming::Timm);
}

#[test]
fn inception_resnet_v2_matches_timm() {
    check("inception_resnet_v2", KeyNaming::Timm);
}

/// The variants without fixtures build at 224 with torchvision's parameter counts and classify
/// into 1000 classes.
#[test]
fn densenet_161_169_201_build_at_224() {
    for (name, params) in [
        ("densenet161", 28_681_000),
        ("densenet169", 14_149_480),
        ("densenet201", 20_013_928),
    ] {
        let info = find(name).unwrap_or_else(|e| panic!("{e}"));
        let graph = info
            .graph(&info.default_options())
            .unwrap_or_else(|e| panic!("{e}"));
        let learned = ModelStats::of(&graph).params;
        println!("{name}: {learned} parameters, {} nodes", graph.nodes.len());
        assert_eq!(learned, params, "{name}");
        assert_eq!(graph.shape(graph.outputs[0]), [1, 1000], "{name}");
    }
}

/// The TensorFlow-padded Lite0 binds the ported TensorFlow checkpoint shipped with the project
/// (every key and shape), and is the PyTorch-padded graph with other pads and eps.
#[test]
fn tf_efficientnet_lite0_binds_the_ported_checkpoint() {
    let path = fixture_path("../models/tf_efficientnet_lite0.safetensors");
    let weights = wgcnn_io::open_weights(&path).unwrap_or_else(|e| panic!("{e}"));
    let info = find("tf_efficientnet_lite0").unwrap_or_else(|e| panic!("{e}"));
    let mut graph = info
        .graph(&info.default_options())
        .unwrap_or_else(|e| panic!("{e}"));
    graph
        .bind(weights.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(graph.is_bound());
    println!(
        "bound {} tensors ({} values) from {}",
        graph.params().count(),
        graph.param_count(),
        path.display()
    );
}

/// Inception-family networks and the TensorFlow ports list the preprocessing their checkpoints
/// expect.
#[test]
fn registry_lists_reference_preprocessing() {
    let get = |name: &str| find(name).unwrap_or_else(|e| panic!("{e}"));
    for name in ["inception_v3", "inception_v4", "inception_resnet_v2"] {
        let info = get(name);
        assert_eq!(
            (info.default_resolution, info.preprocess.crop),
            (299, 299),
            "{name}"
        );
        assert_eq!(info.preprocess.mean, [0.5; 3], "{name}");
    }
    assert_eq!(get("inception_v3").preprocess.resize, 342);
    assert_eq!(get("googlenet").preprocess.std, [0.5; 3]);
    let tf = get("tf_efficientnet_lite0").preprocess;
    assert_eq!((tf.resize, tf.crop), (256, 224));
    assert!((tf.mean[0] * 255.0 - 127.0).abs() < 1e-4 && (tf.std[0] * 255.0 - 128.0).abs() < 1e-4);
    assert_eq!(get("seresnet50").preprocess.resize, 235);
}
