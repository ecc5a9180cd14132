//! The detector stage checks, shared by the CPU interpreter's tests (this folder's `main.rs`)
//! and the GPU's (`tests/detect_gpu.rs` at the workspace root): each evaluates through
//! `support::evaluate`, which the including test binary routes to its backend
//! (`crate::backend_evaluate`).

use std::collections::HashSet;
use std::error::Error;
use std::time::Instant;

use wgcnn_graph::Graph;
use wgcnn_models::detect::DetectorConfig;

use crate::support::*;

/// The BatchNorm epsilon of `backbone.body` in the graph is the one the fixture's builder
/// line records (`backbone.body BatchNorm eps=0.0`).
pub fn check_body_eps(case: &Case, graph: &Graph) -> TestResult {
    let builder = case.meta("builder")?;
    let want: f32 = builder
        .split("BatchNorm eps=")
        .nth(1)
        .ok_or_else(|| format!("{}: builder line {builder:?} names no eps", case.name))?
        .trim()
        .parse()?;
    let eps: HashSet<u32> = graph
        .nodes
        .iter()
        .filter(|n| n.name.starts_with("backbone.body."))
        .filter_map(|n| match n.op {
            wgcnn_graph::Op::BatchNorm { eps } => Some(eps.to_bits()),
            _ => None,
        })
        .collect();
    println!(
        "  backbone.body BatchNorm eps: fixture {want}, graph {:?}",
        eps.iter().map(|&b| f32::from_bits(b)).collect::<Vec<_>>()
    );
    if eps != HashSet::from([want.to_bits()]) {
        return Err(format!("{}: backbone.body eps {eps:?}, fixture {want}", case.name).into());
    }
    Ok(())
}

