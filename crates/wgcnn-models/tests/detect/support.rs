//! Shared helpers of the detector tests: the fixture case, evaluating part of a graph fed
//! with reference tensors, and comparing box sets.

use std::collections::{HashMap, HashSet};
use std::error::Error;

use wgcnn_graph::{Graph, INVALID_SCORE, Tensor, TensorId, TensorKind, interp};
use wgcnn_io::{Fixture, fixtures_dir};
use wgcnn_models::detect::{DetectBuildOptions, DetectorConfig, find_detector};

pub type TestResult = Result<(), Box<dyn Error>>;

/// The fixtures' image and transform sizes.
pub const IMAGE: [usize; 2] = [120, 160];
pub const MIN_SIZE: usize = 160;
pub const MAX_SIZE: usize = 320;

/// A model, its fixture and the configuration the fixture was made with.
pub struct Case {
    pub name: &'static str,
    pub fx: Fixture,
    pub config: DetectorConfig,
}

impl Case {
    /// Opens the fixture and checks that the registry's defaults (with the fixture's transform
    /// sizes) are the thresholds the fixture records.
    pub fn open(name: &'static str) -> Result<Case, Box<dyn Error>> {
        let fx = Fixture::open(
            fixtures_dir()
                .join("detect")
                .join(format!("{name}.safetensors")),
        )?;
        let config = find_detector(name)?.config.with_sizes(MIN_SIZE, MAX_SIZE);
        let case = Case { name, fx, config };
        let checks: [(&str, f64); 6] = [
            ("rpn_pre_nms_top_n", config.rpn_pre_nms_top_n as f64),
            ("rpn_post_nms_top_n", config.rpn_post_nms_top_n as f64),
            ("rpn_nms_thresh", f64::from(config.rpn_nms_thresh)),
            ("box_score_thresh", f64::from(config.box_score_thresh)),
            ("box_nms_thresh", f64::from(config.box_nms_thresh)),
            ("detections_per_img", config.box_detections_per_img as f64),
        ];
        for (key, want) in checks {
            let got: f64 = case.meta(key)?.parse()?;
            if (got - want).abs() > 1e-6 {
                return Err(
                    format!("{name}: fixture {key} = {got}, registry default {want}").into(),
                );
            }
        }
        let sizes = case.meta("transform.image_sizes")?;
        if sizes.replace(' ', "") != "[[160,213]]" {
            return Err(format!("{name}: fixture image_sizes {sizes}").into());
        }
        Ok(case)
    }

    pub fn meta(&self, key: &str) -> Result<String, Box<dyn Error>> {
        self.fx
            .metadata()
            .get(key)
            .cloned()
            .ok_or_else(|| format!("{}: no metadata {key}", self.name).into())
    }

    pub fn t(&self, key: &str) -> Result<Tensor, Box<dyn Error>> {
        Ok(self.fx.tensor(key)?)
    }

    /// The graph for the fixture's image with `config`, weights bound (rule + stored statistics).
    pub fn graph(&self, config: &DetectorConfig) -> Result<Graph, Box<dyn Error>> {
        let options = DetectBuildOptions {
            batch: 1,
            height: IMAGE[0],
            width: IMAGE[1],
        };
        let mut graph = find_detector(self.name)?.graph_with(&options, config)?;
        graph.bind(&self.fx.weights_for(&graph))?;
        Ok(graph)
    }

    /// The fixture's `image` with a batch axis.
    pub fn image(&self) -> Result<Tensor, Box<dyn Error>> {
        let image = self.t("image")?;
        Ok(Tensor::new(&[1, 3, IMAGE[0], IMAGE[1]], image.data)?)
    }

