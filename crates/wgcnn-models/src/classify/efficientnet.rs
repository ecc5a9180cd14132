//! EfficientNet-B0 as in torchvision, and EfficientNet-Lite0 as in timm, in its PyTorch-padded
//! (`efficientnet_lite0`) and TensorFlow-"SAME"-padded (`tf_efficientnet_lite0`) forms.
//!
//! - B0 (torchvision): MBConv blocks `features.S.I.block.N` (1x1 expansion, depthwise, SE with
//!   SiLU and a sigmoid gate squeezing to a quarter of the block's input channels, projection),
//!   SiLU, BatchNorm eps 1e-5; stochastic depth is the identity at inference.
//! - Lite0 (timm): no SE, ReLU6, the stem and head widths fixed at 32 and 1280; blocks
//!   `blocks.S.I` with `conv_pw`/`bn1`, `conv_dw`/`bn2`, `conv_pwl`/`bn3` (the first stage is a
//!   depthwise-separable block: `conv_dw`/`bn1`, `conv_pw`/`bn2`). The `tf_` port pads strided
//!   convs as TensorFlow's "SAME" does (computed from the input size, the odd pixel at the
//!   bottom/right) and uses BatchNorm eps 1e-3.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, TensorId};

use crate::classify::senet::squeeze_excite;
use crate::layers::{self, Activation, Conv};
use crate::{BuildOptions, Interpolation, ModelError, Preprocess};

/// torchvision's EfficientNet-B0 transform: resize 256, crop 224, bicubic, ImageNet mean/std.
pub const B0_PREPROCESS: Preprocess =
    Preprocess::IMAGENET.with_interpolation(Interpolation::Bicubic);

/// The ported TensorFlow Lite0 checkpoint's preprocessing: resize 256, crop 224, bilinear, then
/// `(x - 127) / 128` on 0..255 values, i.e. mean 127/255 and std 128/255 on 0..1 values.
pub const TF_LITE0_PREPROCESS: Preprocess =
    Preprocess::IMAGENET.with_mean_std([127.0 / 255.0; 3], [128.0 / 255.0; 3]);

/// One stage of an EfficientNet: expansion ratio, kernel, first stride, output channels,
/// repeats. The B0 and Lite0 stage tables are the same.
#[derive(Clone, Copy)]
struct Stage {
    expand: usize,
    kernel: usize,
    stride: usize,
    out: usize,
    repeats: usize,
}

const fn stage(expand: usize, kernel: usize, stride: usize, out: usize, repeats: usize) -> Stage {
    Stage {
        expand,
        kernel,
        stride,
        out,
        repeats,
    }
}

/// The stages of EfficientNet-B0 and -Lite0 (32 stem channels).
const B0_STAGES: [Stage; 7] = [
    stage(1, 3, 1, 16, 1),
    stage(6, 3, 2, 24, 2),
    stage(6, 5, 2, 40, 2),
    stage(6, 3, 2, 80, 3),
    stage(6, 5, 1, 112, 3),
    stage(6, 5, 2, 192, 4),
    stage(6, 3, 1, 320, 1),
];

/// torchvision's `efficientnet_b0`.
pub fn efficientnet_b0(o: &BuildOptions) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        let stem = Conv::new(32, 3).stride(2).pad(1);
        let mut x =
            layers::conv_norm_act(b, "features.0", x, stem, layers::BN_EPS, Activation::Silu)?;
        for (s, st) in B0_STAGES.iter().enumerate() {
            for i in 0..st.repeats {
                let stride = if i == 0 { st.stride } else { 1 };
                x = mbconv(b, &format!("features.{}.{i}", s + 1), x, st, stride)?;
            }
        }
        let name = format!("features.{}", B0_STAGES.len() + 1);
        let x = layers::conv_norm_act(
            b,
            &name,
            x,
            Conv::new(1280, 1),
            layers::BN_EPS,
            Activation::Silu,
        )?;
        let x = layers::global_avg_pool(b, "avgpool", x)?;
        let x = layers::flatten(b, "flatten", x)?;
        layers::linear(b, "classifier.1", x, o.classes, true)
    })?)
}

