//! Pass tests: each graph runs through the interpreter before and after a pass and must give
//! the same outputs; node counts pin what was folded or fused.

use super::{fold_batchnorm, fuse_epilogues, optimize};
use crate::interp::{run, tests::Rng};
use crate::{Activation, Conv2d, Graph, GraphBuilder, Op, Pool2d, Tensor, TensorId, TensorKind};

/// Builds graphs with random parameter values (positive variances for BatchNorm).
struct Net {
    b: GraphBuilder,
    rng: Rng,
}

impl Net {
    fn new(seed: u64) -> Self {
        Net {
            b: GraphBuilder::new(),
            rng: Rng::new(seed),
        }
    }

    fn param(&mut self, key: &str, shape: &[usize]) -> TensorId {
        self.b.param(key, shape)
    }

    fn conv(&mut self, name: &str, x: TensorId, k: usize, kernel: usize, c: Conv2d) -> TensorId {
        let ch = self.b.shape(x)[1];
        let w = self.param(
            &format!("{name}.weight"),
            &[k, ch / c.groups, kernel, kernel],
        );
        let mut ins = vec![x, w];
        if c.bias {
            ins.push(self.param(&format!("{name}.bias"), &[k]));
        }
        self.node(name, Op::Conv2d(c), &ins)
    }

    fn bn(&mut self, name: &str, x: TensorId) -> TensorId {
        let c = self.b.shape(x)[1];
        let ps: Vec<TensorId> = ["weight", "bias", "running_mean", "running_var"]
            .iter()
            .map(|k| self.param(&format!("{name}.{k}"), &[c]))
            .collect();
        self.node(
            name,
            Op::BatchNorm { eps: 1e-5 },
            &[x, ps[0], ps[1], ps[2], ps[3]],
        )
    }

    fn node(&mut self, name: &str, op: Op, ins: &[TensorId]) -> TensorId {
        match self.b.node(name, op, ins) {
            Ok(t) => t,
            Err(e) => panic!("test graph is malformed: {e}"),
        }
    }

    fn act(&mut self, name: &str, x: TensorId, a: Activation) -> TensorId {
        self.node(name, Op::Act(a), &[x])
    }

    /// Finishes the graph and fills every parameter with random values.
    fn finish(mut self, outputs: &[TensorId]) -> Graph {
        for &o in outputs {
            self.b.output(o);
        }
        let mut g = self.b.finish();
        for t in g.tensors.iter_mut().filter(|t| t.kind == TensorKind::Param) {
            let n = t.numel();
            let data: Vec<f32> = if t.name.ends_with("running_var") {
                (0..n).map(|_| 0.5 + self.rng.uniform(0.5).abs()).collect()
            } else if t.name.ends_with(".weight") && t.shape.len() == 1 {
                (0..n).map(|_| 1.0 + self.rng.uniform(0.5)).collect()
            } else {
                (0..n).map(|_| self.rng.uniform(0.5)).collect()
            };
            t.data = Some(data.into());
        }
        g
    }
}

/// Every id in range, inputs produced by earlier nodes (or not produced at all), each tensor
/// written once.
fn assert_well_formed(g: &Graph) {
    let mut produced_at = vec![None; g.tensors.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        assert!(
            n.output.0 < g.tensors.len(),
            "node {} output out of range",
            n.name
        );
        assert!(
            produced_at[n.output.0].is_none(),
            "tensor {} written twice",
            n.output.0
        );
        produced_at[n.output.0] = Some(i);
    }
    for (i, n) in g.nodes.iter().enumerate() {
        for x in &n.inputs {
            assert!(x.0 < g.tensors.len(), "node {} input out of range", n.name);
            if let Some(p) = produced_at[x.0] {
                assert!(
                    p < i,
                    "node {} reads tensor {} before node {p} writes it",
                    n.name,
                    x.0
                );
            } else {
                assert_ne!(
                    g.tensors[x.0].kind,
                    TensorKind::Activation,
                    "node {} reads an unwritten tensor",
                    n.name
                );
            }
        }
        let shapes: Vec<&[usize]> = n.inputs.iter().map(|&x| g.shape(x)).collect();
        assert_eq!(
            n.op.infer(&shapes).as_deref(),
            Ok(g.shape(n.output)),
            "node {} shape",
            n.name
        );
    }
    assert!(g.is_bound(), "pass left a tensor without values");
}

