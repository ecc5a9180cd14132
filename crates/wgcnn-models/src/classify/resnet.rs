//! ResNet as in torchvision (v1.5: a Bottleneck strides in its 3x3 conv), with the ResNeXt and
//! Wide ResNet variants, which only change the Bottleneck's `groups` and `width_per_group`.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, TensorId};

use crate::layers::{self, Activation, BN_EPS, Conv, Pool2d};
use crate::{BuildOptions, ModelError};

/// The residual block kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Two 3x3 convs, expansion 1 (ResNet-18/34).
    Basic,
    /// 1x1, 3x3 (strided, grouped), 1x1 convs, expansion 4 (ResNet-50 and deeper).
    Bottleneck,
}

impl Block {
    const fn expansion(self) -> usize {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }
}

/// A torchvision `ResNet` configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    pub block: Block,
    /// Blocks in `layer1` ... `layer4`.
    pub layers: [usize; 4],
    /// Groups of the Bottleneck's 3x3 conv (32 for ResNeXt-50 32x4d).
    pub groups: usize,
    /// Channels per group at 64 planes (64 by default, 4 for ResNeXt-50 32x4d, 128 for
    /// Wide ResNet-50-2).
    pub width_per_group: usize,
}

impl ResNetConfig {
    const fn plain(block: Block, layers: [usize; 4]) -> Self {
        ResNetConfig {
            block,
            layers,
            groups: 1,
            width_per_group: 64,
        }
    }
}

/// torchvision's ResNet-18.
pub fn resnet18(o: &BuildOptions) -> Result<Graph, ModelError> {
    resnet(o, &ResNetConfig::plain(Block::Basic, [2, 2, 2, 2]))
}

/// torchvision's ResNet-34.
pub fn resnet34(o: &BuildOptions) -> Result<Graph, ModelError> {
    resnet(o, &ResNetConfig::plain(Block::Basic, [3, 4, 6, 3]))
}

/// torchvision's ResNet-50.
pub fn resnet50(o: &BuildOptions) -> Result<Graph, ModelError> {
    resnet(o, &ResNetConfig::plain(Block::Bottleneck, [3, 4, 6, 3]))
}

/// torchvision's ResNet-101.
pub fn resnet101(o: &BuildOptions) -> Result<Graph, ModelError> {
    resnet(o, &ResNetConfig::plain(Block::Bottleneck, [3, 4, 23, 3]))
}

/// torchvision's ResNet-152.
pub fn resnet152(o: &BuildOptions) -> Result<Graph, ModelError> {
    resnet(o, &ResNetConfig::plain(Block::Bottleneck, [3, 8, 36, 3]))
}

/// torchvision's ResNeXt-50 32x4d.
pub fn resnext50_32x4d(o: &BuildOptions) -> Result<Graph, ModelError> {
    resnet(
        o,
        &ResNetConfig {
            groups: 32,
            width_per_group: 4,
            ..ResNetConfig::plain(Block::Bottleneck, [3, 4, 6, 3])
        },
    )
}

/// torchvision's Wide ResNet-50-2.
pub fn wide_resnet50_2(o: &BuildOptions) -> Result<Graph, ModelError> {
    resnet(
        o,
        &ResNetConfig {
            width_per_group: 128,
            ..ResNetConfig::plain(Block::Bottleneck, [3, 4, 6, 3])
        },
    )
}

/// A torchvision `ResNet` with any configuration: stem `conv1`/`bn1`/`relu`/`maxpool`,
/// `layer1`..`layer4`, `avgpool`, `fc`.
pub fn resnet(o: &BuildOptions, config: &ResNetConfig) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        let x = stem(b, x)?;
        let x = stages(b, x, config)?;
        let x = layers::global_avg_pool(b, "avgpool", x)?;
        let x = layers::flatten(b, "flatten", x)?;
        layers::linear(b, "fc", x, o.classes, true)
    })?)
}