/// Transform, features and RPN head outputs from the image within 1e-3; anchors exactly (a
/// build-time constant of the graph: the same check on every backend, nothing a GPU computes);
/// proposals from the image, with the looser agreement of [`Agreement::FROM_IMAGE_SATURATED`]
/// where the reference objectness saturates ([`saturated_objectness`]).
pub fn check_image_to_proposals(name: &'static str) -> TestResult {
    let started = Instant::now();
    let case = Case::open(name)?;
    let graph = case.graph(&case.config)?;
    let levels = case.rpn_levels();
    let features = case.feature_names();
    let mut targets = vec![
        "transform".to_string(),
        "rpn.anchors".to_string(),
        "rpn.proposals".to_string(),
    ];
    targets.extend(features.iter().cloned());
    for i in 0..levels {
        targets.push(format!("rpn.objectness.{i}"));
        targets.push(format!("rpn.bbox_deltas.{i}"));
    }
    let got = evaluate(&graph, vec![("image".into(), case.image()?)], &targets)?;
    println!("{name} (image -> proposals):");
    check_body_eps(&case, &graph)?;
    check_close(
        "transform",
        &got["transform"],
        &case.t("transform.tensors")?,
        1e-5,
    )?;
    for f in &features {
        check_close(f, &got[f.as_str()], &case.t(f)?, 1e-3)?;
    }
    for i in 0..levels {
        for k in ["rpn.objectness", "rpn.bbox_deltas"] {
            let key = format!("{k}.{i}");
            check_close(&key, &got[key.as_str()], &case.t(&key)?, 1e-3)?;
        }
    }
    let anchors = case.t("rpn.anchors")?;
    println!(
        "  rpn.anchors (build-time constant): {:?}, max |diff| {}",
        anchors.shape,
        got["rpn.anchors"].max_abs_diff(&anchors)
    );
    assert_eq!(
        got["rpn.anchors"].data, anchors.data,
        "{name}: anchors differ"
    );
    let proposals = valid_rows(&got["rpn.proposals"]);
    let saturated = saturated_objectness(&case)?;
    if saturated > 1 {
        println!(
            "  ({saturated} reference objectness logits have sigmoid 1.0: the proposals descending from them follow torchvision's tie order)"
        );
        check_matched(
            "rpn.proposals",
            &proposals,
            &reference_proposals(&case)?,
            Agreement::FROM_IMAGE_SATURATED,
        )?;
    } else {
        check_matched(
            "rpn.proposals",
            &proposals,
            &reference_proposals(&case)?,
            Agreement::FROM_IMAGE,
        )?;
    }
    println!("  ({:.2} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// Proposals from the reference RPN head outputs (flattening, anchors and filtering wired as
/// torchvision's `RegionProposalNetwork`: exactly) and from the reference features (RPN head
/// included).
pub fn check_proposals_from_reference(name: &'static str) -> TestResult {
    let case = Case::open(name)?;
    let graph = case.graph(&case.config)?;
    let want = reference_proposals(&case)?;
    let mut feeds = Vec::new();
    for i in 0..case.rpn_levels() {
        for k in ["rpn.objectness", "rpn.bbox_deltas"] {
            let key = format!("{k}.{i}");
            feeds.push((key.clone(), case.t(&key)?));
        }
    }
    let targets = ["rpn.proposals".to_string()];
    let got = evaluate(&graph, feeds, &targets)?;
    println!("{name} (reference RPN head outputs -> proposals):");
    check_matched(
        "rpn.proposals",
        &valid_rows(&got["rpn.proposals"]),
        &want,
        Agreement::EXACT,
    )?;
    let feeds = case
        .feature_names()
        .into_iter()
        .map(|f| Ok((f.clone(), case.t(&f)?)))
        .collect::<Result<_, Box<dyn Error>>>()?;
    let got = evaluate(&graph, feeds, &targets)?;
    println!("{name} (reference features -> proposals):");
    let agreement = Agreement {
        min_iou: 0.99,
        max_coord: 0.01,
        count_slack: 1,
        min_matched: 0.99,
        score_tol: 0.0,
    };
    check_matched(
        "rpn.proposals",
        &valid_rows(&got["rpn.proposals"]),
        &want,
        agreement,
    )
}

/// RoIAlign, box head and predictor on the first 64 reference proposals and reference features.
pub fn check_box_branch(name: &'static str) -> TestResult {
    const ROWS: usize = 64;
    let case = Case::open(name)?;
    let config = DetectorConfig {
        rpn_post_nms_top_n: ROWS,
        ..case.config
    };
    let graph = case.graph(&config)?;
    let (proposals, r) = case.proposals(ROWS)?;
    let mut feeds = vec![("rpn.proposals".to_string(), proposals)];
    for f in case.feature_names() {
        feeds.push((f.clone(), case.t(&f)?));
    }
    let targets: Vec<String> = [
        "roi_heads.box_roi_pool",
        "roi_heads.box_head",
        "roi_heads.class_logits",
        "roi_heads.box_regression",
    ]
    .map(String::from)
    .to_vec();
    let got = evaluate(&graph, feeds, &targets)?;
    println!(
        "{name} (reference proposals and features -> box head, first {ROWS} of {r} proposals):"
    );
    let rows = ROWS.min(r);
    let pool_ref = first_rows(&case.t("roi_heads.box_roi_pool.first64")?, rows)?;
    check_close(
        "roi_heads.box_roi_pool",
        &first_rows(&got["roi_heads.box_roi_pool"], rows)?,
        &pool_ref,
        1e-4,
    )?;
    for key in &targets[1..] {
        let want = first_rows(&case.t(key)?, rows)?;
        check_close(key, &first_rows(&got[key.as_str()], rows)?, &want, 1e-3)?;
    }
    Ok(())
}

/// Postprocessing and rescaling fed the reference proposals, logits and regression.
pub fn check_postprocess(name: &'static str) -> TestResult {
    let case = Case::open(name)?;
    let r = case.t("rpn.proposals")?.shape[0];
    let config = DetectorConfig {
        rpn_post_nms_top_n: r,
        ..case.config
    };
    let graph = case.graph(&config)?;
    let (proposals, _) = case.proposals(r)?;
    let feeds = vec![
        ("rpn.proposals".to_string(), proposals),
        (
            "roi_heads.class_logits".to_string(),
            case.t("roi_heads.class_logits")?,
        ),
        (
            "roi_heads.box_regression".to_string(),
            case.t("roi_heads.box_regression")?,
        ),
    ];
    let got = evaluate(
        &graph,
        feeds,
        &["detections".to_string(), "output".to_string()],
    )?;
    println!("{name} (reference logits -> detections):");
    check_matched(
        "detections",
        &valid_rows(&got["detections"]),
        &reference_dets(&case, "detections")?,
        Agreement::EXACT,
    )?;
    check_matched(
        "output",
        &valid_rows(&got["output"]),
        &reference_dets(&case, "output")?,
        Agreement::EXACT,
    )
}

/// The whole graph from the image to `output`: well-formed, and matching the
/// reference as sets. When the reference objectness saturates (see [`saturated_objectness`])
/// the image's detections are matched with [`Agreement::FROM_IMAGE_SATURATED`] (the ones
/// descending from tied logits follow torchvision's tie order), and the graph from the
/// reference features to `output` is compared with the full agreement as well.
pub fn check_end_to_end(name: &'static str) -> TestResult {
    let started = Instant::now();
    let case = Case::open(name)?;
    let graph = case.graph(&case.config)?;
    let built = started.elapsed().as_secs_f64();
    let outputs = evaluate(
        &graph,
        vec![("image".into(), case.image()?)],
        &["output".to_string()],
    )?;
    let output = &outputs["output"];
    let ran = started.elapsed().as_secs_f64() - built;
    println!("{name} (image -> output; build + bind {built:.2} s, run {ran:.2} s):");
    let dets = valid_rows(output);
    let want = reference_dets(&case, "output")?;
    check_well_formed(
        "output",
        &dets,
        IMAGE,
        case.config.box_score_thresh,
        case.config.num_classes,
    )?;
    let saturated = saturated_objectness(&case)?;
    if saturated <= 1 {
        return check_matched("output", &dets, &want, Agreement::FROM_IMAGE);
    }
    println!(
        "  ({saturated} reference objectness logits have sigmoid 1.0: the detections descending from them follow torchvision's tie order)"
    );
    check_matched("output", &dets, &want, Agreement::FROM_IMAGE_SATURATED)?;
    let feeds = case
        .feature_names()
        .into_iter()
        .map(|f| Ok((f.clone(), case.t(&f)?)))
        .collect::<Result<_, Box<dyn Error>>>()?;
    let got = evaluate(&graph, feeds, &["output".to_string()])?;
    println!("{name} (reference features -> output):");
    let dets = valid_rows(&got["output"]);
    check_well_formed(
        "output",
        &dets,
        IMAGE,
        case.config.box_score_thresh,
        case.config.num_classes,
    )?;
    check_matched("output", &dets, &want, Agreement::FROM_FEATURES)
}

#[macro_export]
macro_rules! detector_tests {
    ($($module:ident => $name:literal),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn transform_features_rpn_head_anchors_and_proposals_match_torchvision() -> TestResult {
                check_image_to_proposals($name)
            }

            #[test]
            fn proposals_from_reference_head_and_features_match_torchvision() -> TestResult {
                check_proposals_from_reference($name)
            }

            #[test]
            fn roi_pool_box_head_and_predictor_match_torchvision() -> TestResult {
                check_box_branch($name)
            }

            #[test]
            fn postprocess_and_rescale_match_torchvision() -> TestResult {
                check_postprocess($name)
            }

            #[test]
            fn image_to_detections_matches_torchvision() -> TestResult {
                check_end_to_end($name)
            }
        }
    )*};
}

