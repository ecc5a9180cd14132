//! Two-stage detectors as [`wgcnn_graph::Graph`]s: torchvision's Faster R-CNN family with its
//! exact `state_dict` keys (`backbone.body.layer1.0.conv1.weight`,
//! `backbone.fpn.inner_blocks.0.0.weight`, `rpn.head.conv.0.0.weight`,
//! `roi_heads.box_head.fc6.weight`, `roi_heads.box_predictor.cls_score.weight`, ...).
//!
//! A detector graph is built for a fixed input size ([`DetectBuildOptions`]): the resized and
//! padded sizes of torchvision's `GeneralizedRCNNTransform`, the anchors, the feature scales of
//! `MultiScaleRoIAlign` and the box rescaling are all computed at build time, so the graph runs
//! from the image to the detections without a CPU round trip. It takes one input `image`
//! `[N, 3, H, W]` with values in `[0, 1]` and has one output `output` `[N, detections, 6]`, rows
//! `(x1, y1, x2, y2, score, label)` in the input image's frame; unused rows have score
//! [`wgcnn_graph::INVALID_SCORE`].
//!
//! Every stage's tensor has a stable name (a node's output, or a constant), matching the golden
//! fixtures' stage tensors:
//!
//! | name | what |
//! |---|---|
//! | `transform` | normalized, resized, padded batch |
//! | `features.0` … `features.<L-1>`, `features.pool` | FPN outputs |
//! | `rpn.objectness.<i>`, `rpn.bbox_deltas.<i>` | RPN head outputs per level |
//! | `rpn.anchors` (constant) | all anchors, level-major, torchvision's order |
//! | `rpn.proposals` | `[N, post_nms_top_n, 5]` proposals with their score |
//! | `roi_heads.box_roi_pool` | `[N * post_nms_top_n, 256, 7, 7]` |
//! | `roi_heads.box_head`, `roi_heads.class_logits`, `roi_heads.box_regression` | box head |
//! | `detections` | `[N, detections, 6]` in the resized frame |
//! | `output` | the same in the input image's frame (the graph output) |
//! | `roi_heads.mask_roi_pool`, `roi_heads.mask_head`, `roi_heads.mask_logits` | Mask R-CNN's mask branch on `detections` ([`mask_rcnn`]) |
//! | `masks` | Mask R-CNN's second output: mask probabilities pasted into the input image `[N, D, H, W]` |
//! | `roi_heads.keypoint_roi_pool`, `roi_heads.keypoint_head`, `roi_heads.keypoint_logits` | Keypoint R-CNN's keypoint branch on `detections` ([`keypoint_rcnn`]) |
//! | `keypoints` | Keypoint R-CNN's second output: `(x, y, score)` per keypoint in the input image `[N, D, 17, 3]` |
//!
//! ```
//! use wgcnn_models::detect::{DetectBuildOptions, find_detector};
//!
//! let info = find_detector("fasterrcnn_mobilenet_v3_large_320_fpn")?;
//! let graph = info.graph(&DetectBuildOptions { batch: 1, height: 240, width: 320 })?;
//! assert_eq!(graph.shape(graph.outputs[0]), [1, 100, 6]);
//! # Ok::<(), wgcnn_models::ModelError>(())
//! ```

pub mod anchors;
pub mod backbones;
pub mod faster_rcnn;
pub mod fpn;
pub mod keypoint_rcnn;
mod keys;
pub mod mask_rcnn;
pub mod roi_heads;
pub mod rpn;
pub mod transform;

pub use keys::LegacyDetectionKeys;
use wgcnn_graph::{Activation, Conv2d, Graph, GraphBuilder, GraphError, Op, TensorId};

use crate::ModelError;
use crate::layers::Conv;

/// What a detector graph is built for: a fixed batch of `height` x `width` images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectBuildOptions {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
}

impl DetectBuildOptions {
    /// Checks that every extent is positive.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 || self.height == 0 || self.width == 0 {
            return Err(format!(
                "batch ({}), height ({}) and width ({}) must all be positive",
                self.batch, self.height, self.width
            ));
        }
        Ok(())
    }
}

/// torchvision's `FasterRCNN` keyword arguments that matter at inference (the `_test` variants
/// of the RPN's top-n counts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorConfig {
    /// The shorter side is resized to this, unless the longer would exceed `max_size`.
    pub min_size: usize,
    pub max_size: usize,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
    /// The batch is padded bottom/right to a multiple of this (32).
    pub size_divisible: usize,
    /// Classes including the background (91 for COCO).
    pub num_classes: usize,
    /// `rpn_pre_nms_top_n_test`: candidates per feature level before NMS.
    pub rpn_pre_nms_top_n: usize,
    /// `rpn_post_nms_top_n_test`: proposals kept per image (the proposals' fixed capacity).
    pub rpn_post_nms_top_n: usize,
    pub rpn_nms_thresh: f32,
    pub rpn_score_thresh: f32,
    pub box_score_thresh: f32,
    pub box_nms_thresh: f32,
    pub box_detections_per_img: usize,
}

