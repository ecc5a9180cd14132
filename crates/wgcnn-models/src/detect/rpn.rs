//! torchvision's `RegionProposalNetwork` at inference: `RPNHead` on every feature level (weights
//! shared across levels), `concat_box_prediction_layers`, the anchors as a constant, and
//! `filter_proposals` (with the box decoding) as one [`Op::Proposals`] node.

use wgcnn_graph::{GraphBuilder, GraphError, Op, Proposals, TensorId};

use super::anchors::{self, AnchorSpec};
use super::{DetectorConfig, conv_with};
use crate::layers::{self, Conv};

/// `BoxCoder.bbox_xform_clip`: `log(1000 / 16)`.
pub fn bbox_xform_clip() -> f32 {
    (1000.0f64 / 16.0).ln() as f32
}

/// `RegionProposalNetwork.min_size`: proposals smaller than this are dropped.
pub const RPN_MIN_SIZE: f32 = 1e-3;

/// `RPNHead(in_channels, num_anchors, conv_depth)` on each level of `features`: `conv_depth`
/// 3x3 conv + ReLU blocks (`rpn.head.conv.<d>.0`), then the 1x1 `cls_logits` (`A` channels)
/// and `bbox_pred` (`4A` channels). Parameters are declared once and shared by all levels.
/// Returns per level the objectness `[N, A, H, W]` (named `rpn.objectness.<i>`) and deltas
/// `[N, 4A, H, W]` (`rpn.bbox_deltas.<i>`).
pub fn rpn_head(
    b: &mut GraphBuilder,
    features: &[TensorId],
    num_anchors: usize,
    conv_depth: usize,
) -> Result<(Vec<TensorId>, Vec<TensorId>), GraphError> {
    let Some(&first) = features.first() else {
        return Err(GraphError::Invalid("rpn.head: no feature maps".into()));
    };
    let c = layers::channels(b, "rpn.head", "conv2d", first)?;
    let convs: Vec<(TensorId, TensorId)> = (0..conv_depth)
        .map(|d| {
            let key = format!("rpn.head.conv.{d}.0");
            (
                b.param(&format!("{key}.weight"), &[c, c, 3, 3]),
                b.param(&format!("{key}.bias"), &[c]),
            )
        })
        .collect();
    let cls = (
        b.param("rpn.head.cls_logits.weight", &[num_anchors, c, 1, 1]),
        b.param("rpn.head.cls_logits.bias", &[num_anchors]),
    );
    let bbox = (
        b.param("rpn.head.bbox_pred.weight", &[4 * num_anchors, c, 1, 1]),
        b.param("rpn.head.bbox_pred.bias", &[4 * num_anchors]),
    );
    let (mut objectness, mut deltas) = (Vec::new(), Vec::new());
    for (i, &f) in features.iter().enumerate() {
        let mut t = f;
        for (d, &(w, bias)) in convs.iter().enumerate() {
            let name = format!("rpn.head.{i}.conv.{d}");
            t = conv_with(b, &name, t, w, Some(bias), Conv::new(c, 3).pad(1))?;
            t = layers::relu(b, &format!("{name}.relu"), t)?;
        }
        objectness.push(conv_with(
            b,
            &format!("rpn.objectness.{i}"),
            t,
            cls.0,
            Some(cls.1),
            Conv::new(num_anchors, 1),
        )?);
        deltas.push(conv_with(
            b,
            &format!("rpn.bbox_deltas.{i}"),
            t,
            bbox.0,
            Some(bbox.1),
            Conv::new(4 * num_anchors, 1),
        )?);
    }
    Ok((objectness, deltas))
}

