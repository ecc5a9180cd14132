//! ONNX import: the fixture exports against PyTorch's outputs, every attribute form of every
//! mapped op against a directly built graph or hand-computed values, error collection, tensor
//! encodings, and corrupted files.

use std::path::PathBuf;

use wgcnn_graph::{Activation, Conv2d, Graph, GraphBuilder, Op, Pool2d, Tensor, interp};
use wgcnn_io::onnx::proto::{
    AttributeProto as A, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, ValueInfoProto, data_location, data_type,
};
use wgcnn_io::onnx::{OnnxError, OnnxModel, OnnxOptions, inspect_onnx, load_onnx, load_onnx_bytes};
use wgcnn_io::{Fixture, fixture_path};

#[path = "onnx/conv_transpose.rs"]
mod conv_transpose;
#[path = "onnx/errors.rs"]
mod errors;
#[path = "onnx/nn.rs"]
mod nn;
#[path = "onnx/resize.rs"]
mod resize;
#[path = "onnx/shapes.rs"]
mod shapes;

// ---------------------------------------------------------------------------------------------
// Helpers

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor {
        shape: shape.to_vec(),
        data: values(shape.iter().product(), seed),
    }
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// A model of `nodes` with float inputs of the given static shapes.
fn model(
    opset: i64,
    inputs: &[(&str, &[usize])],
    outputs: &[&str],
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
) -> ModelProto {
    let fixed = |s: &[usize]| s.iter().map(|&d| Some(d as i64)).collect::<Vec<_>>();
    ModelProto {
        ir_version: 8,
        producer_name: "wgcnn-tests".into(),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            name: "test".into(),
            node: nodes,
            initializer: inits,
            input: inputs
                .iter()
                .map(|(n, s)| ValueInfoProto::tensor(n, data_type::FLOAT, &fixed(s)))
                .collect(),
            output: outputs
                .iter()
                .map(|n| ValueInfoProto {
                    name: n.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgcnn-onnx-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes the model to a temp file and imports it.
fn import_with(m: &ModelProto, test: &str, batch: usize) -> Result<OnnxModel, OnnxError> {
    let path = temp_dir(test).join("model.onnx");
    std::fs::write(&path, m.to_bytes()).expect("write model");
    load_onnx(&path, &OnnxOptions { batch })
}

fn import(m: &ModelProto, test: &str) -> OnnxModel {
    import_with(m, test, 1).unwrap_or_else(|e| panic!("{test}: import failed: {e}"))
}

fn run(g: &Graph, inputs: &[Tensor]) -> Tensor {
    interp::run(g, inputs).expect("interpreter").remove(0)
}

/// Asserts near-equality and prints the measured error.
fn check(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let err = got.max_abs_diff(want);
    println!("{what}: shape {:?}, max|got - want| = {err:.3e}", got.shape);
    assert_eq!(got.shape, want.shape, "{what}: shapes");
    assert!(err <= tol, "{what}: error {err} over {tol}");
}

/// Imports a one-input model, runs it and the directly built `want` graph on the same input.
fn check_against_builder(test: &str, m: &ModelProto, want: Graph, x: &Tensor) -> OnnxModel {
    let got = import(m, test);
    check(
        test,
        &run(&got.graph, std::slice::from_ref(x)),
        &run(&want, std::slice::from_ref(x)),
        0.0,
    );
    got
}

fn unsupported_reasons(r: Result<OnnxModel, OnnxError>) -> Vec<String> {
    match r {
        Err(OnnxError::Unsupported { nodes, .. }) => nodes.iter().map(|n| n.to_string()).collect(),
        Err(e) => panic!("expected an unsupported-node error, got {e}"),
        Ok(_) => panic!("expected an unsupported-node error, the import succeeded"),
    }
}

// ---------------------------------------------------------------------------------------------
// Fixture exports (torch.onnx.export, opset 17) against PyTorch's outputs

fn fixture_matches_pytorch(name: &str) {
    let onnx = fixture_path(&format!("onnx/{name}.onnx"));
    let io =
        Fixture::open(fixture_path(&format!("onnx/{name}.io.safetensors"))).expect("io fixture");
    let (x, want) = (
        io.tensor("input").expect("input"),
        io.tensor("output").expect("output"),
    );
    let m = load_onnx(&onnx, &OnnxOptions { batch: x.shape[0] }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.opset, 17);
    assert_eq!(m.inputs[0].name, "input");
    assert_eq!(m.inputs[0].shape, x.shape);
    assert_eq!(m.outputs[0].name, "output");
    assert!(
        m.producer().starts_with("pytorch"),
        "producer {:?}",
        m.producer()
    );
    assert!(m.graph.is_bound());
    if name == "lenet5" {
        let params: Vec<&str> = m
            .graph
            .params()
            .map(|id| m.graph.tensor(id).name.as_str())
            .collect();
        assert_eq!(
            params,
            [
                "conv1.weight",
                "conv1.bias",
                "conv2.weight",
                "conv2.bias",
                "fc1.weight",
                "fc1.bias",
                "fc2.weight",
                "fc2.bias",
                "fc3.weight",
                "fc3.bias"
            ]
        );
    }
    let got = run(&m.graph, &[x]);
    let scale = want.data.iter().fold(0f32, |a, v| a.max(v.abs()));
    let err = got.max_abs_diff(&want);
    println!(
        "{name}: {} nodes, {} params, max|got - want| = {err:.3e} (max|want| {scale:.3}, rel {:.3e})",
        m.graph.nodes.len(),
        m.graph.param_count(),
        got.rel_error(&want)
    );
    assert!(
        got.allclose_fixture(&want),
        "{name}: error {err} over 1e-3 * {scale} + 1e-5"
    );
}

#[test]
fn lenet5_onnx_matches_pytorch() {
    fixture_matches_pytorch("lenet5");
}

#[test]
fn squeezenet1_1_onnx_matches_pytorch() {
    fixture_matches_pytorch("squeezenet1_1");
}

#[test]
fn mobilenet_v2_onnx_matches_pytorch() {
    fixture_matches_pytorch("mobilenet_v2");
}
