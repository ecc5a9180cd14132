//! The detectors' backbone bodies (`backbone.body.*`): torchvision's `IntermediateLayerGetter`
//! over ResNet-50 (`layer1`..`layer4`) and over MobileNetV3-Large's `features`
//! (`_mobilenet_extractor`: the last two stages). They reuse the classification builders with
//! the `backbone.body.` key prefix; the BatchNorm epsilon of the body is set afterwards with
//! [`set_batchnorm_eps`], as torchvision's `overwrite_eps` does for its COCO checkpoints.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, Op, TensorId};

use crate::classify::mobilenet::{V3_LARGE, inverted_residual_v3};
use crate::classify::resnet::{self, Block, ResNetConfig};
use crate::layers::{self, Activation, BN_EPS, Conv, Pool2d};

/// The key prefix of every backbone body parameter.
pub const BODY: &str = "backbone.body";

/// ResNet-50's body: stem (`conv1`, `bn1`, `relu`, `maxpool`) and `layer1`..`layer4` under
/// `backbone.body.`; returns the outputs of the four layers (256, 512, 1024, 2048 channels at
/// strides 4, 8, 16, 32). BatchNorm eps is 1e-5.
pub fn resnet50_body(b: &mut GraphBuilder, x: TensorId) -> Result<Vec<TensorId>, GraphError> {
    let config = ResNetConfig {
        block: Block::Bottleneck,
        layers: [3, 4, 6, 3],
        groups: 1,
        width_per_group: 64,
    };
    let n = |s: &str| format!("{BODY}.{s}");
    let stem = Conv::new(64, 7).stride(2).pad(3).bias(false);
    let x = layers::conv_bn_act(
        b,
        [&n("conv1"), &n("bn1"), &n("relu")],
        x,
        stem,
        BN_EPS,
        Activation::Relu,
    )?;
    let mut x = layers::max_pool(b, &n("maxpool"), x, Pool2d::new(3, 2, 1, false))?;
    let mut outputs = Vec::with_capacity(4);
    for (stage, (&blocks, planes)) in config.layers.iter().zip([64, 128, 256, 512]).enumerate() {
        for i in 0..blocks {
            let stride = if i == 0 && stage > 0 { 2 } else { 1 };
            x = resnet::block(
                b,
                &n(&format!("layer{}.{i}", stage + 1)),
                x,
                planes,
                stride,
                &config,
            )?;
        }
        outputs.push(x);
    }
    Ok(outputs)
}

/// MobileNetV3-Large's `features` under `backbone.body.` (stem `0`, blocks `1`..`15`, last conv
/// `16`), as `_mobilenet_extractor(fpn=True)` returns them: the outputs of the last two stages,
/// i.e. of `features[13]` (160 channels) and `features[16]` (960 channels), both at stride 32.
/// BatchNorm eps is MobileNetV3's 1e-3; the detectors build it with `nn.BatchNorm2d` (1e-5).
pub fn mobilenet_v3_large_body(
    b: &mut GraphBuilder,
    x: TensorId,
) -> Result<Vec<TensorId>, GraphError> {
    const EPS: f32 = 1e-3;
    let stem = Conv::new(16, 3).stride(2).pad(1);
    let mut x =
        layers::conv_norm_act(b, &format!("{BODY}.0"), x, stem, EPS, Activation::HardSwish)?;
    let mut stage_ends = vec![(0, x)];
    for (i, cfg) in V3_LARGE.iter().enumerate() {
        x = inverted_residual_v3(b, &format!("{BODY}.{}", i + 1), x, cfg)?;
        // `_is_cn`: strided blocks start a stage.
        if cfg.stride > 1 {
            stage_ends.push((i + 1, x));
        }
    }
    // features[16]: a 1x1 conv to six times the last block's 160 channels.
    let index = V3_LARGE.len() + 1;
    x = layers::conv_norm_act(
        b,
        &format!("{BODY}.{index}"),
        x,
        Conv::new(960, 1),
        EPS,
        Activation::HardSwish,
    )?;
    stage_ends.push((index, x));
    // returned_layers = [num_stages - 2, num_stages - 1].
    Ok(stage_ends[stage_ends.len() - 2..]
        .iter()
        .map(|&(_, t)| t)
        .collect())
}

/// Sets the epsilon of every BatchNorm node whose name starts with `prefix` (torchvision's
/// `overwrite_eps`; the v1 ResNet-50 detectors use 0.0 in `backbone.body`).
pub fn set_batchnorm_eps(graph: &mut Graph, prefix: &str, eps: f32) {
    for node in &mut graph.nodes {
        if let Op::BatchNorm { eps: e } = &mut node.op
            && node.name.starts_with(prefix)
        {
            *e = eps;
        }
    }
}
