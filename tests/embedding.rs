//! The library as an application embeds it: a device the application made, typed errors on
//! bad inputs, no stale state between runs, partial batches, weights shared between plans.

mod common;

use std::path::PathBuf;

use wgcnn::wgcnn_exec::ExecError;
use wgcnn::wgcnn_graph::{Tensor, interp};
use wgcnn::wgcnn_io::{Fixture, fixtures_dir};
use wgcnn::wgcnn_models;
use wgcnn::{Classifier, ClassifierOptions, Detector, DetectorOptions, Engine, EngineOptions};

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets")
        .join(name)
}

/// Deterministic pseudo-random values in [-1, 1).
fn noise(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn engine_on_an_application_device_classifies_like_its_own() {
    // A device the application opened itself, as a renderer or bevy would, handed to the engine.
    let (device, queue) = common::application_device("application", wgpu::Features::SUBGROUP);
    let shared = Engine::from_wgpu(device, queue, &EngineOptions::default()).expect("engine");
    let own = common::engine();
    let options = ClassifierOptions::default();
    let a = Classifier::new(&shared, &options).expect("classifier on the application device");
    let b = Classifier::new(own, &options).expect("classifier on the engine's device");
    let chelsea = asset("chelsea.png");
    let got = a.classify_file(&chelsea, 5).expect("classify");
    let want = b.classify_file(&chelsea, 5).expect("classify");
    println!("application device: {got:?}");
    assert_eq!(
        got.iter().map(|p| p.index).collect::<Vec<_>>(),
        want.iter().map(|p| p.index).collect::<Vec<_>>()
    );
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g.probability - w.probability).abs() < 1e-5,
            "{g:?} vs {w:?}"
        );
    }
    // The application keeps using its device for its own work.
    let buffer = shared.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("application buffer"),
        size: 16,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    shared.queue().write_buffer(&buffer, 0, &[0u8; 16]);
}

/// LeNet-5 with the fixture's weights, planned on the shared engine.
fn lenet() -> (wgcnn::Graph, wgcnn::Plan) {
    let (_, graph) = common::lenet5(2);
    let plan = common::engine().plan(&graph).expect("plan");
    (graph, plan)
}

#[test]
fn a_second_run_on_other_inputs_keeps_nothing_of_the_first() {
    let (graph, plan) = lenet();
    let a = Tensor {
        shape: vec![2, 1, 32, 32],
        data: noise(2 * 32 * 32, 1),
    };
    let b = Tensor {
        shape: vec![2, 1, 32, 32],
        data: noise(2 * 32 * 32, 2),
    };
    let first = plan.run(std::slice::from_ref(&a)).expect("run A").remove(0);
    let second = plan.run(std::slice::from_ref(&b)).expect("run B").remove(0);
    let want_a = interp::run(&graph, std::slice::from_ref(&a))
        .expect("cpu")
        .remove(0);
    let want_b = interp::run(&graph, std::slice::from_ref(&b))
        .expect("cpu")
        .remove(0);
    println!(
        "A: {:.2e}, B after A: {:.2e}",
        first.rel_error(&want_a),
        second.rel_error(&want_b)
    );
    assert!(first.rel_error(&want_a) < 1e-4);
    assert!(second.rel_error(&want_b) < 1e-4);
    assert!(
        second.max_abs_diff(&first) > 1e-3,
        "B's output must differ from A's"
    );
}

#[test]
fn run_refuses_a_tensor_whose_data_does_not_fill_its_shape() {
    let (_, plan) = lenet();
    for len in [0, 2 * 32 * 32 - 1, 2 * 32 * 32 + 4] {
        let bad = Tensor {
            shape: vec![2, 1, 32, 32],
            data: vec![0.5; len],
        };
        match plan.run(&[bad]) {
            Err(ExecError::InputData { expected, got, .. }) => {
                assert_eq!((expected, got), (2 * 32 * 32, len));
            }
            other => panic!("{len} values: expected InputData, got {other:?}"),
        }
    }
    let wrong_shape = Tensor {
        shape: vec![1, 1, 32, 32],
        data: vec![0.0; 32 * 32],
    };
    let err = plan.run(&[wrong_shape]).expect_err("wrong shape");
    println!("{err}");
    assert!(matches!(err, ExecError::InputShape { .. }));
}