/// Runs both graphs on the same random inputs and checks every output agrees within 1e-5.
fn assert_same_results(what: &str, before: &Graph, after: &Graph) {
    assert_well_formed(after);
    let mut rng = Rng::new(99);
    let inputs: Vec<Tensor> = before
        .inputs
        .iter()
        .map(|&i| rng.tensor(before.shape(i), 1.0))
        .collect();
    let want = run(before, &inputs).unwrap_or_else(|e| panic!("{what}: before: {e}"));
    let got = run(after, &inputs).unwrap_or_else(|e| panic!("{what}: after: {e}"));
    assert_eq!(got.len(), want.len(), "{what}: output count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let err = g.rel_error(w);
        println!("{what}: output {i} {:?} rel error {err:.3e}", w.shape);
        assert!(err <= 1e-5, "{what}: output {i} rel error {err}");
    }
}

fn count(g: &Graph, kind: &str) -> usize {
    g.nodes.iter().filter(|n| n.op.kind() == kind).count()
}

#[test]
fn conv_bn_relu_becomes_one_conv() {
    let mut n = Net::new(1);
    let x = n.b.input("x", &[2, 3, 9, 8]);
    let y = n.conv("conv", x, 6, 3, Conv2d::new(1, 1, 1, false));
    let y = n.bn("bn", y);
    let y = n.act("relu", y, Activation::Relu);
    let g = n.finish(&[y]);
    let folded = fold_batchnorm(&g);
    assert_same_results("conv-bn-relu fold", &g, &folded);
    assert_eq!((folded.nodes.len(), count(&folded, "batchnorm")), (2, 0));
    assert!(
        folded
            .tensors
            .iter()
            .any(|t| t.name == "conv.weight+bn" && t.kind == TensorKind::Const)
    );
    assert!(
        folded.tensors.iter().all(|t| !t.name.starts_with("bn.")),
        "BatchNorm params dropped"
    );
    let fused = optimize(&g);
    assert_same_results("conv-bn-relu optimize", &g, &fused);
    assert_eq!(fused.nodes.len(), 1);
    let Op::Conv2d(c) = &fused.nodes[0].op else {
        panic!("expected conv, got {:?}", fused.nodes[0].op)
    };
    assert!(c.bias && c.act == Activation::Relu && !c.residual);
}

#[test]
fn grouped_dilated_strided_convs_fold_with_and_without_bias() {
    let mut n = Net::new(2);
    let x = n.b.input("x", &[1, 8, 13, 11]);
    let mut c1 = Conv2d::new(2, 2, 4, true);
    c1.dilation = [2, 1];
    c1.padding = [2, 1, 1, 2];
    let a = n.conv("grouped", x, 12, 3, c1);
    let a = n.bn("bn_a", a);
    let dw = Conv2d::new(1, 1, 12, false);
    let d = n.conv("depthwise", a, 12, 3, dw);
    let d = n.bn("bn_d", d);
    let d = n.act("relu6", d, Activation::RELU6);
    let g = n.finish(&[d]);
    let opt = optimize(&g);
    assert_same_results("grouped/dilated/depthwise", &g, &opt);
    assert_eq!(opt.nodes.len(), 2, "{:#?}", opt.nodes);
}

