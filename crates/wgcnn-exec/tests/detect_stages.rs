//! The detection stages on the GPU through `Plan` (lavapipe in CI), each fed with the previous
//! stage's reference tensors from `fixtures/detect/*.safetensors` and compared with the next:
//! proposals and detections as sets matched by IoU (near-tied scores may reorder NMS
//! survivors), RoIAlign numerically. Prints each stage's run time (second run, pipelines
//! compiled) — a measurement, never an assertion.

use std::error::Error;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wgcnn_exec::Plan;
use wgcnn_exec::profile::{Profile, layer_name};
use wgcnn_graph::interp::eval_op;
use wgcnn_graph::{GraphBuilder, Op, ResizeMode, Tensor, TensorId};
use wgcnn_kernels::{Context, ContextOptions};

// Shared with wgcnn-graph's detect_fixtures, which reads parts this file does not.
#[allow(dead_code)]
#[path = "../../wgcnn-graph/tests/support/detect_fixture.rs"]
mod detect_fixture;

use detect_fixture::{
    MODELS, Model, boxes_only, match_sets, roi_align_op, tail_only, used_rows, with_score,
};

type TestResult = Result<(), Box<dyn Error>>;

fn context() -> Arc<Context> {
    static CTX: OnceLock<Arc<Context>> = OnceLock::new();
    CTX.get_or_init(|| {
        Arc::new(Context::new(&ContextOptions::default()).expect("a GPU adapter (lavapipe in CI)"))
    })
    .clone()
}

