//! The dilated backbones of torchvision's segmenters, under the `backbone.` key prefix that
//! `IntermediateLayerGetter` gives them.
//!
//! - ResNet-50/101 with `replace_stride_with_dilation=[False, True, True]`: `layer3` and `layer4`
//!   keep stride 1 and dilate their 3x3 convs instead (the first block of a stage at the previous
//!   dilation, the others at the new one: 1 then 2 in `layer3`, 2 then 4 in `layer4`), so the
//!   output stride is 8. `fc` is dropped (no keys).
//! - MobileNetV3-Large with `dilated=True`: `features` only (keys `backbone.0` ..
//!   `backbone.16`); the last three blocks run at stride 1 with their depthwise 5x5 dilated by 2
//!   (padding `(k - 1) / 2 * 2`), so the output stride is 16.

use wgcnn_graph::{GraphBuilder, GraphError, TensorId};

use crate::classify::mobilenet::make_divisible;
use crate::classify::senet::squeeze_excite;
use crate::layers::{self, Activation, BN_EPS, Conv, Pool2d};

/// The two feature maps a segmentation head reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// The last stage (`layer4`, or MobileNetV3's block 16): `out` / `high`.
    pub high: TensorId,
    /// An earlier stage (`layer3`, or block 4): `aux` / `low`.
    pub low: TensorId,
}

/// ResNet-`layers` (Bottleneck blocks) with layer3 and layer4 dilated, keys `backbone.*`.
pub fn dilated_resnet(
    b: &mut GraphBuilder,
    x: TensorId,
    blocks: [usize; 4],
) -> Result<Features, GraphError> {
    let x = layers::conv_bn_act(
        b,
        ["backbone.conv1", "backbone.bn1", "backbone.relu"],
        x,
        Conv::new(64, 7).stride(2).pad(3).bias(false),
        BN_EPS,
        Activation::Relu,
    )?;
    let mut x = layers::max_pool(b, "backbone.maxpool", x, Pool2d::new(3, 2, 1, false))?;
    let mut dilation = 1;
    let mut low = x;
    for (stage, (&count, planes)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
        // torchvision's `_make_layer` with `dilate`: the stride becomes dilation.
        let (mut stride, previous) = (if stage == 0 { 1 } else { 2 }, dilation);
        if stage >= 2 {
            dilation *= stride;
            stride = 1;
        }
        for i in 0..count {
            let d = if i == 0 { previous } else { dilation };
            let s = if i == 0 { stride } else { 1 };
            let p = format!("backbone.layer{}.{i}", stage + 1);
            x = bottleneck(b, &p, x, planes, s, d)?;
        }
        if stage == 2 {
            low = x;
        }
    }
    Ok(Features { high: x, low })
}

/// torchvision's `Bottleneck` at `p` with the 3x3 conv strided by `stride` and dilated by
/// `dilation` (padding = dilation); a `downsample` 1x1 when the shape changes.
fn bottleneck(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    planes: usize,
    stride: usize,
    dilation: usize,
) -> Result<TensorId, GraphError> {
    let inplanes = layers::channels(b, p, "conv2d", x)?;
    let out = planes * 4;
    let n = |s: &str| format!("{p}.{s}");
    let y = layers::conv_bn_act(
        b,
        [&n("conv1"), &n("bn1"), &n("relu1")],
        x,
        Conv::new(planes, 1).bias(false),
        BN_EPS,
        Activation::Relu,
    )?;
    let c2 = Conv::new(planes, 3)
        .stride(stride)
        .pad(dilation)
        .dilation(dilation)
        .bias(false);
    let y = layers::conv_bn_act(
        b,
        [&n("conv2"), &n("bn2"), &n("relu2")],
        y,
        c2,
        BN_EPS,
        Activation::Relu,
    )?;
    let y = layers::conv_bn_act(
        b,
        [&n("conv3"), &n("bn3"), ""],
        y,
        Conv::new(out, 1).bias(false),
        BN_EPS,
        Activation::Identity,
    )?;
    let identity = if stride != 1 || inplanes != out {
        let names = [n("downsample.0"), n("downsample.1")];
        layers::conv_bn_act(
            b,
            [&names[0], &names[1], ""],
            x,
            Conv::new(out, 1).stride(stride).bias(false),
            BN_EPS,
            Activation::Identity,
        )?
    } else {
        x
    };
    let y = layers::add(b, &n("add"), y, identity)?;
    layers::relu(b, &n("relu"), y)
}