/// Mask R-CNN's mask branch fed the first 8 reference detections (as `[1, 8, 6]` rows in the
/// resized frame) and the reference features: the 14x14 RoIAlign within 1e-4 and the mask
/// head + predictor logits within 1e-3 of torchvision's `first8` tensors.
pub fn check_mask_branch(name: &'static str) -> TestResult {
    const ROWS: usize = 8;
    let case = Case::open(name)?;
    let config = DetectorConfig {
        box_detections_per_img: ROWS,
        ..case.config
    };
    let graph = case.graph(&config)?;
    let reference = reference_dets(&case, "detections")?;
    let mut rows = Vec::with_capacity(ROWS * 6);
    for d in reference.iter().take(ROWS) {
        rows.extend_from_slice(&d.b);
        rows.extend_from_slice(&[d.score, d.label]);
    }
    let used = rows.len() / 6;
    rows.resize(ROWS * 6, 0.0);
    for row in rows.chunks_exact_mut(6).skip(used) {
        row[4] = wgcnn_graph::INVALID_SCORE;
    }
    let mut feeds = vec![(
        "detections".to_string(),
        wgcnn_graph::Tensor::new(&[1, ROWS, 6], rows)?,
    )];
    for f in case.feature_names() {
        feeds.push((f.clone(), case.t(&f)?));
    }
    let targets = ["roi_heads.mask_roi_pool", "roi_heads.mask_logits"].map(String::from);
    let started = Instant::now();
    let got = evaluate(&graph, feeds, &targets)?;
    println!(
        "{name} (reference detections and features -> mask logits, first {used}; {:.2} s):",
        started.elapsed().as_secs_f64()
    );
    check_close(
        "roi_heads.mask_roi_pool",
        &first_rows(&got["roi_heads.mask_roi_pool"], used)?,
        &first_rows(&case.t("roi_heads.mask_roi_pool.first8")?, used)?,
        1e-4,
    )?;
    check_close(
        "roi_heads.mask_logits",
        &first_rows(&got["roi_heads.mask_logits"], used)?,
        &first_rows(&case.t("roi_heads.mask_logits.first8")?, used)?,
        1e-3,
    )
}

