//! The foundation networks against PyTorch's numbers, and the registry's contract.
//!
//! Each `<name>_matches_torchvision` test builds the network at its small fixture's input
//! shape, binds the fixture's weights (the weight rule plus stored BatchNorm statistics), runs
//! the CPU interpreter and compares the logits with torchvision's within the fixtures'
//! tolerance. On a mismatch it re-runs the graph keeping every tensor and reports each
//! `stage.<child>` tensor's error, to point at the first module that differs.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use wgcnn_graph::{Graph, GraphError, Shape, Tensor, TensorKind, WeightSource, interp};
use wgcnn_io::{Fixture, fixture_path};
use wgcnn_models::{BuildOptions, ModelError, find, models};

/// The node that produces the output of PyTorch child module `child`: the last node whose name
/// is `child` or starts with `child.`.
fn stage_node(graph: &Graph, child: &str) -> Option<usize> {
    let prefix = format!("{child}.");
    graph
        .nodes
        .iter()
        .rposition(|n| n.name == child || n.name.starts_with(&prefix))
}

/// `rel_error` of the node producing `child`'s output against the fixture's `stage.<child>`
/// (compared as flat values when only the shapes differ, e.g. `[1, C]` vs `[1, C, 1, 1]`).
fn stage_error(
    graph: &Graph,
    values: &[Option<Tensor>],
    fixture: &Fixture,
    child: &str,
) -> Result<f32, String> {
    let want = fixture
        .tensor(&format!("stage.{child}"))
        .map_err(|e| e.to_string())?;
    let node = stage_node(graph, child).ok_or_else(|| format!("no node for module {child}"))?;
    let node = &graph.nodes[node];
    let got = values[node.output.0]
        .as_ref()
        .ok_or_else(|| format!("node {} has no value", node.name))?;
    if got.numel() != want.numel() {
        return Err(format!(
            "node {} gives {:?}, torchvision's {child} gives {:?}",
            node.name, got.shape, want.shape
        ));
    }
    let got = Tensor {
        shape: want.shape.clone(),
        data: got.data.clone(),
    };
    Ok(got.rel_error(&want))
}

/// Every stage tensor's error, in the fixture's key order, as printable lines.
fn stage_report(graph: &Graph, input: &Tensor, fixture: &Fixture) -> String {
    let values = match interp::run_all(graph, std::slice::from_ref(input)) {
        Ok(v) => v,
        Err(e) => return format!("run_all failed: {e}"),
    };
    let mut lines = Vec::new();
    for key in fixture.keys() {
        if let Some(child) = key.strip_prefix("stage.") {
            match stage_error(graph, &values, fixture, child) {
                Ok(err) => lines.push(format!("  stage {child}: rel_error {err:.3e}")),
                Err(why) => lines.push(format!("  stage {child}: {why}")),
            }
        }
    }
    lines.join("\n")
}