    /// The FPN levels the fixture stores, in order (`0`, `1`, ..., `pool`).
    pub fn feature_names(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..8)
            .map(|i| format!("features.{i}"))
            .filter(|k| self.fx.contains(k))
            .collect();
        names.push("features.pool".into());
        names
    }

    /// How many RPN levels the fixture stores.
    pub fn rpn_levels(&self) -> usize {
        (0..8)
            .take_while(|i| self.fx.contains(&format!("rpn.objectness.{i}")))
            .count()
    }

    /// The reference proposals `[R, 4]` as a `[1, rows, 5]` proposals tensor (score 1, rows past
    /// `R` unused), and `R`.
    pub fn proposals(&self, rows: usize) -> Result<(Tensor, usize), Box<dyn Error>> {
        let reference = self.t("rpn.proposals")?;
        let r = reference.shape[0];
        let mut data = Vec::with_capacity(rows * 5);
        for i in 0..rows {
            match reference.data.get(i * 4..i * 4 + 4) {
                Some(b) if i < r => data.extend_from_slice(&[b[0], b[1], b[2], b[3], 1.0]),
                _ => data.extend_from_slice(&[0.0, 0.0, 0.0, 0.0, INVALID_SCORE]),
            }
        }
        Ok((Tensor::new(&[1, rows, 5], data)?, r))
    }
}

/// The id of the tensor called `name` (a node output or constant before a parameter).
pub fn tensor_id(graph: &Graph, name: &str) -> Result<TensorId, Box<dyn Error>> {
    let mut found = graph
        .tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| t.name == name);
    let first = found
        .next()
        .map(|(i, _)| TensorId(i))
        .ok_or_else(|| format!("graph has no tensor named {name}"))?;
    if found.next().is_some() {
        return Err(format!("graph has several tensors named {name}").into());
    }
    Ok(first)
}

/// Evaluates only what `targets` need, with the tensors in `feeds` given (their producers are
/// not run): a stage fed with the previous stage's reference tensors. The including test binary
/// chooses the backend (`crate::backend_evaluate`: the CPU interpreter or the GPU).
pub fn evaluate(
    graph: &Graph,
    feeds: Vec<(String, Tensor)>,
    targets: &[String],
) -> Result<HashMap<String, Tensor>, Box<dyn Error>> {
    crate::backend_evaluate(graph, feeds, targets)
}

