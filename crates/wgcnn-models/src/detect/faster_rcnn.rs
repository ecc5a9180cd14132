//! torchvision's `FasterRCNN` builders: transform, backbone body + FPN, RPN, box RoI heads,
//! postprocessing; see the module docs of [`crate::detect`] for the stage names.

use wgcnn_graph::{Graph, GraphBuilder, TensorId};

use super::anchors::AnchorSpec;
use super::backbones::{self, BODY};
use super::roi_heads::{self, BoxHead};
use super::transform::{self, TransformSizes};
use super::{DetectBuildOptions, DetectorConfig, Front, fpn, rpn};
use crate::ModelError;

/// The backbone body of a Faster R-CNN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BackboneKind {
    /// ResNet-50, `layer1`..`layer4` into a 4-level FPN; anchors 32..512, one size per level.
    ResNet50,
    /// MobileNetV3-Large, its last two stages into a 2-level FPN; anchors 32..512 on each level.
    MobileNetV3Large,
}

/// What differs between the Faster R-CNN variants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FasterRcnnSpec {
    pub backbone: BackboneKind,
    /// BatchNorm epsilon of `backbone.body` (0.0 for torchvision's v1 COCO checkpoints).
    pub body_eps: f32,
    /// `Some(eps)`: the FPN blocks are conv + BatchNorm (`norm_layer=nn.BatchNorm2d`).
    pub fpn_norm: Option<f32>,
    /// 3x3 convs of the RPN head (`RPNHead(conv_depth=...)`).
    pub rpn_conv_depth: usize,
    pub box_head: BoxHead,
}

/// `fasterrcnn_resnet50_fpn` (eps 0 in the body, as the COCO checkpoint's `overwrite_eps`).
pub fn fasterrcnn_resnet50_fpn(
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
    faster_rcnn("fasterrcnn_resnet50_fpn", o, config, &spec, front)
}

/// `fasterrcnn_resnet50_fpn_v2`: BatchNorm in the FPN and the conv box head, a two-conv RPN head.
pub fn fasterrcnn_resnet50_fpn_v2(
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
    faster_rcnn("fasterrcnn_resnet50_fpn_v2", o, config, &spec, front)
}

/// `fasterrcnn_mobilenet_v3_large_fpn` and `fasterrcnn_mobilenet_v3_large_320_fpn` (same
/// architecture; the 320 variant differs in its [`DetectorConfig`] defaults).
pub fn fasterrcnn_mobilenet_v3_large_fpn(
    o: &DetectBuildOptions,
    config: &DetectorConfig,
    front: Front,
) -> Result<Graph, ModelError> {
    let spec = FasterRcnnSpec {
        backbone: BackboneKind::MobileNetV3Large,
        body_eps: 1e-5,
        fpn_norm: None,
        rpn_conv_depth: 1,
        box_head: BoxHead::TwoMlp,
    };
    faster_rcnn("fasterrcnn_mobilenet_v3_large_fpn", o, config, &spec, front)
}

/// Any Faster R-CNN variant for a fixed input size: input `image` `[N, 3, H, W]`, output
/// `output` `[N, box_detections_per_img, 6]`; `front` says whether the graph holds the whole
/// transform or starts from an image already normalized and resized ([`Front`]).
pub fn faster_rcnn(
    model: &str,
    o: &DetectBuildOptions,
    config: &DetectorConfig,
    spec: &FasterRcnnSpec,
    front: Front,
) -> Result<Graph, ModelError> {
    let mut parts = faster_rcnn_parts(model, o, config, spec, front)?;
    parts.b.output(parts.output);
    Ok(parts.finish(spec))
}

/// A Faster R-CNN under construction, for the models that add heads on its detections (Mask
/// and Keypoint R-CNN): the builder and the tensors those heads read.
pub struct FasterRcnnParts {
    pub b: GraphBuilder,
    /// The FPN levels `MultiScaleRoIAlign` reads (all but `pool`), finest first.
    pub levels: Vec<TensorId>,
    /// `detections` `[N, D, 6]` in the resized frame.
    pub detections: TensorId,
    /// `output` `[N, D, 6]` in the input image's frame.
    pub output: TensorId,
    pub sizes: TransformSizes,
}

impl FasterRcnnParts {
    /// The graph (outputs declared by the caller), with `spec`'s BatchNorm eps in the body.
    pub fn finish(self, spec: &FasterRcnnSpec) -> Graph {
        let mut graph = self.b.finish();
        backbones::set_batchnorm_eps(&mut graph, &format!("{BODY}."), spec.body_eps);
        graph
    }
}

/// [`faster_rcnn`] up to its `output` node, with no graph output declared yet.
pub fn faster_rcnn_parts(
    model: &str,
    o: &DetectBuildOptions,
    config: &DetectorConfig,
    spec: &FasterRcnnSpec,
    front: Front,
) -> Result<FasterRcnnParts, ModelError> {
    let invalid = |reason: String| ModelError::InvalidOptions {
        model: model.to_string(),
        reason,
    };
    o.validate().map_err(invalid)?;
    config.validate().map_err(invalid)?;
    let sizes = match front {
        Front::Image => TransformSizes::for_config(o.height, o.width, config),
        Front::Resized => TransformSizes::resized(o.height, o.width, config.size_divisible),
    }
    .map_err(invalid)?;
    let input_size = |e: wgcnn_graph::GraphError| ModelError::InputSize {
        model: model.to_string(),
        height: o.height,
        width: o.width,
        detail: e.to_string(),
    };

    let mut b = GraphBuilder::new();
    b.ignore_key_suffix("num_batches_tracked");
    let image = b.input("image", &[o.batch, 3, o.height, o.width]);
    let x = match front {
        Front::Image => {
            transform::transform(&mut b, image, &sizes, config.image_mean, config.image_std)?
        }
        Front::Resized => transform::pad_only(&mut b, image, &sizes)?,
    };
    let body = match spec.backbone {
        BackboneKind::ResNet50 => backbones::resnet50_body(&mut b, x),
        BackboneKind::MobileNetV3Large => backbones::mobilenet_v3_large_body(&mut b, x),
    }
    .map_err(input_size)?;
    let features = fpn::fpn(&mut b, &body, spec.fpn_norm).map_err(input_size)?;
    let anchors = match spec.backbone {
        BackboneKind::ResNet50 => AnchorSpec::resnet_fpn(),
        BackboneKind::MobileNetV3Large => AnchorSpec::mobilenet_fpn(features.len()),
    };
    let proposals = rpn::rpn(
        &mut b,
        &features,
        &anchors,
        spec.rpn_conv_depth,
        sizes.padded,
        sizes.resized,
        config,
    )?;
    // MultiScaleRoIAlign reads the FPN levels named '0'..'3' that exist: all but `pool`.
    let levels = &features[..features.len() - 1];
    let pooled = roi_heads::box_roi_pool(&mut b, proposals, levels, sizes.resized)?;
    let hidden = roi_heads::box_head(&mut b, pooled, spec.box_head)?;
    let (logits, regression) = roi_heads::box_predictor(&mut b, hidden, config.num_classes)?;
    let (detections, output) = roi_heads::postprocess(
        &mut b,
        logits,
        regression,
        proposals,
        sizes.resized,
        sizes.box_scale(),
        config,
    )?;
    Ok(FasterRcnnParts {
        b,
        levels: levels.to_vec(),
        detections,
        output,
        sizes,
    })
}
