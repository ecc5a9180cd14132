//! MobileNetV2 and MobileNetV3 (large, small) as in torchvision: inverted residual blocks
//! (1x1 expansion, depthwise kxk, optional squeeze-excitation, linear 1x1 projection, identity
//! shortcut when the shape is kept) in `features`, global average pooling and `classifier`.
//!
//! V2 uses ReLU6 and BatchNorm eps 1e-5; V3 uses ReLU or hardswish per block, SE modules with
//! a hardsigmoid gate (`block.N.fc1` / `block.N.fc2`), and BatchNorm eps 0.001.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, TensorId};

use crate::classify::senet::squeeze_excite;
use crate::layers::{self, Activation, Conv};
use crate::{BuildOptions, ModelError};

/// torchvision's `_make_divisible(v, divisor)`: `v` rounded to the nearest multiple of `divisor`
/// (at least `divisor`), bumped up one step when rounding lost more than 10%.
pub(crate) fn make_divisible(v: usize, divisor: usize) -> usize {
    let rounded = ((v + divisor / 2) / divisor * divisor).max(divisor);
    if (rounded as f64) < 0.9 * v as f64 {
        rounded + divisor
    } else {
        rounded
    }
}

/// torchvision's `mobilenet_v2`.
pub fn mobilenet_v2(o: &BuildOptions) -> Result<Graph, ModelError> {
    // (expand ratio t, output channels c, repeats n, first stride s)
    const SETTINGS: [(usize, usize, usize, usize); 7] = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    Ok(layers::graph(o, 3, |b, x| {
        let mut x = layers::conv_norm_act(
            b,
            "features.0",
            x,
            Conv::new(32, 3).stride(2).pad(1),
            layers::BN_EPS,
            Activation::RELU6,
        )?;
        let mut index = 1;
        for (t, c, n, s) in SETTINGS {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                x = inverted_residual_v2(b, &format!("features.{index}"), x, c, stride, t)?;
                index += 1;
            }
        }
        let x = layers::conv_norm_act(
            b,
            &format!("features.{index}"),
            x,
            Conv::new(1280, 1),
            layers::BN_EPS,
            Activation::RELU6,
        )?;
        let x = layers::global_avg_pool(b, "avgpool", x)?;
        let x = layers::flatten(b, "flatten", x)?;
        layers::linear(b, "classifier.1", x, o.classes, true)
    })?)
}

/// V2's `InvertedResidual` at `p`: `conv.0` 1x1 expansion (omitted when `t == 1`), then the
/// depthwise `ConvBNReLU6`, the projection conv and its BatchNorm, numbered on from there.
fn inverted_residual_v2(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    out: usize,
    stride: usize,
    t: usize,
) -> Result<TensorId, GraphError> {
    let cin = layers::channels(b, p, "inverted_residual", x)?;
    let hidden = cin * t;
    let mut j = 0;
    let mut y = x;
    if t != 1 {
        y = layers::conv_norm_act(
            b,
            &format!("{p}.conv.0"),
            y,
            Conv::new(hidden, 1),
            layers::BN_EPS,
            Activation::RELU6,
        )?;
        j += 1;
    }
    let dw = Conv::new(hidden, 3).stride(stride).pad(1).groups(hidden);
    y = layers::conv_norm_act(
        b,
        &format!("{p}.conv.{j}"),
        y,
        dw,
        layers::BN_EPS,
        Activation::RELU6,
    )?;
    y = layers::conv(
        b,
        &format!("{p}.conv.{}", j + 1),
        y,
        Conv::new(out, 1).bias(false),
    )?;
    y = layers::batchnorm(b, &format!("{p}.conv.{}", j + 2), y, layers::BN_EPS)?;
    if stride == 1 && cin == out {
        layers::add(b, &format!("{p}.add"), y, x)
    } else {
        Ok(y)
    }
}

/// MobileNetV3's BatchNorm epsilon.
const V3_EPS: f32 = 1e-3;

/// One V3 block: kernel, expanded channels, output channels, SE, hardswish (else ReLU), stride.
#[derive(Clone, Copy)]
pub(crate) struct V3Block {
    kernel: usize,
    expanded: usize,
    out: usize,
    se: bool,
    hardswish: bool,
    pub(crate) stride: usize,
}

const fn blk(
    kernel: usize,
    expanded: usize,
    out: usize,
    se: bool,
    hardswish: bool,
    stride: usize,
) -> V3Block {
    V3Block {
        kernel,
        expanded,
        out,
        se,
        hardswish,
        stride,
    }
}

/// `mobilenet_v3_large`'s blocks (16 stem channels).
pub(crate) const V3_LARGE: [V3Block; 15] = [
    blk(3, 16, 16, false, false, 1),
    blk(3, 64, 24, false, false, 2),
    blk(3, 72, 24, false, false, 1),
    blk(5, 72, 40, true, false, 2),
    blk(5, 120, 40, true, false, 1),
    blk(5, 120, 40, true, false, 1),
    blk(3, 240, 80, false, true, 2),
    blk(3, 200, 80, false, true, 1),
    blk(3, 184, 80, false, true, 1),
    blk(3, 184, 80, false, true, 1),
    blk(3, 480, 112, true, true, 1),
    blk(3, 672, 112, true, true, 1),
    blk(5, 672, 160, true, true, 2),
    blk(5, 960, 160, true, true, 1),
    blk(5, 960, 160, true, true, 1),
];

