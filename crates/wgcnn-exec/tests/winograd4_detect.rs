//! Faster R-CNN ResNet-50-FPN from the fixture image to features, RPN head outputs and
//! proposals on the GPU (lavapipe in CI) with Winograd F(4x4, 3x3) forced on every 3x3 stride-1
//! convolution (`Variants::Winograd4`: the backbone's 64-512-channel layers as well as the FPN
//! outputs and the RPN head, where `Auto` takes it only at large sizes). The same check and
//! tolerances as `tests/detect_gpu.rs` (features and RPN outputs within 1e-3 of torchvision's,
//! proposals matched by IoU): F(4x4, 3x3)'s error stays inside the golden tolerance through a
//! whole detector, not only on one layer.

#[allow(dead_code)]
#[path = "../../wgcnn-models/tests/detect/checks.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../wgcnn-models/tests/detect/support.rs"]
mod support;

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, OnceLock};

use wgcnn_exec::Plan;
use wgcnn_graph::{Graph, Tensor};
use wgcnn_kernels::{Context, ContextOptions, Variants};

fn context() -> Arc<Context> {
    static CTX: OnceLock<Arc<Context>> = OnceLock::new();
    CTX.get_or_init(|| {
        let options = ContextOptions {
            variants: Variants::Winograd4,
            ..Default::default()
        };
        Arc::new(Context::new(&options).expect("a GPU adapter (lavapipe in CI)"))
    })
    .clone()
}

/// Runs the part of `graph` that computes `targets` from `feeds` as one GPU plan (as
/// `tests/detect_gpu.rs` does, on the Winograd4 context).
pub fn backend_evaluate(
    graph: &Graph,
    feeds: Vec<(String, Tensor)>,
    targets: &[String],
) -> Result<HashMap<String, Tensor>, Box<dyn Error>> {
    support::evaluate_as_one_plan(graph, feeds, targets, |stage, values| {
        Ok(Plan::new(context(), stage)?.run(values)?)
    })
}

#[test]
fn fasterrcnn_resnet50_fpn_image_to_proposals_with_winograd4_forced() -> support::TestResult {
    let ctx = context();
    if !wgcnn_kernels::conv2d::subgroups_usable(&ctx) {
        println!(
            "skipped: {} has no subgroups of >= 8 lanes (Winograd needs them)",
            ctx.info.name
        );
        return Ok(());
    }
    checks::check_image_to_proposals("fasterrcnn_resnet50_fpn")
}
