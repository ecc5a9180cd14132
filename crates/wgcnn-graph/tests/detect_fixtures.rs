//! The detection ops against torchvision's stage tensors (`fixtures/detect/*.safetensors`):
//! each stage is fed the previous stage's reference tensors and compared with the next one.
//! Boxes are compared as sets matched by IoU (near-tied scores may reorder NMS survivors).

use std::collections::HashMap;
use std::error::Error;

use wgcnn_graph::interp::{eval_op, infer_roi_scale};
use wgcnn_graph::{BoxPostprocess, INVALID_SCORE, Op, Proposals, ResizeMode, RoiAlign, Tensor};
use wgcnn_io::{Fixture, fixtures_dir};

type TestResult = Result<(), Box<dyn Error>>;

const MODELS: [&str; 6] = [
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "maskrcnn_resnet50_fpn",
    "keypointrcnn_resnet50_fpn",
];

/// `math.log(1000. / 16)`, torchvision's `bbox_xform_clip`.
fn bbox_clip() -> f32 {
    (1000f64 / 16.0).ln() as f32
}

struct Model {
    name: &'static str,
    fx: Fixture,
    meta: HashMap<String, String>,
}

impl Model {
    fn open(name: &'static str) -> Result<Model, Box<dyn Error>> {
        let fx = Fixture::open(
            fixtures_dir()
                .join("detect")
                .join(format!("{name}.safetensors")),
        )?;
        let meta = fx.metadata().clone();
        Ok(Model { name, fx, meta })
    }

    fn t(&self, key: &str) -> Result<Tensor, Box<dyn Error>> {
        Ok(self.fx.tensor(key)?)
    }

    fn meta<T: std::str::FromStr>(&self, key: &str) -> Result<T, Box<dyn Error>> {
        let v = self
            .meta
            .get(key)
            .ok_or_else(|| format!("{}: no metadata {key}", self.name))?;
        v.trim()
            .parse()
            .map_err(|_| format!("{}: metadata {key} = {v:?} does not parse", self.name).into())
    }

    /// `transform.image_sizes` `[[h, w]]`: the resized image size before padding.
    fn image_size(&self) -> Result<[usize; 2], Box<dyn Error>> {
        let v = self
            .meta
            .get("transform.image_sizes")
            .ok_or_else(|| format!("{}: no transform.image_sizes", self.name))?;
        let nums: Vec<usize> = v
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        match nums.as_slice() {
            [h, w] => Ok([*h, *w]),
            _ => Err(format!(
                "{}: transform.image_sizes {v:?} is not one [h, w]",
                self.name
            )
            .into()),
        }
    }

    /// torchvision's `rpn_score_thresh`: 0.05 for the MobileNetV3 builders, 0.0 otherwise (not
    /// in the metadata).
    fn rpn_score_thresh(&self) -> f32 {
        if self.name.contains("mobilenet") {
            0.05
        } else {
            0.0
        }
    }

    /// The reference proposals as an op input `[1, R, 5]` with score 1.
    fn proposals_input(&self) -> Result<Tensor, Box<dyn Error>> {
        with_score(&self.t("rpn.proposals")?, 1.0)
    }

    /// The pooled levels of `MultiScaleRoIAlign(["0", "1", "2", "3"])` present in the fixture
    /// and their inferred scales.
    fn roi_levels(&self) -> Result<(Vec<Tensor>, Vec<f32>), Box<dyn Error>> {
        let image_h = self.image_size()?[0];
        let mut feats = Vec::new();
        let mut scales = Vec::new();
        for l in 0..4 {
            let key = format!("features.{l}");
            if self.fx.contains(&key) {
                let f = self.t(&key)?;
                scales.push(infer_roi_scale(f.shape[2], image_h));
                feats.push(f);
            }
        }
        Ok((feats, scales))
    }
}

/// `[R, 4]` boxes as `[1, R, 5]` rows with the given score.
fn with_score(boxes: &Tensor, score: f32) -> Result<Tensor, Box<dyn Error>> {
    let data: Vec<f32> = boxes
        .data
        .chunks_exact(4)
        .flat_map(|b| [b[0], b[1], b[2], b[3], score])
        .collect();
    Ok(Tensor::new(&[1, boxes.data.len() / 4, 5], data)?)
}

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

