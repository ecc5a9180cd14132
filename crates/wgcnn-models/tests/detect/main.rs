//! The Faster R-CNN graphs against torchvision's stage tensors (`fixtures/detect/*.safetensors`,
//! built with `min_size=160, max_size=320` on a 120x160 image), on the CPU interpreter.
//!
//! Each model is checked stage by stage: the transform, backbone + FPN and RPN head from the
//! image; the anchors exactly; the proposals from the reference head outputs and from the image;
//! RoIAlign, box head and predictor fed the reference proposals and features; postprocessing fed
//! the reference logits; and the whole graph from the image to the output. Boxes are compared
//! as sets matched by IoU (near-tied scores may reorder NMS survivors).

use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::time::Instant;

use wgcnn_graph::{Graph, Tensor, TensorId, WeightSource, interp};
use wgcnn_models::detect::{
    DetectBuildOptions, DetectorConfig, LegacyDetectionKeys, find_detector,
};

mod support;

use support::*;

/// The BatchNorm epsilon of `backbone.body` in the graph is the one the fixture's builder
/// line records (`backbone.body BatchNorm eps=0.0`).
fn check_body_eps(case: &Case, graph: &Graph) -> TestResult {
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

/// Transform, features and RPN head outputs from the image within 1e-3; anchors exactly;
/// proposals from the image (unless the reference objectness saturates, see
/// [`saturated_objectness`]).
fn check_image_to_proposals(name: &'static str) -> TestResult {
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
        "  rpn.anchors: {:?}, max |diff| {}",
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
            "  ({saturated} reference objectness logits have sigmoid 1.0: proposals compared from the reference features instead)"
        );
        match_sets(
            "rpn.proposals (not checked)",
            &proposals,
            &reference_proposals(&case)?,
            &Agreement::FROM_IMAGE,
        );
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
fn check_proposals_from_reference(name: &'static str) -> TestResult {
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
fn check_box_branch(name: &'static str) -> TestResult {
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
fn check_postprocess(name: &'static str) -> TestResult {
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

/// The whole graph from the image to `output` (`interp::run`): well-formed, and matching the
/// reference as sets. When the reference objectness saturates (see [`saturated_objectness`])
/// the image's detections are only checked for form, and the graph from the reference
/// features to `output` is compared instead.
fn check_end_to_end(name: &'static str) -> TestResult {
    let started = Instant::now();
    let case = Case::open(name)?;
    let graph = case.graph(&case.config)?;
    let built = started.elapsed().as_secs_f64();
    let outputs = interp::run(&graph, &[case.image()?])?;
    let [output] = outputs.as_slice() else {
        return Err(format!("{name}: {} graph outputs", outputs.len()).into());
    };
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
        "  ({saturated} reference objectness logits have sigmoid 1.0: output compared from the reference features instead)"
    );
    match_sets(
        "output (form checked only)",
        &dets,
        &want,
        &Agreement::FROM_IMAGE,
    );
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

detector_tests! {
    fasterrcnn_resnet50_fpn => "fasterrcnn_resnet50_fpn",
    fasterrcnn_resnet50_fpn_v2 => "fasterrcnn_resnet50_fpn_v2",
    fasterrcnn_mobilenet_v3_large_fpn => "fasterrcnn_mobilenet_v3_large_fpn",
    fasterrcnn_mobilenet_v3_large_320_fpn => "fasterrcnn_mobilenet_v3_large_320_fpn",
}

/// torchvision's `num_params` of each detector (its weights' documentation). The COCO models
/// with `FrozenBatchNorm2d` in the body (v1, MobileNet) hold those affine tensors as buffers,
/// so they do not count there; running statistics never do.
#[test]
fn registry_detectors_build_with_torchvision_parameter_counts_and_unique_names() -> TestResult {
    let expected = [
        ("fasterrcnn_resnet50_fpn", 41_755_286, true),
        ("fasterrcnn_resnet50_fpn_v2", 43_712_278, false),
        ("fasterrcnn_mobilenet_v3_large_fpn", 19_386_354, true),
        ("fasterrcnn_mobilenet_v3_large_320_fpn", 19_386_354, true),
    ];
    let names: Vec<&str> = wgcnn_models::detect::detectors()
        .iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, expected.map(|e| e.0), "registered detectors");
    for (name, params, frozen_body) in expected {
        let info = find_detector(name)?;
        let graph = info.graph(&DetectBuildOptions {
            batch: 2,
            height: 480,
            width: 640,
        })?;
        let mut buffers: HashSet<TensorId> = HashSet::new();
        for node in &graph.nodes {
            if matches!(node.op, wgcnn_graph::Op::BatchNorm { .. }) {
                buffers.extend(&node.inputs[3..5]);
                if frozen_body && node.name.starts_with("backbone.body.") {
                    buffers.extend(&node.inputs[1..3]);
                }
            }
        }
        let count: usize = graph
            .params()
            .filter(|id| !buffers.contains(id))
            .map(|id| graph.tensor(id).numel())
            .sum();
        let mut seen = HashSet::new();
        let duplicate = graph.nodes.iter().find(|n| !seen.insert(n.name.as_str()));
        let output = graph.shape(graph.outputs[0]).to_vec();
        println!(
            "{name}: {count} parameters ({} nodes, {:.1} GMACs at 480x640 x2), output {output:?}",
            graph.nodes.len(),
            graph.macs() as f64 / 1e9
        );
        assert_eq!(count, params, "{name}: parameter count");
        assert!(
            duplicate.is_none(),
            "{name}: node name {:?} used twice",
            duplicate.map(|n| &n.name)
        );
        assert_eq!(
            output,
            [2, info.config.box_detections_per_img, 6],
            "{name}: output shape"
        );
    }
    Ok(())
}

/// A checkpoint in torchvision's old layout (`backbone.fpn.inner_blocks.0.weight`,
/// `rpn.head.conv.weight`) binds through `LegacyDetectionKeys` to the same values.
#[test]
fn legacy_fpn_and_rpn_head_keys_bind_under_their_current_names() -> TestResult {
    /// A source's keys shown in the old layout: old name -> current name.
    struct OldLayout<'a> {
        source: &'a dyn WeightSource,
        names: HashMap<String, String>,
    }
    impl<'a> OldLayout<'a> {
        fn new(source: &'a dyn WeightSource) -> Self {
            let names = source
                .keys()
                .into_iter()
                .map(|key| {
                    let parts: Vec<&str> = key.split('.').collect();
                    let n = parts.len();
                    let fpn = key.starts_with("backbone.fpn.") && n == 6 && parts[4] == "0";
                    let rpn = key.starts_with("rpn.head.conv.0.0.");
                    let old = if fpn {
                        format!("{}.{}", parts[..4].join("."), parts[5])
                    } else if rpn {
                        format!("rpn.head.conv.{}", parts[5])
                    } else {
                        key.clone()
                    };
                    (old, key)
                })
                .collect();
            OldLayout { source, names }
        }
    }
    impl WeightSource for OldLayout<'_> {
        fn keys(&self) -> Vec<String> {
            self.names.keys().cloned().collect()
        }
        fn shape(&self, key: &str) -> Option<wgcnn_graph::Shape> {
            self.source.shape(self.names.get(key)?)
        }
        fn load(&self, key: &str) -> Result<Vec<f32>, String> {
            let current = self.names.get(key).ok_or_else(|| format!("no key {key}"))?;
            self.source.load(current)
        }
    }
    let case = Case::open("fasterrcnn_mobilenet_v3_large_320_fpn")?;
    let options = DetectBuildOptions {
        batch: 1,
        height: IMAGE[0],
        width: IMAGE[1],
    };
    let graph = find_detector(case.name)?.graph_with(&options, &case.config)?;
    let current = case.fx.weights_for(&graph);
    let old = OldLayout::new(&current);
    let old_keys = old.keys();
    for key in [
        "backbone.fpn.inner_blocks.1.weight",
        "backbone.fpn.layer_blocks.0.bias",
        "rpn.head.conv.weight",
    ] {
        assert!(
            old_keys.iter().any(|k| k == key),
            "the old layout shows {key}"
        );
    }
    assert!(
        graph.clone().bind(&old).is_err(),
        "old keys do not bind as they are"
    );
    let upgraded = LegacyDetectionKeys::new(&old);
    let renamed: Vec<(&str, &str)> = upgraded.renamed().collect();
    println!("renamed {} keys, e.g. {:?}", renamed.len(), renamed.first());
    assert_eq!(
        renamed.len(),
        2 * 2 * 2 + 2,
        "inner/layer blocks x 2 levels x weight/bias + rpn conv"
    );
    let (mut a, mut b) = (graph.clone(), graph);
    a.bind(&upgraded)?;
    b.bind(&current)?;
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!(x.data, y.data, "{}", x.name);
    }
    Ok(())
}

