//! SE-ResNet as in timm (`seresnet50`): torchvision's ResNet bottleneck with a
//! squeeze-excitation module `se` after `bn3`, before the residual add. Also the
//! squeeze-excitation block itself, shared with MobileNetV3 and EfficientNet.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, TensorId};

use crate::layers::{self, Activation, Conv, Pool2d};
use crate::{BuildOptions, Interpolation, ModelError, Preprocess};

/// timm's `seresnet50.a1_in1k` config: 224 crop at `crop_pct` 0.95 (resize 235), bicubic,
/// ImageNet mean/std.
pub const PREPROCESS: Preprocess =
    Preprocess::imagenet(235, 224).with_interpolation(Interpolation::Bicubic);

/// A squeeze-excitation module at `prefix`: global average pool, `{prefix}.fc1` (1x1 conv with
/// bias, `reduced` channels), `act`, `{prefix}.fc2` (1x1 conv with bias, back to the input's
/// channels), `gate`, then `x * gate` broadcast over `[N, C, 1, 1]`.
///
/// torchvision's `SqueezeExcitation` (MobileNetV3: ReLU + hardsigmoid; EfficientNet: SiLU +
/// sigmoid) and timm's `SEModule` (ReLU + sigmoid) share this structure and these key names.
pub(crate) fn squeeze_excite(
    b: &mut GraphBuilder,
    prefix: &str,
    x: TensorId,
    reduced: usize,
    act: Activation,
    gate: Activation,
) -> Result<TensorId, GraphError> {
    let c = layers::channels(b, prefix, "squeeze_excite", x)?;
    let s = layers::global_avg_pool(b, &format!("{prefix}.avgpool"), x)?;
    let s = layers::conv(b, &format!("{prefix}.fc1"), s, Conv::new(reduced, 1))?;
    let s = layers::act(b, &format!("{prefix}.act"), s, act)?;
    let s = layers::conv(b, &format!("{prefix}.fc2"), s, Conv::new(c, 1))?;
    let s = layers::act(b, &format!("{prefix}.gate"), s, gate)?;
    layers::mul(b, &format!("{prefix}.scale"), x, s)
}

/// timm's `make_divisible(v, divisor, round_limit=0)`: the nearest multiple of `divisor` to `v`
/// (halves rounding up), at least `divisor`.
fn make_divisible(v: usize, divisor: usize) -> usize {
    ((v + divisor / 2) / divisor * divisor).max(divisor)
}

/// timm's `seresnet50`: bottleneck blocks `[3, 4, 6, 3]`, SE reduction 1/16 rounded to a
/// multiple of 8.
pub fn seresnet50(o: &BuildOptions) -> Result<Graph, ModelError> {
    se_resnet(o, &[3, 4, 6, 3])
}

/// The stem (`conv1`, `bn1`, `act1`, `maxpool`), `layer1`..`layer4` of SE bottlenecks,
/// `global_pool` and `fc`.
fn se_resnet(o: &BuildOptions, blocks: &[usize; 4]) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        let mut x = layers::conv_bn_act(
            b,
            ["conv1", "bn1", "act1"],
            x,
            Conv::new(64, 7).stride(2).pad(3).bias(false),
            layers::BN_EPS,
            Activation::Relu,
        )?;
        x = layers::max_pool(b, "maxpool", x, Pool2d::new(3, 2, 1, false))?;
        for (stage, &count) in blocks.iter().enumerate() {
            let planes = 64 << stage;
            for i in 0..count {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                x = se_bottleneck(b, &format!("layer{}.{i}", stage + 1), x, planes, stride)?;
            }
        }
        let x = layers::global_avg_pool(b, "global_pool.pool", x)?;
        let x = layers::flatten(b, "global_pool.flatten", x)?;
        layers::linear(b, "fc", x, o.classes, true)
    })?)
}

/// timm's `Bottleneck` with `attn_layer='se'`: 1x1, 3x3 (stride here), 1x1 to `4 * planes`,
/// SE, plus the shortcut (`downsample.0` conv + `downsample.1` BatchNorm when the shape
/// changes), then ReLU.
fn se_bottleneck(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    planes: usize,
    stride: usize,
) -> Result<TensorId, GraphError> {
    let out = planes * 4;
    let cin = layers::channels(b, p, "bottleneck", x)?;
    let n = |s: &str| format!("{p}.{s}");
    let y = layers::conv_bn_act(
        b,
        [&n("conv1"), &n("bn1"), &n("act1")],
        x,
        Conv::new(planes, 1).bias(false),
        layers::BN_EPS,
        Activation::Relu,
    )?;
    let y = layers::conv_bn_act(
        b,
        [&n("conv2"), &n("bn2"), &n("act2")],
        y,
        Conv::new(planes, 3).stride(stride).pad(1).bias(false),
        layers::BN_EPS,
        Activation::Relu,
    )?;
    let y = layers::conv_bn_act(
        b,
        [&n("conv3"), &n("bn3"), ""],
        y,
        Conv::new(out, 1).bias(false),
        layers::BN_EPS,
        Activation::Identity,
    )?;
    let y = squeeze_excite(
        b,
        &n("se"),
        y,
        make_divisible(out / 16, 8),
        Activation::Relu,
        Activation::Sigmoid,
    )?;
    let shortcut = if stride != 1 || cin != out {
        let s = layers::conv(
            b,
            &n("downsample.0"),
            x,
            Conv::new(out, 1).stride(stride).bias(false),
        )?;
        layers::batchnorm(b, &n("downsample.1"), s, layers::BN_EPS)?
    } else {
        x
    };
    let y = layers::add(b, &n("add"), y, shortcut)?;
    layers::relu(b, &n("act3"), y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn se_reduction_matches_timm_make_divisible() {
        assert_eq!(
            [256, 512, 1024, 2048].map(|c| make_divisible(c / 16, 8)),
            [16, 32, 64, 128]
        );
        assert_eq!(make_divisible(3, 8), 8);
        assert_eq!(make_divisible(12, 8), 16);
    }

    /// timm's count (`sum(p.numel() for p in m.parameters())`); the graph also holds each
    /// BatchNorm's running mean and variance, left out here.
    #[test]
    fn seresnet50_has_timm_parameter_count() {
        let g = match seresnet50(&BuildOptions::square(224, 1000)) {
            Ok(g) => g,
            Err(e) => panic!("build failed: {e}"),
        };
        let stats = crate::ModelStats::of(&g);
        println!(
            "params {} (+{} running statistics)",
            stats.params, stats.buffers
        );
        assert_eq!(stats.params, 28_088_024);
        assert_eq!(stats.buffers, 2 * 26_560);
    }
}
