//! The composed detection stages against the CPU interpreter on random inputs of the fixture
//! sizes, plus NMS edge cases (ties, nothing valid, one box, boxes on the image border).
//! Outputs are compared row by row where they agree, else as sets matched by IoU.

use super::*;
use crate::testing::{Rng, ctx};
use wgcnn_graph::{BoxPostprocess, INVALID_SCORE, Op, Proposals, Tensor, interp};

/// `math.log(1000. / 16)`.
pub(super) fn bbox_clip() -> f32 {
    (1000f64 / 16.0).ln() as f32
}

/// A fixed-capacity output as rows `(box, score, label)` without the unused ones.
pub(super) fn used(t: &Tensor) -> Vec<Vec<f32>> {
    let width = t.shape[2];
    t.data
        .chunks_exact(width)
        .filter(|r| r[4] != INVALID_SCORE)
        .map(|r| r.to_vec())
        .collect()
}

fn iou(a: &[f32], b: &[f32]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// Compares per image: unused rows exactly (zero, score -1), used rows in place when their
/// boxes agree within `tol`, else matched by IoU > 0.99 and equal label. Returns
/// `(rows in place, rows matched elsewhere, unmatched)` summed over images; prints them.
pub(super) fn compare(what: &str, got: &Tensor, want: &Tensor, tol: f32) -> (usize, usize, usize) {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    let (n, cap, width) = (want.shape[0], want.shape[1], want.shape[2]);
    let (mut in_place, mut moved, mut unmatched) = (0, 0, 0);
    let (mut box_diff, mut score_diff) = (0f32, 0f32);
    for i in 0..n {
        let img = |t: &Tensor| {
            Tensor::new(
                &[1, cap, width],
                t.data[i * cap * width..(i + 1) * cap * width].to_vec(),
            )
            .expect("image")
        };
        let (g, w) = (used(&img(got)), used(&img(want)));
        for (j, row) in img(got).data.chunks_exact(width).enumerate().skip(g.len()) {
            let blank = row
                .iter()
                .enumerate()
                .all(|(k, &v)| if k == 4 { v == INVALID_SCORE } else { v == 0.0 });
            assert!(
                blank,
                "{what}: image {i} row {j} past the {} used ones is {row:?}",
                g.len()
            );
        }
        for (k, wr) in w.iter().enumerate() {
            let close = |gr: &Vec<f32>| {
                wr[..4].iter().zip(gr).all(|(a, b)| (a - b).abs() <= tol) && wr.get(5) == gr.get(5)
            };
            let hit = if g.get(k).is_some_and(close) {
                in_place += 1;
                g.get(k)
            } else {
                let best = g
                    .iter()
                    .filter(|gr| wr.get(5) == gr.get(5) && iou(wr, gr) > 0.99)
                    .max_by(|a, b| iou(wr, a).total_cmp(&iou(wr, b)));
                if best.is_some() {
                    moved += 1
                } else {
                    unmatched += 1
                }
                best
            };
            if let Some(gr) = hit {
                box_diff = wr[..4]
                    .iter()
                    .zip(gr)
                    .fold(box_diff, |m, (a, b)| m.max((a - b).abs()));
                score_diff = score_diff.max((wr[4] - gr[4]).abs());
            }
        }
        unmatched += g.len().saturating_sub(w.len());
    }
    println!(
        "{what}: {} used rows want, in place {in_place}, matched elsewhere {moved}, unmatched {unmatched}, max box diff {box_diff:.2e}, max score diff {score_diff:.2e}",
        used(want).len()
    );
    assert!(
        box_diff <= 1e-3 && score_diff <= 1e-5,
        "{what}: matched rows differ too much"
    );
    (in_place, moved, unmatched)
}

/// Output buffer filled with NaN first, so that every element must be written.
fn garbage_out(numel: usize) -> wgpu::Buffer {
    let ctx = ctx();
    let out = ctx.storage("out", numel as u64 * 4);
    ctx.queue
        .write_buffer(&out, 0, bytemuck::cast_slice(&vec![f32::NAN; numel]));
    out
}

pub(super) fn run_proposals(
    op: &Proposals,
    obj: &Tensor,
    deltas: &Tensor,
    anchors: &Tensor,
) -> (Tensor, Tensor) {
    let ctx = ctx();
    let want =
        interp::eval_op(&Op::Proposals(op.clone()), &[obj, deltas, anchors]).expect("interp");
    let desc = ProposalsDesc {
        images: obj.shape[0],
        level_sizes: op.level_sizes.clone(),
        pre_nms_top_n: op.pre_nms_top_n,
        post_nms_top_n: op.post_nms_top_n,
        nms_thresh: op.nms_thresh,
        score_thresh: op.score_thresh,
        min_size: op.min_size,
        image_size: op.image_size,
        bbox_clip: op.bbox_clip,
    };
    let (ob, db, ab) = (
        ctx.upload("obj", &obj.data),
        ctx.upload("deltas", &deltas.data),
        ctx.upload("anchors", &anchors.data),
    );
    let out = garbage_out(want.numel());
    let launches = proposals(ctx, "proposals", &desc, &ob, &db, &ab, &out).expect("launches");
    ctx.run(&launches).expect("run");
    // A second run on the same buffers gives the same result (no state left between runs).
    ctx.run(&launches).expect("run again");
    let got = Tensor::new(&want.shape, ctx.read(&out, want.numel()).expect("read")).expect("shape");
    (got, want)
}

/// torchvision-like anchors: per level a grid of `cells` positions with 3 aspect ratios.
pub(super) fn anchors_for(rng: &mut Rng, level_sizes: &[usize], image: [usize; 2]) -> Tensor {
    let mut data = Vec::new();
    for (l, &size) in level_sizes.iter().enumerate() {
        let base = 32.0 * (1 << l) as f32;
        for i in 0..size {
            let cx = rng.uniform(1.0).abs() * image[1] as f32;
            let cy = rng.uniform(1.0).abs() * image[0] as f32;
            let ratio = [0.5f32, 1.0, 2.0][i % 3];
            let (w, h) = (base / ratio.sqrt(), base * ratio.sqrt());
            data.extend([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]);
        }
    }
    Tensor::new(&[data.len() / 4, 4], data).expect("anchors")
}

pub(super) fn rpn_op(
    level_sizes: Vec<usize>,
    pre: usize,
    post: usize,
    score_thresh: f32,
) -> Proposals {
    Proposals {
        level_sizes,
        pre_nms_top_n: pre,
        post_nms_top_n: post,
        nms_thresh: 0.7,
        score_thresh,
        min_size: 1e-3,
        image_size: [160, 213],
        bbox_clip: bbox_clip(),
    }
}

fn random_rpn(seed: u64, images: usize, op: &Proposals) -> (Tensor, Tensor) {
    let mut rng = Rng::new(seed);
    let total: usize = op.level_sizes.iter().sum();
    let anchors = anchors_for(&mut rng, &op.level_sizes, op.image_size);
    let obj = rng.tensor(&[images, total], 4.0);
    let deltas = rng.tensor(&[images, total, 4], 0.5);
    run_proposals(op, &obj, &deltas, &anchors)
}

#[test]
fn proposals_resnet_fpn_fixture_sizes_match_interpreter() {
    let op = rpn_op(vec![6720, 1680, 420, 105, 36], 1000, 1000, 0.0);
    let (got, want) = random_rpn(1, 1, &op);
    let (_, _, unmatched) = compare("proposals 8961 anchors, 1000/1000", &got, &want, 1e-3);
    assert!(unmatched <= 3, "{unmatched} proposals unmatched");
}

#[test]
fn proposals_two_images_mobilenet_320_config_use_coordinate_trick_and_match() {
    // pre_nms_top_n 150 over 3 levels: <= 1000 candidates, torchvision's coordinate trick.
    let op = rpn_op(vec![525, 525, 180], 150, 150, 0.05);
    let (got, want) = random_rpn(2, 2, &op);
    let (_, _, unmatched) = compare(
        "proposals 2 images, 1230 anchors, 150/150",
        &got,
        &want,
        1e-3,
    );
    assert!(unmatched <= 1, "{unmatched} proposals unmatched");
}

#[test]
fn proposals_top2000_of_a_large_level_merges_sorted_blocks() {
    // 20000 anchors in level 0: ten blocks, four merge rounds; post cut below the kept count.
    let op = rpn_op(vec![20000, 5000, 700], 2000, 300, 0.0);
    let (got, want) = random_rpn(3, 1, &op);
    let (_, _, unmatched) = compare("proposals 25700 anchors, 2000/300", &got, &want, 1e-3);
    assert!(unmatched <= 3, "{unmatched} proposals unmatched");
}

/// NMS through a one-level proposal stage: anchors are the boxes (zero deltas decode to them
/// up to rounding), logits the scores.
fn nms_case(
    what: &str,
    boxes: &[[f32; 4]],
    logits: &[f32],
    score_thresh: f32,
    post: usize,
) -> (Tensor, Tensor) {
    let n = boxes.len();
    let op = Proposals {
        level_sizes: vec![n],
        score_thresh,
        ..rpn_op(vec![n], n, post, score_thresh)
    };
    let anchors = Tensor::new(&[n, 4], boxes.iter().flatten().copied().collect()).expect("anchors");
    let obj = Tensor::new(&[1, n], logits.to_vec()).expect("logits");
    let deltas = Tensor::zeros(&[1, n, 4]);
    let (got, want) = run_proposals(&op, &obj, &deltas, &anchors);
    let diff = got.max_abs_diff(&want);
    println!(
        "{what}: {} kept (want {}), max abs diff {diff:e}",
        used(&got).len(),
        used(&want).len()
    );
    (got, want)
}

/// The same rows in the same order: boxes within 1e-4, scores (GPU `exp`) within 1e-6.
pub(super) fn assert_same_rows(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    let width = want.shape[2];
    for (i, (g, w)) in got
        .data
        .chunks_exact(width)
        .zip(want.data.chunks_exact(width))
        .enumerate()
    {
        let ok = g
            .iter()
            .zip(w)
            .enumerate()
            .all(|(k, (a, b))| (a - b).abs() <= if k == 4 { 1e-6 } else { 1e-4 });
        assert!(ok, "{what}: row {i} is {g:?}, want {w:?}");
    }
}

#[test]
fn nms_ties_and_a_duplicate_box_match_interpreter_row_for_row() {
    let mut rng = Rng::new(5);
    let mut boxes = Vec::new();
    let mut logits = Vec::new();
    for i in 0..300 {
        let (x, y) = (
            rng.uniform(1.0).abs() * 150.0,
            rng.uniform(1.0).abs() * 100.0,
        );
        let s = 5.0 + rng.uniform(1.0).abs() * 40.0;
        boxes.push([x, y, x + s, y + s * 0.8]);
        // Scores from 8 distinct values: many exact ties.
        logits.push((i % 8) as f32 * 0.25 - 1.0);
    }
    // Exact duplicates with equal scores: the first one wins.
    boxes.push(boxes[10]);
    logits.push(logits[10]);
    let (got, want) = nms_case("nms 301 boxes, 8 score levels", &boxes, &logits, 0.0, 301);
    assert_same_rows("tied NMS", &got, &want);
    // Zero deltas decode to the anchor up to f32 rounding.
    let near = |r: &[f32], b: &[f32; 4]| r.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-3);
    let rows: Vec<&[f32]> = got.data.chunks_exact(5).collect();
    let copies = rows.iter().filter(|r| near(r, &boxes[10])).count();
    let box10_wanted = want.data.chunks_exact(5).any(|r| near(r, &boxes[10]));
    println!("box 10 kept: {box10_wanted}, copies in the output: {copies}");
    assert_eq!(
        copies, box10_wanted as usize,
        "the duplicate of box 10 must be suppressed by it"
    );
}

