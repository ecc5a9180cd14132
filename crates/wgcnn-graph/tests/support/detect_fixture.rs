//! The detection fixtures (`fixtures/detect/*.safetensors`, torchvision's stage tensors) for the
//! stage tests: opening a model's fixture, the op settings torchvision uses, and comparing box
//! sets matched by IoU (near-tied scores may reorder NMS survivors).
//!
//! Shared by `wgcnn-graph/tests/detect_fixtures.rs` (CPU interpreter) and
//! `wgcnn-exec/tests/detect_stages.rs` (GPU), each with `#[path = ...] mod detect_fixture;`.

use std::collections::HashMap;
use std::error::Error;

use wgcnn_graph::interp::infer_roi_scale;
use wgcnn_graph::{BoxPostprocess, INVALID_SCORE, Proposals, RoiAlign, Tensor};
use wgcnn_io::{Fixture, fixtures_dir};

/// The detectors with a stage fixture.
pub const MODELS: [&str; 6] = [
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "maskrcnn_resnet50_fpn",
    "keypointrcnn_resnet50_fpn",
];

/// `math.log(1000. / 16)`, torchvision's `bbox_xform_clip`.
pub fn bbox_clip() -> f32 {
    (1000f64 / 16.0).ln() as f32
}

/// One model's stage fixture and its metadata.
pub struct Model {
    name: &'static str,
    fx: Fixture,
    meta: HashMap<String, String>,
}

impl Model {
    /// Opens `fixtures/detect/<name>.safetensors`.
    pub fn open(name: &'static str) -> Result<Model, Box<dyn Error>> {
        let fx = Fixture::open(
            fixtures_dir()
                .join("detect")
                .join(format!("{name}.safetensors")),
        )?;
        let meta = fx.metadata().clone();
        Ok(Model { name, fx, meta })
    }

    /// The fixture tensor `key`.
    pub fn t(&self, key: &str) -> Result<Tensor, Box<dyn Error>> {
        Ok(self.fx.tensor(key)?)
    }

    /// The metadata value `key`, parsed.
    pub fn meta<T: std::str::FromStr>(&self, key: &str) -> Result<T, Box<dyn Error>> {
        let v = self
            .meta
            .get(key)
            .ok_or_else(|| format!("{}: no metadata {key}", self.name))?;
        v.trim()
            .parse()
            .map_err(|_| format!("{}: metadata {key} = {v:?} does not parse", self.name).into())
    }