fn iou(a: &[f32], b: &[f32]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// How two box sets agree.
#[derive(Debug)]
struct Matching {
    /// Rows whose box and label are equal bit for bit at the same position.
    exact_in_place: usize,
    /// Reference boxes without a produced box of IoU > 0.99 (and equal label), and vice versa.
    unmatched_want: Vec<usize>,
    unmatched_got: Vec<usize>,
    /// Largest coordinate / score difference over IoU-matched pairs.
    max_box_diff: f32,
    max_score_diff: f32,
}

/// Rows `(box, score, label)`; the label is ignored when `None`.
type Rows = Vec<([f32; 4], f32, Option<f32>)>;

fn match_sets(got: &Rows, want: &Rows) -> Matching {
    let best = |r: &([f32; 4], f32, Option<f32>), pool: &Rows| -> Option<(usize, f32)> {
        pool.iter()
            .enumerate()
            .filter(|(_, o)| o.2 == r.2)
            .map(|(i, o)| (i, iou(&r.0, &o.0)))
            .filter(|(_, v)| *v > 0.99)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    let mut m = Matching {
        exact_in_place: got
            .iter()
            .zip(want)
            .filter(|(g, w)| g.0 == w.0 && g.2 == w.2)
            .count(),
        unmatched_want: Vec::new(),
        unmatched_got: Vec::new(),
        max_box_diff: 0.0,
        max_score_diff: 0.0,
    };
    for (i, w) in want.iter().enumerate() {
        match best(w, got) {
            Some((j, _)) => {
                let g = &got[j];
                let d =
                    g.0.iter()
                        .zip(&w.0)
                        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                m.max_box_diff = m.max_box_diff.max(d);
                m.max_score_diff = m.max_score_diff.max((g.1 - w.1).abs());
            }
            None => m.unmatched_want.push(i),
        }
    }
    for (j, g) in got.iter().enumerate() {
        if best(g, want).is_none() {
            m.unmatched_got.push(j);
        }
    }
    m
}

/// The used rows of a fixed-capacity output `[1, cap, width]` (width 5 or 6).
fn used_rows(out: &Tensor) -> Rows {
    let width = out.shape[2];
    out.data
        .chunks_exact(width)
        .filter(|r| r[4] != INVALID_SCORE)
        .map(|r| ([r[0], r[1], r[2], r[3]], r[4], (width == 6).then(|| r[5])))
        .collect()
}

/// Unmatched rows are tolerated only in the tail of the ranking (near-tied scores reorder
/// which boxes make it past NMS and the top-n cut): at most `slack` of them, each below the
/// score of the reference's first 90 %.
fn tail_only(unmatched: &[usize], rows: &Rows, slack: usize) -> bool {
    let cutoff = rows.len() * 9 / 10;
    unmatched.len() <= slack && unmatched.iter().all(|&i| i >= cutoff)
}

#[test]
fn proposals_match_torchvision_rpn_filter_proposals() -> TestResult {
    let mut failures = Vec::new();
    for name in MODELS {
        let m = Model::open(name)?;
        let (mut objs, mut dels, mut level_sizes) = (Vec::new(), Vec::new(), Vec::new());
        let mut l = 0;
        while m.fx.contains(&format!("rpn.objectness.{l}")) {
            let ob = m.t(&format!("rpn.objectness.{l}"))?;
            let de = m.t(&format!("rpn.bbox_deltas.{l}"))?;
            let [n, a, h, w] = <[usize; 4]>::try_from(ob.shape.as_slice())?;
            // permute_and_flatten: [N, A, C, H, W] -> [N, H, W, A, C] -> [N, H*W*A, C].
            objs.push(reshape(&permute(&ob, &[0, 2, 3, 1])?, &[n, h * w * a])?);
            let de = permute(&reshape(&de, &[n, a, 4, h, w])?, &[0, 3, 4, 1, 2])?;
            dels.push(reshape(&de, &[n, h * w * a, 4])?);
            level_sizes.push(h * w * a);
            l += 1;
        }
        let obj = eval_op(&Op::Concat { axis: 1 }, &objs.iter().collect::<Vec<_>>())?;
        let del = eval_op(&Op::Concat { axis: 1 }, &dels.iter().collect::<Vec<_>>())?;
        let anchors = m.t("rpn.anchors")?;
        let op = Op::Proposals(Proposals {
            level_sizes,
            pre_nms_top_n: m.meta("rpn_pre_nms_top_n")?,
            post_nms_top_n: m.meta("rpn_post_nms_top_n")?,
            nms_thresh: m.meta("rpn_nms_thresh")?,
            score_thresh: m.rpn_score_thresh(),
            min_size: 1e-3,
            image_size: m.image_size()?,
            bbox_clip: bbox_clip(),
        });
        let start = std::time::Instant::now();
        let out = eval_op(&op, &[&obj, &del, &anchors])?;
        let elapsed = start.elapsed();
        let got = used_rows(&out);
        let want_boxes = m.t("rpn.proposals")?;
        // The reference carries no scores; compare boxes only (score column set equal).
        let got: Rows = got.into_iter().map(|(b, _, _)| (b, 0.0, None)).collect();
        let want: Rows = want_boxes
            .data
            .chunks_exact(4)
            .map(|b| ([b[0], b[1], b[2], b[3]], 0.0, None))
            .collect();
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
        let op = Op::RoiAlign(RoiAlign {
            output: [7, 7],
            sampling_ratio: 2,
            scales: scales.clone(),
            canonical_scale: 224.0,
            canonical_level: 4.0,
            aligned: false,
        });
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
        let op = Op::RoiAlign(RoiAlign {
            output: [14, 14],
            sampling_ratio: 2,
            scales,
            canonical_scale: 224.0,
            canonical_level: 4.0,
            aligned: false,
        });
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
        let op = Op::BoxPostprocess(BoxPostprocess {
            image_size: m.image_size()?,
            weights: [10.0, 10.0, 5.0, 5.0],
            bbox_clip: bbox_clip(),
            score_thresh: m.meta("box_score_thresh")?,
            nms_thresh: m.meta("box_nms_thresh")?,
            detections_per_img: m.meta("detections_per_img")?,
            min_size: 1e-2,
        });
        let start = std::time::Instant::now();
        let out = eval_op(&op, &[&logits, &reg, &props])?;
        let elapsed = start.elapsed();
        let got = used_rows(&out);
        let (wb, ws, wl) = (
            m.t("detections.boxes")?,
            m.t("detections.scores")?,
            m.t("detections.labels")?,
        );
        let want: Rows = wb
            .data
            .chunks_exact(4)
            .zip(&ws.data)
            .zip(&wl.data)
            .map(|((b, &s), &l)| ([b[0], b[1], b[2], b[3]], s, Some(l)))
            .collect();
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