/// torchvision's `MBConv` at `p` (`block.N` numbered in order: expansion when the ratio is not
/// 1, depthwise, SE, projection), with the identity shortcut when the shape is kept.
fn mbconv(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    st: &Stage,
    stride: usize,
) -> Result<TensorId, GraphError> {
    let cin = layers::channels(b, p, "mbconv", x)?;
    let expanded = cin * st.expand;
    let mut j = 0;
    let mut y = x;
    if expanded != cin {
        y = layers::conv_norm_act(
            b,
            &format!("{p}.block.{j}"),
            y,
            Conv::new(expanded, 1),
            layers::BN_EPS,
            Activation::Silu,
        )?;
        j += 1;
    }
    let dw = Conv::new(expanded, st.kernel)
        .stride(stride)
        .pad((st.kernel - 1) / 2)
        .groups(expanded);
    y = layers::conv_norm_act(
        b,
        &format!("{p}.block.{j}"),
        y,
        dw,
        layers::BN_EPS,
        Activation::Silu,
    )?;
    y = squeeze_excite(
        b,
        &format!("{p}.block.{}", j + 1),
        y,
        (cin / 4).max(1),
        Activation::Silu,
        Activation::Sigmoid,
    )?;
    let proj = Conv::new(st.out, 1);
    y = layers::conv_norm_act(
        b,
        &format!("{p}.block.{}", j + 2),
        y,
        proj,
        layers::BN_EPS,
        Activation::Identity,
    )?;
    if stride == 1 && cin == st.out {
        layers::add(b, &format!("{p}.add"), y, x)
    } else {
        Ok(y)
    }
}

/// How timm pads a conv.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Padding {
    /// PyTorch style: `((stride - 1) + (kernel - 1)) / 2` on every side.
    Torch,
    /// TensorFlow "SAME": `max((ceil(in / stride) - 1) * stride + kernel - in, 0)` in total per
    /// axis, the smaller half at the top/left.
    TfSame,
}

/// `[top, left, bottom, right]` padding of a square `kernel`/`stride` conv on input `x`.
fn padding(
    b: &GraphBuilder,
    x: TensorId,
    kernel: usize,
    stride: usize,
    mode: Padding,
) -> [usize; 4] {
    match mode {
        Padding::Torch => [((stride - 1) + (kernel - 1)) / 2; 4],
        Padding::TfSame => {
            let total = |len: usize| {
                ((len.div_ceil(stride).max(1) - 1) * stride + kernel).saturating_sub(len)
            };
            let (ph, pw) = match b.shape(x) {
                [.., h, w] => (total(*h), total(*w)),
                _ => (0, 0),
            };
            [ph / 2, pw / 2, ph - ph / 2, pw - pw / 2]
        }
    }
}

/// What distinguishes the two Lite0 ports: conv padding and BatchNorm epsilon.
#[derive(Clone, Copy, Debug)]
struct Flavor {
    padding: Padding,
    eps: f32,
}

/// A timm conv (no bias) + BatchNorm (+ ReLU6 when `relu6`), named `{p}{conv}` / `{p}{bn}`.
fn conv_bn(
    b: &mut GraphBuilder,
    [p, conv, bn]: [&str; 3],
    x: TensorId,
    c: Conv,
    f: Flavor,
    relu6: bool,
) -> Result<TensorId, GraphError> {
    let c = c
        .padding(padding(b, x, c.kernel[0], c.stride[0], f.padding))
        .bias(false);
    let names = [
        format!("{p}{conv}"),
        format!("{p}{bn}"),
        format!("{p}{bn}.act"),
    ];
    let act = if relu6 {
        Activation::RELU6
    } else {
        Activation::Identity
    };
    layers::conv_bn_act(b, [&names[0], &names[1], &names[2]], x, c, f.eps, act)
}

/// timm's `efficientnet_lite0` (PyTorch padding, BatchNorm eps 1e-5).
pub fn efficientnet_lite0(o: &BuildOptions) -> Result<Graph, ModelError> {
    efficientnet_lite(
        o,
        Flavor {
            padding: Padding::Torch,
            eps: layers::BN_EPS,
        },
    )
}