/// Builds `name` at `file`'s input shape, binds its weights, runs the interpreter and checks
/// the logits within the fixtures' tolerance.
fn check_fixture(name: &str, file: &str) {
    let start = Instant::now();
    let fixture =
        Fixture::open(fixture_path(&format!("classify/{file}"))).unwrap_or_else(|e| panic!("{e}"));
    let input = fixture.tensor("input").unwrap_or_else(|e| panic!("{e}"));
    let want = fixture.tensor("output").unwrap_or_else(|e| panic!("{e}"));
    let info = find(name).unwrap_or_else(|e| panic!("{e}"));
    let [batch, channels, height, width] = input.shape[..] else {
        panic!("{file}: input {:?} is not NCHW", input.shape)
    };
    assert_eq!(channels, info.channels, "{name}: fixture channels");
    let options = BuildOptions {
        batch,
        height,
        width,
        classes: want.shape[1],
    };
    let mut graph = info.graph(&options).unwrap_or_else(|e| panic!("{e}"));
    graph
        .bind(&fixture.weights_for(&graph))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let got =
        interp::run(&graph, std::slice::from_ref(&input)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let err = got[0].rel_error(&want);
    println!(
        "{name} ({file}, input {:?}): rel_error {err:.3e}, max|diff| {:.3e}, {:.1} s",
        input.shape,
        got[0].max_abs_diff(&want),
        start.elapsed().as_secs_f64()
    );
    if !got[0].allclose_fixture(&want) {
        panic!(
            "{name} differs from torchvision (rel_error {err:.3e}); stages:\n{}",
            stage_report(&graph, &input, &fixture)
        );
    }
}

#[test]
fn lenet5_matches_reference() {
    check_fixture("lenet5", "lenet5.full.safetensors");
}

#[test]
fn alexnet_matches_torchvision() {
    check_fixture("alexnet", "alexnet.small.safetensors");
}

#[test]
fn vgg11_matches_torchvision() {
    check_fixture("vgg11", "vgg11.small.safetensors");
}

#[test]
fn vgg16_matches_torchvision() {
    check_fixture("vgg16", "vgg16.small.safetensors");
}

#[test]
fn vgg16_bn_matches_torchvision() {
    check_fixture("vgg16_bn", "vgg16_bn.small.safetensors");
}

#[test]
fn vgg19_matches_torchvision() {
    check_fixture("vgg19", "vgg19.small.safetensors");
}

#[test]
fn resnet18_matches_torchvision() {
    check_fixture("resnet18", "resnet18.small.safetensors");
}

#[test]
fn resnet34_matches_torchvision() {
    check_fixture("resnet34", "resnet34.small.safetensors");
}

#[test]
fn resnet50_matches_torchvision() {
    check_fixture("resnet50", "resnet50.small.safetensors");
}

#[test]
fn resnet101_matches_torchvision() {
    check_fixture("resnet101", "resnet101.small.safetensors");
}

#[test]
fn resnet152_matches_torchvision() {
    check_fixture("resnet152", "resnet152.small.safetensors");
}

#[test]
fn resnext50_32x4d_matches_torchvision() {
    check_fixture("resnext50_32x4d", "resnext50_32x4d.small.safetensors");
}

#[test]
fn wide_resnet50_2_matches_torchvision() {
    check_fixture("wide_resnet50_2", "wide_resnet50_2.small.safetensors");
}

#[test]
fn squeezenet1_0_matches_torchvision() {
    check_fixture("squeezenet1_0", "squeezenet1_0.small.safetensors");
}

#[test]
fn squeezenet1_1_matches_torchvision() {
    check_fixture("squeezenet1_1", "squeezenet1_1.small.safetensors");
}

#[test]
fn resnet18_stages_match_torchvision_stage_tensors() {
    let fixture = Fixture::open(fixture_path("classify/resnet18.small.safetensors"))
        .unwrap_or_else(|e| panic!("{e}"));
    let input = fixture.tensor("input").unwrap_or_else(|e| panic!("{e}"));
    let mut graph = wgcnn_models::build("resnet18", &BuildOptions::square(input.shape[2], 1000))
        .unwrap_or_else(|e| panic!("{e}"));
    graph
        .bind(&fixture.weights_for(&graph))
        .unwrap_or_else(|e| panic!("{e}"));
    let values =
        interp::run_all(&graph, std::slice::from_ref(&input)).unwrap_or_else(|e| panic!("{e}"));
    let children = [
        "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc",
    ];
    for child in children {
        let err = stage_error(&graph, &values, &fixture, child).unwrap_or_else(|e| panic!("{e}"));
        println!("resnet18 stage {child}: rel_error {err:.3e}");
        assert!(err <= 1e-3, "resnet18 stage {child}: rel_error {err:.3e}");
    }
}

#[test]
fn foundation_param_counts_and_gmacs_match_torchvision_at_224() {
    // (name, torchvision's num_params, torchvision's GFLOPS figure, which counts MACs)
    let table: [(&str, usize, f64); 15] = [
        ("lenet5", 61_706, 0.000_416),
        ("alexnet", 61_100_840, 0.71),
        ("vgg11", 132_863_336, 7.61),
        ("vgg16", 138_357_544, 15.47),
        ("vgg16_bn", 138_365_992, 15.47),
        ("vgg19", 143_667_240, 19.63),
        ("resnet18", 11_689_512, 1.81),
        ("resnet34", 21_797_672, 3.66),
        ("resnet50", 25_557_032, 4.09),
        ("resnet101", 44_549_160, 7.80),
        ("resnet152", 60_192_808, 11.51),
        ("resnext50_32x4d", 25_028_904, 4.23),
        ("wide_resnet50_2", 68_883_240, 11.40),
        ("squeezenet1_0", 1_248_424, 0.82),
        ("squeezenet1_1", 1_235_496, 0.35),
    ];
    for (name, params, gmacs) in table {
        let info = find(name).unwrap_or_else(|e| panic!("{e}"));
        let stats = info.stats().unwrap_or_else(|e| panic!("{e}"));
        let graph = info
            .graph(&info.default_options())
            .unwrap_or_else(|e| panic!("{e}"));
        let got = stats.macs as f64 / 1e9;
        println!(
            "{name}: {} params + {} BN statistics, {got:.3} GMACs",
            stats.params, stats.buffers
        );
        assert_eq!(stats.params, params, "{name} parameter count");
        assert_eq!(stats.params + stats.buffers, graph.param_count(), "{name}");
        assert!(
            (got - gmacs).abs() <= 0.02 * gmacs + 1e-5,
            "{name}: {got:.3} GMACs, torchvision says {gmacs}"
        );
    }
}

#[test]
fn every_registered_model_builds_unbound_at_default_resolution_with_unique_node_names() {
    let start = Instant::now();
    for info in models() {
        let graph = info
            .graph(&info.default_options())
            .unwrap_or_else(|e| panic!("{e}"));
        let r = info.default_resolution;
        assert_eq!(graph.inputs.len(), 1, "{}", info.name);
        assert_eq!(graph.tensor(graph.inputs[0]).name, "input", "{}", info.name);
        assert_eq!(
            graph.shape(graph.inputs[0]),
            [1, info.channels, r, r],
            "{}",
            info.name
        );
        assert_eq!(graph.outputs.len(), 1, "{}", info.name);
        assert_eq!(
            graph.shape(graph.outputs[0]),
            [1, info.classes],
            "{}",
            info.name
        );
        let mut seen = HashSet::new();
        for node in &graph.nodes {
            assert!(
                seen.insert(node.name.as_str()),
                "{}: node name {} used twice",
                info.name,
                node.name
            );
        }
        let mut keys = HashSet::new();
        for id in graph.params() {
            let t = graph.tensor(id);
            assert!(
                t.data.is_none(),
                "{}: {} holds values before bind",
                info.name,
                t.name
            );
            assert!(
                keys.insert(t.name.as_str()),
                "{}: parameter key {} declared twice",
                info.name,
                t.name
            );
        }
        assert!(
            graph
                .tensors
                .iter()
                .all(|t| t.kind != TensorKind::Param || t.data.is_none())
        );
        assert!(
            graph
                .ignored_key_suffixes
                .iter()
                .any(|s| s == "num_batches_tracked"),
            "{}",
            info.name
        );
    }
    let elapsed = start.elapsed();
    println!(
        "built {} models at their default resolution in {:.1} ms",
        models().len(),
        elapsed.as_secs_f64() * 1e3
    );
}

#[test]
fn find_unknown_model_lists_the_known_names() {
    let err = find("resnet9000").map(|m| m.name).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, ModelError::Unknown { .. }));
    for name in [
        "lenet5",
        "alexnet",
        "vgg16_bn",
        "resnet152",
        "resnext50_32x4d",
        "squeezenet1_1",
    ] {
        assert!(msg.contains(name), "{msg}");
        assert_eq!(find(name).map(|m| m.name).ok(), Some(name));
    }
}