#[test]
fn resnet_basic_block_becomes_two_convs() {
    // relu(bn2(conv2(relu(bn1(conv1(x))))) + x)
    let mut n = Net::new(3);
    let x = n.b.input("x", &[1, 4, 6, 6]);
    let stem = n.conv("stem", x, 8, 3, Conv2d::new(1, 1, 1, false));
    let stem = n.act("stem.relu", stem, Activation::Relu);
    let y = n.conv("conv1", stem, 8, 3, Conv2d::new(1, 1, 1, false));
    let y = n.bn("bn1", y);
    let y = n.act("relu1", y, Activation::Relu);
    let y = n.conv("conv2", y, 8, 3, Conv2d::new(1, 1, 1, false));
    let y = n.bn("bn2", y);
    let y = n.node("add", Op::Add, &[y, stem]);
    let y = n.act("relu2", y, Activation::Relu);
    let g = n.finish(&[y]);
    let opt = optimize(&g);
    assert_same_results("basic block", &g, &opt);
    assert_eq!(opt.nodes.len(), 3, "{:#?}", opt.nodes);
    let Op::Conv2d(c) = &opt.nodes[2].op else {
        panic!("last node should be conv2")
    };
    assert!(c.residual && c.act == Activation::Relu);
    assert_eq!(
        opt.nodes[2].inputs[3], opt.nodes[0].output,
        "residual is the stem output"
    );
}

#[test]
fn bottleneck_with_downsample_fuses_into_later_conv() {
    // Torchvision order: main branch first, downsample after it, so the residual add can only
    // go into the downsample conv (its other side is computed earlier).
    let mut n = Net::new(4);
    let x = n.b.input("x", &[1, 4, 8, 8]);
    let y = n.conv("conv1", x, 2, 1, Conv2d::new(1, 0, 1, false));
    let y = n.bn("bn1", y);
    let y = n.act("relu1", y, Activation::Relu);
    let y = n.conv("conv2", y, 2, 3, Conv2d::new(2, 1, 1, false));
    let y = n.bn("bn2", y);
    let y = n.act("relu2", y, Activation::Relu);
    let y = n.conv("conv3", y, 8, 1, Conv2d::new(1, 0, 1, false));
    let y = n.bn("bn3", y);
    let d = n.conv("downsample.0", x, 8, 1, Conv2d::new(2, 0, 1, false));
    let d = n.bn("downsample.1", d);
    let s = n.node("add", Op::Add, &[y, d]);
    let s = n.act("relu", s, Activation::Relu);
    let g = n.finish(&[s]);
    assert_eq!(g.nodes.len(), 12);
    let opt = optimize(&g);
    assert_same_results("bottleneck", &g, &opt);
    assert_eq!(opt.nodes.len(), 4, "{:#?}", opt.nodes);
    let last = &opt.nodes[3];
    assert_eq!(last.name, "downsample.0");
    assert!(matches!(&last.op, Op::Conv2d(c) if c.residual && c.act == Activation::Relu));
}

#[test]
fn add_of_input_and_conv_fuses_either_order() {
    for swap in [false, true] {
        let mut n = Net::new(5);
        let x = n.b.input("x", &[1, 3, 5, 5]);
        let y = n.conv("conv", x, 3, 3, Conv2d::new(1, 1, 1, true));
        let ins = if swap { [x, y] } else { [y, x] };
        let s = n.node("add", Op::Add, &ins);
        let g = n.finish(&[s]);
        let opt = fuse_epilogues(&g);
        assert_same_results(&format!("input + conv swap={swap}"), &g, &opt);
        assert_eq!(opt.nodes.len(), 1);
    }
}

