//! [`Op::KeypointDecode`] against torchvision's `heatmaps_to_keypoints` and `resize_keypoints`
//! (`fixtures/detect/keypointrcnn_resnet50_fpn.safetensors`): fed the reference heatmaps of the
//! first 8 detections, it gives their keypoints in the resized frame (`detections.keypoints`)
//! and in the image's (`output.keypoints`), and their scores.

use std::error::Error;

use wgcnn_graph::interp::eval_op;
use wgcnn_graph::{INVALID_SCORE, Op, Tensor};

// Shared with wgcnn-exec's detect_stages.
#[allow(dead_code)]
#[path = "support/detect_fixture.rs"]
mod detect_fixture;

use detect_fixture::Model;

type TestResult = Result<(), Box<dyn Error>>;

/// The first 8 detection rows `(x1, y1, x2, y2, score, label)` and 2 unused rows after them.
fn first8_rows(m: &Model) -> Result<Tensor, Box<dyn Error>> {
    let (boxes, scores, labels) = (
        m.t("detections.boxes")?,
        m.t("detections.scores")?,
        m.t("detections.labels")?,
    );
    let mut rows: Vec<f32> = (0..8)
        .flat_map(|i| {
            let b = &boxes.data[i * 4..i * 4 + 4];
            [b[0], b[1], b[2], b[3], scores.data[i], labels.data[i]]
        })
        .collect();
    rows.extend((0..2).flat_map(|_| [1.0, 2.0, 30.0, 40.0, INVALID_SCORE, 1.0]));
    Ok(Tensor::new(&[1, 10, 6], rows)?)
}

/// The largest `|got - want|` over x, y and the scores of the first 8 detections.
fn compare(got: &Tensor, xy: &Tensor, scores: &Tensor) -> (f32, f32) {
    let (mut pos, mut score) = (0f32, 0f32);
    for (i, g) in got.data.chunks_exact(3).take(8 * 17).enumerate() {
        pos = pos
            .max((g[0] - xy.data[i * 3]).abs())
            .max((g[1] - xy.data[i * 3 + 1]).abs());
        score = score.max((g[2] - scores.data[i]).abs());
    }
    (pos, score)
}

#[test]
fn keypoint_decode_matches_torchvision_heatmaps_to_keypoints_first8() -> TestResult {
    let m = Model::open("keypointrcnn_resnet50_fpn")?;
    let logits = m.t("roi_heads.keypoint_logits.first8")?;
    let mut maps = logits.data.clone();
    maps.extend(vec![7.0; 2 * 17 * 56 * 56]);
    let maps = Tensor::new(&[10, 17, 56, 56], maps)?;
    let rows = first8_rows(&m)?;
    let image = m.t("image")?;
    let [h, w] = m.image_size()?;
    let scale = [
        image.shape[1] as f32 / h as f32,
        image.shape[2] as f32 / w as f32,
    ];
    let score_scale = m
        .t("detections.keypoints_scores")?
        .data
        .iter()
        .fold(0f32, |a, v| a.max(v.abs()));
    for (frame, scale, want) in [
        ("resized", [1.0, 1.0], "detections"),
        ("image", scale, "output"),
    ] {
        let op = Op::KeypointDecode { scale };
        let got = eval_op(&op, &[&maps, &rows])?;
        assert_eq!(got.shape, [1, 10, 17, 3]);
        let (pos, score) = compare(
            &got,
            &m.t(&format!("{want}.keypoints"))?,
            &m.t(&format!("{want}.keypoints_scores"))?,
        );
        println!(
            "{frame} frame (scale {scale:?}): max |dx|,|dy| {pos:.3e} px, max |dscore| {score:.3e} (scores up to {score_scale:.3})"
        );
        assert!(pos <= 1e-4, "{frame}: keypoints off by {pos} px");
        assert!(
            score <= 1e-5 * score_scale.max(1.0),
            "{frame}: scores off by {score}"
        );
        let unused = &got.data[8 * 17 * 3..];
        assert!(unused.iter().all(|&v| v == 0.0), "unused rows are zero");
    }
    Ok(())
}