/// MobileNetV3's BatchNorm epsilon.
const V3_EPS: f32 = 1e-3;

/// One block of `mobilenet_v3_large(dilated=True)`: kernel, expanded, out, SE, hardswish,
/// stride (as configured; a dilated block runs at stride 1), dilation.
type V3 = (usize, usize, usize, bool, bool, usize, usize);

const V3_LARGE_DILATED: [V3; 15] = [
    (3, 16, 16, false, false, 1, 1),
    (3, 64, 24, false, false, 2, 1),
    (3, 72, 24, false, false, 1, 1),
    (5, 72, 40, true, false, 2, 1),
    (5, 120, 40, true, false, 1, 1),
    (5, 120, 40, true, false, 1, 1),
    (3, 240, 80, false, true, 2, 1),
    (3, 200, 80, false, true, 1, 1),
    (3, 184, 80, false, true, 1, 1),
    (3, 184, 80, false, true, 1, 1),
    (3, 480, 112, true, true, 1, 1),
    (3, 672, 112, true, true, 1, 1),
    (5, 672, 160, true, true, 2, 2),
    (5, 960, 160, true, true, 1, 2),
    (5, 960, 160, true, true, 1, 2),
];

/// `mobilenet_v3_large(dilated=True).features` at keys `backbone.0` .. `backbone.16`; `low` is
/// block 4 (`[N, 40, H/8, W/8]`), `high` block 16 (`[N, 960, H/16, W/16]`), torchvision's
/// `stage_indices[-4]` and `[-1]`.
pub fn dilated_mobilenet_v3_large(
    b: &mut GraphBuilder,
    x: TensorId,
) -> Result<Features, GraphError> {
    let stem = Conv::new(16, 3).stride(2).pad(1);
    let mut x = layers::conv_norm_act(b, "backbone.0", x, stem, V3_EPS, Activation::HardSwish)?;
    let mut low = x;
    for (i, cfg) in V3_LARGE_DILATED.iter().enumerate() {
        x = inverted_residual(b, &format!("backbone.{}", i + 1), x, cfg)?;
        if i + 1 == 4 {
            low = x;
        }
    }
    let high = layers::conv_norm_act(
        b,
        "backbone.16",
        x,
        Conv::new(960, 1),
        V3_EPS,
        Activation::HardSwish,
    )?;
    Ok(Features { high, low })
}

/// torchvision's MobileNetV3 `InvertedResidual` with dilation (modules `block.N` numbered in
/// order: expansion when the width changes, depthwise, SE, projection).
fn inverted_residual(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    &(kernel, expanded, out, se, hardswish, stride, dilation): &V3,
) -> Result<TensorId, GraphError> {
    let cin = layers::channels(b, p, "inverted_residual", x)?;
    let act = if hardswish {
        Activation::HardSwish
    } else {
        Activation::Relu
    };
    let (mut j, mut y) = (0, x);
    if expanded != cin {
        let c = Conv::new(expanded, 1);
        y = layers::conv_norm_act(b, &format!("{p}.block.{j}"), y, c, V3_EPS, act)?;
        j += 1;
    }
    let dw = Conv::new(expanded, kernel)
        .stride(if dilation > 1 { 1 } else { stride })
        .pad((kernel - 1) / 2 * dilation)
        .dilation(dilation)
        .groups(expanded);
    y = layers::conv_norm_act(b, &format!("{p}.block.{j}"), y, dw, V3_EPS, act)?;
    j += 1;
    if se {
        let squeeze = make_divisible(expanded / 4, 8);
        let name = format!("{p}.block.{j}");
        y = squeeze_excite(
            b,
            &name,
            y,
            squeeze,
            Activation::Relu,
            Activation::HARDSIGMOID,
        )?;
        j += 1;
    }
    let proj = Conv::new(out, 1);
    y = layers::conv_norm_act(
        b,
        &format!("{p}.block.{j}"),
        y,
        proj,
        V3_EPS,
        Activation::Identity,
    )?;
    // torchvision keys the shortcut on the configured stride, not the dilated one.
    if stride == 1 && cin == out {
        layers::add(b, &format!("{p}.add"), y, x)
    } else {
        Ok(y)
    }
}