/// `concat_box_prediction_layers`: objectness `[N, A, H, W]` per level to `[N, sum(H W A)]`
/// (named `rpn.objectness`) and deltas `[N, 4A, H, W]` to `[N, sum(H W A), 4]`
/// (`rpn.bbox_deltas`), each level in `(H, W, anchor)` order.
pub fn flatten_predictions(
    b: &mut GraphBuilder,
    objectness: &[TensorId],
    deltas: &[TensorId],
) -> Result<(TensorId, TensorId), GraphError> {
    let (mut objs, mut dels) = (Vec::new(), Vec::new());
    for (i, (&o, &d)) in objectness.iter().zip(deltas).enumerate() {
        let &[n, a, h, w] = b.shape(o) else {
            return Err(GraphError::Invalid(format!(
                "rpn.objectness.{i}: {:?} is not NCHW",
                b.shape(o)
            )));
        };
        let name = format!("rpn.objectness.{i}");
        let t = b.node(
            &format!("{name}.permute"),
            Op::Permute {
                perm: vec![0, 2, 3, 1],
            },
            &[o],
        )?;
        objs.push(b.node(
            &format!("{name}.flatten"),
            Op::Reshape {
                shape: vec![n, h * w * a],
            },
            &[t],
        )?);
        let name = format!("rpn.bbox_deltas.{i}");
        let t = b.node(
            &format!("{name}.view"),
            Op::Reshape {
                shape: vec![n, a, 4, h, w],
            },
            &[d],
        )?;
        let t = b.node(
            &format!("{name}.permute"),
            Op::Permute {
                perm: vec![0, 3, 4, 1, 2],
            },
            &[t],
        )?;
        dels.push(b.node(
            &format!("{name}.flatten"),
            Op::Reshape {
                shape: vec![n, h * w * a, 4],
            },
            &[t],
        )?);
    }
    let objectness = b.node("rpn.objectness", Op::Concat { axis: 1 }, &objs)?;
    let deltas = b.node("rpn.bbox_deltas", Op::Concat { axis: 1 }, &dels)?;
    Ok((objectness, deltas))
}

/// The whole RPN on the FPN outputs `features` (every level, `pool` included): head, flattening,
/// the anchors for a batch padded to `padded` as the constant `rpn.anchors`, and the
/// `rpn.proposals` node `[N, rpn_post_nms_top_n, 5]` clipping to `resized`.
pub fn rpn(
    b: &mut GraphBuilder,
    features: &[TensorId],
    spec: &AnchorSpec,
    conv_depth: usize,
    padded: [usize; 2],
    resized: [usize; 2],
    config: &DetectorConfig,
) -> Result<TensorId, GraphError> {
    let per_location = spec.per_location();
    let num_anchors = match per_location.as_slice() {
        [first, rest @ ..] if rest.iter().all(|a| a == first) => *first,
        _ => {
            return Err(GraphError::Invalid(format!(
                "rpn.head needs the same anchor count on every level, got {per_location:?}"
            )));
        }
    };
    let (objectness, deltas) = rpn_head(b, features, num_anchors, conv_depth)?;
    let grids: Vec<[usize; 2]> = objectness
        .iter()
        .map(|&o| [b.shape(o)[2], b.shape(o)[3]])
        .collect();
    let (values, level_sizes) = anchors::anchors(spec, padded, &grids)
        .map_err(|e| GraphError::Invalid(format!("rpn.anchors: {e}")))?;
    let total: usize = level_sizes.iter().sum();
    let anchors = b.constant("rpn.anchors", &[total, 4], values)?;
    let (objectness, deltas) = flatten_predictions(b, &objectness, &deltas)?;
    let op = Proposals {
        level_sizes,
        pre_nms_top_n: config.rpn_pre_nms_top_n,
        post_nms_top_n: config.rpn_post_nms_top_n,
        nms_thresh: config.rpn_nms_thresh,
        score_thresh: config.rpn_score_thresh,
        min_size: RPN_MIN_SIZE,
        image_size: resized,
        bbox_clip: bbox_xform_clip(),
    };
    b.node(
        "rpn.proposals",
        Op::Proposals(op),
        &[objectness, deltas, anchors],
    )
}