#[test]
fn unfoldable_batchnorms_and_adds_stay() {
    let mut n = Net::new(6);
    let x = n.b.input("x", &[1, 4, 6, 6]);
    // BatchNorm straight on the input, and after a pool.
    let a = n.bn("bn_in", x);
    let p = n.node("pool", Op::MaxPool2d(Pool2d::new(2, 2, 0, false)), &[a]);
    let p = n.bn("bn_pool", p);
    // BatchNorm after a conv with a fused-style activation already set.
    let mut c = Conv2d::new(1, 1, 1, false);
    c.act = Activation::Relu;
    let q = n.conv("conv_act", p, 4, 3, c);
    let q = n.bn("bn_after_act", q);
    // Add whose other side is computed after the conv: not fusable.
    let c1 = n.conv("c1", q, 4, 1, Conv2d::new(1, 0, 1, false));
    let c2 = n.conv("c2", q, 4, 1, Conv2d::new(1, 0, 1, false));
    let r2 = n.act("r2", c2, Activation::Sigmoid);
    let s = n.node("add", Op::Add, &[c1, r2]);
    // Broadcasting add: not a residual.
    let bias = n.param("chan", &[1, 4, 1, 1]);
    let c3 = n.conv("c3", s, 4, 1, Conv2d::new(1, 0, 1, false));
    let s2 = n.node("add_bcast", Op::Add, &[c3, bias]);
    let g = n.finish(&[s2]);
    let folded = fold_batchnorm(&g);
    assert_eq!(
        count(&folded, "batchnorm"),
        3,
        "none of the three folds into a conv"
    );
    let opt = optimize(&g);
    assert_same_results("unfoldable", &g, &opt);
    // ... and standalone_batchnorm makes each a depthwise 1x1 conv.
    assert_eq!(count(&opt, "batchnorm"), 0);
    assert_eq!(count(&opt, "add"), 2);
    // Only the sigmoid after c2 fuses.
    assert_eq!(count(&opt, "activation"), 0);
    assert_eq!(opt.nodes.len(), g.nodes.len() - 1);
}

#[test]
fn shared_conv_outputs_are_not_folded_or_fused() {
    let mut n = Net::new(7);
    let x = n.b.input("x", &[1, 3, 6, 6]);
    let y = n.conv("conv", x, 4, 3, Conv2d::new(1, 1, 1, false));
    let a = n.bn("bn", y);
    let b = n.node("pool", Op::AvgPool2d(Pool2d::new(3, 1, 1, false)), &[y]);
    let s = n.node("add", Op::Add, &[a, b]);
    let z = n.conv("conv2", s, 4, 1, Conv2d::new(1, 0, 1, true));
    let r = n.act("relu", z, Activation::Relu);
    let t = n.node("add2", Op::Add, &[z, r]);
    let g = n.finish(&[t]);
    let opt = optimize(&g);
    assert_same_results("shared outputs", &g, &opt);
    assert_eq!(opt.nodes.len(), g.nodes.len());
}

#[test]
fn graph_output_in_the_middle_keeps_existing() {
    let mut n = Net::new(8);
    let x = n.b.input("x", &[1, 3, 5, 5]);
    let y = n.conv("conv", x, 4, 3, Conv2d::new(1, 1, 1, false));
    let a = n.bn("bn", y);
    let r = n.act("relu", a, Activation::Relu);
    let z = n.conv("conv2", r, 4, 3, Conv2d::new(1, 1, 1, false));
    let s = n.node("add", Op::Add, &[z, r]);
    // The conv output, the BatchNorm output and the final sum are all graph outputs.
    let g = n.finish(&[y, s, a]);
    let opt = optimize(&g);
    assert_same_results("middle outputs", &g, &opt);
    assert_eq!(
        count(&fold_batchnorm(&g), "batchnorm"),
        1,
        "conv output is read by the caller"
    );
    assert_eq!(
        count(&opt, "batchnorm"),
        0,
        "the standalone BatchNorm is a 1x1 conv"
    );
    // The relu reads the bn output that is itself an output: not fusable into anything.
    assert_eq!(count(&opt, "activation"), 1);
    assert_eq!(count(&opt, "add"), 0, "conv2 takes the residual");
    assert_eq!(opt.outputs.len(), 3);
}