/// The RPN graph part: per level `[N, A, H, W]` objectness and `[N, 4A, H, W]` deltas to
/// `[N, sum HWA]` and `[N, sum HWA, 4]` (torchvision's `permute_and_flatten` + `cat`), with
/// Permute, Reshape and Concat on the GPU. Returns (objectness, deltas, level sizes).
fn rpn_inputs(
    b: &mut GraphBuilder,
    levels: &[(Tensor, Tensor)],
) -> Result<(TensorId, TensorId, Vec<usize>), Box<dyn Error>> {
    let (mut objs, mut dels, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for (l, (ob, de)) in levels.iter().enumerate() {
        let [n, a, h, w] = <[usize; 4]>::try_from(ob.shape.as_slice())?;
        let o = b.input(&format!("objectness.{l}"), &ob.shape);
        let o = b.node(
            &format!("obj_perm.{l}"),
            Op::Permute {
                perm: vec![0, 2, 3, 1],
            },
            &[o],
        )?;
        objs.push(b.node(
            &format!("obj_flat.{l}"),
            Op::Reshape {
                shape: vec![n, h * w * a],
            },
            &[o],
        )?);
        let d = b.input(&format!("deltas.{l}"), &de.shape);
        let d = b.node(
            &format!("del_view.{l}"),
            Op::Reshape {
                shape: vec![n, a, 4, h, w],
            },
            &[d],
        )?;
        let d = b.node(
            &format!("del_perm.{l}"),
            Op::Permute {
                perm: vec![0, 3, 4, 1, 2],
            },
            &[d],
        )?;
        dels.push(b.node(
            &format!("del_flat.{l}"),
            Op::Reshape {
                shape: vec![n, h * w * a, 4],
            },
            &[d],
        )?);
        sizes.push(h * w * a);
    }
    let obj = b.node("objectness", Op::Concat { axis: 1 }, &objs)?;
    let del = b.node("deltas", Op::Concat { axis: 1 }, &dels)?;
    Ok((obj, del, sizes))
}

/// Runs twice (the first compiles the pipelines) and returns the outputs of the second run
/// and its wall time.
fn run_timed(plan: &Plan, inputs: &[Tensor]) -> Result<(Vec<Tensor>, Duration), Box<dyn Error>> {
    plan.run(inputs)?;
    let start = Instant::now();
    let out = plan.run(inputs)?;
    Ok((out, start.elapsed()))
}

/// The GPU time of `node`'s launches (labels `node` and `node[..]`), median of three profiled
/// runs, with the per-kernel split, as a line for the test output.
fn stage_profile(plan: &Plan, inputs: &[Tensor], node: &str) -> Result<String, Box<dyn Error>> {
    let runs = (0..3)
        .map(|_| plan.profile(inputs))
        .collect::<Result<Vec<_>, _>>()?;
    let p = Profile::median(runs).ok_or("profiles of one plan list the same launches")?;
    let mut per: Vec<(&str, f64, usize)> = Vec::new();
    for l in p.launches.iter().filter(|l| layer_name(&l.label) == node) {
        match per.iter_mut().find(|(k, _, _)| *k == l.kernel) {
            Some(e) => {
                e.1 += l.ms;
                e.2 += 1;
            }
            None => per.push((l.kernel, l.ms, 1)),
        }
    }
    let total: f64 = per.iter().map(|e| e.1).sum();
    let split: Vec<String> = per
        .iter()
        .map(|(k, ms, n)| {
            format!(
                "{k} {ms:.3}{}",
                if *n > 1 {
                    format!(" ({n}x)")
                } else {
                    String::new()
                }
            )
        })
        .collect();
    Ok(format!(
        "{node}: {total:.3} ms on the GPU [{}] ({:?})",
        split.join(", "),
        p.method
    ))
}

/// Proposals (RPN head outputs -> Permute/Reshape/Concat -> Proposals) on the GPU.
fn proposals_plan(m: &Model) -> Result<(Plan, Vec<Tensor>), Box<dyn Error>> {
    let levels = m.rpn_levels()?;
    let mut b = GraphBuilder::new();
    let (obj, del, sizes) = rpn_inputs(&mut b, &levels)?;
    let anchors = m.t("rpn.anchors")?;
    let a = b.constant("anchors", &anchors.shape, anchors.data.clone())?;
    let p = b.node(
        "rpn.filter_proposals",
        Op::Proposals(m.proposals_op(sizes)?),
        &[obj, del, a],
    )?;
    b.output(p);
    let plan = Plan::new(context(), &b.finish())?;
    let inputs = levels.into_iter().flat_map(|(o, d)| [o, d]).collect();
    Ok((plan, inputs))
}

#[test]
fn gpu_proposals_match_torchvision_rpn_filter_proposals() -> TestResult {
    let mut failures = Vec::new();
    for name in MODELS {
        let m = Model::open(name)?;
        let (plan, inputs) = proposals_plan(&m)?;
        let (out, elapsed) = run_timed(&plan, &inputs)?;
        let got = boxes_only(used_rows(&out[0])?);
        let want = m.proposal_rows()?;
        let mm = match_sets(&got, &want);
        println!(
            "{name}: GPU proposals {} (want {}), in place {}, unmatched want {:?} got {:?}, max box diff {:.2e}; {} launches, {elapsed:.2?} per run",
            got.len(),
            want.len(),
            mm.in_place,
            mm.unmatched_want,
            mm.unmatched_got,
            mm.max_box_diff,
            plan.stats().launches
        );
        let ok = got.len().abs_diff(want.len()) <= 2
            && tail_only(&mm.unmatched_want, &want, 3)
            && tail_only(&mm.unmatched_got, &got, 3)
            && mm.max_box_diff <= 1e-3;
        println!(
            "  {}",
            stage_profile(&plan, &inputs, "rpn.filter_proposals")?
        );
        if !ok {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "GPU proposals differ for {failures:?}");
    Ok(())
}

/// RoIAlign of `boxes` over the fixture's FPN levels, as a one-node plan.
fn roi_align_plan(
    m: &Model,
    boxes: &Tensor,
    output: [usize; 2],
) -> Result<(Plan, Vec<Tensor>), Box<dyn Error>> {
    let (feats, scales) = m.roi_levels()?;
    let mut b = GraphBuilder::new();
    let mut ins = vec![b.input("boxes", &boxes.shape)];
    for (l, f) in feats.iter().enumerate() {
        ins.push(b.input(&format!("features.{l}"), &f.shape));
    }
    let op = roi_align_op(output, scales);
    let y = b.node("roi_heads.box_roi_pool", Op::RoiAlign(op), &ins)?;
    b.output(y);
    let plan = Plan::new(context(), &b.finish())?;
    let mut inputs = vec![boxes.clone()];
    inputs.extend(feats);
    Ok((plan, inputs))
}

#[test]
fn gpu_roi_align_matches_torchvision_box_roi_pool_first64() -> TestResult {
    let mut worst = 0f32;
    for name in MODELS {
        let m = Model::open(name)?;
        let boxes = m.proposals_input()?;
        let (plan, inputs) = roi_align_plan(&m, &boxes, [7, 7])?;
        let (out, elapsed) = run_timed(&plan, &inputs)?;
        let want = m.t("roi_heads.box_roi_pool.first64")?;
        let got = Tensor::new(&want.shape, out[0].data[..want.numel()].to_vec())?;
        let err = got.rel_error(&want);
        println!(
            "{name}: GPU roi_align of {} boxes, first 64 rel error {err:.3e}; {elapsed:.2?} per run",
            boxes.shape[1]
        );
        println!(
            "  {}",
            stage_profile(&plan, &inputs, "roi_heads.box_roi_pool")?
        );
        worst = worst.max(err);
    }
    assert!(worst <= 1e-4, "GPU roi_align rel error {worst}");
    Ok(())
}

#[test]
fn gpu_roi_align_14x14_matches_mask_and_keypoint_roi_pools_first8() -> TestResult {
    for (name, key) in [
        ("maskrcnn_resnet50_fpn", "roi_heads.mask_roi_pool.first8"),
        (
            "keypointrcnn_resnet50_fpn",
            "roi_heads.keypoint_roi_pool.first8",
        ),
    ] {
        let m = Model::open(name)?;
        let dets = m.t("detections.boxes")?;
        let boxes = with_score(&Tensor::new(&[8, 4], dets.data[..32].to_vec())?, 1.0)?;
        let (plan, inputs) = roi_align_plan(&m, &boxes, [14, 14])?;
        let (out, elapsed) = run_timed(&plan, &inputs)?;
        let want = m.t(key)?;
        let err = out[0].rel_error(&want);
        println!("{name}: GPU {key} rel error {err:.3e}; {elapsed:.2?} per run");
        println!(
            "  {}",
            stage_profile(&plan, &inputs, "roi_heads.box_roi_pool")?
        );
        assert!(err <= 1e-4, "{name}: {key} rel error {err}");
    }
    Ok(())
}

#[test]
fn gpu_box_postprocess_and_scale_boxes_match_torchvision_detections() -> TestResult {
    let mut failures = Vec::new();
    for name in MODELS {
        let m = Model::open(name)?;
        let (logits, reg, props) = (
            m.t("roi_heads.class_logits")?,
            m.t("roi_heads.box_regression")?,
            m.proposals_input()?,
        );
        let image = m.t("image")?;
        let [h, w] = m.image_size()?;
        let scale = [
            image.shape[1] as f32 / h as f32,
            image.shape[2] as f32 / w as f32,
        ];
        let mut b = GraphBuilder::new();
        let ins = [
            b.input("class_logits", &logits.shape),
            b.input("box_regression", &reg.shape),
            b.input("proposals", &props.shape),
        ];
        let det = b.node(
            "roi_heads.postprocess_detections",
            Op::BoxPostprocess(m.box_postprocess_op()?),
            &ins,
        )?;
        let orig = b.node("transform.postprocess", Op::ScaleBoxes { scale }, &[det])?;
        b.output(det);
        b.output(orig);
        let plan = Plan::new(context(), &b.finish())?;
        let inputs = [logits, reg, props];
        let (out, elapsed) = run_timed(&plan, &inputs)?;
        let (got, want) = (used_rows(&out[0])?, m.labelled_rows("detections")?);
        let (got_orig, want_orig) = (used_rows(&out[1])?, m.labelled_rows("output")?);
        let (mm, mo) = (match_sets(&got, &want), match_sets(&got_orig, &want_orig));
        println!(
            "{name}: GPU detections {} (want {}), in place {}, unmatched want {:?} got {:?}, max box diff {:.2e}, max score diff {:.2e}; scaled boxes max diff {:.2e}; {} launches, {elapsed:.2?} per run",
            got.len(),
            want.len(),
            mm.in_place,
            mm.unmatched_want,
            mm.unmatched_got,
            mm.max_box_diff,
            mm.max_score_diff,
            mo.max_box_diff,
            plan.stats().launches
        );
        let ok = got.len().abs_diff(want.len()) <= 2
            && tail_only(&mm.unmatched_want, &want, 3)
            && tail_only(&mm.unmatched_got, &got, 3)
            && mm.max_box_diff <= 1e-3
            && mm.max_score_diff <= 1e-4
            && mo.unmatched_want == mm.unmatched_want
            && mo.max_box_diff <= 1e-3;
        println!(
            "  {}",
            stage_profile(&plan, &inputs, "roi_heads.postprocess_detections")?
        );
        println!(
            "  {}",
            stage_profile(&plan, &inputs, "transform.postprocess")?
        );
        if !ok {
            failures.push(name);
        }
    }
    assert!(
        failures.is_empty(),
        "GPU detections differ for {failures:?}"
    );
    Ok(())
}

#[test]
fn gpu_rpn_to_roi_align_runs_in_one_plan_without_read_back() -> TestResult {
    // Permute/Concat -> Proposals -> RoIAlign in one submission; the pooled rows of proposals
    // that equal the reference's first 64 in place are compared with box_roi_pool.first64.
    let m = Model::open("fasterrcnn_resnet50_fpn")?;
    let levels = m.rpn_levels()?;
    let (feats, scales) = m.roi_levels()?;
    let mut b = GraphBuilder::new();
    let (obj, del, sizes) = rpn_inputs(&mut b, &levels)?;
    let anchors = m.t("rpn.anchors")?;
    let a = b.constant("anchors", &anchors.shape, anchors.data.clone())?;
    let props = b.node("rpn", Op::Proposals(m.proposals_op(sizes)?), &[obj, del, a])?;
    let mut ins = vec![props];
    for (l, f) in feats.iter().enumerate() {
        ins.push(b.input(&format!("features.{l}"), &f.shape));
    }
    let op = roi_align_op([7, 7], scales);
    let pooled = b.node("box_roi_pool", Op::RoiAlign(op), &ins)?;
    b.output(props);
    b.output(pooled);
    let plan = Plan::new(context(), &b.finish())?;
    let mut inputs: Vec<Tensor> = levels.into_iter().flat_map(|(o, d)| [o, d]).collect();
    inputs.extend(feats);
    let (out, elapsed) = run_timed(&plan, &inputs)?;
    let want_boxes = m.t("rpn.proposals")?;
    let want = m.t("roi_heads.box_roi_pool.first64")?;
    let per = want.numel() / 64;
    let (mut compared, mut worst) = (0, 0f32);
    for r in 0..64 {
        let (g, w) = (
            &out[0].data[r * 5..r * 5 + 4],
            &want_boxes.data[r * 4..r * 4 + 4],
        );
        if g.iter().zip(w).all(|(a, b)| (a - b).abs() <= 1e-4) {
            let got = Tensor::new(&[per], out[1].data[r * per..(r + 1) * per].to_vec())?;
            let exp = Tensor::new(&[per], want.data[r * per..(r + 1) * per].to_vec())?;
            worst = worst.max(got.max_abs_diff(&exp));
            compared += 1;
        }
    }
    let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    println!(
        "rpn -> roi_align in one plan: {compared} of the first 64 proposals in place, their pooled features max abs diff {worst:.3e} (scale {scale:.3e}); {} launches, {elapsed:.2?} per run",
        plan.stats().launches
    );
    println!("  {}", stage_profile(&plan, &inputs, "rpn")?);
    println!("  {}", stage_profile(&plan, &inputs, "box_roi_pool")?);
    assert!(
        compared >= 60,
        "only {compared} of the first 64 proposals in place"
    );
    assert!(worst <= 1e-4 * scale, "pooled features differ by {worst}");
    Ok(())
}

#[test]
fn gpu_resize_nodes_match_interpreter_on_fixture_tensors() -> TestResult {
    // FPN's nearest top-down upsampling and the transform's bilinear image resize.
    let m = Model::open("fasterrcnn_resnet50_fpn")?;
    let image = m.t("image")?;
    let image = Tensor::new(&[1, 3, image.shape[1], image.shape[2]], image.data)?;
    let cases = [
        (m.t("features.1")?, [40, 56], ResizeMode::Nearest),
        (m.t("features.3")?, [10, 14], ResizeMode::Nearest),
        (
            image,
            m.image_size()?,
            ResizeMode::Bilinear {
                align_corners: false,
            },
        ),
    ];
    for (x, size, mode) in cases {
        let op = Op::Resize { size, mode };
        let want = eval_op(&op, &[&x])?;
        let mut b = GraphBuilder::new();
        let input = b.input("x", &x.shape);
        let y = b.node("resize", op, &[input])?;
        b.output(y);
        let plan = Plan::new(context(), &b.finish())?;
        let inputs = [x];
        let (out, elapsed) = run_timed(&plan, &inputs)?;
        let err = out[0].rel_error(&want);
        println!(
            "resize {:?} -> {size:?} {mode:?}: rel error {err:.3e}; {elapsed:.2?} per run",
            inputs[0].shape
        );
        assert!(err <= 1e-6, "resize rel error {err}");
    }
    Ok(())
}