    /// `transform.image_sizes` `[[h, w]]`: the resized image size before padding.
    pub fn image_size(&self) -> Result<[usize; 2], Box<dyn Error>> {
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
    pub fn rpn_score_thresh(&self) -> f32 {
        if self.name.contains("mobilenet") {
            0.05
        } else {
            0.0
        }
    }

    /// The RPN head outputs per level: (`[N, A, H, W]` objectness, `[N, 4A, H, W]` deltas).
    pub fn rpn_levels(&self) -> Result<Vec<(Tensor, Tensor)>, Box<dyn Error>> {
        let mut levels = Vec::new();
        while self
            .fx
            .contains(&format!("rpn.objectness.{}", levels.len()))
        {
            let l = levels.len();
            levels.push((
                self.t(&format!("rpn.objectness.{l}"))?,
                self.t(&format!("rpn.bbox_deltas.{l}"))?,
            ));
        }
        Ok(levels)
    }

    /// The model's `Proposals` op (`rpn.filter_proposals`) over levels of `level_sizes` anchors.
    pub fn proposals_op(&self, level_sizes: Vec<usize>) -> Result<Proposals, Box<dyn Error>> {
        Ok(Proposals {
            level_sizes,
            pre_nms_top_n: self.meta("rpn_pre_nms_top_n")?,
            post_nms_top_n: self.meta("rpn_post_nms_top_n")?,
            nms_thresh: self.meta("rpn_nms_thresh")?,
            score_thresh: self.rpn_score_thresh(),
            min_size: 1e-3,
            image_size: self.image_size()?,
            bbox_clip: bbox_clip(),
        })
    }

    /// The model's `BoxPostprocess` op (`roi_heads.postprocess_detections`).
    pub fn box_postprocess_op(&self) -> Result<BoxPostprocess, Box<dyn Error>> {
        Ok(BoxPostprocess {
            image_size: self.image_size()?,
            weights: [10.0, 10.0, 5.0, 5.0],
            bbox_clip: bbox_clip(),
            score_thresh: self.meta("box_score_thresh")?,
            nms_thresh: self.meta("box_nms_thresh")?,
            detections_per_img: self.meta("detections_per_img")?,
            min_size: 1e-2,
        })
    }

    /// The pooled levels of `MultiScaleRoIAlign(["0", "1", "2", "3"])` present in the fixture
    /// and their inferred scales.
    pub fn roi_levels(&self) -> Result<(Vec<Tensor>, Vec<f32>), Box<dyn Error>> {
        let image_h = self.image_size()?[0];
        let (mut feats, mut scales) = (Vec::new(), Vec::new());
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

    /// The reference proposals as an op input `[1, R, 5]` with score 1.
    pub fn proposals_input(&self) -> Result<Tensor, Box<dyn Error>> {
        with_score(&self.t("rpn.proposals")?, 1.0)
    }

    /// The reference proposals as rows. The reference carries no scores: boxes only, score 0
    /// and no label (compare with [`boxes_only`] rows).
    pub fn proposal_rows(&self) -> Result<Rows, Box<dyn Error>> {
        Ok(self
            .t("rpn.proposals")?
            .data
            .chunks_exact(4)
            .map(|b| ([b[0], b[1], b[2], b[3]], 0.0, None))
            .collect())
    }

    /// The reference rows `<prefix>.boxes`, `.scores`, `.labels` (e.g. `detections`, `output`).
    pub fn labelled_rows(&self, prefix: &str) -> Result<Rows, Box<dyn Error>> {
        let (bx, sc, lb) = (
            self.t(&format!("{prefix}.boxes"))?,
            self.t(&format!("{prefix}.scores"))?,
            self.t(&format!("{prefix}.labels"))?,
        );
        Ok(bx
            .data
            .chunks_exact(4)
            .zip(&sc.data)
            .zip(&lb.data)
            .map(|((b, &s), &l)| ([b[0], b[1], b[2], b[3]], s, Some(l)))
            .collect())
    }
}

/// torchvision's `MultiScaleRoIAlign` settings with the given output size and level scales.
pub fn roi_align_op(output: [usize; 2], scales: Vec<f32>) -> RoiAlign {
    RoiAlign {
        output,
        sampling_ratio: 2,
        scales,
        canonical_scale: 224.0,
        canonical_level: 4.0,
        aligned: false,
    }
}

/// `[R, 4]` boxes as `[1, R, 5]` rows with the given score.
pub fn with_score(boxes: &Tensor, score: f32) -> Result<Tensor, Box<dyn Error>> {
    let data: Vec<f32> = boxes
        .data
        .chunks_exact(4)
        .flat_map(|b| [b[0], b[1], b[2], b[3], score])
        .collect();
    Ok(Tensor::new(&[1, boxes.data.len() / 4, 5], data)?)
}

fn iou(a: &[f32], b: &[f32]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// Rows `(box, score, label)`; the label is ignored when `None`.
pub type Rows = Vec<([f32; 4], f32, Option<f32>)>;

/// How two box sets agree.
#[derive(Debug)]
pub struct Matching {
    /// Rows whose box and label are equal bit for bit at the same position.
    pub exact_in_place: usize,
    /// Rows whose label is equal and box coordinates within 1e-3 at the same position.
    pub in_place: usize,
    /// Reference boxes without a produced box of IoU > 0.99 (and equal label), and vice versa.
    pub unmatched_want: Vec<usize>,
    pub unmatched_got: Vec<usize>,
    /// Largest coordinate / score difference over IoU-matched pairs.
    pub max_box_diff: f32,
    pub max_score_diff: f32,
}

/// Matches each reference row to the produced row of the same label with the best IoU > 0.99.
pub fn match_sets(got: &Rows, want: &Rows) -> Matching {
    let best = |r: &([f32; 4], f32, Option<f32>), pool: &Rows| -> Option<(usize, f32)> {
        pool.iter()
            .enumerate()
            .filter(|(_, o)| o.2 == r.2)
            .map(|(i, o)| (i, iou(&r.0, &o.0)))
            .filter(|(_, v)| *v > 0.99)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    let close = |g: &[f32; 4], w: &[f32; 4]| g.iter().zip(w).all(|(a, b)| (a - b).abs() <= 1e-3);
    let in_place = |same: fn(&[f32; 4], &[f32; 4]) -> bool| {
        got.iter()
            .zip(want)
            .filter(|(g, w)| same(&g.0, &w.0) && g.2 == w.2)
            .count()
    };
    let mut m = Matching {
        exact_in_place: in_place(|g, w| g == w),
        in_place: in_place(close),
        unmatched_want: Vec::new(),
        unmatched_got: Vec::new(),
        max_box_diff: 0.0,
        max_score_diff: 0.0,
    };
    for (i, w) in want.iter().enumerate() {
        match best(w, got) {
            Some((j, _)) => {
                let g = &got[j];
                m.max_box_diff =
                    g.0.iter()
                        .zip(&w.0)
                        .fold(m.max_box_diff, |d, (a, b)| d.max((a - b).abs()));
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

/// The used rows of a fixed-capacity output `[1, cap, width]` (width 5 or 6), after checking
/// that the unused ones all come last and are zero with score [`INVALID_SCORE`].
pub fn used_rows(out: &Tensor) -> Result<Rows, Box<dyn Error>> {
    let width = out.shape[2];
    let used = out
        .data
        .chunks_exact(width)
        .take_while(|r| r[4] != INVALID_SCORE)
        .count();
    for (i, r) in out.data.chunks_exact(width).enumerate().skip(used) {
        let blank = r
            .iter()
            .enumerate()
            .all(|(k, &v)| if k == 4 { v == INVALID_SCORE } else { v == 0.0 });
        if !blank {
            return Err(
                format!("row {i} after {used} used rows is not an unused row: {r:?}").into(),
            );
        }
    }
    Ok(out
        .data
        .chunks_exact(width)
        .take(used)
        .map(|r| ([r[0], r[1], r[2], r[3]], r[4], (width == 6).then(|| r[5])))
        .collect())
}

/// `rows` with score 0 and no label: boxes only, to compare with [`Model::proposal_rows`].
pub fn boxes_only(rows: Rows) -> Rows {
    rows.into_iter().map(|(b, _, _)| (b, 0.0, None)).collect()
}

/// Unmatched rows are tolerated only in the tail of the ranking (near-tied scores reorder
/// which boxes make it past NMS and the top-n cut): at most `slack` of them, each past the
/// first 90 % of `rows`.
pub fn tail_only(unmatched: &[usize], rows: &Rows, slack: usize) -> bool {
    let cutoff = rows.len() * 9 / 10;
    unmatched.len() <= slack && unmatched.iter().all(|&i| i >= cutoff)
}