/// Two images in a batch give two copies of the single image's detections.
#[test]
fn batch_of_two_images_gives_each_image_its_detections() -> TestResult {
    let case = Case::open("fasterrcnn_mobilenet_v3_large_320_fpn")?;
    let options = DetectBuildOptions {
        batch: 2,
        height: IMAGE[0],
        width: IMAGE[1],
    };
    let mut graph = find_detector(case.name)?.graph_with(&options, &case.config)?;
    graph.bind(&case.fx.weights_for(&graph))?;
    let image = case.image()?;
    let mut data = image.data.clone();
    data.extend_from_slice(&image.data);
    let outputs = interp::run(&graph, &[Tensor::new(&[2, 3, IMAGE[0], IMAGE[1]], data)?])?;
    let output = &outputs[0];
    let half = output.numel() / 2;
    let want = reference_dets(&case, "output")?;
    for i in 0..2 {
        let one = Tensor::new(
            &[1, half / 6, 6],
            output.data[i * half..(i + 1) * half].to_vec(),
        )?;
        check_matched(
            &format!("output[{i}]"),
            &valid_rows(&one),
            &want,
            Agreement::FROM_IMAGE,
        )?;
    }
    assert_eq!(
        output.data[..half],
        output.data[half..],
        "both images give the same rows"
    );
    Ok(())
}