#[test]
fn nms_nothing_valid_gives_only_unused_rows() {
    let boxes = [
        [0.0, 0.0, 10.0, 10.0],
        [5.0, 5.0, 20.0, 20.0],
        [1.0, 1.0, 1.0, 9.0],
    ];
    let (got, want) = nms_case(
        "nms all below the score threshold",
        &boxes,
        &[-3.0, -4.0, 9.0],
        0.5,
        4,
    );
    // The third box is empty (x2 == x1): removed as small, so nothing is left.
    assert_eq!(got.data, want.data);
    assert!(used(&got).is_empty(), "{:?}", got.data);
}

#[test]
fn nms_one_box_and_boxes_on_the_border_match_interpreter() {
    let (got, want) = nms_case("nms one box", &[[3.0, 4.0, 50.0, 60.0]], &[0.3], 0.0, 5);
    assert_same_rows("one box", &got, &want);
    assert_eq!(used(&got).len(), 1);
    // Boxes beyond the image are clipped to its border, where they overlap fully.
    let boxes = [
        [-20.0, -10.0, 30.0, 40.0],
        [-5.0, -5.0, 30.0, 40.0],
        [190.0, 150.0, 260.0, 200.0],
        [200.0, 100.0, 213.0, 160.0],
        [213.0, 0.0, 240.0, 20.0],
    ];
    let (got, want) = nms_case(
        "nms border boxes",
        &boxes,
        &[1.0, 0.5, 2.0, 1.5, 3.0],
        0.0,
        5,
    );
    assert_same_rows("border boxes", &got, &want);
}

