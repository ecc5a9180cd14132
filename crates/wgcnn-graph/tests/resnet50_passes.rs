//! A ResNet-50-shaped graph (torchvision layout, 64x64 input, random weights bound through
//! `Graph::bind`) run by the interpreter before and after `passes::optimize`: the outputs agree
//! and every BatchNorm, residual add and ReLU is folded into a conv.

use std::collections::BTreeMap;
use std::time::Instant;

use wgcnn_graph::{
    Activation, Conv2d, Graph, GraphBuilder, GraphError, Op, Pool2d, Shape, Tensor, TensorId,
    WeightSource, interp, passes,
};

/// Weights made up on request from a key hash, BatchNorm variances positive.
struct MadeUp(BTreeMap<String, Shape>);

impl WeightSource for MadeUp {
    fn keys(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
    fn shape(&self, key: &str) -> Option<Shape> {
        self.0.get(key).cloned()
    }
    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        let shape = self.0.get(key).ok_or_else(|| format!("no key {key}"))?;
        let n: usize = shape.iter().product();
        let fan_in = (n / shape[0].max(1)).max(1) as f32;
        let mut h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        let mut u = || {
            h = h
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (h >> 40) as f32 / (1u64 << 24) as f32
        };
        Ok((0..n)
            .map(|_| match () {
                _ if key.ends_with("running_var") => 0.5 + u(),
                _ if key.ends_with("running_mean") || key.ends_with("bias") => (u() - 0.5) * 0.2,
                _ if shape.len() == 1 => 0.5 + u(),
                _ => (2.0 * u() - 1.0) * (3.0 / fan_in).sqrt(),
            })
            .collect())
    }
}

struct Builder {
    b: GraphBuilder,
    keys: BTreeMap<String, Shape>,
}

impl Builder {
    fn param(&mut self, key: String, shape: &[usize]) -> TensorId {
        self.keys.insert(key.clone(), shape.to_vec());
        self.b.param(&key, shape)
    }

    fn conv_bn(
        &mut self,
        x: TensorId,
        conv: &str,
        bn: &str,
        k: usize,
        kernel: usize,
        stride: usize,
    ) -> Result<TensorId, GraphError> {
        let c = self.b.shape(x)[1];
        let w = self.param(format!("{conv}.weight"), &[k, c, kernel, kernel]);
        let y = self.b.node(
            conv,
            Op::Conv2d(Conv2d::new(stride, kernel / 2, 1, false)),
            &[x, w],
        )?;
        let p: Vec<TensorId> = ["weight", "bias", "running_mean", "running_var"]
            .iter()
            .map(|s| self.param(format!("{bn}.{s}"), &[k]))
            .collect();
        self.b.node(
            bn,
            Op::BatchNorm { eps: 1e-5 },
            &[y, p[0], p[1], p[2], p[3]],
        )
    }

    fn relu(&mut self, name: &str, x: TensorId) -> Result<TensorId, GraphError> {
        self.b.node(name, Op::Act(Activation::Relu), &[x])
    }
}

fn resnet50(size: usize) -> Result<Graph, GraphError> {
    let mut r = Builder {
        b: GraphBuilder::new(),
        keys: BTreeMap::new(),
    };
    let x = r.b.input("input", &[1, 3, size, size]);
    let mut x = r.conv_bn(x, "conv1", "bn1", 64, 7, 2)?;
    x = r.relu("relu", x)?;
    x =
        r.b.node("maxpool", Op::MaxPool2d(Pool2d::new(3, 2, 1, false)), &[x])?;
    for (li, (planes, blocks, stride)) in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]
        .into_iter()
        .enumerate()
    {
        for bi in 0..blocks {
            let p = format!("layer{}.{bi}", li + 1);
            let s = if bi == 0 { stride } else { 1 };
            let mut y = r.conv_bn(x, &format!("{p}.conv1"), &format!("{p}.bn1"), planes, 1, 1)?;
            y = r.relu(&format!("{p}.relu1"), y)?;
            y = r.conv_bn(y, &format!("{p}.conv2"), &format!("{p}.bn2"), planes, 3, s)?;
            y = r.relu(&format!("{p}.relu2"), y)?;
            y = r.conv_bn(
                y,
                &format!("{p}.conv3"),
                &format!("{p}.bn3"),
                planes * 4,
                1,
                1,
            )?;
            let identity = if bi == 0 {
                r.conv_bn(
                    x,
                    &format!("{p}.downsample.0"),
                    &format!("{p}.downsample.1"),
                    planes * 4,
                    1,
                    s,
                )?
            } else {
                x
            };
            y = r.b.node(&format!("{p}.add"), Op::Add, &[y, identity])?;
            x = r.relu(&format!("{p}.relu3"), y)?;
        }
    }
    x =
        r.b.node("avgpool", Op::AdaptiveAvgPool2d { output: [1, 1] }, &[x])?;
    x = r.b.node("flatten", Op::Flatten { axis: 1 }, &[x])?;
    let (w, b) = (
        r.param("fc.weight".into(), &[1000, 2048]),
        r.param("fc.bias".into(), &[1000]),
    );
    x = r.b.node(
        "fc",
        Op::Linear {
            bias: true,
            act: Activation::Identity,
        },
        &[x, w, b],
    )?;
    r.b.output(x);
    let mut g = r.b.finish();
    g.bind(&MadeUp(r.keys))?;
    Ok(g)
}

#[test]
fn resnet50_optimize_folds_every_bn_add_relu_and_keeps_logits() -> Result<(), GraphError> {
    let g = resnet50(64)?;
    let x = Tensor::new(
        &[1, 3, 64, 64],
        (0..3 * 64 * 64)
            .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
            .collect(),
    )?;
    let t = Instant::now();
    let want = interp::run(&g, std::slice::from_ref(&x))?;
    let before = t.elapsed();
    let opt = passes::optimize(&g);
    let t = Instant::now();
    let got = interp::run(&opt, std::slice::from_ref(&x))?;
    let after = t.elapsed();
    let err = got[0].rel_error(&want[0]);
    println!(
        "resnet50@64: {} nodes -> {}, {:.2} GMAC, interp {:.3}s / {:.3}s, rel error {err:.3e}",
        g.nodes.len(),
        opt.nodes.len(),
        g.macs() as f64 / 1e9,
        before.as_secs_f64(),
        after.as_secs_f64()
    );
    assert!(err <= 1e-5, "rel error {err}");
    // 53 convs (BatchNorm, residual and ReLU fused), maxpool, avgpool, flatten, fc.
    assert_eq!(g.nodes.len(), 175);
    assert_eq!(opt.nodes.len(), 57);
    // Only fc keeps its parameters; the folded conv weights are constants.
    assert_eq!(opt.param_count(), 2048 * 1000 + 1000);
    let fused = opt
        .nodes
        .iter()
        .filter(|n| matches!(&n.op, Op::Conv2d(c) if c.residual && c.act == Activation::Relu));
    assert_eq!(fused.count(), 16, "one residual conv per bottleneck");
    Ok(())
}