/// timm's `tf_efficientnet_lite0` (TensorFlow "SAME" padding, BatchNorm eps 1e-3), the layout of
/// the TensorFlow EfficientNet-Lite0 ImageNet checkpoint ported to PyTorch.
pub fn tf_efficientnet_lite0(o: &BuildOptions) -> Result<Graph, ModelError> {
    efficientnet_lite(
        o,
        Flavor {
            padding: Padding::TfSame,
            eps: 1e-3,
        },
    )
}

/// `conv_stem`/`bn1`, the `blocks`, `conv_head`/`bn2`, global average pooling, `classifier`.
fn efficientnet_lite(o: &BuildOptions, f: Flavor) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        let mut x = conv_bn(
            b,
            ["", "conv_stem", "bn1"],
            x,
            Conv::new(32, 3).stride(2),
            f,
            true,
        )?;
        for (s, st) in B0_STAGES.iter().enumerate() {
            for i in 0..st.repeats {
                let stride = if i == 0 { st.stride } else { 1 };
                x = lite_block(b, &format!("blocks.{s}.{i}."), x, st, stride, f)?;
            }
        }
        let x = conv_bn(b, ["", "conv_head", "bn2"], x, Conv::new(1280, 1), f, true)?;
        let x = layers::global_avg_pool(b, "global_pool.pool", x)?;
        let x = layers::flatten(b, "global_pool.flatten", x)?;
        layers::linear(b, "classifier", x, o.classes, true)
    })?)
}

/// timm's `DepthwiseSeparableConv` (expansion 1) or `InvertedResidual` at `p` (which ends with
/// a dot), without SE, with the identity shortcut when the shape is kept.
fn lite_block(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    st: &Stage,
    stride: usize,
    f: Flavor,
) -> Result<TensorId, GraphError> {
    let cin = layers::channels(b, p, "efficientnet_block", x)?;
    let mid = cin * st.expand;
    let dw = Conv::new(mid, st.kernel).stride(stride).groups(mid);
    let project = Conv::new(st.out, 1);
    let y = if st.expand == 1 {
        let y = conv_bn(b, [p, "conv_dw", "bn1"], x, dw, f, true)?;
        conv_bn(b, [p, "conv_pw", "bn2"], y, project, f, false)?
    } else {
        let y = conv_bn(b, [p, "conv_pw", "bn1"], x, Conv::new(mid, 1), f, true)?;
        let y = conv_bn(b, [p, "conv_dw", "bn2"], y, dw, f, true)?;
        conv_bn(b, [p, "conv_pwl", "bn3"], y, project, f, false)?
    };
    if stride == 1 && cin == st.out {
        layers::add(b, &format!("{p}add"), y, x)
    } else {
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_same_padding_puts_the_odd_pixel_bottom_right() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", &[1, 3, 224, 224]);
        // 224 / 2 = 112 outputs need 223 + 3 = 225 rows: 1 of padding, at the bottom.
        assert_eq!(padding(&b, x, 3, 2, Padding::TfSame), [0, 0, 1, 1]);
        // k5 s2: 111 * 2 + 5 - 224 = 3 -> 1 top, 2 bottom.
        assert_eq!(padding(&b, x, 5, 2, Padding::TfSame), [1, 1, 2, 2]);
        // Stride 1 is symmetric.
        assert_eq!(padding(&b, x, 5, 1, Padding::TfSame), [2, 2, 2, 2]);
        let y = b.input("y", &[1, 3, 7, 8]);
        // 7 rows: 4 outputs need 6 + 3 = 9 rows (2: 1 + 1); 8 columns: 4 outputs need 9 (1: 0 + 1).
        assert_eq!(padding(&b, y, 3, 2, Padding::TfSame), [1, 0, 1, 1]);
        assert_eq!(padding(&b, y, 5, 2, Padding::Torch), [2, 2, 2, 2]);
    }

    /// torchvision's and timm's parameter counts.
    #[test]
    fn efficientnets_have_reference_parameter_counts() {
        crate::classify::assert_param_counts(&[
            ("efficientnet_b0", efficientnet_b0, 5_288_548),
            ("efficientnet_lite0", efficientnet_lite0, 4_652_008),
            ("tf_efficientnet_lite0", tf_efficientnet_lite0, 4_652_008),
        ]);
    }
}