pub(super) fn run_postprocess(
    op: &BoxPostprocess,
    logits: &Tensor,
    reg: &Tensor,
    props: &Tensor,
) -> (Tensor, Tensor) {
    let ctx = ctx();
    let want =
        interp::eval_op(&Op::BoxPostprocess(op.clone()), &[logits, reg, props]).expect("interp");
    let desc = BoxPostprocessDesc {
        images: props.shape[0],
        rois: props.shape[1],
        classes: logits.shape[1],
        image_size: op.image_size,
        weights: op.weights,
        bbox_clip: op.bbox_clip,
        score_thresh: op.score_thresh,
        nms_thresh: op.nms_thresh,
        detections_per_img: op.detections_per_img,
        min_size: op.min_size,
    };
    let (lb, rb, pb) = (
        ctx.upload("logits", &logits.data),
        ctx.upload("regression", &reg.data),
        ctx.upload("proposals", &props.data),
    );
    let out = garbage_out(want.numel());
    let launches =
        box_postprocess(ctx, "postprocess", &desc, &lb, &rb, &pb, &out).expect("launches");
    ctx.run(&launches).expect("run");
    let got = Tensor::new(&want.shape, ctx.read(&out, want.numel()).expect("read")).expect("shape");
    (got, want)
}

/// Random proposals `[n, r, 5]` in a 160 x 213 image; the last `unused` rows of each image are
/// unused (zero box, score -1).
pub(super) fn random_postprocess(
    seed: u64,
    n: usize,
    r: usize,
    k: usize,
    unused: usize,
    logit_scale: f32,
) -> (Tensor, Tensor, Tensor) {
    let mut rng = Rng::new(seed);
    let mut props = Vec::new();
    for i in 0..n * r {
        if i % r >= r - unused {
            props.extend([0.0, 0.0, 0.0, 0.0, INVALID_SCORE]);
        } else {
            let (x, y) = (
                rng.uniform(1.0).abs() * 190.0,
                rng.uniform(1.0).abs() * 140.0,
            );
            let (w, h) = (
                2.0 + rng.uniform(1.0).abs() * 60.0,
                2.0 + rng.uniform(1.0).abs() * 60.0,
            );
            props.extend([
                x,
                y,
                (x + w).min(213.0),
                (y + h).min(160.0),
                rng.uniform(1.0).abs(),
            ]);
        }
    }
    let props = Tensor::new(&[n, r, 5], props).expect("proposals");
    (
        rng.tensor(&[n * r, k], logit_scale),
        rng.tensor(&[n * r, k * 4], 1.0),
        props,
    )
}

