//! The segmenter checks of `crates/wgcnn-models/tests/segment` (backbone from the input, head
//! from the reference backbone tensors; logits within the fixtures' tolerance, class maps equal
//! away from near-ties) run on the GPU (lavapipe in CI), then [`wgcnn::Segmenter`] end to end:
//! the fixture's input at full precision reproduces `output.argmax`, and an 8-bit photo whose
//! sides are not multiples of 8 comes back as a class map of its own size.

#[path = "../crates/wgcnn-models/tests/segment/checks.rs"]
mod checks;
mod common;

use std::error::Error;

use wgcnn::wgcnn_graph::{Graph, Tensor};
use wgcnn::wgcnn_models::segment::{SegmentBuildOptions, find_segmenter};
use wgcnn::{RgbImage, Segmenter, SegmenterOptions};

/// Runs a stage as one GPU plan.
pub fn backend_run(stage: &Graph, feeds: Vec<Tensor>) -> Result<Vec<Tensor>, Box<dyn Error>> {
    let plan = common::engine().plan(stage)?;
    Ok(plan.run(&feeds)?)
}

segmenter_tests! {
    fcn_resnet50 => "fcn_resnet50",
    fcn_resnet101 => "fcn_resnet101",
    deeplabv3_resnet50 => "deeplabv3_resnet50",
    deeplabv3_resnet101 => "deeplabv3_resnet101",
    deeplabv3_mobilenet_v3_large => "deeplabv3_mobilenet_v3_large",
    lraspp_mobilenet_v3_large => "lraspp_mobilenet_v3_large",
}

const MODEL: &str = "lraspp_mobilenet_v3_large";

/// The fixture's weights (rule + stored statistics) as a safetensors file, removed on drop.
struct Weights(std::path::PathBuf);

impl Drop for Weights {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn weights_file(fx: &wgcnn::wgcnn_io::Fixture, tag: &str) -> Result<Weights, Box<dyn Error>> {
    let graph = find_segmenter(MODEL)?.graph(&SegmentBuildOptions::new(1, 64, 64))?;
    let tag = format!("segment-gpu-{tag}");
    Ok(Weights(common::rule_weights_file(fx, &graph, &tag)))
}

#[test]
fn segmenter_on_the_fixture_input_reproduces_the_class_map() -> checks::TestResult {
    let fx = checks::fixture(MODEL)?;
    let weights = weights_file(&fx, "fixture")?;
    let options = SegmenterOptions {
        resize: Some(checks::SIZE[0]),
        ..SegmenterOptions::new(MODEL, &weights.0)
    };
    let segmenter = Segmenter::new(common::engine(), &options)?;
    // The fixture input is already normalized: undo the mean/std the segmenter applies.
    let seg = segmenter.segment_tensor(&common::unnormalized(&fx.tensor("input")?))?;
    assert_eq!((seg.width, seg.height), (160, 120));
    let got = Tensor::new(
        &[1, 120, 160],
        seg.classes.iter().map(|&c| c as f32).collect(),
    )?;
    checks::check_argmax(
        "Segmenter::segment_tensor",
        &got,
        &fx.tensor("output.argmax")?,
        &fx.tensor("output")?,
    )
}

#[test]
fn segmenter_maps_an_odd_sized_photo_at_its_own_size() -> checks::TestResult {
    let fx = checks::fixture(MODEL)?;
    let weights = weights_file(&fx, "odd")?;
    let options = SegmenterOptions {
        resize: Some(93),
        ..SegmenterOptions::new(MODEL, &weights.0)
    };
    let segmenter = Segmenter::new(common::engine(), &options)?;
    let (w, h) = (131, 101);
    let pixels = (0..w * h * 3).map(|i| ((i * 37) % 251) as u8).collect();
    let photo = RgbImage {
        width: w,
        height: h,
        pixels,
    };
    let (seg, timings) = segmenter.segment_timed(&photo)?;
    println!(
        "{w}x{h} photo, network {:?}: plan {:?}, upload {:?}, gpu {:?}; classes {:?}",
        seg.network_size,
        timings.plan,
        timings.upload,
        timings.gpu,
        seg.present(segmenter.labels())
            .iter()
            .map(|c| (c.class, c.fraction))
            .collect::<Vec<_>>()
    );
    // torchvision: shorter side 93, longer int(93 * 131 / 101) = 120.
    assert_eq!(seg.network_size, (120, 93));
    assert_eq!((seg.width, seg.height, seg.classes.len()), (w, h, w * h));
    assert!(seg.classes.iter().all(|&c| c < 21));
    // A second photo of the same size reuses the plans.
    let (again, timings) = segmenter.segment_timed(&photo)?;
    assert_eq!(again, seg, "same photo, same map");
    assert!(
        timings.plan < std::time::Duration::from_millis(50),
        "{timings:?}"
    );
    Ok(())
}
