//! Keypoint R-CNN's stage checks, shared like `checks.rs` by the CPU interpreter's tests (this
//! folder's `main.rs`) and the GPU's (`tests/detect_gpu.rs`): each evaluates through
//! `support::evaluate`.

use std::error::Error;
use std::time::Instant;

use wgcnn_graph::{INVALID_SCORE, Tensor};
use wgcnn_models::detect::DetectorConfig;

use crate::support::*;

/// Keypoints per detection.
const JOINTS: usize = 17;

/// The first `rows` reference detections of `prefix` (`detections`, `output`) as `[1, rows, 6]`
/// rows, unused past the reference's count; and how many are used.
fn reference_rows(
    case: &Case,
    prefix: &str,
    rows: usize,
) -> Result<(Tensor, usize), Box<dyn Error>> {
    let reference = reference_dets(case, prefix)?;
    let mut data = Vec::with_capacity(rows * 6);
    for d in reference.iter().take(rows) {
        data.extend_from_slice(&d.b);
        data.extend_from_slice(&[d.score, d.label]);
    }
    let used = data.len() / 6;
    while data.len() < rows * 6 {
        data.extend_from_slice(&[0.0, 0.0, 0.0, 0.0, INVALID_SCORE, 0.0]);
    }
    Ok((Tensor::new(&[1, rows, 6], data)?, used))
}

/// The keypoint branch fed the first 8 reference detections (resized frame) and the reference
/// features: the 14x14 RoIAlign within 1e-4 and the head + predictor heatmaps within 1e-3 of
/// torchvision's `first8` tensors.
pub fn check_keypoint_branch(name: &'static str) -> TestResult {
    const ROWS: usize = 8;
    let case = Case::open(name)?;
    let config = DetectorConfig {
        box_detections_per_img: ROWS,
        ..case.config
    };
    let graph = case.graph(&config)?;
    let (rows, used) = reference_rows(&case, "detections", ROWS)?;
    let mut feeds = vec![("detections".to_string(), rows)];
    for f in case.feature_names() {
        feeds.push((f.clone(), case.t(&f)?));
    }
    let targets = ["roi_heads.keypoint_roi_pool", "roi_heads.keypoint_logits"].map(String::from);
    let started = Instant::now();
    let got = evaluate(&graph, feeds, &targets)?;
    println!(
        "{name} (reference detections and features -> keypoint heatmaps, first {used}; {:.2} s):",
        started.elapsed().as_secs_f64()
    );
    check_close(
        "roi_heads.keypoint_roi_pool",
        &first_rows(&got["roi_heads.keypoint_roi_pool"], used)?,
        &first_rows(&case.t("roi_heads.keypoint_roi_pool.first8")?, used)?,
        1e-4,
    )?;
    check_close(
        "roi_heads.keypoint_logits",
        &first_rows(&got["roi_heads.keypoint_logits"], used)?,
        &first_rows(&case.t("roi_heads.keypoint_logits.first8")?, used)?,
        1e-3,
    )
}

/// `heatmaps_to_keypoints` + `resize_keypoints` fed torchvision's first 8 heatmaps and
/// detections: `output.keypoints` (x, y in the image's frame) within 1e-3 px and
/// `output.keypoints_scores` within 1e-5 relative; zeros for the unused rows after them.
pub fn check_keypoint_decode(name: &'static str) -> TestResult {
    const ROWS: usize = 10;
    let case = Case::open(name)?;
    let config = DetectorConfig {
        box_detections_per_img: ROWS,
        ..case.config
    };
    let graph = case.graph(&config)?;
    let (rows, used) = reference_rows(&case, "detections", 8)?;
    let mut data = rows.data;
    data.extend([0.0, 0.0, 9.0, 9.0, INVALID_SCORE, 0.0].repeat(ROWS - 8));
    let mut maps = case.t("roi_heads.keypoint_logits.first8")?.data;
    maps.resize(ROWS * JOINTS * 56 * 56, 5.0);
    let feeds = vec![
        (
            "roi_heads.keypoint_logits".to_string(),
            Tensor::new(&[ROWS, JOINTS, 56, 56], maps)?,
        ),
        ("detections".to_string(), Tensor::new(&[1, ROWS, 6], data)?),
    ];
    let got = evaluate(&graph, feeds, &["keypoints".to_string()])?;
    let got = &got["keypoints"];
    let (xy, scores) = (
        case.t("output.keypoints")?,
        case.t("output.keypoints_scores")?,
    );
    let scale = scores.data.iter().fold(1f32, |m, v| m.max(v.abs()));
    let (mut pos, mut score) = (0f32, 0f32);
    for (i, g) in got.data.chunks_exact(3).take(used * JOINTS).enumerate() {
        pos = pos
            .max((g[0] - xy.data[i * 3]).abs())
            .max((g[1] - xy.data[i * 3 + 1]).abs());
        score = score.max((g[2] - scores.data[i]).abs());
    }
    println!(
        "{name} (reference heatmaps and detections -> keypoints, first {used}): max |dx|,|dy| {pos:.3e} px, max |dscore| {score:.3e} (scale {scale:.3})"
    );
    let unused_zero = got.data[used * JOINTS * 3..].iter().all(|&v| v == 0.0);
    if pos > 1e-3 || score > 1e-5 * scale || !unused_zero {
        return Err(format!(
            "{name}: keypoints off by {pos} px, scores by {score}, unused rows zero: {unused_zero}"
        )
        .into());
    }
    Ok(())
}