#[test]
fn a_partial_batch_computes_only_its_images_with_the_same_results() {
    let engine = common::engine();
    let classifier = Classifier::new(
        engine,
        &ClassifierOptions {
            batch: 4,
            ..Default::default()
        },
    )
    .expect("classifier");
    let weights = classifier.weight_bytes();
    let images: Vec<_> = ["chelsea.png", "coffee.png", "chelsea.png"]
        .iter()
        .map(|n| wgcnn::RgbImage::open(asset(n)).expect("png"))
        .collect();
    let (three, _) = classifier
        .classify_batch(&images, 3)
        .expect("partial batch");
    assert_eq!(classifier.planned_batches(), vec![4, 3]);
    assert_eq!(
        classifier.weight_bytes(),
        weights,
        "the batch-3 plan binds the batch-4 plan's weight buffers"
    );
    let (one, _) = classifier
        .classify_batch(&images[1..2], 3)
        .expect("one image");
    assert_eq!(classifier.planned_batches(), vec![4, 3, 1]);
    for (got, want) in three[1].iter().zip(&one[0]) {
        assert_eq!(got.index, want.index);
        assert!((got.probability - want.probability).abs() < 1e-5);
    }
    assert_eq!(three[0][0].index, three[2][0].index);
    let err = classifier.classify_batch(&[], 1).expect_err("empty batch");
    assert!(
        matches!(err, wgcnn::Error::BatchSize { max: 4, got: 0 }),
        "{err}"
    );
}

#[test]
fn detector_plans_for_several_image_sizes_share_one_copy_of_the_weights() {
    const MODEL: &str = "fasterrcnn_mobilenet_v3_large_320_fpn";
    let path = common::detector_weights_file(MODEL, "embedding");
    let detector = Detector::new(
        common::engine(),
        &DetectorOptions {
            model: MODEL.into(),
            weights: path.clone(),
            score_threshold: 0.0,
            config: None,
            labels: None,
        },
    );
    let _ = std::fs::remove_file(&path);
    let detector = detector.expect("detector");
    let sizes = [
        (160, 120),
        (120, 160),
        (200, 150),
        (96, 96),
        (160, 120),
        (64, 80),
        (100, 60),
    ];
    let mut first_weights = 0;
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let image = wgcnn::RgbImage {
            width: w,
            height: h,
            pixels: (0..w * h * 3).map(|v| (v * 37 % 251) as u8).collect(),
        };
        let (_, timings) = detector.detect_timed(&image).expect("detect");
        println!(
            "{w}x{h}: {timings:?}, weights {} bytes",
            detector.weight_bytes()
        );
        if i == 0 {
            first_weights = detector.weight_bytes();
            assert!(first_weights > 0);
        }
        // Each size adds only its own constants (its anchors, ~75 KB), never the weights again.
        assert!(
            detector.weight_bytes() < first_weights + first_weights / 100,
            "plan {i} ({w}x{h}) uploaded its own weights: {} bytes after {first_weights}",
            detector.weight_bytes()
        );
    }
    // Network plans are keyed on the size after torchvision's resize (min_size 320 here):
    // 160x120 and 200x150 both resize to 426x320 and share one plan; at most 4 are kept, the
    // least recently used (320x426, from 120x160) evicted by the fifth size (533x320).
    assert_eq!(
        detector.planned_sizes(),
        vec![(319, 319), (426, 320), (320, 400), (533, 320)]
    );
}

#[test]
fn run_into_reuses_the_output_tensors_and_matches_run() {
    let (_, plan) = lenet();
    let x = Tensor {
        shape: vec![2, 1, 32, 32],
        data: noise(2 * 32 * 32, 3),
    };
    let want = plan.run(std::slice::from_ref(&x)).expect("run");
    let mut outputs = Vec::new();
    plan.run_into(std::slice::from_ref(&x), &mut outputs)
        .expect("run_into");
    assert_eq!(outputs, want);
    let data_ptr = outputs[0].data.as_ptr();
    let y = Tensor {
        shape: vec![2, 1, 32, 32],
        data: noise(2 * 32 * 32, 4),
    };
    plan.run_into(std::slice::from_ref(&y), &mut outputs)
        .expect("second run_into");
    assert_eq!(
        outputs[0].data.as_ptr(),
        data_ptr,
        "the output's allocation is reused"
    );
    assert_eq!(outputs, plan.run(std::slice::from_ref(&y)).expect("run"));
}

