//! Shared helpers of the end-to-end tests: one engine per test binary, fixture loading, rule
//! weights written for the high-level API, an application's own device.

use std::path::PathBuf;
use std::sync::OnceLock;

use wgcnn::wgcnn_graph::{Graph, Tensor};
use wgcnn::wgcnn_io::{Fixture, fixtures_dir};
use wgcnn::wgcnn_models::{self, BuildOptions};
use wgcnn::{Engine, EngineOptions};

/// One `#[test]` per `name => "model", "resolution";` line, each running [`check_classifier`].
#[allow(unused_macros)]
macro_rules! golden {
    ($($test:ident => $name:literal, $res:literal;)*) => {
        $(
            #[test]
            fn $test() {
                common::check_classifier($name, $res);
            }
        )*
    };
}

/// The engine every test in the binary shares.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(&EngineOptions::default()).expect("a GPU adapter (lavapipe in CI)")
    })
}

/// Runs `classify/<name>.<res>.safetensors` through the GPU and checks the logits against
/// PyTorch's within the fixtures' tolerance, printing the measured relative error.
#[allow(dead_code)]
pub fn check_classifier(name: &str, res: &str) {
    check_classifier_within(name, res, 1e-3);
}

/// As [`check_classifier`] with another relative tolerance
/// (`max|got - want| <= tol * max|want| + 1e-5`), for the few fixtures where even the exact-f32 CPU interpreter differs from PyTorch
/// by more than the README's 1e-3 (summation order in very deep nets; see the caller).
#[allow(dead_code)]
pub fn check_classifier_within(name: &str, res: &str, tol: f32) {
    check_classifier_on(engine(), name, res, tol);
}

/// A classification fixture: its input and PyTorch's logits, and the model's graph built at
/// the fixture's sizes with the fixture's weights bound.
#[allow(dead_code)]
pub struct Golden {
    pub input: Tensor,
    pub want: Tensor,
    pub options: BuildOptions,
    pub graph: Graph,
}

/// Loads `classify/<name>.<res>.safetensors` as a [`Golden`].
#[allow(dead_code)]
pub fn classifier_golden(name: &str, res: &str) -> Golden {
    let path = fixtures_dir()
        .join("classify")
        .join(format!("{name}.{res}.safetensors"));
    let fx = Fixture::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let input = fx.tensor("input").expect("fixture input");
    let want = fx.tensor("output").expect("fixture output");
    let info = wgcnn_models::find(name).expect("registered model");
    let options = BuildOptions {
        batch: input.shape[0],
        height: input.shape[2],
        width: input.shape[3],
        classes: want.shape[1],
    };
    let mut graph = info.graph(&options).expect("graph builds");
    graph.bind(&fx.weights_for(&graph)).expect("weights bind");
    Golden {
        input,
        want,
        options,
        graph,
    }
}

/// LeNet-5 (1x32x32 inputs, 10 classes) at `batch` with the weights of the
/// `classify/lenet5.full` fixture bound, and the fixture.
#[allow(dead_code)]
pub fn lenet5(batch: usize) -> (Fixture, Graph) {
    let fx =
        Fixture::open(fixtures_dir().join("classify/lenet5.full.safetensors")).expect("fixture");
    let info = wgcnn_models::find("lenet5").expect("registered");
    let mut graph = info
        .graph(&BuildOptions {
            batch,
            height: 32,
            width: 32,
            classes: 10,
        })
        .expect("graph");
    graph.bind(&fx.weights_for(&graph)).expect("weights bind");
    (fx, graph)
}

/// As [`check_classifier_within`] on a given engine (e.g. one forcing a kernel family).
#[allow(dead_code)]
pub fn check_classifier_on(engine: &Engine, name: &str, res: &str, tol: f32) {
    let Golden {
        input,
        want,
        options,
        graph,
    } = classifier_golden(name, res);
    let started = std::time::Instant::now();
    let plan = engine.plan(&graph).expect("plan");
    let planned = started.elapsed();
    let got = plan.run(&[input]).expect("run").remove(0);
    let rel = got.rel_error(&want);
    println!(
        "{name} {res} {:?} kernels {}: relative error {rel:.3e} (plan {:.0} ms, first run {:.0} ms, {} launches)",
        options,
        engine.context().variants.name(),
        planned.as_secs_f64() * 1e3,
        (started.elapsed() - planned).as_secs_f64() * 1e3,
        plan.stats().launches
    );
    let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        got.max_abs_diff(&want) <= tol * scale + 1e-5,
        "{name} {res}: relative error {rel:e} exceeds the tolerance {tol:e}"
    );
}

/// Writes the detection fixture's rule weights of `model` (built at the fixture's 120x160) to a
/// temporary safetensors file named after `tag`, for `Detector::new`; the caller removes it.
#[allow(dead_code)]
pub fn detector_weights_file(model: &str, tag: &str) -> std::path::PathBuf {
    let fx = Fixture::open(fixtures_dir().join(format!("detect/{model}.safetensors")))
        .expect("detector fixture");
    let info = wgcnn_models::detect::find_detector(model).expect("registered");
    let graph = info
        .graph(&wgcnn_models::detect::DetectBuildOptions {
            batch: 1,
            height: 120,
            width: 160,
        })
        .expect("graph");
    rule_weights_file(&fx, &graph, tag)
}

/// Writes the fixture's rule weights of `graph`'s parameters to a temporary safetensors file
/// named after `tag` (`wgcnn-<tag>-<pid>.safetensors`), for the high-level API's constructors;
/// the caller removes it.
#[allow(dead_code)]
pub fn rule_weights_file(fx: &Fixture, graph: &Graph, tag: &str) -> PathBuf {
    let weights = fx.weights_for(graph);
    let tensors: Vec<_> = graph
        .params()
        .map(|id| {
            let key = graph.tensor(id).name.clone();
            let t = weights.tensor(&key).expect("rule weight");
            (key, t)
        })
        .collect();
    let path = std::env::temp_dir().join(format!("wgcnn-{tag}-{}.safetensors", std::process::id()));
    wgcnn::wgcnn_io::save_safetensors(&path, &tensors, None).expect("weights written");
    path
}

/// A fixture's normalized `[1, 3, H, W]` input with ImageNet's mean/std (which the segmenter
/// and classifier apply) undone: the image they were made from.
#[allow(dead_code)]
pub fn unnormalized(input: &Tensor) -> Tensor {
    let (mean, std) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    let plane = input.shape[2] * input.shape[3];
    let image: Vec<f32> = input
        .data
        .iter()
        .enumerate()
        .map(|(i, v)| v * std[i / plane] + mean[i / plane])
        .collect();
    Tensor::new(&input.shape, image).expect("tensor")
}

/// A device the application opened itself (as a renderer or bevy would) on the default
/// adapter, labelled `label`, with those of `features` the adapter has and its full limits.
#[allow(dead_code)]
pub fn application_device(label: &str, features: wgpu::Features) -> (wgpu::Device, wgpu::Queue) {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
        apply_limit_buckets: false,
    }))
    .expect("an adapter (lavapipe in CI)");
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some(label),
        required_features: adapter.features() & features,
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .expect("a device")
}
