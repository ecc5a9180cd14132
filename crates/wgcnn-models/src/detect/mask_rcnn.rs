//! torchvision's `MaskRCNN` builders: a Faster R-CNN whose detections (in the resized frame)
//! are pooled again, 14x14, for the mask branch: `MaskRCNNHeads` (four 3x3 convs of 256, with
//! BatchNorm in v2) and `MaskRCNNPredictor` (`conv5_mask`, a 2x2 stride-2 transposed conv +
//! ReLU, then the 1x1 `mask_fcn_logits` to one 28x28 map per class).
//!
//! Stage names (beyond [`crate::detect`]'s): `roi_heads.mask_roi_pool` `[N * D, 256, 14, 14]`,
//! `roi_heads.mask_head` `[N * D, 256, 14, 14]`, `roi_heads.mask_logits`
//! `[N * D, classes, 28, 28]` (rows follow `detections`; unused rows hold the head's value for
//! a zero input), and `masks` `[N, D, H, W]`, the graph's second output: each detection's
//! mask probability pasted into the graph's input frame (`paste_masks_in_image`, padding 1;
//! zero for unused rows). Threshold at 0.5 for binary masks.

use wgcnn_graph::{Activation, ConvTranspose2d, Graph, GraphBuilder, GraphError, Op, TensorId};

use super::faster_rcnn::{self, BackboneKind, FasterRcnnSpec};
use super::roi_heads::{self, BoxHead};
use super::{DetectBuildOptions, DetectorConfig, Front, conv_as};
use crate::ModelError;
use crate::layers::{self, BN_EPS, Conv};

/// The RoI output size of the mask branch.
pub const MASK_POOL: usize = 14;

/// Channels of the mask head's layers and of `conv5_mask`.
pub const MASK_CHANNELS: usize = 256;

/// `MaskRCNNHeads` with or without BatchNorm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaskHead {
    /// v1: `mask_head.<i>.0` conv with bias, ReLU (`<i>.1`).
    Plain,
    /// v2 (`norm_layer=nn.BatchNorm2d`): `mask_head.<i>.0` conv without bias, `<i>.1`
    /// BatchNorm with this eps, ReLU (`<i>.2`).
    BatchNorm(f32),
}

/// `maskrcnn_resnet50_fpn` (FrozenBatchNorm eps 0 in the body, as the COCO checkpoint's
/// `overwrite_eps`).
pub fn maskrcnn_resnet50_fpn(
    o: &DetectBuildOptions,
    config: &DetectorConfig,
    front: Front,
) -> Result<Graph, ModelError> {
    let spec = FasterRcnnSpec {
        backbone: BackboneKind::ResNet50,
        body_eps: 0.0,
        fpn_norm: None,
        rpn_conv_depth: 1,
        box_head: BoxHead::TwoMlp,
    };
    mask_rcnn(
        "maskrcnn_resnet50_fpn",
        o,
        config,
        &spec,
        MaskHead::Plain,
        front,
    )
}

/// `maskrcnn_resnet50_fpn_v2`: the v2 Faster R-CNN with BatchNorm in the mask head.
pub fn maskrcnn_resnet50_fpn_v2(
    o: &DetectBuildOptions,
    config: &DetectorConfig,
    front: Front,
) -> Result<Graph, ModelError> {
    let spec = FasterRcnnSpec {
        backbone: BackboneKind::ResNet50,
        body_eps: 1e-5,
        fpn_norm: Some(1e-5),
        rpn_conv_depth: 2,
        box_head: BoxHead::ConvFc,
    };
    let head = MaskHead::BatchNorm(BN_EPS);
    mask_rcnn("maskrcnn_resnet50_fpn_v2", o, config, &spec, head, front)
}