#[test]
fn run_async_completes_on_any_executor() {
    let (_, plan) = lenet();
    let plan = std::sync::Arc::new(plan);
    let x = Tensor {
        shape: vec![2, 1, 32, 32],
        data: noise(2 * 32 * 32, 5),
    };
    let want = plan.run(std::slice::from_ref(&x)).expect("run");
    let futures: Vec<_> = (0..3).map(|_| plan.run_async(vec![x.clone()])).collect();
    for f in futures {
        assert_eq!(pollster::block_on(f).expect("async run"), want);
    }
}

#[test]
fn plans_chain_on_the_gpu_through_their_buffers() {
    // LeNet's logits fed to a softmax plan without leaving the GPU, one submission.
    let (_, lenet) = lenet();
    let mut g = wgcnn::wgcnn_graph::GraphBuilder::new();
    let logits = g.input("logits", &[2, 10]);
    let probs = g
        .node(
            "softmax",
            wgcnn::wgcnn_graph::Op::Softmax { axis: 1 },
            &[logits],
        )
        .expect("softmax node");
    g.output(probs);
    let softmax = common::engine().plan(&g.finish()).expect("softmax plan");
    let x = Tensor {
        shape: vec![2, 1, 32, 32],
        data: noise(2 * 32 * 32, 6),
    };
    let logits_cpu = lenet.run(std::slice::from_ref(&x)).expect("run").remove(0);
    let want = softmax
        .run(std::slice::from_ref(&logits_cpu))
        .expect("softmax")
        .remove(0);

    let ctx = common::engine().context();
    let input = lenet.input_buffer(0).expect("input");
    ctx.queue
        .write_buffer(input, 0, bytemuck::cast_slice(&x.data));
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    lenet.encode(&mut encoder);
    let (from, to) = (
        lenet.output_buffer(0).expect("out"),
        softmax.input_buffer(0).expect("in"),
    );
    encoder.copy_buffer_to_buffer(from, 0, to, 0, 2 * 10 * 4);
    softmax.encode(&mut encoder);
    ctx.queue.submit([encoder.finish()]);
    let got = ctx
        .read(softmax.output_buffer(0).expect("out"), 20)
        .expect("read");
    let got = Tensor {
        shape: vec![2, 10],
        data: got,
    };
    println!("chained on the GPU: {:.2e}", got.rel_error(&want));
    assert!(got.rel_error(&want) < 1e-6);
}

#[test]
fn detector_pastes_maskrcnn_masks_at_the_photo_size_as_torchvision_does() {
    const MODEL: &str = "maskrcnn_resnet50_fpn_v2";
    let path = common::detector_weights_file(MODEL, "embedding-masks");
    let fx =
        Fixture::open(fixtures_dir().join(format!("detect/{MODEL}.safetensors"))).expect("fixture");
    let info = wgcnn_models::detect::find_detector(MODEL).expect("registered");
    let detector = Detector::new(
        common::engine(),
        &DetectorOptions {
            model: MODEL.into(),
            weights: path.clone(),
            score_threshold: 0.0,
            config: Some(info.config.with_sizes(160, 320)),
            labels: None,
        },
    );
    let _ = std::fs::remove_file(&path);
    let detector = detector.expect("detector");
    let mut image = fx.tensor("image").expect("image");
    image.shape.insert(0, 1);
    let dets = detector.detect_tensor(&image).expect("detect");
    let want = fx.tensor("output.masks").expect("masks");
    let boxes = fx.tensor("output.boxes").expect("boxes");
    let (n, h, w) = (want.shape[0], want.shape[2], want.shape[3]);
    assert!(
        dets.iter().all(|d| d.mask.is_some()),
        "every detection of a mask model has a mask"
    );
    let mut worst = 1f32;
    for (i, d) in dets.iter().take(n).enumerate() {
        let mask = d.mask.as_ref().expect("mask");
        assert_eq!(mask.size(), (w, h), "masks are at the photo's size");
        let ours = mask.pixels().expect("valid RLE");
        assert_eq!(
            mask.area,
            ours.iter().filter(|&&v| v).count() as u64,
            "area is the set pixels"
        );
        let theirs = &want.data[i * h * w..(i + 1) * h * w];
        let (mut inter, mut union) = (0usize, 0usize);
        for (&a, &p) in ours.iter().zip(theirs) {
            inter += usize::from(a && p > 0.5);
            union += usize::from(a || p > 0.5);
        }
        let iou = if union == 0 {
            1.0
        } else {
            inter as f32 / union as f32
        };
        println!(
            "#{i}: box {:?} vs {:?}, area {}, mask IoU {iou:.4}",
            d.bbox,
            &boxes.data[i * 4..i * 4 + 4],
            mask.area
        );
        worst = worst.min(iou);
    }
    assert!(worst >= 0.95, "a mask has IoU {worst} with torchvision's");
}