/// [`evaluate`] as one GPU plan (the GPU test binaries' `backend_evaluate`): `run(stage, feed
/// values)` plans and runs `stage`, the part of `graph` that computes the targets from the
/// feeds.
#[allow(dead_code)]
pub fn evaluate_as_one_plan(
    graph: &Graph,
    feeds: Vec<(String, Tensor)>,
    targets: &[String],
    run: impl FnOnce(&Graph, &[Tensor]) -> Result<Vec<Tensor>, Box<dyn Error>>,
) -> Result<HashMap<String, Tensor>, Box<dyn Error>> {
    let inputs = feeds
        .iter()
        .map(|(n, _)| tensor_id(graph, n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = HashMap::new();
    let mut computed = Vec::new();
    for name in targets {
        let id = tensor_id(graph, name)?;
        let t = graph.tensor(id);
        match (&t.kind, &t.data) {
            // Constants (the anchors) are not computed: their values are the answer.
            (TensorKind::Const | TensorKind::Param, Some(d)) => {
                out.insert(name.clone(), Tensor::new(&t.shape, d.to_vec())?);
            }
            _ => computed.push((name.clone(), id)),
        }
    }
    let ids: Vec<_> = computed.iter().map(|(_, id)| *id).collect();
    let stage = graph.cut(&inputs, &ids)?;
    let values: Vec<Tensor> = feeds.into_iter().map(|(_, t)| t).collect();
    for ((name, _), t) in computed.into_iter().zip(run(&stage, &values)?) {
        out.insert(name, t);
    }
    Ok(out)
}

/// [`evaluate`] on the CPU interpreter.
#[allow(dead_code)]
pub fn evaluate_cpu(
    graph: &Graph,
    feeds: Vec<(String, Tensor)>,
    targets: &[String],
) -> Result<HashMap<String, Tensor>, Box<dyn Error>> {
    let mut values: HashMap<TensorId, Tensor> = HashMap::new();
    for (name, t) in feeds {
        let id = tensor_id(graph, &name)?;
        if graph.shape(id) != t.shape.as_slice() {
            return Err(format!(
                "feed {name}: graph shape {:?}, given {:?}",
                graph.shape(id),
                t.shape
            )
            .into());
        }
        values.insert(id, t);
    }
    let producer: HashMap<TensorId, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.output, i))
        .collect();
    let mut needed = HashSet::new();
    let mut stack: Vec<TensorId> = targets
        .iter()
        .map(|n| tensor_id(graph, n))
        .collect::<Result<_, _>>()?;
    while let Some(id) = stack.pop() {
        if values.contains_key(&id) {
            continue;
        }
        match (graph.tensor(id).kind.clone(), producer.get(&id)) {
            (TensorKind::Param | TensorKind::Const, _) => {}
            (_, Some(&node)) => {
                if needed.insert(node) {
                    stack.extend(&graph.nodes[node].inputs);
                }
            }
            (_, None) => {
                return Err(format!("{} is needed but not fed", graph.tensor(id).name).into());
            }
        }
    }
    let constant = |id: TensorId| -> Result<Tensor, Box<dyn Error>> {
        let t = graph.tensor(id);
        let data = t
            .data
            .as_ref()
            .ok_or_else(|| format!("{} is not bound", t.name))?;
        Ok(Tensor::new(&t.shape, data.to_vec())?)
    };
    for (i, node) in graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| needed.contains(i))
    {
        let mut owned = Vec::new();
        for &id in &node.inputs {
            if !values.contains_key(&id) {
                owned.push((id, constant(id)?));
            }
        }
        let out = {
            let lookup: HashMap<TensorId, &Tensor> = owned.iter().map(|(id, t)| (*id, t)).collect();
            let inputs: Vec<&Tensor> = node
                .inputs
                .iter()
                .map(|id| values.get(id).or_else(|| lookup.get(id).copied()))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("node {i} ({}) input missing", node.name))?;
            interp::eval_op(&node.op, &inputs).map_err(|e| format!("node {}: {e}", node.name))?
        };
        values.insert(node.output, out);
    }
    targets
        .iter()
        .map(|n| {
            let id = tensor_id(graph, n)?;
            let t = values
                .remove(&id)
                .or_else(|| constant(id).ok())
                .ok_or_else(|| format!("{n} was not computed"))?;
            Ok((n.clone(), t))
        })
        .collect()
}

/// `got` against `want` (same element count) at `rel` relative to `max|want|`; prints the error.
pub fn check_close(what: &str, got: &Tensor, want: &Tensor, rel: f32) -> TestResult {
    if got.numel() != want.numel() {
        return Err(format!("{what}: {:?} vs reference {:?}", got.shape, want.shape).into());
    }
    let got = Tensor {
        shape: want.shape.clone(),
        data: got.data.clone(),
    };
    let err = got.rel_error(want);
    println!("  {what}: rel error {err:.2e}");
    if err.is_nan() || err > rel {
        return Err(format!("{what}: rel error {err:e} > {rel:e}").into());
    }
    Ok(())
}

/// The first `rows` rows of a row-major tensor.
pub fn first_rows(t: &Tensor, rows: usize) -> Result<Tensor, Box<dyn Error>> {
    let row: usize = t.shape[1..].iter().product();
    let mut shape = t.shape.clone();
    shape[0] = rows;
    let data = t
        .data
        .get(..rows * row)
        .ok_or("fewer rows than asked")?
        .to_vec();
    Ok(Tensor::new(&shape, data)?)
}

pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// A box with its score and label (label 0 for proposals).
#[derive(Clone, Copy, Debug)]
pub struct Det {
    pub b: [f32; 4],
    pub score: f32,
    pub label: f32,
}

/// The valid rows of a `[1, R, 5|6]` proposals/detections tensor.
pub fn valid_rows(t: &Tensor) -> Vec<Det> {
    let width = t.shape[2];
    t.data
        .chunks(width)
        .filter(|r| r[4] != INVALID_SCORE)
        .map(|r| Det {
            b: [r[0], r[1], r[2], r[3]],
            score: r[4],
            label: if width > 5 { r[5] } else { 0.0 },
        })
        .collect()
}

