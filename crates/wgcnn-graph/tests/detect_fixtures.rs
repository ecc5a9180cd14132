//! The detection ops against torchvision's stage tensors (`fixtures/detect/*.safetensors`):
//! each stage is fed the previous stage's reference tensors and compared with the next one.
//! Boxes are compared as sets matched by IoU (near-tied scores may reorder NMS survivors).

use std::error::Error;

use wgcnn_graph::interp::eval_op;
use wgcnn_graph::{BoxPostprocess, INVALID_SCORE, Op, ResizeMode, Tensor};

// Shared with wgcnn-exec's detect_stages, which reads parts this file does not.
#[allow(dead_code)]
#[path = "support/detect_fixture.rs"]
mod detect_fixture;

use detect_fixture::{
    MODELS, Model, bbox_clip, boxes_only, match_sets, roi_align_op, tail_only, used_rows,
    with_score,
};

type TestResult = Result<(), Box<dyn Error>>;

fn reshape(x: &Tensor, shape: &[usize]) -> Result<Tensor, Box<dyn Error>> {
    Ok(eval_op(
        &Op::Reshape {
            shape: shape.to_vec(),
        },
        &[x],
    )?)
}

fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor, Box<dyn Error>> {
    Ok(eval_op(
        &Op::Permute {
            perm: perm.to_vec(),
        },
        &[x],
    )?)
}