#[test]
fn input_too_small_names_model_and_resolution() {
    let err = wgcnn_models::build("alexnet", &BuildOptions::square(32, 1000))
        .map(|_| ())
        .unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(
        matches!(
            err,
            ModelError::InputSize {
                height: 32,
                width: 32,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        msg.contains("alexnet") && msg.contains("32x32") && msg.contains("features."),
        "{msg}"
    );

    let err = wgcnn_models::build("lenet5", &BuildOptions::square(28, 10))
        .map(|_| ())
        .unwrap_err();
    println!("{err}");
    assert!(
        matches!(err, ModelError::InputSize { height: 28, .. }),
        "{err:?}"
    );

    let zero = BuildOptions {
        batch: 0,
        height: 224,
        width: 224,
        classes: 1000,
    };
    let err = wgcnn_models::build("resnet18", &zero)
        .map(|_| ())
        .unwrap_err();
    println!("{err}");
    assert!(matches!(err, ModelError::InvalidOptions { .. }), "{err:?}");
}

#[test]
fn models_build_for_batch_and_class_count() {
    let options = BuildOptions {
        batch: 2,
        height: 64,
        width: 96,
        classes: 7,
    };
    for name in ["alexnet", "vgg16_bn", "resnet50", "squeezenet1_0"] {
        let graph = wgcnn_models::build(name, &options).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{name} at 2x3x64x96: logits {:?}",
            graph.shape(graph.outputs[0])
        );
        assert_eq!(graph.shape(graph.outputs[0]), [2, 7], "{name}");
    }
}

/// A checkpoint held in memory.
struct MapWeights(BTreeMap<String, Tensor>);

impl WeightSource for MapWeights {
    fn keys(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
    fn shape(&self, key: &str) -> Option<Shape> {
        self.0.get(key).map(|t| t.shape.clone())
    }
    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        self.0
            .get(key)
            .map(|t| t.data.clone())
            .ok_or_else(|| format!("no key {key}"))
    }
}

#[test]
fn bind_reports_missing_extra_and_misshapen_keys_together() {
    let graph = wgcnn_models::build("resnet18", &BuildOptions::square(64, 1000))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut map: BTreeMap<String, Tensor> = graph
        .params()
        .map(|id| graph.tensor(id))
        .map(|t| (t.name.clone(), Tensor::zeros(&t.shape)))
        .collect();
    map.remove("layer3.1.bn2.running_var");
    map.insert("fc2.weight".into(), Tensor::zeros(&[10, 512]));
    map.insert("conv1.weight".into(), Tensor::zeros(&[64, 3, 3, 3]));
    map.insert(
        "layer1.0.bn1.num_batches_tracked".into(),
        Tensor::zeros(&[]),
    );
    let mut bound = graph.clone();
    let err = bound.bind(&MapWeights(map.clone())).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    let GraphError::Weights(report) = err else {
        panic!("expected a weight report, got {err:?}")
    };
    assert_eq!(
        report.missing,
        [("layer3.1.bn2.running_var".to_string(), vec![256])]
    );
    assert_eq!(report.unexpected, ["fc2.weight".to_string()]);
    assert_eq!(
        report.mismatched,
        [(
            "conv1.weight".to_string(),
            vec![64, 3, 7, 7],
            vec![64, 3, 3, 3]
        )]
    );
    for needle in [
        "layer3.1.bn2.running_var",
        "fc2.weight",
        "conv1.weight",
        "[64, 3, 7, 7]",
        "[64, 3, 3, 3]",
    ] {
        assert!(msg.contains(needle), "{msg}");
    }

    map.insert("layer3.1.bn2.running_var".into(), Tensor::zeros(&[256]));
    map.insert("conv1.weight".into(), Tensor::zeros(&[64, 3, 7, 7]));
    map.remove("fc2.weight");
    bound
        .bind(&MapWeights(map))
        .unwrap_or_else(|e| panic!("a complete checkpoint must bind: {e}"));
    assert!(bound.is_bound());
}
