//! The detector stage checks of `crates/wgcnn-models/tests/detect` (transform, backbone + FPN,
//! RPN head, proposals, RoIAlign, box head, postprocess, image → detections; Mask R-CNN's mask
//! RoIAlign, head and predictor) run on the GPU
//! (lavapipe in CI): the same checks the CPU interpreter passes, each stage fed the previous
//! stage's reference tensors where the check says so. The anchors are a build-time constant of
//! the graph, checked by the same line on both backends; no GPU kernel computes them.

#[path = "../crates/wgcnn-models/tests/detect/checks.rs"]
mod checks;
mod common;
#[allow(dead_code)]
#[path = "../crates/wgcnn-models/tests/detect/keypoint_checks.rs"]
mod keypoint_checks;
#[allow(dead_code)]
#[path = "../crates/wgcnn-models/tests/detect/support.rs"]
mod support;

use std::collections::HashMap;
use std::error::Error;

use checks::*;
use keypoint_checks::*;
use support::*;
use wgcnn::wgcnn_graph::{Graph, Tensor};

/// Runs the part of `graph` that computes `targets` from `feeds` as one GPU plan.
pub fn backend_evaluate(
    graph: &Graph,
    feeds: Vec<(String, Tensor)>,
    targets: &[String],
) -> Result<HashMap<String, Tensor>, Box<dyn Error>> {
    evaluate_as_one_plan(graph, feeds, targets, |stage, values| {
        Ok(common::engine().plan(stage)?.run(values)?)
    })
}

detector_tests! {
    fasterrcnn_resnet50_fpn => "fasterrcnn_resnet50_fpn",
    fasterrcnn_resnet50_fpn_v2 => "fasterrcnn_resnet50_fpn_v2",
    fasterrcnn_mobilenet_v3_large_fpn => "fasterrcnn_mobilenet_v3_large_fpn",
    fasterrcnn_mobilenet_v3_large_320_fpn => "fasterrcnn_mobilenet_v3_large_320_fpn",
}

// The Mask R-CNN models' box stages are the Faster R-CNN v1/v2 graphs checked above (the CPU
// binary checks them with the Mask R-CNN weights too); here only their mask branch, to keep
// this binary's time on lavapipe down.

mod masks {
    use super::*;

    mask_tests! {
        maskrcnn_resnet50_fpn => "maskrcnn_resnet50_fpn",
        maskrcnn_resnet50_fpn_v2 => "maskrcnn_resnet50_fpn_v2",
    }

    // From the image for v2 only (~20 s on lavapipe, 100 detections through the mask head);
    // v1's saturated objectness makes its check run the network twice.
    mod end_to_end {
        use super::*;

        mask_end_to_end_tests! {
            maskrcnn_resnet50_fpn_v2 => "maskrcnn_resnet50_fpn_v2",
        }
    }
}

// Keypoint R-CNN's box stages are the Faster R-CNN v1 graph checked above; here its keypoint
// branch from the reference detections and the decode from the reference heatmaps (from the
// image, 100 detections through the eight 512-channel convs are the CPU binary's to check).
mod keypoints {
    use super::*;

    keypoint_tests! {
        keypointrcnn_resnet50_fpn => "keypointrcnn_resnet50_fpn",
    }
}