#[test]
fn proposals_match_torchvision_rpn_filter_proposals() -> TestResult {
    let mut failures = Vec::new();
    for name in MODELS {
        let m = Model::open(name)?;
        let (mut objs, mut dels, mut level_sizes) = (Vec::new(), Vec::new(), Vec::new());
        for (ob, de) in m.rpn_levels()? {
            let [n, a, h, w] = <[usize; 4]>::try_from(ob.shape.as_slice())?;
            // permute_and_flatten: [N, A, C, H, W] -> [N, H, W, A, C] -> [N, H*W*A, C].
            objs.push(reshape(&permute(&ob, &[0, 2, 3, 1])?, &[n, h * w * a])?);
            let de = permute(&reshape(&de, &[n, a, 4, h, w])?, &[0, 3, 4, 1, 2])?;
            dels.push(reshape(&de, &[n, h * w * a, 4])?);
            level_sizes.push(h * w * a);
        }
        let obj = eval_op(&Op::Concat { axis: 1 }, &objs.iter().collect::<Vec<_>>())?;
        let del = eval_op(&Op::Concat { axis: 1 }, &dels.iter().collect::<Vec<_>>())?;
        let anchors = m.t("rpn.anchors")?;
        let op = Op::Proposals(m.proposals_op(level_sizes)?);
        let start = std::time::Instant::now();
        let out = eval_op(&op, &[&obj, &del, &anchors])?;
        let elapsed = start.elapsed();
        let got = boxes_only(used_rows(&out)?);
        let want = m.proposal_rows()?;
        let mm = match_sets(&got, &want);
        println!(
            "{name}: proposals {} (want {}), exact in place {}, unmatched want {:?} got {:?}, max box diff {:.2e} ({elapsed:.1?})",
            got.len(),
            want.len(),
            mm.exact_in_place,
            mm.unmatched_want,
            mm.unmatched_got,
            mm.max_box_diff
        );
        let ok = got.len().abs_diff(want.len()) <= 2
            && tail_only(&mm.unmatched_want, &want, 3)
            && tail_only(&mm.unmatched_got, &got, 3)
            && mm.max_box_diff <= 1e-3;
        if !ok {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "proposals differ for {failures:?}");
    Ok(())
}

#[test]
fn roi_align_matches_torchvision_multiscale_roi_align_first64() -> TestResult {
    let mut failures = Vec::new();
    for name in MODELS {
        let m = Model::open(name)?;
        let (feats, scales) = m.roi_levels()?;
        let op = Op::RoiAlign(roi_align_op([7, 7], scales.clone()));
        let boxes = m.proposals_input()?;
        let mut inputs = vec![&boxes];
        inputs.extend(feats.iter());
        let start = std::time::Instant::now();
        let out = eval_op(&op, &inputs)?;
        let elapsed = start.elapsed();
        let want = m.t("roi_heads.box_roi_pool.first64")?;
        let per = want.numel() / want.shape[0];
        let got = Tensor::new(&want.shape, out.data[..want.numel()].to_vec())?;
        let err = got.rel_error(&want);
        println!(
            "{name}: roi_align first {} of {} rois, scales {scales:?}, rel error {err:.3e} ({elapsed:.1?})",
            want.shape[0],
            out.numel() / per
        );
        if err > 1e-4 {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "roi_align differs for {failures:?}");
    Ok(())
}

#[test]
fn roi_align_14x14_matches_mask_and_keypoint_roi_pools_first8() -> TestResult {
    for (name, key) in [
        ("maskrcnn_resnet50_fpn", "roi_heads.mask_roi_pool.first8"),
        (
            "keypointrcnn_resnet50_fpn",
            "roi_heads.keypoint_roi_pool.first8",
        ),
    ] {
        let m = Model::open(name)?;
        let (feats, scales) = m.roi_levels()?;
        let op = Op::RoiAlign(roi_align_op([14, 14], scales));
        let dets = m.t("detections.boxes")?;
        let first8 = Tensor::new(&[8, 4], dets.data[..32].to_vec())?;
        let boxes = with_score(&first8, 1.0)?;
        let mut inputs = vec![&boxes];
        inputs.extend(feats.iter());
        let got = eval_op(&op, &inputs)?;
        let want = m.t(key)?;
        let err = got.rel_error(&want);
        println!("{name}: {key} rel error {err:.3e}");
        assert!(err <= 1e-4, "{name}: {key} rel error {err}");
    }
    Ok(())
}

#[test]
fn box_postprocess_matches_torchvision_postprocess_detections() -> TestResult {
    let mut failures = Vec::new();
    for name in MODELS {
        let m = Model::open(name)?;
        let logits = m.t("roi_heads.class_logits")?;
        let reg = m.t("roi_heads.box_regression")?;
        let props = m.proposals_input()?;
        let op = Op::BoxPostprocess(m.box_postprocess_op()?);
        let start = std::time::Instant::now();
        let out = eval_op(&op, &[&logits, &reg, &props])?;
        let elapsed = start.elapsed();
        let got = used_rows(&out)?;
        let want = m.labelled_rows("detections")?;
        let mm = match_sets(&got, &want);
        println!(
            "{name}: detections {} (want {}), exact in place {}, unmatched want {:?} got {:?}, max box diff {:.2e}, max score diff {:.2e} ({elapsed:.1?})",
            got.len(),
            want.len(),
            mm.exact_in_place,
            mm.unmatched_want,
            mm.unmatched_got,
            mm.max_box_diff,
            mm.max_score_diff
        );
        let ok = got.len().abs_diff(want.len()) <= 2
            && tail_only(&mm.unmatched_want, &want, 3)
            && tail_only(&mm.unmatched_got, &got, 3)
            && mm.max_box_diff <= 1e-3
            && mm.max_score_diff <= 1e-4;
        if !ok {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "detections differ for {failures:?}");
    Ok(())
}

#[test]
fn box_postprocess_skips_invalid_proposal_rows() -> TestResult {
    // The 320 model's 123 proposals padded to its capacity 150 with unused rows (zero box,
    // INVALID_SCORE) whose logits would otherwise produce detections: same result.
    let m = Model::open("fasterrcnn_mobilenet_v3_large_320_fpn")?;
    let logits = m.t("roi_heads.class_logits")?;
    let reg = m.t("roi_heads.box_regression")?;
    let props = m.proposals_input()?;
    let (r, k) = (logits.shape[0], logits.shape[1]);
    let cap = 150;
    let pad = cap - r;
    let mut logits_p = logits.data.clone();
    logits_p.extend((0..pad * k).map(|i| if i % k == 1 { 20.0 } else { 0.0 }));
    let mut reg_p = reg.data.clone();
    reg_p.extend(std::iter::repeat_n(0.0, pad * k * 4));
    let mut props_p = props.data.clone();
    props_p.extend((0..pad).flat_map(|_| [0.0, 0.0, 50.0, 50.0, INVALID_SCORE]));
    let op = Op::BoxPostprocess(BoxPostprocess {
        image_size: m.image_size()?,
        weights: [10.0, 10.0, 5.0, 5.0],
        bbox_clip: bbox_clip(),
        score_thresh: 0.05,
        nms_thresh: 0.5,
        detections_per_img: 100,
        min_size: 1e-2,
    });
    let plain = eval_op(&op, &[&logits, &reg, &props])?;
    let padded = eval_op(
        &op,
        &[
            &Tensor::new(&[cap, k], logits_p)?,
            &Tensor::new(&[cap, k * 4], reg_p)?,
            &Tensor::new(&[1, cap, 5], props_p)?,
        ],
    )?;
    let diff = padded.max_abs_diff(&plain);
    println!("padded vs plain: max abs diff {diff:.3e}");
    assert_eq!(diff, 0.0);
    Ok(())
}

#[test]
fn scale_boxes_matches_torchvision_resize_boxes() -> TestResult {
    let mut worst = 0f32;
    for name in MODELS {
        let m = Model::open(name)?;
        let image = m.t("image")?;
        let [h, w] = m.image_size()?;
        let scale = [
            image.shape[1] as f32 / h as f32,
            image.shape[2] as f32 / w as f32,
        ];
        let (boxes, scores, labels) = (
            m.t("detections.boxes")?,
            m.t("detections.scores")?,
            m.t("detections.labels")?,
        );
        let d = scores.numel();
        let cap = d + 3;
        let mut rows: Vec<f32> = boxes
            .data
            .chunks_exact(4)
            .zip(&scores.data)
            .zip(&labels.data)
            .flat_map(|((b, &s), &l)| [b[0], b[1], b[2], b[3], s, l])
            .collect();
        rows.extend((0..3).flat_map(|_| [0.0, 0.0, 0.0, 0.0, INVALID_SCORE, 0.0]));
        let dets = Tensor::new(&[1, cap, 6], rows)?;
        let out = eval_op(&Op::ScaleBoxes { scale }, &[&dets])?;
        let want = m.t("output.boxes")?;
        let got: Vec<f32> = out
            .data
            .chunks_exact(6)
            .take(d)
            .flat_map(|r| [r[0], r[1], r[2], r[3]])
            .collect();
        let diff = Tensor::new(&want.shape, got)?.max_abs_diff(&want);
        let rest_ok = out.data.chunks_exact(6).enumerate().all(|(i, r)| {
            if i < d {
                r[4] == scores.data[i] && r[5] == labels.data[i]
            } else {
                r == [0.0, 0.0, 0.0, 0.0, INVALID_SCORE, 0.0]
            }
        });
        println!(
            "{name}: scale {scale:?}, max abs diff {diff:.3e}, scores/labels/unused rows kept: {rest_ok}"
        );
        assert!(rest_ok, "{name}: scores, labels or unused rows changed");
        worst = worst.max(diff);
    }
    assert!(worst <= 1e-5, "scaled boxes differ by {worst}");
    Ok(())
}

#[test]
fn resize_bilinear_matches_torchvision_transform_resize() -> TestResult {
    // GeneralizedRCNNTransform: normalize with the ImageNet statistics, then
    // F.interpolate(bilinear, align_corners=False) from 120x160 to the recorded size
    // (160x213, scale recomputed as in / out), then zero padding to 160x224.
    let m = Model::open("fasterrcnn_resnet50_fpn")?;
    let image = m.t("image")?;
    let [c, h, w] = <[usize; 3]>::try_from(image.shape.as_slice())?;
    let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
    let data: Vec<f32> = image
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| (v - mean[i / (h * w)]) / std[i / (h * w)])
        .collect();
    let x = Tensor::new(&[1, c, h, w], data)?;
    let size = m.image_size()?;
    let got = eval_op(
        &Op::Resize {
            size,
            mode: ResizeMode::Bilinear {
                align_corners: false,
            },
        },
        &[&x],
    )?;
    let padded = m.t("transform.tensors")?;
    let (ph, pw) = (padded.shape[2], padded.shape[3]);
    let mut want = Vec::with_capacity(got.numel());
    for ch in 0..c {
        for y in 0..size[0] {
            let start = (ch * ph + y) * pw;
            want.extend_from_slice(&padded.data[start..start + size[1]]);
        }
    }
    let want = Tensor::new(&got.shape, want)?;
    let err = got.max_abs_diff(&want);
    println!(
        "bilinear {h}x{w} -> {}x{}: max abs error {err:.3e} (values up to {:.2})",
        size[0],
        size[1],
        want.data.iter().fold(0f32, |a, v| a.max(v.abs()))
    );
    assert!(
        err <= 1e-5,
        "bilinear resize differs from transform.tensors by {err}"
    );
    Ok(())
}