/// Reference proposals `[R, 4]` as detections with label 0 (their scores are not stored).
pub fn reference_proposals(case: &Case) -> Result<Vec<Det>, Box<dyn Error>> {
    let boxes = case.t("rpn.proposals")?;
    Ok(boxes
        .data
        .chunks(4)
        .map(|b| Det {
            b: [b[0], b[1], b[2], b[3]],
            score: f32::NAN,
            label: 0.0,
        })
        .collect())
}

/// Reference detections from `<prefix>.boxes/scores/labels`.
pub fn reference_dets(case: &Case, prefix: &str) -> Result<Vec<Det>, Box<dyn Error>> {
    let boxes = case.t(&format!("{prefix}.boxes"))?;
    let scores = case.t(&format!("{prefix}.scores"))?;
    let labels = case.t(&format!("{prefix}.labels"))?;
    Ok((0..scores.numel())
        .map(|i| Det {
            b: [
                boxes.data[i * 4],
                boxes.data[i * 4 + 1],
                boxes.data[i * 4 + 2],
                boxes.data[i * 4 + 3],
            ],
            score: scores.data[i],
            label: labels.data[i],
        })
        .collect())
}

/// How closely two box sets must agree.
#[derive(Clone, Copy, Debug)]
pub struct Agreement {
    /// A pair matches with IoU at least this, ...
    pub min_iou: f32,
    /// ... or with every coordinate within this many pixels (thin boxes, whose IoU a tiny
    /// shift changes a lot).
    pub max_coord: f32,
    /// The box counts may differ by this many.
    pub count_slack: usize,
    /// At least this fraction of the reference boxes must match.
    pub min_matched: f64,
    /// Matched scores must agree within this (when the reference has scores).
    pub score_tol: f32,
}

impl Agreement {
    /// The same computation on the same inputs: f32 rounding only.
    pub const EXACT: Agreement = Agreement {
        min_iou: 0.999,
        max_coord: 1e-3,
        count_slack: 0,
        min_matched: 1.0,
        score_tol: 1e-5,
    };
    /// After the backbone: f32 noise of the features moves the RPN's decoded boxes by up to a
    /// few tenths of a pixel and can swap near-tied candidates at the top-n cut and in NMS.
    /// From the reference features: the RPN head's f32 noise alone can still swap a tied
    /// proposal, which moves a few detections.
    pub const FROM_FEATURES: Agreement = Agreement {
        min_iou: 0.95,
        max_coord: 0.05,
        count_slack: 0,
        min_matched: 0.97,
        score_tol: 1e-3,
    };
    pub const FROM_IMAGE: Agreement = Agreement {
        min_iou: 0.95,
        max_coord: 0.25,
        count_slack: 2,
        min_matched: 0.97,
        score_tol: 5e-3,
    };
    /// From the image when the reference objectness saturates ([`saturated_objectness`]):
    /// logits whose sigmoid is exactly 1.0 in f32 tie, torchvision's sort orders them by its
    /// own tie-breaking, and NMS keeps the first of two overlapping tied boxes, so which of them
    /// survive, and every detection descending from them, follows an order f32 noise decides.
    /// The rest must still match: fasterrcnn_resnet50_fpn's fixture (336 tied logits) matches
    /// 146 of 169 proposals and 75 of 100 detections on lavapipe, with equal counts.
    pub const FROM_IMAGE_SATURATED: Agreement = Agreement {
        min_iou: 0.95,
        max_coord: 0.25,
        count_slack: 2,
        min_matched: 0.7,
        score_tol: 2e-2,
    };
}

/// The figures of one box-set comparison.
#[derive(Clone, Copy, Debug)]
pub struct MatchStats {
    pub got: usize,
    pub want: usize,
    pub matched: usize,
    pub worst_iou: f32,
    pub worst_coord: f32,
    pub worst_score: f32,
}