pub(super) fn head_op(detections: usize) -> BoxPostprocess {
    BoxPostprocess {
        image_size: [160, 213],
        weights: [10.0, 10.0, 5.0, 5.0],
        bbox_clip: bbox_clip(),
        score_thresh: 0.05,
        nms_thresh: 0.5,
        detections_per_img: detections,
        min_size: 1e-2,
    }
}

#[test]
fn box_postprocess_fixture_sizes_match_interpreter() {
    for (seed, r, unused) in [(11, 169, 0), (12, 1000, 0), (13, 150, 27)] {
        let (logits, reg, props) = random_postprocess(seed, 1, r, 91, unused, 6.0);
        let (got, want) = run_postprocess(&head_op(100), &logits, &reg, &props);
        let (_, _, unmatched) = compare(
            &format!("box_postprocess {r} rois ({unused} unused) x 91 classes"),
            &got,
            &want,
            1e-3,
        );
        assert!(unmatched <= 2, "{unmatched} detections unmatched");
    }
}

#[test]
fn box_postprocess_two_images_two_classes_fill_capacity() {
    // Keypoint R-CNN's head: one foreground class; more survivors than the capacity.
    let (logits, reg, props) = random_postprocess(14, 2, 300, 2, 10, 3.0);
    let (got, want) = run_postprocess(&head_op(40), &logits, &reg, &props);
    let (_, _, unmatched) = compare(
        "box_postprocess 2 images x 300 rois x 2 classes, cap 40",
        &got,
        &want,
        1e-3,
    );
    assert!(unmatched <= 1, "{unmatched} detections unmatched");
    assert_eq!(used(&got).len(), used(&want).len());
}

#[test]
fn box_postprocess_background_only_and_an_empty_rpn_level_give_consistent_rows() {
    // K = 1: no foreground class, so no detection at all.
    let (logits, reg, props) = random_postprocess(15, 1, 20, 1, 0, 3.0);
    let (got, want) = run_postprocess(&head_op(7), &logits, &reg, &props);
    println!(
        "background only: {} used rows (want {})",
        used(&got).len(),
        used(&want).len()
    );
    assert_same_rows("background only", &got, &want);
    assert!(used(&got).is_empty());
    // A level without anchors between two others.
    let op = rpn_op(vec![40, 0, 12], 30, 20, 0.0);
    let (got, want) = random_rpn(16, 2, &op);
    let (_, _, unmatched) = compare("proposals with an empty level", &got, &want, 1e-3);
    assert_eq!(unmatched, 0);
}