impl DetectorConfig {
    /// torchvision's `FasterRCNN` defaults (min_size 800, max_size 1333, 1000 proposals, ...).
    pub const FASTER_RCNN: DetectorConfig = DetectorConfig {
        min_size: 800,
        max_size: 1333,
        image_mean: [0.485, 0.456, 0.406],
        image_std: [0.229, 0.224, 0.225],
        size_divisible: 32,
        num_classes: 91,
        rpn_pre_nms_top_n: 1000,
        rpn_post_nms_top_n: 1000,
        rpn_nms_thresh: 0.7,
        rpn_score_thresh: 0.0,
        box_score_thresh: 0.05,
        box_nms_thresh: 0.5,
        box_detections_per_img: 100,
    };

    /// The same with another transform size (`min_size`, `max_size`).
    pub const fn with_sizes(mut self, min_size: usize, max_size: usize) -> DetectorConfig {
        self.min_size = min_size;
        self.max_size = max_size;
        self
    }

    /// Checks the counts and thresholds.
    pub fn validate(&self) -> Result<(), String> {
        let counts = [
            ("min_size", self.min_size),
            ("max_size", self.max_size),
            ("size_divisible", self.size_divisible),
            ("num_classes", self.num_classes),
            ("rpn_pre_nms_top_n", self.rpn_pre_nms_top_n),
            ("rpn_post_nms_top_n", self.rpn_post_nms_top_n),
            ("box_detections_per_img", self.box_detections_per_img),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be positive"));
        }
        if self.num_classes < 2 {
            return Err(format!(
                "num_classes ({}) must count the background and at least one class",
                self.num_classes
            ));
        }
        if self.image_std.iter().any(|s| !(s.is_finite() && *s != 0.0)) {
            return Err(format!(
                "image_std {:?} must be finite and non-zero",
                self.image_std
            ));
        }
        Ok(())
    }
}

/// Where a detector graph starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Front {
    /// From the image at the options' size: torchvision's whole transform (normalize, resize,
    /// pad) is in the graph and boxes come out in the image's pixels.
    #[default]
    Image,
    /// From the image already normalized and resized to the options' size
    /// ([`transform::front_graph`] makes that): the graph pads, runs the network and leaves
    /// boxes in the resized image's pixels (its `ScaleBoxes` scales by 1). One such graph serves
    /// every image size that resizes to it.
    Resized,
}

/// Builds a detector graph for the given input size, configuration and front.
pub type DetectorBuildFn =
    fn(&DetectBuildOptions, &DetectorConfig, Front) -> Result<Graph, ModelError>;

/// A registered detector: its torchvision name, its defaults and its builder.
#[derive(Clone, Copy, Debug)]
pub struct DetectorInfo {
    /// torchvision's builder name (`fasterrcnn_resnet50_fpn`).
    pub name: &'static str,
    /// torchvision's defaults for this builder.
    pub config: DetectorConfig,
    pub build: DetectorBuildFn,
}

impl DetectorInfo {
    /// The graph for `options` with the default configuration.
    pub fn graph(&self, options: &DetectBuildOptions) -> Result<Graph, ModelError> {
        self.graph_with(options, &self.config)
    }

    /// The graph for `options` with another configuration (e.g. a smaller `min_size`).
    pub fn graph_with(
        &self,
        options: &DetectBuildOptions,
        config: &DetectorConfig,
    ) -> Result<Graph, ModelError> {
        let invalid = |reason| ModelError::InvalidOptions {
            model: self.name.to_string(),
            reason,
        };
        options.validate().map_err(invalid)?;
        config.validate().map_err(invalid)?;
        (self.build)(options, config, Front::Image)
    }

    /// The network for images already normalized and resized to `height` x `width`
    /// ([`Front::Resized`]; the front is [`transform::front_graph`]).
    pub fn network_graph(
        &self,
        options: &DetectBuildOptions,
        config: &DetectorConfig,
    ) -> Result<Graph, ModelError> {
        let invalid = |reason| ModelError::InvalidOptions {
            model: self.name.to_string(),
            reason,
        };
        options.validate().map_err(invalid)?;
        config.validate().map_err(invalid)?;
        (self.build)(options, config, Front::Resized)
    }
}

