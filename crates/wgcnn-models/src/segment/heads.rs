//! torchvision's segmentation heads: `FCNHead`, `DeepLabHead` (ASPP) and `LRASPPHead`. Their
//! BatchNorms use PyTorch's default epsilon (1e-5), whatever the backbone's.

use wgcnn_graph::{GraphBuilder, GraphError, Op, ResizeMode, TensorId};

use crate::layers::{self, Activation, BN_EPS, Conv};

/// `F.interpolate(..., mode="bilinear", align_corners=False)`, every upsampling of the heads.
pub const BILINEAR: ResizeMode = ResizeMode::Bilinear {
    align_corners: false,
};

/// `FCNHead(in, classes)` at `p`: `{p}.0` 3x3 conv (no bias) to `in / 4`, `{p}.1` BatchNorm,
/// ReLU, dropout (identity), `{p}.4` 1x1 conv with bias to `classes`.
pub fn fcn_head(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    classes: usize,
) -> Result<TensorId, GraphError> {
    let inter = layers::channels(b, p, "fcn_head", x)? / 4;
    let y = layers::conv_bn_act(
        b,
        [&format!("{p}.0"), &format!("{p}.1"), &format!("{p}.2")],
        x,
        Conv::new(inter, 3).pad(1).bias(false),
        BN_EPS,
        Activation::Relu,
    )?;
    layers::conv(b, &format!("{p}.4"), y, Conv::new(classes, 1))
}

/// ASPP's output channels.
const ASPP_CHANNELS: usize = 256;

/// torchvision's `ASPP(in, rates, 256)` at `p`: `{p}.convs.0` 1x1; `{p}.convs.1..=3` 3x3 at
/// dilation (and padding) `rates`; `{p}.convs.4` image pooling (global average, `.1` 1x1 conv,
/// `.2` BatchNorm, ReLU, bilinear back to the feature size, which from 1x1 is a broadcast);
/// each branch conv + BatchNorm + ReLU without bias; concatenated, then `{p}.project` 1x1 +
/// BatchNorm + ReLU (+ dropout, identity).
pub fn aspp(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    rates: [usize; 3],
) -> Result<TensorId, GraphError> {
    let size = match b.shape(x) {
        [_, _, h, w] => [*h, *w],
        s => {
            let msg = format!("input must be 4-D NCHW, got {s:?}");
            return Err(layers::shape_error(b, p, "aspp", &[x], msg));
        }
    };
    let cbr = |b: &mut GraphBuilder, m: &str, x: TensorId, c: Conv| {
        layers::conv_bn_act(
            b,
            [&format!("{m}.0"), &format!("{m}.1"), &format!("{m}.2")],
            x,
            c.bias(false),
            BN_EPS,
            Activation::Relu,
        )
    };
    let mut branches = vec![cbr(
        b,
        &format!("{p}.convs.0"),
        x,
        Conv::new(ASPP_CHANNELS, 1),
    )?];
    for (i, rate) in rates.into_iter().enumerate() {
        let c = Conv::new(ASPP_CHANNELS, 3).pad(rate).dilation(rate);
        branches.push(cbr(b, &format!("{p}.convs.{}", i + 1), x, c)?);
    }
    let pool = format!("{p}.convs.4");
    let g = layers::global_avg_pool(b, &format!("{pool}.0"), x)?;
    let g = layers::conv_bn_act(
        b,
        [
            &format!("{pool}.1"),
            &format!("{pool}.2"),
            &format!("{pool}.3"),
        ],
        g,
        Conv::new(ASPP_CHANNELS, 1).bias(false),
        BN_EPS,
        Activation::Relu,
    )?;
    let g = b.node(
        &format!("{pool}.upsample"),
        Op::Resize {
            size,
            mode: BILINEAR,
        },
        &[g],
    )?;
    branches.push(g);
    let y = layers::concat(b, &format!("{p}.concat"), &branches)?;
    cbr(b, &format!("{p}.project"), y, Conv::new(ASPP_CHANNELS, 1))
}

/// `DeepLabHead(in, classes)` at `p`: `{p}.0` ASPP at rates 12/24/36, `{p}.1` 3x3 conv (no
/// bias), `{p}.2` BatchNorm, ReLU, `{p}.4` 1x1 conv with bias to `classes`.
pub fn deeplab_head(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    classes: usize,
) -> Result<TensorId, GraphError> {
    let y = aspp(b, &format!("{p}.0"), x, [12, 24, 36])?;
    let y = layers::conv_bn_act(
        b,
        [&format!("{p}.1"), &format!("{p}.2"), &format!("{p}.3")],
        y,
        Conv::new(ASPP_CHANNELS, 3).pad(1).bias(false),
        BN_EPS,
        Activation::Relu,
    )?;
    layers::conv(b, &format!("{p}.4"), y, Conv::new(classes, 1))
}

/// LR-ASPP's inner channels (torchvision's default `inter_channels`).
const LRASPP_INNER: usize = 128;

/// `LRASPPHead(low, high, classes, 128)` at `p`: `{p}.cbr` (1x1 conv without bias, BatchNorm,
/// ReLU) on `high`, gated by `{p}.scale` (global average, 1x1 conv without bias, sigmoid),
/// bilinearly resized to `low`'s size, then `{p}.low_classifier(low) + {p}.high_classifier(..)`
/// (1x1 convs with bias). The sum is the node `{p}`.
pub fn lraspp_head(
    b: &mut GraphBuilder,
    p: &str,
    low: TensorId,
    high: TensorId,
    classes: usize,
) -> Result<TensorId, GraphError> {
    let size = match b.shape(low) {
        [_, _, h, w] => [*h, *w],
        s => {
            let msg = format!("low features must be 4-D NCHW, got {s:?}");
            return Err(layers::shape_error(b, p, "lraspp_head", &[low], msg));
        }
    };
    let x = layers::conv_bn_act(
        b,
        [
            &format!("{p}.cbr.0"),
            &format!("{p}.cbr.1"),
            &format!("{p}.cbr.2"),
        ],
        high,
        Conv::new(LRASPP_INNER, 1).bias(false),
        BN_EPS,
        Activation::Relu,
    )?;
    let s = layers::global_avg_pool(b, &format!("{p}.scale.0"), high)?;
    let s = layers::conv(
        b,
        &format!("{p}.scale.1"),
        s,
        Conv::new(LRASPP_INNER, 1).bias(false),
    )?;
    let s = layers::act(b, &format!("{p}.scale.2"), s, Activation::Sigmoid)?;
    let x = layers::mul(b, &format!("{p}.gate"), x, s)?;
    let x = b.node(
        &format!("{p}.upsample"),
        Op::Resize {
            size,
            mode: BILINEAR,
        },
        &[x],
    )?;
    let l = layers::conv(
        b,
        &format!("{p}.low_classifier"),
        low,
        Conv::new(classes, 1),
    )?;
    let h = layers::conv(b, &format!("{p}.high_classifier"), x, Conv::new(classes, 1))?;
    layers::add(b, p, l, h)
}
