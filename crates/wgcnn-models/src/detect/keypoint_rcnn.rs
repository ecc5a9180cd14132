//! torchvision's `KeypointRCNN` builder: a Faster R-CNN (2 classes, `__background__` and
//! `person`) whose detections (in the resized frame) are pooled again, 14x14, for the keypoint
//! branch: `KeypointRCNNHeads` (eight 3x3 convs of 512 + ReLU) and `KeypointRCNNPredictor`
//! (`kps_score_lowres`, a 4x4 stride-2 transposed conv to 17 maps, then bilinear x2) to one
//! 56x56 heatmap per keypoint, decoded by `heatmaps_to_keypoints` ([`Op::KeypointDecode`]).
//!
//! Stage names (beyond [`crate::detect`]'s): `roi_heads.keypoint_roi_pool`
//! `[N * D, 256, 14, 14]`, `roi_heads.keypoint_head` `[N * D, 512, 14, 14]`,
//! `roi_heads.keypoint_logits` `[N * D, 17, 56, 56]` (rows follow `detections`), and
//! `keypoints` `[N, D, 17, 3]`, the graph's second output: `(x, y, score)` per keypoint in the
//! graph's input frame (scaled as `output`'s boxes; zero for unused rows).

use wgcnn_graph::{ConvTranspose2d, Graph, GraphBuilder, GraphError, Op, ResizeMode, TensorId};

use super::faster_rcnn::{self, BackboneKind, FasterRcnnSpec};
use super::roi_heads::{self, BoxHead};
use super::{DetectBuildOptions, DetectorConfig, Front};
use crate::ModelError;
use crate::layers::{self, Conv};

/// The RoI output size of the keypoint branch.
pub const KEYPOINT_POOL: usize = 14;

/// Channels of the keypoint head's eight convs.
pub const KEYPOINT_CHANNELS: usize = 512;

/// Convs in `KeypointRCNNHeads`.
pub const KEYPOINT_LAYERS: usize = 8;

/// COCO's person keypoints (`num_keypoints`).
pub const NUM_KEYPOINTS: usize = 17;

/// The heatmaps' side: 14 -> 28 (transposed conv) -> 56 (bilinear x2).
pub const HEATMAP_SIZE: usize = 56;

/// torchvision's `KeypointRCNN` defaults: `FasterRCNN`'s, with 2 classes.
pub const KEYPOINT_RCNN: DetectorConfig = DetectorConfig {
    num_classes: 2,
    ..DetectorConfig::FASTER_RCNN
};

/// `keypointrcnn_resnet50_fpn` (FrozenBatchNorm eps 0 in the body, as the COCO checkpoint's
/// `overwrite_eps`). Outputs: `output` `[N, D, 6]`, then `keypoints` `[N, D, 17, 3]` in the
/// same frame.
pub fn keypointrcnn_resnet50_fpn(
    o: &DetectBuildOptions,
    config: &DetectorConfig,
    front: Front,
) -> Result<Graph, ModelError> {
    const MODEL: &str = "keypointrcnn_resnet50_fpn";
    let spec = FasterRcnnSpec {
        backbone: BackboneKind::ResNet50,
        body_eps: 0.0,
        fpn_norm: None,
        rpn_conv_depth: 1,
        box_head: BoxHead::TwoMlp,
    };
    let mut parts = faster_rcnn::faster_rcnn_parts(MODEL, o, config, &spec, front)?;
    let input_size = |e: GraphError| ModelError::InputSize {
        model: MODEL.to_string(),
        height: o.height,
        width: o.width,
        detail: e.to_string(),
    };
    let b = &mut parts.b;
    let pooled = roi_heads::multi_scale_roi_align(
        b,
        "roi_heads.keypoint_roi_pool",
        KEYPOINT_POOL,
        parts.detections,
        &parts.levels,
        parts.sizes.resized,
    )
    .map_err(input_size)?;
    let hidden = keypoint_head(b, pooled).map_err(input_size)?;
    let heatmaps = keypoint_predictor(b, hidden).map_err(input_size)?;
    // Decoded on the detections in the resized frame, where the heatmaps were pooled; the
    // positions are then scaled as the boxes (1 with `Front::Resized`).
    let decode = Op::KeypointDecode {
        scale: parts.sizes.box_scale(),
    };
    let keypoints = b
        .node("keypoints", decode, &[heatmaps, parts.detections])
        .map_err(input_size)?;
    b.output(parts.output);
    b.output(keypoints);
    Ok(parts.finish(&spec))
}

/// `KeypointRCNNHeads(256, (512,) * 8)`: `Sequential` of conv3x3 (padding 1) + ReLU, keys
/// `roi_heads.keypoint_head.{0, 2, ..., 14}`; the last ReLU is named `roi_heads.keypoint_head`.
pub fn keypoint_head(b: &mut GraphBuilder, pooled: TensorId) -> Result<TensorId, GraphError> {
    const P: &str = "roi_heads.keypoint_head";
    let mut x = pooled;
    for i in 0..KEYPOINT_LAYERS {
        let conv = Conv::new(KEYPOINT_CHANNELS, 3).pad(1);
        x = layers::conv(b, &format!("{P}.{}", 2 * i), x, conv)?;
        let relu = if i == KEYPOINT_LAYERS - 1 {
            P.to_string()
        } else {
            format!("{P}.{}", 2 * i + 1)
        };
        x = layers::relu(b, &relu, x)?;
    }
    Ok(x)
}

/// `KeypointRCNNPredictor(512, 17)`: `kps_score_lowres` (ConvTranspose2d 4x4, stride 2,
/// padding 1) then `F.interpolate(scale_factor=2, mode="bilinear", align_corners=False)`,
/// named `roi_heads.keypoint_logits`.
pub fn keypoint_predictor(b: &mut GraphBuilder, hidden: TensorId) -> Result<TensorId, GraphError> {
    const P: &str = "roi_heads.keypoint_predictor.kps_score_lowres";
    let cin = layers::channels(b, P, "conv_transpose2d", hidden)?;
    let weight = b.param(&format!("{P}.weight"), &[cin, NUM_KEYPOINTS, 4, 4]);
    let bias = b.param(&format!("{P}.bias"), &[NUM_KEYPOINTS]);
    let up = ConvTranspose2d::new(2, 1, 1, true);
    let x = b.node(P, Op::ConvTranspose2d(up), &[hidden, weight, bias])?;
    let s = b.shape(x).to_vec();
    // A scale factor of 2 without recomputation is PyTorch's `in / out` = 0.5 exactly: the
    // same taps as an explicit size of twice the input.
    let resize = Op::Resize {
        size: [2 * s[2], 2 * s[3]],
        mode: ResizeMode::Bilinear {
            align_corners: false,
        },
    };
    b.node("roi_heads.keypoint_logits", resize, &[x])
}