/// The ResNet stem: 7x7/2 conv (no bias), BatchNorm, ReLU, 3x3/2 max pool with padding 1.
pub fn stem(b: &mut GraphBuilder, x: TensorId) -> Result<TensorId, GraphError> {
    let x = layers::conv_bn_act(
        b,
        ["conv1", "bn1", "relu"],
        x,
        Conv::new(64, 7).stride(2).pad(3).bias(false),
        BN_EPS,
        Activation::Relu,
    )?;
    layers::max_pool(b, "maxpool", x, Pool2d::new(3, 2, 1, false))
}

/// `layer1` .. `layer4` (64, 128, 256, 512 planes; strides 1, 2, 2, 2) on the stem's output.
pub fn stages(
    b: &mut GraphBuilder,
    mut x: TensorId,
    config: &ResNetConfig,
) -> Result<TensorId, GraphError> {
    for (stage, (&blocks, planes)) in config.layers.iter().zip([64, 128, 256, 512]).enumerate() {
        for i in 0..blocks {
            let stride = if i == 0 && stage > 0 { 2 } else { 1 };
            x = block(
                b,
                &format!("layer{}.{i}", stage + 1),
                x,
                planes,
                stride,
                config,
            )?;
        }
    }
    Ok(x)
}

/// One residual block at module path `p` (`layer2.0`). Node names follow the module paths
/// (`{p}.conv1`, `{p}.bn1`, `{p}.downsample.0`, ...); the ReLUs after `bn1`/`bn2` are
/// `{p}.relu1`/`{p}.relu2`, the sum `{p}.add` and the block's final ReLU `{p}.relu`.
pub fn block(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    planes: usize,
    stride: usize,
    config: &ResNetConfig,
) -> Result<TensorId, GraphError> {
    let inplanes = layers::channels(b, p, "conv2d", x)?;
    let out = planes * config.block.expansion();
    let n = |s: &str| format!("{p}.{s}");
    let y = match config.block {
        Block::Basic => {
            let c1 = Conv::new(planes, 3).stride(stride).pad(1).bias(false);
            let y = layers::conv_bn_act(
                b,
                [&n("conv1"), &n("bn1"), &n("relu1")],
                x,
                c1,
                BN_EPS,
                Activation::Relu,
            )?;
            let c2 = Conv::new(planes, 3).pad(1).bias(false);
            layers::conv_bn_act(
                b,
                [&n("conv2"), &n("bn2"), ""],
                y,
                c2,
                BN_EPS,
                Activation::Identity,
            )?
        }
        Block::Bottleneck => {
            let width = planes * config.width_per_group / 64 * config.groups;
            let c1 = Conv::new(width, 1).bias(false);
            let y = layers::conv_bn_act(
                b,
                [&n("conv1"), &n("bn1"), &n("relu1")],
                x,
                c1,
                BN_EPS,
                Activation::Relu,
            )?;
            let c2 = Conv::new(width, 3)
                .stride(stride)
                .pad(1)
                .groups(config.groups)
                .bias(false);
            let y = layers::conv_bn_act(
                b,
                [&n("conv2"), &n("bn2"), &n("relu2")],
                y,
                c2,
                BN_EPS,
                Activation::Relu,
            )?;
            let c3 = Conv::new(out, 1).bias(false);
            layers::conv_bn_act(
                b,
                [&n("conv3"), &n("bn3"), ""],
                y,
                c3,
                BN_EPS,
                Activation::Identity,
            )?
        }
    };
    let identity = if stride != 1 || inplanes != out {
        let down = Conv::new(out, 1).stride(stride).bias(false);
        let names = [n("downsample.0"), n("downsample.1")];
        layers::conv_bn_act(
            b,
            [&names[0], &names[1], ""],
            x,
            down,
            BN_EPS,
            Activation::Identity,
        )?
    } else {
        x
    };
    let y = layers::add(b, &n("add"), y, identity)?;
    layers::relu(b, &n("relu"), y)
}
