//! `interp::run` / `run_all` on whole graphs: output order, value table, and typed errors for
//! wrong inputs, unbound parameters and misordered nodes.

use wgcnn_graph::{
    Activation, Conv2d, GraphBuilder, GraphError, Node, Op, Pool2d, Tensor, TensorKind, interp,
};

fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor {
        shape: shape.to_vec(),
        data: data.to_vec(),
    }
}

/// x [1,1,2,2] -> conv 1x1 (weight 2, bias 1) -> relu -> maxpool 2 -> outputs (pool, relu).
fn small() -> Result<wgcnn_graph::Graph, GraphError> {
    let mut b = GraphBuilder::new();
    let x = b.input("x", &[1, 1, 2, 2]);
    let w = b.constant("w", &[1, 1, 1, 1], vec![2.0])?;
    let bias = b.param("conv.bias", &[1]);
    let y = b.node(
        "conv",
        Op::Conv2d(Conv2d::new(1, 0, 1, true)),
        &[x, w, bias],
    )?;
    let r = b.node("relu", Op::Act(Activation::Relu), &[y])?;
    let p = b.node("pool", Op::MaxPool2d(Pool2d::new(2, 2, 0, false)), &[r])?;
    b.output(p);
    b.output(r);
    let mut g = b.finish();
    g.tensors[bias.0].data = Some(vec![1.0].into());
    Ok(g)
}

#[test]
fn run_returns_outputs_in_order_and_run_all_every_tensor() -> Result<(), GraphError> {
    let g = small()?;
    let x = t(&[1, 1, 2, 2], &[-3., -1., 0., 2.]);
    let out = interp::run(&g, std::slice::from_ref(&x))?;
    let relu = t(&[1, 1, 2, 2], &[0., 0., 1., 5.]);
    println!("outputs {:?} {:?}", out[0].data, out[1].data);
    assert_eq!(out, vec![t(&[1, 1, 1, 1], &[5.]), relu.clone()]);
    let all = interp::run_all(&g, std::slice::from_ref(&x))?;
    assert_eq!(all.len(), g.tensors.len());
    assert_eq!(all[0].as_ref(), Some(&x));
    assert_eq!(
        all[1].as_ref().map(|v| v.data.clone()),
        Some(vec![2.0]),
        "constants are included"
    );
    assert_eq!(
        all[3].as_ref().map(|v| v.data.clone()),
        Some(vec![-5., -1., 1., 5.]),
        "conv output"
    );
    assert_eq!(all[4].as_ref(), Some(&relu));
    Ok(())
}

#[test]
fn run_rejects_wrong_input_count_and_shape() -> Result<(), GraphError> {
    let g = small()?;
    let err = interp::run(&g, &[]).expect_err("no inputs");
    println!("{err}");
    assert!(err.to_string().contains("1 inputs, got 0"), "{err}");
    let err = interp::run(&g, &[Tensor::zeros(&[1, 1, 2, 3])]).expect_err("wrong shape");
    println!("{err}");
    assert!(err.to_string().contains("input x"), "{err}");
    Ok(())
}

#[test]
fn run_names_unbound_parameter() -> Result<(), GraphError> {
    let mut g = small()?;
    for t in g.tensors.iter_mut().filter(|t| t.kind == TensorKind::Param) {
        t.data = None;
    }
    let err = interp::run(&g, &[Tensor::zeros(&[1, 1, 2, 2])]).expect_err("unbound");
    println!("{err}");
    assert!(err.to_string().contains("conv.bias"), "{err}");
    assert!(interp::run_all(&g, &[Tensor::zeros(&[1, 1, 2, 2])]).is_err());
    Ok(())
}

#[test]
fn run_reports_misordered_nodes_and_bad_node_shapes() -> Result<(), GraphError> {
    let mut g = small()?;
    g.nodes.swap(1, 2);
    let err = interp::run(&g, &[Tensor::zeros(&[1, 1, 2, 2])]).expect_err("misordered");
    println!("{err}");
    assert!(err.to_string().contains("pool"), "{err}");
    let mut g = small()?;
    // Rewire the pool to read the 1-element constant: shape inference fails, named by node.
    let w = g.nodes[0].inputs[1];
    g.nodes[2] = Node {
        inputs: vec![w],
        ..g.nodes[2].clone()
    };
    let err = interp::run(&g, &[Tensor::zeros(&[1, 1, 2, 2])]).expect_err("bad shape");
    println!("{err}");
    assert!(err.to_string().contains("node pool (maxpool2d)"), "{err}");
    Ok(())
}
