//! Concatenations written in place (see `wgcnn_exec::memory`): a DenseNet-style block, an
//! Inception-style block with a nested concatenation and a pooling branch, and a producer that
//! reads its own concatenation's buffer (which must fall back to a copy) give the
//! interpreter's numbers at batch 1 (prefix views) and batch 2 (channel slices only).

use std::sync::{Arc, OnceLock};

use wgcnn_exec::Plan;
use wgcnn_graph::{Activation, Conv2d, GraphBuilder, Op, Pool2d, Tensor, TensorId, interp};
use wgcnn_kernels::{Context, ContextOptions};

fn ctx() -> Arc<Context> {
    static CTX: OnceLock<Arc<Context>> = OnceLock::new();
    CTX.get_or_init(|| {
        Arc::new(Context::new(&ContextOptions::default()).expect("a GPU adapter (lavapipe in CI)"))
    })
    .clone()
}

/// Deterministic values in [-scale, scale).
fn values(seed: &mut u64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

struct Net {
    b: GraphBuilder,
    seed: u64,
}

impl Net {
    fn conv(&mut self, name: &str, x: TensorId, k: usize, kernel: usize) -> TensorId {
        let c = self.b.shape(x)[1];
        let n = k * c * kernel * kernel;
        let scale = (3.0 / (c * kernel * kernel) as f32).sqrt();
        let data = values(&mut self.seed, n, scale);
        let w = self
            .b
            .constant(&format!("{name}.weight"), &[k, c, kernel, kernel], data)
            .expect("weight");
        let mut op = Conv2d::new(1, kernel / 2, 1, false);
        op.act = Activation::Relu;
        self.b.node(name, Op::Conv2d(op), &[x, w]).expect("conv")
    }

    fn node(&mut self, name: &str, op: Op, xs: &[TensorId]) -> TensorId {
        self.b.node(name, op, xs).expect("node")
    }
}

/// The test network over an `[n, 8, 12, 12]` input.
fn network(n: usize) -> wgcnn_graph::Graph {
    let mut net = Net {
        b: GraphBuilder::new(),
        seed: 7,
    };
    let x = net.b.input("input", &[n, 8, 12, 12]);
    let stem = net.conv("stem", x, 8, 3);
    let x0 = net.node("pool0", Op::MaxPool2d(Pool2d::new(2, 2, 0, false)), &[stem]);
    // Dense block: every layer reads the concatenation of everything before it.
    let mut features = vec![x0];
    for l in 0..3 {
        let input = if l == 0 {
            x0
        } else {
            net.node(&format!("dense{l}.cat"), Op::Concat { axis: 1 }, &features)
        };
        let y = net.node(
            &format!("dense{l}.norm"),
            Op::Act(Activation::Relu),
            &[input],
        );
        let y = net.conv(&format!("dense{l}.conv1"), y, 8, 1);
        let y = net.conv(&format!("dense{l}.conv2"), y, 4, 3);
        features.push(y);
    }
    let block = net.node("dense.cat", Op::Concat { axis: 1 }, &features);
    // Inception block with a nested concatenation and a pooling branch.
    let b1 = net.conv("mixed.b1", block, 4, 1);
    let b2 = net.conv("mixed.b2", block, 8, 1);
    let b2a = net.conv("mixed.b2a", b2, 4, 3);
    let b2b = net.conv("mixed.b2b", b2, 4, 1);
    let inner = net.node("mixed.b2.cat", Op::Concat { axis: 1 }, &[b2a, b2b]);
    let pool = net.node(
        "mixed.pool",
        Op::MaxPool2d(Pool2d::new(3, 1, 1, false)),
        &[block],
    );
    let mixed = net.node("mixed.cat", Op::Concat { axis: 1 }, &[b1, inner, pool]);
    // A producer reading its concatenation's first input: that one can sit in place at
    // batch 1, the producer must not.
    let head = net.node(
        "head.pool",
        Op::AvgPool2d(Pool2d::new(3, 1, 1, false)),
        &[mixed],
    );
    let tail = net.conv("head.conv", head, 4, 3);
    let out = net.node("head.cat", Op::Concat { axis: 1 }, &[head, tail]);
    let out = net.node("head.relu", Op::Act(Activation::Tanh), &[out]);
    net.b.output(out);
    net.b.finish()
}

#[test]
fn concat_in_place_networks_match_the_interpreter_at_batch_one_and_two() {
    for n in [1, 2] {
        let g = network(n);
        let mut seed = 99;
        let input =
            Tensor::new(&[n, 8, 12, 12], values(&mut seed, n * 8 * 144, 1.0)).expect("input");
        let want = interp::run(&g, std::slice::from_ref(&input)).expect("interpreter");
        let plan = Plan::new(ctx(), &g).expect("plan");
        let copies: Vec<&str> = plan
            .launches()
            .iter()
            .filter(|l| l.kernel.name == "copy_channels")
            .map(|l| l.label.as_str())
            .collect();
        let got = plan.run(&[input]).expect("run");
        let err = got[0].rel_error(&want[0]);
        println!(
            "batch {n}: {} launches, copies {copies:?}, rel error {err:e}",
            plan.launches().len()
        );
        assert!(err < 1e-5, "batch {n}: rel error {err}");
        // Batch 1: only head.cat's conv copies (it reads the concatenation's buffer, where
        // head.pool sits as a prefix). Batch 2: no prefix views, so the dense block's inner
        // concatenations copy and head.pool (read by the conv too) is copied; the newest dense
        // feature, the Inception branches and head.conv are still written in place.
        if n == 1 {
            assert_eq!(copies, ["head.cat[1]"], "batch 1");
        } else {
            assert!(copies.contains(&"head.cat[0]"), "{copies:?}");
            assert!(!copies.contains(&"head.cat[1]"), "{copies:?}");
            assert!(!copies.contains(&"dense.cat[3]"), "{copies:?}");
        }
        assert!(
            !copies.iter().any(|c| c.starts_with("mixed")),
            "batch {n}: {copies:?}"
        );
    }
}