#[test]
fn linear_bn1d_relu_becomes_one_linear() {
    let mut n = Net::new(9);
    let x = n.b.input("x", &[3, 10]);
    let w = n.param("fc.weight", &[7, 10]);
    let b = n.param("fc.bias", &[7]);
    let y = n.node(
        "fc",
        Op::Linear {
            bias: true,
            act: Activation::Identity,
        },
        &[x, w, b],
    );
    let y = n.bn("bn", y);
    let y = n.act("tanh", y, Activation::Tanh);
    let w2 = n.param("fc2.weight", &[5, 7]);
    let z = n.node(
        "fc2",
        Op::Linear {
            bias: false,
            act: Activation::Identity,
        },
        &[y, w2],
    );
    let z = n.act("hs", z, Activation::HardSwish);
    let g = n.finish(&[z]);
    let opt = optimize(&g);
    assert_same_results("linear-bn-act", &g, &opt);
    assert_eq!(opt.nodes.len(), 2);
    assert!(matches!(
        opt.nodes[0].op,
        Op::Linear {
            bias: true,
            act: Activation::Tanh
        }
    ));
    assert!(matches!(
        opt.nodes[1].op,
        Op::Linear {
            bias: false,
            act: Activation::HardSwish
        }
    ));
}

#[test]
fn densenet_preactivation_bn_relu_becomes_one_depthwise_conv() {
    // DenseNet's layer: relu(norm(concat(a, b))) -> conv; the norm reads the concatenation, which
    // later layers read too, so it cannot fold into a conv: it becomes a depthwise 1x1 conv and
    // the ReLU fuses into that.
    let mut n = Net::new(11);
    let x = n.b.input("x", &[2, 4, 5, 6]);
    let a = n.conv("a", x, 4, 3, Conv2d::new(1, 1, 1, false));
    let cat = n.node("cat", Op::Concat { axis: 1 }, &[x, a]);
    let y = n.bn("norm1", cat);
    let y = n.act("relu1", y, Activation::Relu);
    let y = n.conv("conv1", y, 6, 1, Conv2d::new(1, 0, 1, false));
    let z = n.node("cat2", Op::Concat { axis: 1 }, &[cat, y]);
    let g = n.finish(&[z]);
    let opt = optimize(&g);
    assert_same_results("densenet layer", &g, &opt);
    assert_eq!(
        (count(&opt, "batchnorm"), count(&opt, "activation")),
        (0, 0)
    );
    let norm = opt
        .nodes
        .iter()
        .find(|n| n.name == "norm1")
        .expect("norm1 kept");
    let Op::Conv2d(c) = &norm.op else {
        panic!("norm1 should be a conv, got {:?}", norm.op)
    };
    assert_eq!((c.groups, c.bias, c.act), (8, true, Activation::Relu));
    assert_eq!(opt.shape(norm.inputs[1]), &[8, 1, 1, 1]);
}

#[test]
fn batchnorm_on_2d_or_unbound_stats_is_not_made_a_conv() {
    let mut n = Net::new(12);
    let x = n.b.input("x", &[3, 5]);
    let y = n.bn("bn1d", x);
    let x4 = n.b.input("x4", &[1, 2, 3, 3]);
    let z = n.bn("bn_unbound", x4);
    let mut g = n.finish(&[y, z]);
    for t in g
        .tensors
        .iter_mut()
        .filter(|t| t.name == "bn_unbound.running_mean")
    {
        t.data = None;
    }
    let opt = super::standalone_batchnorm(&g);
    assert_eq!(count(&opt, "batchnorm"), 2);
}

#[test]
fn passes_leave_unbound_batchnorm_alone() {
    let mut n = Net::new(10);
    let x = n.b.input("x", &[1, 2, 4, 4]);
    let y = n.conv("conv", x, 2, 1, Conv2d::new(1, 0, 1, false));
    let y = n.bn("bn", y);
    let mut g = n.finish(&[y]);
    for t in g.tensors.iter_mut().filter(|t| t.name == "bn.running_var") {
        t.data = None;
    }
    let opt = fold_batchnorm(&g);
    assert_eq!(opt.nodes.len(), 2, "nothing to fold without values");
    let err = run(&opt, &[Tensor::zeros(&[1, 2, 4, 4])]).expect_err("unbound");
    println!("{err}");
    assert!(err.to_string().contains("bn.running_var"), "{err}");
}
