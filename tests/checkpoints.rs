//! Real checkpoint files as users have them: PyTorch `.pth` (plain, nested, float16, legacy)
//! loaded without Python and run on the GPU, reproducing the golden classify fixtures; ONNX
//! files run on the GPU against their recorded outputs.

mod common;

use common::engine;
use wgcnn::wgcnn_io::{Fixture, fixtures_dir, onnx, open_weights};
use wgcnn::wgcnn_models::{self, BuildOptions};

/// Binds `checkpoint` to `model` at the fixture's resolution and compares with its output.
fn check_pth(model: &str, checkpoint: &str, fixture: &str, tol: f32) {
    let fx = Fixture::open(fixtures_dir().join("classify").join(fixture)).expect("fixture");
    let input = fx.tensor("input").expect("input");
    let want = fx.tensor("output").expect("output");
    let options = BuildOptions {
        batch: 1,
        height: input.shape[2],
        width: input.shape[3],
        classes: want.shape[1],
    };
    let mut graph = wgcnn_models::find(model)
        .expect("model")
        .graph(&options)
        .expect("graph");
    let path = fixtures_dir().join("pth").join(checkpoint);
    let weights = open_weights(&path).unwrap_or_else(|e| panic!("{e}"));
    graph
        .bind(weights.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let got = engine()
        .plan(&graph)
        .expect("plan")
        .run(&[input])
        .expect("run")
        .remove(0);
    let rel = got.rel_error(&want);
    println!("{checkpoint} -> {model}: relative error {rel:.3e} (tolerance {tol:e})");
    let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        got.max_abs_diff(&want) <= tol * scale + 1e-5,
        "{checkpoint}: relative error {rel:e}"
    );
}

#[test]
fn lenet5_pth_reproduces_the_fixture() {
    check_pth("lenet5", "lenet5.pth", "lenet5.full.safetensors", 1e-3);
}

#[test]
fn lenet5_nested_pth_reproduces_the_fixture() {
    check_pth(
        "lenet5",
        "lenet5.nested.pth",
        "lenet5.full.safetensors",
        1e-3,
    );
}

#[test]
fn lenet5_legacy_pth_reproduces_the_fixture() {
    check_pth(
        "lenet5",
        "lenet5.legacy.pth",
        "lenet5.full.safetensors",
        1e-3,
    );
}

/// float16 weights are the rule's values rounded to half precision, so the logits move by
/// about 1e-3 of their scale; 1e-2 bounds that.
#[test]
fn lenet5_float16_pth_reproduces_the_fixture_within_half_precision() {
    check_pth("lenet5", "lenet5.f16.pth", "lenet5.full.safetensors", 1e-2);
}

#[test]
fn squeezenet1_1_pth_reproduces_the_fixture() {
    check_pth(
        "squeezenet1_1",
        "squeezenet1_1.pth",
        "squeezenet1_1.small.safetensors",
        1e-3,
    );
}

fn check_onnx(name: &str) {
    let dir = fixtures_dir().join("onnx");
    let io = Fixture::open(dir.join(format!("{name}.io.safetensors"))).expect("io fixture");
    let input = io.tensor("input").expect("input");
    let want = io.tensor("output").expect("output");
    let model = onnx::load_onnx(
        dir.join(format!("{name}.onnx")),
        &onnx::OnnxOptions {
            batch: input.shape[0],
        },
    )
    .expect("import");
    // The fixture runs at a small resolution; the exported graph's input is rebuilt at it.
    let in_id = model.graph.inputs[0];
    assert_eq!(
        model.graph.shape(in_id),
        input.shape.as_slice(),
        "{name}: fixture input matches the exported shape"
    );
    let got = engine()
        .plan(&model.graph)
        .expect("plan")
        .run(&[input])
        .expect("run")
        .remove(0);
    let rel = got.rel_error(&want);
    println!("{name}.onnx on the GPU: relative error {rel:.3e}");
    assert!(
        got.allclose_fixture(&want),
        "{name}: relative error {rel:e}"
    );
}

#[test]
fn lenet5_onnx_runs_on_gpu() {
    check_onnx("lenet5");
}

#[test]
fn squeezenet1_1_onnx_runs_on_gpu() {
    check_onnx("squeezenet1_1");
}

#[test]
fn mobilenet_v2_onnx_runs_on_gpu() {
    check_onnx("mobilenet_v2");
}
