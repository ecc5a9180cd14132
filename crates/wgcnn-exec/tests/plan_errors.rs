//! Planning and running refuse bad graphs and inputs with typed errors, never a panic.

use std::sync::{Arc, OnceLock};

use wgcnn_exec::{ExecError, Plan};
use wgcnn_graph::{Activation, GraphBuilder, Op, Tensor};
use wgcnn_kernels::{Context, ContextOptions};

fn ctx() -> Arc<Context> {
    static CTX: OnceLock<Arc<Context>> = OnceLock::new();
    CTX.get_or_init(|| {
        Arc::new(Context::new(&ContextOptions::default()).expect("a GPU adapter (lavapipe in CI)"))
    })
    .clone()
}

#[test]
fn unbound_parameters_are_refused_naming_the_key() {
    let mut b = GraphBuilder::new();
    let x = b.input("input", &[1, 2, 4, 4]);
    let w = b.param("conv1.weight", &[3, 2, 1, 1]);
    let y = b
        .node(
            "conv1",
            Op::Conv2d(wgcnn_graph::Conv2d::new(1, 0, 1, false)),
            &[x, w],
        )
        .expect("node");
    b.output(y);
    let err = Plan::new(ctx(), &b.finish())
        .expect_err("unbound")
        .to_string();
    assert!(err.contains("conv1.weight"), "{err}");
}

#[test]
fn a_constant_output_is_an_error_not_a_panic() {
    let mut b = GraphBuilder::new();
    let x = b.input("input", &[1, 4]);
    let y = b
        .node("relu", Op::Act(Activation::Relu), &[x])
        .expect("node");
    let c = b
        .constant("table", &[2, 2], vec![1.0, 2.0, 3.0, 4.0])
        .expect("constant");
    let r = b
        .node("flat", Op::Reshape { shape: vec![4] }, &[c])
        .expect("node");
    b.output(y);
    b.output(r);
    let err = Plan::new(ctx(), &b.finish())
        .expect_err("constant output")
        .to_string();
    assert!(err.contains("constant"), "{err}");
}

#[test]
fn wrong_input_shape_and_count_are_errors() {
    let mut b = GraphBuilder::new();
    let x = b.input("input", &[1, 3, 2, 2]);
    let y = b
        .node("sig", Op::Act(Activation::Sigmoid), &[x])
        .expect("node");
    b.output(y);
    let plan = Plan::new(ctx(), &b.finish()).expect("plan");
    let wrong = Tensor::zeros(&[1, 3, 2, 3]);
    assert!(matches!(
        plan.run(&[wrong]),
        Err(ExecError::InputShape { .. })
    ));
    assert!(matches!(
        plan.run(&[]),
        Err(ExecError::InputCount {
            expected: 1,
            got: 0
        })
    ));
    let ok = plan.run(&[Tensor::zeros(&[1, 3, 2, 2])]).expect("run");
    assert!(ok[0].data.iter().all(|v| (*v - 0.5).abs() < 1e-6));
}

#[test]
fn an_activation_over_the_binding_limit_is_too_large() {
    let limit = ctx().max_binding();
    let side = ((limit / 4 / 3) as f64).sqrt() as usize + 8;
    let mut b = GraphBuilder::new();
    let x = b.input("input", &[1, 3, side, side]);
    let y = b
        .node("relu", Op::Act(Activation::Relu), &[x])
        .expect("node");
    b.output(y);
    match Plan::new(ctx(), &b.finish()) {
        Err(ExecError::TooLarge {
            name,
            bytes,
            limit: l,
            ..
        }) => {
            println!("{name}: {bytes} bytes > {l}");
            assert!(bytes > l);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}
