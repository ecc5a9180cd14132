//! Shared helpers of the end-to-end tests: one engine per test binary, fixture loading.

use std::sync::OnceLock;

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

/// As [`check_classifier_within`] on a given engine (e.g. one forcing a kernel family).
#[allow(dead_code)]
pub fn check_classifier_on(engine: &Engine, name: &str, res: &str, tol: f32) {
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
    let weights = fx.weights_for(&graph);
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
