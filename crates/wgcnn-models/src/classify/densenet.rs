//! DenseNet as in torchvision (121, 161, 169, 201): a 7x7 stem, dense blocks whose layers each
//! read the concatenation of every earlier feature map of the block (BN-ReLU-1x1 conv to
//! `4 * growth` channels, BN-ReLU-3x3 conv to `growth`), transitions (BN-ReLU-1x1 conv halving the
//! channels, 2x2 average pool), `norm5`, ReLU, global average pooling and `classifier`.
//!
//! Keys are torchvision's current ones (`features.denseblock1.denselayer1.norm1.weight`); the
//! old `norm.1`-style keys of the original checkpoints are renamed by torchvision's loader, not
//! here.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, TensorId};

use crate::layers::{self, Activation, Conv, Pool2d};
use crate::{BuildOptions, ModelError};

/// One DenseNet variant: growth rate, layers per block, stem channels.
struct Config {
    growth: usize,
    blocks: [usize; 4],
    init: usize,
}

/// Bottleneck width multiplier (`bn_size`): the 1x1 conv of a dense layer has
/// `BN_SIZE * growth` outputs.
const BN_SIZE: usize = 4;

/// torchvision's `densenet121`: growth 32, blocks `(6, 12, 24, 16)`, 64 stem channels.
pub fn densenet121(o: &BuildOptions) -> Result<Graph, ModelError> {
    densenet(
        o,
        &Config {
            growth: 32,
            blocks: [6, 12, 24, 16],
            init: 64,
        },
    )
}

/// torchvision's `densenet161`: growth 48, blocks `(6, 12, 36, 24)`, 96 stem channels.
pub fn densenet161(o: &BuildOptions) -> Result<Graph, ModelError> {
    densenet(
        o,
        &Config {
            growth: 48,
            blocks: [6, 12, 36, 24],
            init: 96,
        },
    )
}

/// torchvision's `densenet169`: growth 32, blocks `(6, 12, 32, 32)`, 64 stem channels.
pub fn densenet169(o: &BuildOptions) -> Result<Graph, ModelError> {
    densenet(
        o,
        &Config {
            growth: 32,
            blocks: [6, 12, 32, 32],
            init: 64,
        },
    )
}

/// torchvision's `densenet201`: growth 32, blocks `(6, 12, 48, 32)`, 64 stem channels.
pub fn densenet201(o: &BuildOptions) -> Result<Graph, ModelError> {
    densenet(
        o,
        &Config {
            growth: 32,
            blocks: [6, 12, 48, 32],
            init: 64,
        },
    )
}

fn densenet(o: &BuildOptions, cfg: &Config) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        let mut x = layers::conv_bn_act(
            b,
            ["features.conv0", "features.norm0", "features.relu0"],
            x,
            Conv::new(cfg.init, 7).stride(2).pad(3).bias(false),
            layers::BN_EPS,
            Activation::Relu,
        )?;
        x = layers::max_pool(b, "features.pool0", x, Pool2d::new(3, 2, 1, false))?;
        for (i, &count) in cfg.blocks.iter().enumerate() {
            x = dense_block(
                b,
                &format!("features.denseblock{}", i + 1),
                x,
                count,
                cfg.growth,
            )?;
            if i + 1 < cfg.blocks.len() {
                x = transition(b, &format!("features.transition{}", i + 1), x)?;
            }
        }
        let x = layers::batchnorm(b, "features.norm5", x, layers::BN_EPS)?;
        let x = layers::relu(b, "relu", x)?;
        let x = layers::global_avg_pool(b, "avgpool", x)?;
        let x = layers::flatten(b, "flatten", x)?;
        layers::linear(b, "classifier", x, o.classes, true)
    })?)
}

/// A dense block of `count` layers; returns the concatenation of its input and every layer's
/// new features. Each layer reads the concatenation of everything before it, as
/// torchvision's `torch.cat(inputs, 1)` does (the first reads the block input directly).
fn dense_block(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    count: usize,
    growth: usize,
) -> Result<TensorId, GraphError> {
    let mut features = vec![x];
    for j in 1..=count {
        let l = format!("{p}.denselayer{j}");
        let input = if features.len() == 1 {
            x
        } else {
            layers::concat(b, &format!("{l}.cat"), &features)?
        };
        let n = |s: &str| format!("{l}.{s}");
        let y = layers::batchnorm(b, &n("norm1"), input, layers::BN_EPS)?;
        let y = layers::relu(b, &n("relu1"), y)?;
        let y = layers::conv(
            b,
            &n("conv1"),
            y,
            Conv::new(BN_SIZE * growth, 1).bias(false),
        )?;
        let y = layers::batchnorm(b, &n("norm2"), y, layers::BN_EPS)?;
        let y = layers::relu(b, &n("relu2"), y)?;
        let y = layers::conv(b, &n("conv2"), y, Conv::new(growth, 3).pad(1).bias(false))?;
        features.push(y);
    }
    layers::concat(b, &format!("{p}.cat"), &features)
}

/// A transition: BN, ReLU, 1x1 conv to half the channels, 2x2 average pool.
fn transition(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let c = layers::channels(b, p, "transition", x)?;
    let y = layers::batchnorm(b, &format!("{p}.norm"), x, layers::BN_EPS)?;
    let y = layers::relu(b, &format!("{p}.relu"), y)?;
    let y = layers::conv(b, &format!("{p}.conv"), y, Conv::new(c / 2, 1).bias(false))?;
    layers::avg_pool(b, &format!("{p}.pool"), y, Pool2d::new(2, 2, 0, false))
}