/// The registered detectors, with torchvision's defaults.
static DETECTORS: &[DetectorInfo] = &[
    DetectorInfo {
        name: "fasterrcnn_resnet50_fpn",
        config: DetectorConfig::FASTER_RCNN,
        build: faster_rcnn::fasterrcnn_resnet50_fpn,
    },
    DetectorInfo {
        name: "fasterrcnn_resnet50_fpn_v2",
        config: DetectorConfig::FASTER_RCNN,
        build: faster_rcnn::fasterrcnn_resnet50_fpn_v2,
    },
    DetectorInfo {
        name: "fasterrcnn_mobilenet_v3_large_fpn",
        config: DetectorConfig {
            rpn_score_thresh: 0.05,
            ..DetectorConfig::FASTER_RCNN
        },
        build: faster_rcnn::fasterrcnn_mobilenet_v3_large_fpn,
    },
    DetectorInfo {
        name: "fasterrcnn_mobilenet_v3_large_320_fpn",
        config: DetectorConfig {
            min_size: 320,
            max_size: 640,
            rpn_pre_nms_top_n: 150,
            rpn_post_nms_top_n: 150,
            rpn_score_thresh: 0.05,
            ..DetectorConfig::FASTER_RCNN
        },
        build: faster_rcnn::fasterrcnn_mobilenet_v3_large_fpn,
    },
    DetectorInfo {
        name: "maskrcnn_resnet50_fpn",
        config: DetectorConfig::FASTER_RCNN,
        build: mask_rcnn::maskrcnn_resnet50_fpn,
    },
    DetectorInfo {
        name: "maskrcnn_resnet50_fpn_v2",
        config: DetectorConfig::FASTER_RCNN,
        build: mask_rcnn::maskrcnn_resnet50_fpn_v2,
    },
    DetectorInfo {
        name: "keypointrcnn_resnet50_fpn",
        config: keypoint_rcnn::KEYPOINT_RCNN,
        build: keypoint_rcnn::keypointrcnn_resnet50_fpn,
    },
];

/// Every registered detector, in listing order.
pub fn detectors() -> &'static [DetectorInfo] {
    DETECTORS
}

/// The registered detector called `name`; an unknown name is an error listing the known ones.
pub fn find_detector(name: &str) -> Result<&'static DetectorInfo, ModelError> {
    DETECTORS
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ModelError::Unknown {
            name: name.to_string(),
            known: DETECTORS
                .iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A conv node called `node` whose parameters are the module `key`'s (`{key}.weight`,
/// `{key}.bias`): for stage outputs whose node name is not the module path (`features.0` is
/// `backbone.fpn.layer_blocks.0.0`).
pub(crate) fn conv_as(
    b: &mut GraphBuilder,
    node: &str,
    key: &str,
    x: TensorId,
    c: Conv,
) -> Result<TensorId, GraphError> {
    let cin = crate::layers::channels(b, node, "conv2d", x)?;
    if c.groups == 0 || !cin.is_multiple_of(c.groups) {
        let msg = format!("groups {} must divide input channels {cin}", c.groups);
        return Err(crate::layers::shape_error(b, node, "conv2d", &[x], msg));
    }
    let weight = b.param(
        &format!("{key}.weight"),
        &[c.out, cin / c.groups, c.kernel[0], c.kernel[1]],
    );
    let bias = c.bias.then(|| b.param(&format!("{key}.bias"), &[c.out]));
    conv_with(b, node, x, weight, bias, c)
}

/// A conv node called `node` on parameters already declared (shared across feature levels).
pub(crate) fn conv_with(
    b: &mut GraphBuilder,
    node: &str,
    x: TensorId,
    weight: TensorId,
    bias: Option<TensorId>,
    c: Conv,
) -> Result<TensorId, GraphError> {
    let op = Conv2d {
        stride: c.stride,
        padding: c.padding,
        dilation: c.dilation,
        groups: c.groups,
        bias: bias.is_some(),
        residual: false,
        act: Activation::Identity,
    };
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    b.node(node, Op::Conv2d(op), &inputs)
}

/// A BatchNorm node called `node` with the parameters of module `key`.
pub(crate) fn batchnorm_as(
    b: &mut GraphBuilder,
    node: &str,
    key: &str,
    x: TensorId,
    eps: f32,
) -> Result<TensorId, GraphError> {
    let c = crate::layers::channels(b, node, "batchnorm", x)?;
    let p: Vec<TensorId> = ["weight", "bias", "running_mean", "running_var"]
        .iter()
        .map(|s| b.param(&format!("{key}.{s}"), &[c]))
        .collect();
    b.node(node, Op::BatchNorm { eps }, &[x, p[0], p[1], p[2], p[3]])
}

/// A linear node called `node` with the parameters of module `key` (`[out, in]`, bias).
pub(crate) fn linear_as(
    b: &mut GraphBuilder,
    node: &str,
    key: &str,
    x: TensorId,
    out: usize,
) -> Result<TensorId, GraphError> {
    let k = match b.shape(x) {
        [_, k] => *k,
        s => {
            let msg = format!("input must be 2-D [N, K], got {s:?}");
            return Err(crate::layers::shape_error(b, node, "linear", &[x], msg));
        }
    };
    let weight = b.param(&format!("{key}.weight"), &[out, k]);
    let bias = b.param(&format!("{key}.bias"), &[out]);
    b.node(
        node,
        Op::Linear {
            bias: true,
            act: Activation::Identity,
        },
        &[x, weight, bias],
    )
}