#[test]
fn detector_decodes_keypointrcnn_keypoints_in_the_photo_frame_as_torchvision_does() {
    const MODEL: &str = "keypointrcnn_resnet50_fpn";
    let path = common::detector_weights_file(MODEL, "embedding-keypoints");
    let fx =
        Fixture::open(fixtures_dir().join(format!("detect/{MODEL}.safetensors"))).expect("fixture");
    let info = wgcnn_models::detect::find_detector(MODEL).expect("registered");
    let detector = Detector::new(
        common::engine(),
        &DetectorOptions {
            model: MODEL.into(),
            weights: path.clone(),
            score_threshold: 0.0,
            config: Some(info.config.with_sizes(160, 320)),
            labels: None,
        },
    );
    let _ = std::fs::remove_file(&path);
    let detector = detector.expect("detector");
    let mut image = fx.tensor("image").expect("image");
    image.shape.insert(0, 1);
    let dets = detector.detect_tensor(&image).expect("detect");
    let names: Vec<&str> = wgcnn::COCO_PERSON_KEYPOINTS.lines().collect();
    assert_eq!(names.len(), 17, "COCO's person keypoints");
    assert_eq!((names[0], names[16]), ("nose", "right_ankle"));
    let (boxes, labels) = (
        fx.tensor("output.boxes").expect("boxes"),
        fx.tensor("output.labels").expect("labels"),
    );
    let (xy, scores) = (
        fx.tensor("output.keypoints").expect("keypoints"),
        fx.tensor("output.keypoints_scores").expect("scores"),
    );
    assert!(!dets.is_empty(), "the fixture's image has detections");
    let max_score = scores.data.iter().fold(1f32, |m, v| m.max(v.abs()));
    // The fixture's v1 objectness saturates (tied logits; see the detect tests), so only the
    // detections whose box torchvision also found are compared, keypoint by keypoint (the
    // stage tests pin the head and the decode exactly).
    let (mut compared, mut moved, mut worst) = (0, 0, 0f32);
    for d in &dets {
        assert_eq!(d.label, "person", "Keypoint R-CNN's one class");
        let k = d.keypoints.as_ref().expect("every detection has keypoints");
        assert_eq!(k.len(), 17);
        let best = (0..labels.numel())
            .map(|i| (i, box_iou(&d.bbox, &boxes.data[i * 4..i * 4 + 4])))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((i, iou)) = best.filter(|(_, v)| *v >= 0.99) else {
            continue;
        };
        compared += 1;
        for (j, p) in k.iter().enumerate() {
            let w = &xy.data[(i * 17 + j) * 3..][..2];
            let off = (p[0] - w[0]).abs().max((p[1] - w[1]).abs());
            worst = worst.max(off);
            let ds = (p[2] - scores.data[i * 17 + j]).abs();
            // A box off by a fraction of a pixel pools other features; its heatmap's maximum
            // may then move to a near-equal peak, which scores alike.
            if off > 1.0 {
                moved += 1;
                assert!(
                    ds <= 1e-2 * max_score,
                    "#{i} (box IoU {iou:.4}) keypoint {}: {p:?} vs {w:?} score {}",
                    names[j],
                    scores.data[i * 17 + j]
                );
            }
        }
    }
    println!(
        "{} detections, {compared} with torchvision's box (IoU >= 0.99): keypoints within {worst:.3} px but {moved} moved to a near-tied peak",
        dets.len()
    );
    assert!(compared >= 4, "only {compared} detections compared");
    assert!(moved * 20 <= compared * 17, "{moved} keypoints moved");
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes.
fn box_iou(a: &[f32], b: &[f32]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}