/// Any Mask R-CNN: the Faster R-CNN of `spec`, then the mask branch on its detections.
/// Outputs: `output` `[N, D, 6]`, then `masks` `[N, D, H, W]` (the input's height and width)
/// with [`Front::Image`], `roi_heads.mask_logits` with [`Front::Resized`].
pub fn mask_rcnn(
    model: &str,
    o: &DetectBuildOptions,
    config: &DetectorConfig,
    spec: &FasterRcnnSpec,
    head: MaskHead,
    front: Front,
) -> Result<Graph, ModelError> {
    let mut parts = faster_rcnn::faster_rcnn_parts(model, o, config, spec, front)?;
    let input_size = |e: GraphError| ModelError::InputSize {
        model: model.to_string(),
        height: o.height,
        width: o.width,
        detail: e.to_string(),
    };
    let b = &mut parts.b;
    let pooled = mask_roi_pool(b, parts.detections, &parts.levels, parts.sizes.resized)
        .map_err(input_size)?;
    let hidden = mask_head(b, pooled, head).map_err(input_size)?;
    let logits = mask_predictor(b, hidden, config.num_classes).map_err(input_size)?;
    if front == Front::Resized {
        // The network of a photo size's front: masks are pasted in the photo's frame, which
        // this graph (shared by every photo size that resizes to it) does not know.
        b.output(parts.output);
        b.output(logits);
        return Ok(parts.finish(spec));
    }
    let paste = Op::PasteMasks {
        size: [o.height, o.width],
        padding: 1,
    };
    let masks = b
        .node("masks", paste, &[logits, parts.output])
        .map_err(input_size)?;
    b.output(parts.output);
    b.output(masks);
    Ok(parts.finish(spec))
}

/// `MultiScaleRoIAlign(featmap_names, output_size=14, sampling_ratio=2)` over the detections
/// `[N, D, 6]` (their boxes; unused rows pool to zero), named `roi_heads.mask_roi_pool`.
pub fn mask_roi_pool(
    b: &mut GraphBuilder,
    detections: TensorId,
    levels: &[TensorId],
    resized: [usize; 2],
) -> Result<TensorId, GraphError> {
    roi_heads::multi_scale_roi_align(
        b,
        "roi_heads.mask_roi_pool",
        MASK_POOL,
        detections,
        levels,
        resized,
    )
}

/// `MaskRCNNHeads(256, [256] * 4, 1)`: four 3x3 convs (padding 1) + (BatchNorm) + ReLU; the
/// last ReLU is named `roi_heads.mask_head`.
pub fn mask_head(
    b: &mut GraphBuilder,
    pooled: TensorId,
    head: MaskHead,
) -> Result<TensorId, GraphError> {
    const P: &str = "roi_heads.mask_head";
    let mut x = pooled;
    for i in 0..4 {
        let conv = Conv::new(MASK_CHANNELS, 3).pad(1);
        let relu = if i == 3 {
            P.to_string()
        } else {
            format!("{P}.{i}.relu")
        };
        x = match head {
            MaskHead::Plain => layers::conv(b, &format!("{P}.{i}.0"), x, conv)?,
            MaskHead::BatchNorm(eps) => {
                let y = layers::conv(b, &format!("{P}.{i}.0"), x, conv.bias(false))?;
                layers::batchnorm(b, &format!("{P}.{i}.1"), y, eps)?
            }
        };
        x = layers::relu(b, &relu, x)?;
    }
    Ok(x)
}

/// `MaskRCNNPredictor(256, 256, classes)`: `conv5_mask` (ConvTranspose2d 2x2 stride 2, its
/// ReLU fused) then `mask_fcn_logits` (1x1), named `roi_heads.mask_logits`.
pub fn mask_predictor(
    b: &mut GraphBuilder,
    hidden: TensorId,
    num_classes: usize,
) -> Result<TensorId, GraphError> {
    const P: &str = "roi_heads.mask_predictor";
    let cin = layers::channels(
        b,
        "roi_heads.mask_predictor.conv5_mask",
        "conv_transpose2d",
        hidden,
    )?;
    let weight = b.param(
        &format!("{P}.conv5_mask.weight"),
        &[cin, MASK_CHANNELS, 2, 2],
    );
    let bias = b.param(&format!("{P}.conv5_mask.bias"), &[MASK_CHANNELS]);
    let up = ConvTranspose2d {
        act: Activation::Relu,
        ..ConvTranspose2d::new(2, 0, 1, true)
    };
    let x = b.node(
        &format!("{P}.conv5_mask"),
        Op::ConvTranspose2d(up),
        &[hidden, weight, bias],
    )?;
    conv_as(
        b,
        "roi_heads.mask_logits",
        &format!("{P}.mask_fcn_logits"),
        x,
        Conv::new(num_classes, 1),
    )
}