/// The first `rows` reference detections of `prefix` (`detections`, `output`) as `[1, rows, 6]`
/// rows, unused past the reference's count.
fn reference_rows(
    case: &Case,
    prefix: &str,
    rows: usize,
) -> Result<wgcnn_graph::Tensor, Box<dyn Error>> {
    let reference = reference_dets(case, prefix)?;
    let mut data = Vec::with_capacity(rows * 6);
    for d in reference.iter().take(rows) {
        data.extend_from_slice(&d.b);
        data.extend_from_slice(&[d.score, d.label]);
    }
    while data.len() < rows * 6 {
        data.extend_from_slice(&[0.0, 0.0, 0.0, 0.0, wgcnn_graph::INVALID_SCORE, 0.0]);
    }
    Ok(wgcnn_graph::Tensor::new(&[1, rows, 6], data)?)
}

/// Pixels set in both 0.5-thresholded masks over pixels set in either (1 when both are
/// empty), counting only pixels whose reference probability `b` is more than `margin` from
/// the threshold.
pub fn mask_iou(a: &[f32], b: &[f32], margin: f32) -> f64 {
    let (mut both, mut either) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        if (y - 0.5).abs() <= margin {
            continue;
        }
        let (x, y) = (x > 0.5, y > 0.5);
        both += (x && y) as usize;
        either += (x || y) as usize;
    }
    if either == 0 {
        1.0
    } else {
        both as f64 / either as f64
    }
}

/// `paste_masks_in_image` fed torchvision's first 8 mask logits and output rows: the pasted
/// probabilities within 1e-4 of `output.masks`, and the 0.5-thresholded masks' IoU.
pub fn check_paste_masks(name: &'static str) -> TestResult {
    const ROWS: usize = 8;
    let case = Case::open(name)?;
    let config = DetectorConfig {
        box_detections_per_img: ROWS,
        ..case.config
    };
    let graph = case.graph(&config)?;
    let feeds = vec![
        (
            "roi_heads.mask_logits".to_string(),
            case.t("roi_heads.mask_logits.first8")?,
        ),
        ("output".to_string(), reference_rows(&case, "output", ROWS)?),
    ];
    let got = evaluate(&graph, feeds, &["masks".to_string()])?;
    let want = case.t("output.masks")?;
    println!("{name} (reference mask logits and output rows -> masks):");
    let plane = IMAGE[0] * IMAGE[1];
    let worst = (0..ROWS)
        .map(|i| {
            let r = i * plane..(i + 1) * plane;
            mask_iou(&got["masks"].data[r.clone()], &want.data[r], 0.0)
        })
        .fold(1f64, f64::min);
    println!("  masks > 0.5: lowest IoU {worst:.4}");
    check_close("masks", &got["masks"], &want, 1e-4)?;
    if worst < 0.999 {
        return Err(format!("{name}: thresholded mask IoU {worst} < 0.999").into());
    }
    Ok(())
}