/// `mobilenet_v3_small`'s blocks (16 stem channels).
const V3_SMALL: [V3Block; 11] = [
    blk(3, 16, 16, true, false, 2),
    blk(3, 72, 24, false, false, 2),
    blk(3, 88, 24, false, false, 1),
    blk(5, 96, 40, true, true, 2),
    blk(5, 240, 40, true, true, 1),
    blk(5, 240, 40, true, true, 1),
    blk(5, 120, 48, true, true, 1),
    blk(5, 144, 48, true, true, 1),
    blk(5, 288, 96, true, true, 2),
    blk(5, 576, 96, true, true, 1),
    blk(5, 576, 96, true, true, 1),
];

/// torchvision's `mobilenet_v3_large` (classifier hidden width 1280).
pub fn mobilenet_v3_large(o: &BuildOptions) -> Result<Graph, ModelError> {
    mobilenet_v3(o, &V3_LARGE, 1280)
}

/// torchvision's `mobilenet_v3_small` (classifier hidden width 1024).
pub fn mobilenet_v3_small(o: &BuildOptions) -> Result<Graph, ModelError> {
    mobilenet_v3(o, &V3_SMALL, 1024)
}

/// Stem (3x3 stride 2, hardswish), the blocks, a 1x1 conv to 6x the last block's channels
/// (hardswish), global average pooling, `classifier.0` linear, hardswish, `classifier.3` linear.
fn mobilenet_v3(
    o: &BuildOptions,
    blocks: &[V3Block],
    last_channel: usize,
) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        let stem = Conv::new(16, 3).stride(2).pad(1);
        let mut x = layers::conv_norm_act(b, "features.0", x, stem, V3_EPS, Activation::HardSwish)?;
        for (i, cfg) in blocks.iter().enumerate() {
            x = inverted_residual_v3(b, &format!("features.{}", i + 1), x, cfg)?;
        }
        let last = 6 * blocks.last().map_or(16, |c| c.out);
        let name = format!("features.{}", blocks.len() + 1);
        let x = layers::conv_norm_act(
            b,
            &name,
            x,
            Conv::new(last, 1),
            V3_EPS,
            Activation::HardSwish,
        )?;
        let x = layers::global_avg_pool(b, "avgpool", x)?;
        let x = layers::flatten(b, "flatten", x)?;
        let x = layers::linear(b, "classifier.0", x, last_channel, true)?;
        let x = layers::act(b, "classifier.1", x, Activation::HardSwish)?;
        layers::linear(b, "classifier.3", x, o.classes, true)
    })?)
}

/// V3's `InvertedResidual` at `p`: `block.N` modules numbered in order: expansion (when the
/// expanded width differs from the input's), depthwise, SE (when enabled), projection.
pub(crate) fn inverted_residual_v3(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    cfg: &V3Block,
) -> Result<TensorId, GraphError> {
    let cin = layers::channels(b, p, "inverted_residual", x)?;
    let act = if cfg.hardswish {
        Activation::HardSwish
    } else {
        Activation::Relu
    };
    let mut j = 0;
    let mut y = x;
    if cfg.expanded != cin {
        y = layers::conv_norm_act(
            b,
            &format!("{p}.block.{j}"),
            y,
            Conv::new(cfg.expanded, 1),
            V3_EPS,
            act,
        )?;
        j += 1;
    }
    let dw = Conv::new(cfg.expanded, cfg.kernel)
        .stride(cfg.stride)
        .pad((cfg.kernel - 1) / 2)
        .groups(cfg.expanded);
    y = layers::conv_norm_act(b, &format!("{p}.block.{j}"), y, dw, V3_EPS, act)?;
    j += 1;
    if cfg.se {
        let squeeze = make_divisible(cfg.expanded / 4, 8);
        y = squeeze_excite(
            b,
            &format!("{p}.block.{j}"),
            y,
            squeeze,
            Activation::Relu,
            Activation::HARDSIGMOID,
        )?;
        j += 1;
    }
    y = layers::conv_norm_act(
        b,
        &format!("{p}.block.{j}"),
        y,
        Conv::new(cfg.out, 1),
        V3_EPS,
        Activation::Identity,
    )?;
    if cfg.stride == 1 && cin == cfg.out {
        layers::add(b, &format!("{p}.add"), y, x)
    } else {
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_torchvision() {
        // _make_divisible(v, 8) for the SE widths of MobileNetV3.
        assert_eq!(
            [4, 18, 30, 60, 120, 168, 240, 36, 72, 144].map(|v| make_divisible(v, 8)),
            [8, 24, 32, 64, 120, 168, 240, 40, 72, 144]
        );
    }

    /// torchvision's parameter counts.
    #[test]
    fn mobilenets_have_torchvision_parameter_counts() {
        crate::classify::assert_param_counts(&[
            ("mobilenet_v2", mobilenet_v2, 3_504_872),
            ("mobilenet_v3_large", mobilenet_v3_large, 5_483_032),
            ("mobilenet_v3_small", mobilenet_v3_small, 2_542_856),
        ]);
    }
}
