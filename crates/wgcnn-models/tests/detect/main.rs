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

use wgcnn_graph::{Graph, Tensor, TensorId, WeightSource, interp};
use wgcnn_models::detect::{DetectBuildOptions, LegacyDetectionKeys, find_detector};

mod checks;
mod keypoint_checks;
mod support;

use checks::*;
use keypoint_checks::*;
use support::*;

/// The CPU interpreter evaluates the stages here (`support::evaluate` routes to this).
pub fn backend_evaluate(
    graph: &Graph,
    feeds: Vec<(String, Tensor)>,
    targets: &[String],
) -> Result<HashMap<String, Tensor>, Box<dyn Error>> {
    evaluate_cpu(graph, feeds, targets)
}

detector_tests! {
    fasterrcnn_resnet50_fpn => "fasterrcnn_resnet50_fpn",
    fasterrcnn_resnet50_fpn_v2 => "fasterrcnn_resnet50_fpn_v2",
    fasterrcnn_mobilenet_v3_large_fpn => "fasterrcnn_mobilenet_v3_large_fpn",
    fasterrcnn_mobilenet_v3_large_320_fpn => "fasterrcnn_mobilenet_v3_large_320_fpn",
    maskrcnn_resnet50_fpn => "maskrcnn_resnet50_fpn",
    maskrcnn_resnet50_fpn_v2 => "maskrcnn_resnet50_fpn_v2",
    keypointrcnn_resnet50_fpn => "keypointrcnn_resnet50_fpn",
}

mod keypoints {
    use super::*;

    keypoint_tests! {
        keypointrcnn_resnet50_fpn => "keypointrcnn_resnet50_fpn",
    }

    mod end_to_end {
        use super::*;

        keypoint_end_to_end_tests! {
            keypointrcnn_resnet50_fpn => "keypointrcnn_resnet50_fpn",
        }
    }
}

mod masks {
    use super::*;

    mask_tests! {
        maskrcnn_resnet50_fpn => "maskrcnn_resnet50_fpn",
        maskrcnn_resnet50_fpn_v2 => "maskrcnn_resnet50_fpn_v2",
    }

    mod end_to_end {
        use super::*;

        mask_end_to_end_tests! {
            maskrcnn_resnet50_fpn => "maskrcnn_resnet50_fpn",
            maskrcnn_resnet50_fpn_v2 => "maskrcnn_resnet50_fpn_v2",
        }
    }
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
        ("maskrcnn_resnet50_fpn", 44_401_393, true),
        ("maskrcnn_resnet50_fpn_v2", 46_359_409, false),
        ("keypointrcnn_resnet50_fpn", 59_137_258, true),
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
