//! torchvision's `RoIHeads` for boxes at inference: `MultiScaleRoIAlign`, the box head
//! (`TwoMLPHead` or `FastRCNNConvFCHead`), `FastRCNNPredictor`, `postprocess_detections`, and
//! the transform's box rescaling to the input image.

use wgcnn_graph::{BoxPostprocess, GraphBuilder, GraphError, Op, RoiAlign, TensorId, interp};

use super::{DetectorConfig, linear_as};
use crate::layers::{self, Activation, BN_EPS, Conv};

/// `roi_heads.box_coder` weights.
pub const BOX_CODER_WEIGHTS: [f32; 4] = [10.0, 10.0, 5.0, 5.0];

/// `postprocess_detections` drops boxes smaller than this.
pub const BOX_MIN_SIZE: f32 = 1e-2;

/// The RoI output size of the box branch.
pub const BOX_POOL: usize = 7;

/// The box head architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoxHead {
    /// `TwoMLPHead`: flatten, `fc6` + ReLU, `fc7` + ReLU (1024 wide).
    TwoMlp,
    /// `FastRCNNConvFCHead((256, 7, 7), [256] * 4, [1024], norm_layer=nn.BatchNorm2d)`: four
    /// 3x3 conv + BatchNorm + ReLU blocks (`box_head.0`..`3`), flatten (`4`), linear (`5`) +
    /// ReLU (`6`).
    ConvFc,
}

/// `MultiScaleRoIAlign(featmap_names, output_size=7, sampling_ratio=2)` over `levels` (the FPN
/// outputs it reads, finest first) for `proposals` `[N, R, 5]`. Named `roi_heads.box_roi_pool`.
pub fn box_roi_pool(
    b: &mut GraphBuilder,
    proposals: TensorId,
    levels: &[TensorId],
    resized: [usize; 2],
) -> Result<TensorId, GraphError> {
    multi_scale_roi_align(
        b,
        "roi_heads.box_roi_pool",
        BOX_POOL,
        proposals,
        levels,
        resized,
    )
}

/// torchvision's `MultiScaleRoIAlign(featmap_names, output_size=size, sampling_ratio=2)` node
/// `name` over `levels` for `boxes` (`[N, R, 5]` proposals or `[N, D, 6]` detections); the
/// scales are inferred from the levels' heights and the resized image height
/// ([`interp::infer_roi_scale`], torchvision's `_infer_scale`).
pub fn multi_scale_roi_align(
    b: &mut GraphBuilder,
    name: &str,
    size: usize,
    boxes: TensorId,
    levels: &[TensorId],
    resized: [usize; 2],
) -> Result<TensorId, GraphError> {
    let scales = levels
        .iter()
        .map(|&f| match b.shape(f) {
            &[_, _, h, _] => Ok(interp::infer_roi_scale(h, resized[0])),
            s => Err(GraphError::Invalid(format!(
                "{name}: feature {s:?} is not NCHW"
            ))),
        })
        .collect::<Result<Vec<f32>, _>>()?;
    let op = RoiAlign {
        output: [size; 2],
        sampling_ratio: 2,
        scales,
        canonical_scale: 224.0,
        canonical_level: 4.0,
        aligned: false,
    };
    let mut inputs = vec![boxes];
    inputs.extend_from_slice(levels);
    b.node(name, Op::RoiAlign(op), &inputs)
}

/// The box head on pooled features `[R, C, 7, 7]`; returns `[R, 1024]` named
/// `roi_heads.box_head`.
pub fn box_head(
    b: &mut GraphBuilder,
    pooled: TensorId,
    kind: BoxHead,
) -> Result<TensorId, GraphError> {
    const P: &str = "roi_heads.box_head";
    match kind {
        BoxHead::TwoMlp => {
            let x = layers::flatten(b, &format!("{P}.flatten"), pooled)?;
            let x = layers::linear(b, &format!("{P}.fc6"), x, 1024, true)?;
            let x = layers::relu(b, &format!("{P}.fc6.relu"), x)?;
            let x = layers::linear(b, &format!("{P}.fc7"), x, 1024, true)?;
            layers::relu(b, P, x)
        }
        BoxHead::ConvFc => {
            let mut x = pooled;
            for i in 0..4 {
                let conv = Conv::new(256, 3).pad(1);
                x = layers::conv_norm_act(
                    b,
                    &format!("{P}.{i}"),
                    x,
                    conv,
                    BN_EPS,
                    Activation::Relu,
                )?;
            }
            let x = layers::flatten(b, &format!("{P}.4"), x)?;
            let x = layers::linear(b, &format!("{P}.5"), x, 1024, true)?;
            layers::relu(b, P, x)
        }
    }
}

/// `FastRCNNPredictor`: `cls_score` (`roi_heads.class_logits` `[R, classes]`) and `bbox_pred`
/// (`roi_heads.box_regression` `[R, 4 classes]`).
pub fn box_predictor(
    b: &mut GraphBuilder,
    hidden: TensorId,
    num_classes: usize,
) -> Result<(TensorId, TensorId), GraphError> {
    let logits = linear_as(
        b,
        "roi_heads.class_logits",
        "roi_heads.box_predictor.cls_score",
        hidden,
        num_classes,
    )?;
    let regression = linear_as(
        b,
        "roi_heads.box_regression",
        "roi_heads.box_predictor.bbox_pred",
        hidden,
        4 * num_classes,
    )?;
    Ok((logits, regression))
}

/// `postprocess_detections` (named `detections`, in the resized frame) and the transform's
/// `resize_boxes` back to the input image (named `output`, `box_scale` as
/// [`super::transform::TransformSizes::box_scale`]). Returns `(detections, output)`.
pub fn postprocess(
    b: &mut GraphBuilder,
    logits: TensorId,
    regression: TensorId,
    proposals: TensorId,
    resized: [usize; 2],
    box_scale: [f32; 2],
    config: &DetectorConfig,
) -> Result<(TensorId, TensorId), GraphError> {
    let op = BoxPostprocess {
        image_size: resized,
        weights: BOX_CODER_WEIGHTS,
        bbox_clip: super::rpn::bbox_xform_clip(),
        score_thresh: config.box_score_thresh,
        nms_thresh: config.box_nms_thresh,
        detections_per_img: config.box_detections_per_img,
        min_size: BOX_MIN_SIZE,
    };
    let detections = b.node(
        "detections",
        Op::BoxPostprocess(op),
        &[logits, regression, proposals],
    )?;
    let output = b.node("output", Op::ScaleBoxes { scale: box_scale }, &[detections])?;
    Ok((detections, output))
}
