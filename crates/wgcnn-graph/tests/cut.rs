//! `Graph::cut`: running one stage of a network on given tensors.

use wgcnn_graph::{Activation, GraphBuilder, Op, Tensor, interp};

#[test]
fn cut_runs_the_later_stage_on_a_given_tensor() {
    let mut b = GraphBuilder::new();
    let x = b.input("input", &[1, 2, 3, 3]);
    let a = b
        .node("first", Op::Act(Activation::Relu), &[x])
        .expect("node");
    let s = b.constant("scale", &[1], vec![2.0]).expect("const");
    let c = b.node("second", Op::Mul, &[a, s]).expect("node");
    let d = b
        .node("third", Op::Act(Activation::Tanh), &[c])
        .expect("node");
    b.output(d);
    let g = b.finish();
    let stage = g.cut(&[a], &[d]).expect("cut");
    assert_eq!(stage.nodes.len(), 2, "the first node is not needed");
    let given = Tensor {
        shape: vec![1, 2, 3, 3],
        data: (0..18).map(|i| i as f32 / 18.0 - 0.5).collect(),
    };
    let got = interp::run(&stage, std::slice::from_ref(&given))
        .expect("run")
        .remove(0);
    let want: Vec<f32> = given.data.iter().map(|v| (v * 2.0).tanh()).collect();
    assert_eq!(got.data, want);
    assert_eq!(g.find("second"), Some(c));
}

#[test]
fn cut_names_a_missing_tensor() {
    let mut b = GraphBuilder::new();
    let x = b.input("input", &[1, 1, 2, 2]);
    let a = b
        .node("first", Op::Act(Activation::Relu), &[x])
        .expect("node");
    let c = b.node("second", Op::Add, &[a, x]).expect("node");
    b.output(c);
    let g = b.finish();
    let err = g
        .cut(&[a], &[c])
        .expect_err("input is needed too")
        .to_string();
    assert!(err.contains("input"), "{err}");
}