/// The whole Keypoint R-CNN from the image: every reference detection reproduced by one of
/// ours (same label, box IoU >= 0.99) has its 17 keypoints within 1 px of `output.keypoints`,
/// except where a near tie of the resized heatmap moves the maximum (the scores of both then
/// agree within 1e-3 relative, 1e-2 for boxes of IoU under 0.999); at most 5% of the keypoints
/// move so, and at least half of the reference detections must be reproduced (from the
/// reference features where the reference objectness saturates, as `check_end_to_end`).
pub fn check_keypoints_end_to_end(name: &'static str) -> TestResult {
    let case = Case::open(name)?;
    let graph = case.graph(&case.config)?;
    let targets = ["output".to_string(), "keypoints".to_string()];
    let started = Instant::now();
    let got = evaluate(&graph, vec![("image".into(), case.image()?)], &targets)?;
    println!(
        "{name} (image -> output and keypoints; {:.2} s):",
        started.elapsed().as_secs_f64()
    );
    let saturated = saturated_objectness(&case)?;
    if saturated <= 1 {
        return compare_keypoints(&case, &got["output"], &got["keypoints"]);
    }
    // As `check_end_to_end`: detections descending from tied objectness logits follow
    // torchvision's tie order, so the image's keypoints are reported and the reference
    // features' compared.
    println!("  ({saturated} reference objectness logits have sigmoid 1.0: reported only)");
    if let Err(e) = compare_keypoints(&case, &got["output"], &got["keypoints"]) {
        println!("  {e}");
    }
    let feeds = case
        .feature_names()
        .into_iter()
        .map(|f| Ok((f.clone(), case.t(&f)?)))
        .collect::<Result<_, Box<dyn Error>>>()?;
    let got = evaluate(&graph, feeds, &targets)?;
    println!("{name} (reference features -> output and keypoints):");
    compare_keypoints(&case, &got["output"], &got["keypoints"])
}

/// The comparison of [`check_keypoints_end_to_end`] on computed `output` rows and `keypoints`
/// `[1, D, 17, 3]`.
pub fn compare_keypoints(case: &Case, ours: &Tensor, keypoints: &Tensor) -> TestResult {
    let reference = reference_dets(case, "output")?;
    let (xy, scores) = (
        case.t("output.keypoints")?,
        case.t("output.keypoints_scores")?,
    );
    let scale = scores.data.iter().fold(1f32, |m, v| m.max(v.abs()));
    let (mut compared, mut points, mut moved, mut worst) = (0, 0, 0, 0f32);
    for (i, r) in reference.iter().enumerate() {
        let best = ours
            .data
            .chunks_exact(6)
            .enumerate()
            .filter(|(_, d)| d[4] != INVALID_SCORE && d[5] == r.label)
            .map(|(j, d)| (j, iou(&[d[0], d[1], d[2], d[3]], &r.b)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((j, box_iou)) = best.filter(|(_, v)| *v >= 0.99) else {
            continue;
        };
        compared += 1;
        for k in 0..JOINTS {
            let g = &keypoints.data[(j * JOINTS + k) * 3..][..3];
            let w = &xy.data[(i * JOINTS + k) * 3..][..3];
            let ws = scores.data[i * JOINTS + k];
            let d = (g[0] - w[0]).abs().max((g[1] - w[1]).abs());
            points += 1;
            worst = worst.max(d);
            if d > 1.0 {
                moved += 1;
                // A box off by a fraction of a pixel pools other features: its heatmaps'
                // maxima may swap between near-equal peaks, which still score alike.
                let tol = if box_iou >= 0.999 { 1e-3 } else { 1e-2 };
                let ds = (g[2] - ws).abs();
                if ds > tol * scale {
                    return Err(format!(
                        "{}: reference #{i} (ours #{j}, box IoU {box_iou:.4}) keypoint {k}: ({}, {}) score {} vs ({}, {}) score {ws}",
                        case.name, g[0], g[1], g[2], w[0], w[1]
                    )
                    .into());
                }
            }
        }
    }
    println!(
        "  {compared} of {} reference detections reproduced; {points} keypoints, {moved} more than 1 px off (near ties), largest offset {worst:.3} px",
        reference.len()
    );
    if compared * 2 < reference.len() || moved * 20 > points {
        return Err(format!(
            "{}: {compared} of {} detections compared, {moved} of {points} keypoints moved",
            case.name,
            reference.len()
        )
        .into());
    }
    Ok(())
}

/// The keypoint-branch tests of the Keypoint R-CNN models (beside `detector_tests`).
#[macro_export]
macro_rules! keypoint_tests {
    ($($module:ident => $name:literal),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn keypoint_roi_pool_head_and_predictor_match_torchvision() -> TestResult {
                check_keypoint_branch($name)
            }

            #[test]
            fn heatmaps_to_keypoints_matches_torchvision() -> TestResult {
                check_keypoint_decode($name)
            }
        }
    )*};
}

/// The image-to-keypoints tests of the Keypoint R-CNN models.
#[macro_export]
macro_rules! keypoint_end_to_end_tests {
    ($($module:ident => $name:literal),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn image_to_keypoints_matches_torchvision() -> TestResult {
                check_keypoints_end_to_end($name)
            }
        }
    )*};
}
