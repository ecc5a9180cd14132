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