/// Matches every reference box to the unused box of ours with the same label and the highest
/// IoU (a match needs `agreement.min_iou` or `agreement.max_coord`), and prints the figures.
pub fn match_sets(what: &str, got: &[Det], want: &[Det], agreement: &Agreement) -> MatchStats {
    let mut used = vec![false; got.len()];
    let mut stats = MatchStats {
        got: got.len(),
        want: want.len(),
        matched: 0,
        worst_iou: 1.0,
        worst_coord: 0.0,
        worst_score: 0.0,
    };
    for w in want {
        let best = got
            .iter()
            .enumerate()
            .filter(|(j, g)| !used[*j] && g.label == w.label)
            .map(|(j, g)| (j, iou(&g.b, &w.b)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((j, v)) = best else { continue };
        let coord = got[j]
            .b
            .iter()
            .zip(&w.b)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        if v >= agreement.min_iou || coord <= agreement.max_coord {
            used[j] = true;
            stats.matched += 1;
            stats.worst_iou = stats.worst_iou.min(v);
            stats.worst_coord = stats.worst_coord.max(coord);
            if !w.score.is_nan() {
                stats.worst_score = stats.worst_score.max((got[j].score - w.score).abs());
            }
        }
    }
    println!(
        "  {what}: {} ours vs {} reference, {} matched (worst IoU {:.5}, max |coord diff| {:.2e} px, max |score diff| {:.2e})",
        stats.got, stats.want, stats.matched, stats.worst_iou, stats.worst_coord, stats.worst_score
    );
    stats
}

/// [`match_sets`], then checks the figures against `agreement`.
pub fn check_matched(what: &str, got: &[Det], want: &[Det], agreement: Agreement) -> TestResult {
    let s = match_sets(what, got, want, &agreement);
    let fraction = if s.want == 0 {
        1.0
    } else {
        s.matched as f64 / s.want as f64
    };
    if s.got.abs_diff(s.want) > agreement.count_slack {
        return Err(format!("{what}: {} boxes, reference {}", s.got, s.want).into());
    }
    if fraction < agreement.min_matched {
        return Err(format!(
            "{what}: only {} of {} reference boxes matched ({agreement:?})",
            s.matched, s.want
        )
        .into());
    }
    if s.worst_score > agreement.score_tol {
        return Err(format!(
            "{what}: matched scores differ by {:e} > {:e}",
            s.worst_score, agreement.score_tol
        )
        .into());
    }
    Ok(())
}

/// How many of the reference RPN logits have a sigmoid of exactly 1.0 in f32. Such ties are
/// ordered by the logits themselves (top-n), so NMS keeps different boxes when the logits move
/// by f32 noise: with more than one, the proposals from the image cannot be compared with the
/// reference's, only those from the reference features.
pub fn saturated_objectness(case: &Case) -> Result<usize, Box<dyn Error>> {
    let mut count = 0;
    for i in 0..case.rpn_levels() {
        let logits = case.t(&format!("rpn.objectness.{i}"))?;
        count += logits
            .data
            .iter()
            .filter(|&&x| 1.0 / (1.0 + (-x).exp()) == 1.0f32)
            .count();
    }
    Ok(count)
}

/// Checks the form of a `[1, D, 6]` output in a `height` x `width` image: boxes inside the
/// image with positive extent, scores above `score_thresh` in descending order, labels among
/// the `classes - 1` foreground classes.
pub fn check_well_formed(
    what: &str,
    dets: &[Det],
    image: [usize; 2],
    score_thresh: f32,
    classes: usize,
) -> TestResult {
    let (h, w) = (image[0] as f32, image[1] as f32);
    for (i, d) in dets.iter().enumerate() {
        let inside = d.b[0] >= 0.0 && d.b[1] >= 0.0 && d.b[2] <= w + 1e-3 && d.b[3] <= h + 1e-3;
        let ordered = d.b[2] > d.b[0] && d.b[3] > d.b[1];
        let label_ok = d.label.fract() == 0.0 && d.label >= 1.0 && d.label < classes as f32;
        let score_ok =
            d.score > score_thresh && d.score <= 1.0 && (i == 0 || dets[i - 1].score >= d.score);
        if !(inside && ordered && label_ok && score_ok) {
            return Err(format!("{what}: malformed detection {i}: {d:?}").into());
        }
    }
    Ok(())
}