/// The whole Mask R-CNN from the image: each of torchvision's first 8 detections reproduced by
/// one of ours (same label, box IoU >= 0.98, the same pasted pixel box from `expand_boxes`)
/// has a 0.5-thresholded mask of IoU >= 0.95 with `output.masks`; at least 4 of 8 must be
/// reproduced (from the reference features where the reference objectness saturates, as
/// [`check_end_to_end`]). The others are reported, not compared: a box off by a pixel (v1's saturated
/// objectness ties, see [`saturated_objectness`]) pools other features, and a pasted box one
/// pixel wider resamples the whole 28x28 map, which the fixture's random weights make change by
/// up to 0.3 between neighbouring samples. The stage checks above pin the mask head and the
/// paste exactly.
pub fn check_masks_end_to_end(name: &'static str) -> TestResult {
    let case = Case::open(name)?;
    let graph = case.graph(&case.config)?;
    let targets = ["output".to_string(), "masks".to_string()];
    let started = Instant::now();
    let got = evaluate(&graph, vec![("image".into(), case.image()?)], &targets)?;
    println!(
        "{name} (image -> output and masks; {:.2} s):",
        started.elapsed().as_secs_f64()
    );
    let saturated = saturated_objectness(&case)?;
    if saturated <= 1 {
        return compare_masks(&case, &got);
    }
    // As `check_end_to_end`: detections descending from tied logits follow torchvision's tie
    // order, so the image's masks are reported and the reference features' compared.
    println!("  ({saturated} reference objectness logits have sigmoid 1.0: reported only)");
    if let Err(e) = compare_masks(&case, &got) {
        println!("  {e}");
    }
    let feeds = case
        .feature_names()
        .into_iter()
        .map(|f| Ok((f.clone(), case.t(&f)?)))
        .collect::<Result<_, Box<dyn Error>>>()?;
    let got = evaluate(&graph, feeds, &targets)?;
    println!("{name} (reference features -> output and masks):");
    compare_masks(&case, &got)
}

/// The comparison of [`check_masks_end_to_end`] on computed `output` and `masks`.
fn compare_masks(
    case: &Case,
    got: &std::collections::HashMap<String, wgcnn_graph::Tensor>,
) -> TestResult {
    let ours = &got["output"];
    let want = case.t("output.masks")?;
    let reference = reference_dets(case, "output")?;
    let plane = IMAGE[0] * IMAGE[1];
    let paste_box = |b: &[f32]| wgcnn_graph::interp::PasteBox::new(b, 28, 1);
    let (mut compared, mut worst) = (0, 1f64);
    for (i, r) in reference.iter().take(8).enumerate() {
        let best = ours
            .data
            .chunks_exact(6)
            .enumerate()
            .filter(|(_, d)| d[4] != wgcnn_graph::INVALID_SCORE && d[5] == r.label)
            .map(|(j, d)| (j, iou(&[d[0], d[1], d[2], d[3]], &r.b)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((j, box_iou)) = best else {
            println!("  reference #{i} (label {}): no box of its label", r.label);
            continue;
        };
        let m = mask_iou(
            &got["masks"].data[j * plane..(j + 1) * plane],
            &want.data[i * plane..(i + 1) * plane],
            0.0,
        );
        let (a, b) = (paste_box(&ours.data[j * 6..j * 6 + 4]), paste_box(&r.b));
        if a != b || box_iou < 0.98 {
            println!(
                "  reference #{i} (label {}): ours #{j}, box IoU {box_iou:.4}, pasted into {a:?} vs {b:?}: mask IoU {m:.4} (not reproduced, not compared)",
                r.label
            );
            continue;
        }
        println!(
            "  reference #{i} (label {}): ours #{j}, box IoU {box_iou:.4}, mask IoU {m:.4}",
            r.label
        );
        compared += 1;
        worst = worst.min(m);
    }
    if compared < 4 || worst < 0.95 {
        let name = case.name;
        return Err(format!("{name}: {compared} of 8 compared, lowest mask IoU {worst}").into());
    }
    Ok(())
}

/// The mask-branch tests of the Mask R-CNN models (beside [`detector_tests`]).
#[macro_export]
macro_rules! mask_tests {
    ($($module:ident => $name:literal),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn mask_roi_pool_head_and_predictor_match_torchvision() -> TestResult {
                check_mask_branch($name)
            }

            #[test]
            fn paste_masks_in_image_matches_torchvision() -> TestResult {
                check_paste_masks($name)
            }

        }
    )*};
}

/// The image-to-masks tests of the Mask R-CNN models.
#[macro_export]
macro_rules! mask_end_to_end_tests {
    ($($module:ident => $name:literal),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn image_to_masks_matches_torchvision() -> TestResult {
                check_masks_end_to_end($name)
            }
        }
    )*};
}
