//! `Op::Proposals`, `Op::BoxPostprocess` and `Op::ScaleBoxes` against hand-computed cases:
//! NMS ties and thresholds, per-group NMS, per-level top-n, clipping at the image border,
//! empty results, box decoding with the `dw`/`dh` clamp, and the fixed-capacity layout.
//!
//! With zero deltas a proposal is its anchor exactly, so NMS cases are written as anchors.

use wgcnn_graph::interp::eval_op;
use wgcnn_graph::{BoxPostprocess, GraphError, INVALID_SCORE, Op, Proposals, Tensor};

type B = [f32; 4];

fn clip_value() -> f32 {
    (1000f64 / 16.0).ln() as f32
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn props_op(
    level_sizes: &[usize],
    pre: usize,
    post: usize,
    nms: f32,
    score: f32,
    image: [usize; 2],
) -> Op {
    Op::Proposals(Proposals {
        level_sizes: level_sizes.to_vec(),
        pre_nms_top_n: pre,
        post_nms_top_n: post,
        nms_thresh: nms,
        score_thresh: score,
        min_size: 1e-3,
        image_size: image,
        bbox_clip: clip_value(),
    })
}

/// Runs `op` on one image: `logits[i]` for `anchors[i]`, zero deltas unless given.
fn run_props(
    op: &Op,
    logits: &[f32],
    anchors: &[B],
    deltas: Option<&[B]>,
) -> Result<Tensor, GraphError> {
    let a = anchors.len();
    let obj = Tensor::new(&[1, a], logits.to_vec())?;
    let del: Vec<f32> = match deltas {
        Some(d) => d.iter().flatten().copied().collect(),
        None => vec![0.0; a * 4],
    };
    let del = Tensor::new(&[1, a, 4], del)?;
    let anc = Tensor::new(&[a, 4], anchors.iter().flatten().copied().collect())?;
    eval_op(op, &[&obj, &del, &anc])
}

/// The rows of a `[N, cap, width]` output.
fn rows(out: &Tensor) -> Vec<Vec<f32>> {
    out.data
        .chunks_exact(out.shape[2])
        .map(<[f32]>::to_vec)
        .collect()
}

/// An unused row: zero box (and label), score `INVALID_SCORE`.
fn unused(width: usize) -> Vec<f32> {
    let mut r = vec![0.0; width];
    r[4] = INVALID_SCORE;
    r
}

fn row5(b: B, score: f32) -> Vec<f32> {
    vec![b[0], b[1], b[2], b[3], score]
}

fn assert_rows(what: &str, out: &Tensor, want: &[Vec<f32>], tol: f32) {
    let got = rows(out);
    let mut worst = 0f32;
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = g.iter().zip(w).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d <= tol, "{what}: row {i} got {g:?} want {w:?}");
        worst = worst.max(d);
    }
    println!("{what}: {} rows, max abs error {worst:.3e}", got.len());
}

#[test]
fn proposals_one_box_fills_the_first_row_and_marks_the_rest_unused() -> Result<(), GraphError> {
    let op = props_op(&[1], 10, 4, 0.7, 0.0, [100, 100]);
    let b = [2.0, 3.0, 10.0, 12.0];
    let out = run_props(&op, &[0.4], &[b], None)?;
    assert_eq!(out.shape, [1, 4, 5]);
    let want = vec![row5(b, sigmoid(0.4)), unused(5), unused(5), unused(5)];
    assert_rows("one box", &out, &want, 1e-6);
    Ok(())
}

#[test]
fn proposals_with_nothing_left_are_all_unused_rows() -> Result<(), GraphError> {
    let anchors = [[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 20.0, 20.0]];
    // Every score below score_thresh.
    let op = props_op(&[2], 10, 3, 0.7, 0.9, [100, 100]);
    let out = run_props(&op, &[-1.0, 1.0], &anchors, None)?;
    assert_rows("below score_thresh", &out, &vec![unused(5); 3], 0.0);
    // Every box outside the image: clipped to zero width, dropped by min_size.
    let outside = [[120.0, 0.0, 130.0, 10.0], [0.0, -30.0, 10.0, -20.0]];
    let op = props_op(&[2], 10, 3, 0.7, 0.0, [100, 100]);
    let out = run_props(&op, &[1.0, 2.0], &outside, None)?;
    assert_rows("outside the image", &out, &vec![unused(5); 3], 0.0);
    Ok(())
}

#[test]
fn nms_equal_scores_go_by_lower_index_first() -> Result<(), GraphError> {
    // IoU([0,0,10,10], [0,0,10,9]) = 0.9: with equal scores the lower index survives.
    let a = [0.0, 0.0, 10.0, 10.0];
    let b = [0.0, 0.0, 10.0, 9.0];
    let op = props_op(&[2], 10, 2, 0.7, 0.0, [100, 100]);
    let s = sigmoid(1.0);
    let out = run_props(&op, &[1.0, 1.0], &[a, b], None)?;
    assert_rows("a before b", &out, &[row5(a, s), unused(5)], 0.0);
    let out = run_props(&op, &[1.0, 1.0], &[b, a], None)?;
    assert_rows("b before a", &out, &[row5(b, s), unused(5)], 0.0);
    // Disjoint boxes with equal scores are listed by index.
    let c = [50.0, 50.0, 60.0, 60.0];
    let out = run_props(&op, &[1.0, 1.0], &[c, a], None)?;
    assert_rows("disjoint ties", &out, &[row5(c, s), row5(a, s)], 0.0);
    Ok(())
}

#[test]
fn nms_suppresses_only_iou_strictly_above_the_threshold() -> Result<(), GraphError> {
    // IoU([0,0,2,1], [0,0,1,1]) = 1 / 2 exactly.
    let big = [0.0, 0.0, 2.0, 1.0];
    let small = [0.0, 0.0, 1.0, 1.0];
    let (s0, s1) = (sigmoid(2.0), sigmoid(1.0));
    let out = run_props(
        &props_op(&[2], 10, 2, 0.5, 0.0, [10, 10]),
        &[2.0, 1.0],
        &[big, small],
        None,
    )?;
    assert_rows(
        "IoU 0.5, threshold 0.5",
        &out,
        &[row5(big, s0), row5(small, s1)],
        0.0,
    );
    let out = run_props(
        &props_op(&[2], 10, 2, 0.49, 0.0, [10, 10]),
        &[2.0, 1.0],
        &[big, small],
        None,
    )?;
    assert_rows(
        "IoU 0.5, threshold 0.49",
        &out,
        &[row5(big, s0), unused(5)],
        0.0,
    );

    // torchvision compares the f32 IoU with the threshold as a double. IoU 7/10 rounds to
    // f32 0.699999988 < 0.7: kept at threshold 0.7. IoU 3/10 rounds to f32 0.300000012 > 0.3:
    // suppressed at threshold 0.3 (an f32 comparison would keep it).
    let wide = [0.0, 0.0, 10.0, 1.0];
    let seven = [0.0, 0.0, 7.0, 1.0];
    let three = [0.0, 0.0, 3.0, 1.0];
    let out = run_props(
        &props_op(&[2], 10, 2, 0.7, 0.0, [10, 10]),
        &[2.0, 1.0],
        &[wide, seven],
        None,
    )?;
    assert_rows(
        "IoU f32(0.7), threshold 0.7",
        &out,
        &[row5(wide, s0), row5(seven, s1)],
        0.0,
    );
    let out = run_props(
        &props_op(&[2], 10, 2, 0.3, 0.0, [10, 10]),
        &[2.0, 1.0],
        &[wide, three],
        None,
    )?;
    assert_rows(
        "IoU f32(0.3), threshold 0.3",
        &out,
        &[row5(wide, s0), unused(5)],
        0.0,
    );
    Ok(())
}

#[test]
fn nms_runs_per_level_and_top_n_is_per_level() -> Result<(), GraphError> {
    let a = [0.0, 0.0, 10.0, 10.0];
    // The same box on two levels: both kept; twice on one level: one kept.
    let out = run_props(
        &props_op(&[1, 1], 10, 3, 0.7, 0.0, [50, 50]),
        &[1.0, 0.5],
        &[a, a],
        None,
    )?;
    assert_rows(
        "two levels",
        &out,
        &[row5(a, sigmoid(1.0)), row5(a, sigmoid(0.5)), unused(5)],
        0.0,
    );
    let out = run_props(
        &props_op(&[2], 10, 3, 0.7, 0.0, [50, 50]),
        &[1.0, 0.5],
        &[a, a],
        None,
    )?;
    assert_rows(
        "one level",
        &out,
        &[row5(a, sigmoid(1.0)), unused(5), unused(5)],
        0.0,
    );

    // Level 0 has 3 disjoint boxes (logits 1, 3, 2), level 1 one (logit 0). pre_nms_top_n 2
    // drops level 0's logit 1 although it beats level 1's box.
    let boxes = [
        [0.0, 0.0, 5.0, 5.0],
        [10.0, 0.0, 15.0, 5.0],
        [20.0, 0.0, 25.0, 5.0],
        [30.0, 0.0, 35.0, 5.0],
    ];
    let logits = [1.0, 3.0, 2.0, 0.0];
    let out = run_props(
        &props_op(&[3, 1], 2, 4, 0.7, 0.0, [50, 50]),
        &logits,
        &boxes,
        None,
    )?;
    let want = [
        row5(boxes[1], sigmoid(3.0)),
        row5(boxes[2], sigmoid(2.0)),
        row5(boxes[3], sigmoid(0.0)),
        unused(5),
    ];
    assert_rows("pre_nms_top_n per level", &out, &want, 0.0);
    // post_nms_top_n keeps the best two.
    let out = run_props(
        &props_op(&[3, 1], 2, 2, 0.7, 0.0, [50, 50]),
        &logits,
        &boxes,
        None,
    )?;
    assert_rows("post_nms_top_n", &out, &want[..2], 0.0);
    Ok(())
}

#[test]
fn proposals_are_clipped_at_the_image_border() -> Result<(), GraphError> {
    // Image (h, w) = (16, 32).
    let anchors = [
        [-5.0, -5.0, 20.0, 20.0], // -> [0, 0, 20, 16]
        [0.0, 0.0, 32.0, 16.0],   // touches all four borders: unchanged
        [40.0, 0.0, 50.0, 10.0],  // -> zero width: removed
        [30.0, 2.0, 40.0, 14.0],  // -> [30, 2, 32, 14]
    ];
    let logits = [4.0, 3.0, 2.0, 1.0];
    let out = run_props(
        &props_op(&[4], 10, 4, 0.7, 0.0, [16, 32]),
        &logits,
        &anchors,
        None,
    )?;
    let want = [
        row5([0.0, 0.0, 20.0, 16.0], sigmoid(4.0)),
        row5([0.0, 0.0, 32.0, 16.0], sigmoid(3.0)),
        row5([30.0, 2.0, 32.0, 14.0], sigmoid(1.0)),
        unused(5),
    ];
    assert_rows("clipped", &out, &want, 0.0);
    Ok(())
}

#[test]
fn proposals_decode_deltas_with_the_dw_dh_clamp() -> Result<(), GraphError> {
    // Anchor [500, 500, 510, 510]: centre 505, size 10. Deltas (0.1, -0.2, 10, -1): dw clamped
    // to log(1000/16), so the width is 10 * 62.5 = 625.
    let anchor = [500.0, 500.0, 510.0, 510.0];
    let deltas = [0.1, -0.2, 10.0, -1.0];
    let out = run_props(
        &props_op(&[1], 10, 1, 0.7, 0.0, [2000, 2000]),
        &[0.0],
        &[anchor],
        Some(&[deltas]),
    )?;
    let half_h = 5.0 * (-1f64).exp();
    let want = row5(
        [
            193.5,
            (503.0 - half_h) as f32,
            818.5,
            (503.0 + half_h) as f32,
        ],
        0.5,
    );
    assert_rows("decode + clamp", &out, &[want], 1e-3);
    Ok(())
}

#[test]
fn proposals_batch_images_are_independent() -> Result<(), GraphError> {
    let op = props_op(&[2], 10, 2, 0.7, 0.0, [50, 50]);
    let a = [0.0, 0.0, 10.0, 10.0];
    let b = [20.0, 20.0, 30.0, 30.0];
    let obj = Tensor::new(&[2, 2], vec![1.0, 2.0, 2.0, -9.0])?;
    let del = Tensor::zeros(&[2, 2, 4]);
    let anc = Tensor::new(&[2, 4], [a, b].iter().flatten().copied().collect())?;
    let out = eval_op(&op, &[&obj, &del, &anc])?;
    assert_eq!(out.shape, [2, 2, 5]);
    let want = [
        row5(b, sigmoid(2.0)),
        row5(a, sigmoid(1.0)),
        row5(a, sigmoid(2.0)),
        row5(b, sigmoid(-9.0)),
    ];
    assert_rows("batch of 2", &out, &want, 0.0);
    Ok(())
}

fn post_op(image: [usize; 2], score: f32, cap: usize) -> Op {
    Op::BoxPostprocess(BoxPostprocess {
        image_size: image,
        weights: [10.0, 10.0, 5.0, 5.0],
        bbox_clip: clip_value(),
        score_thresh: score,
        nms_thresh: 0.5,
        detections_per_img: cap,
        min_size: 1e-2,
    })
}

/// Runs BoxPostprocess on one image: `proposals[r]` (score, box), `logits[r]`, `codes[r]`.
fn run_post(
    op: &Op,
    proposals: &[(f32, B)],
    logits: &[Vec<f32>],
    codes: &[Vec<f32>],
) -> Result<Tensor, GraphError> {
    let (r, k) = (proposals.len(), logits[0].len());
    let props: Vec<f32> = proposals
        .iter()
        .flat_map(|(s, b)| [b[0], b[1], b[2], b[3], *s])
        .collect();
    eval_op(
        op,
        &[
            &Tensor::new(&[r, k], logits.concat())?,
            &Tensor::new(&[r, k * 4], codes.concat())?,
            &Tensor::new(&[1, r, 5], props)?,
        ],
    )
}

fn row6(b: B, score: f32, label: f32) -> Vec<f32> {
    vec![b[0], b[1], b[2], b[3], score, label]
}

fn softmax(x: &[f32]) -> Vec<f32> {
    let sum: f64 = x.iter().map(|&v| (v as f64).exp()).sum();
    x.iter().map(|&v| ((v as f64).exp() / sum) as f32).collect()
}

#[test]
fn box_postprocess_decodes_per_class_with_weights_and_clamp() -> Result<(), GraphError> {
    // Proposal [10, 20, 30, 60]: centre (20, 40), size 20 x 40. Class 1 codes (1, 2, 5 ln 2, 0)
    // / (10, 10, 5, 5) give centre (22, 48), size 40 x 40. Class 2's dw = 50 / 5 is clamped:
    // width 20 * 62.5 = 1250, clipped to the image width 200.
    let prop = [10.0, 20.0, 30.0, 60.0];
    let logits = vec![0.0, 5.0, 4.0];
    let codes = vec![
        9.0,
        9.0,
        9.0,
        9.0,
        1.0,
        2.0,
        5.0 * 2f32.ln(),
        0.0,
        0.0,
        0.0,
        50.0,
        0.0,
    ];
    let out = run_post(
        &post_op([100, 200], 0.05, 3),
        &[(1.0, prop)],
        std::slice::from_ref(&logits),
        &[codes],
    )?;
    let p = softmax(&logits);
    let want = [
        row6([2.0, 28.0, 42.0, 68.0], p[1], 1.0),
        row6([0.0, 20.0, 200.0, 60.0], p[2], 2.0),
        unused(6),
    ];
    assert_rows("decode with weights", &out, &want, 1e-4);
    Ok(())
}

#[test]
fn box_postprocess_nms_is_per_class_and_capped() -> Result<(), GraphError> {
    let b = [10.0, 10.0, 50.0, 50.0];
    let zero = vec![0.0; 12];
    let op = post_op([100, 100], 0.05, 5);
    // Two proposals on the same box, both class 1: the weaker is suppressed.
    let same = [vec![0.0, 3.0, -5.0], vec![0.0, 2.0, -5.0]];
    let out = run_post(
        &op,
        &[(1.0, b), (1.0, b)],
        &same,
        &[zero.clone(), zero.clone()],
    )?;
    let got = rows(&out);
    println!("same class: {:?}", &got[..2]);
    assert_eq!(got[0][5], 1.0);
    assert!((got[0][4] - softmax(&same[0])[1]).abs() < 1e-6);
    assert_eq!(got[1][4], INVALID_SCORE);
    // Second proposal voting class 2: both kept.
    let split = [vec![0.0, 3.0, -5.0], vec![0.0, -5.0, 2.0]];
    let out = run_post(
        &op,
        &[(1.0, b), (1.0, b)],
        &split,
        &[zero.clone(), zero.clone()],
    )?;
    let got = rows(&out);
    println!("two classes: {:?}", &got[..3]);
    assert_eq!((got[0][5], got[1][5], got[2][4]), (1.0, 2.0, INVALID_SCORE));
    // detections_per_img: 3 disjoint proposals, cap 2 keeps the best two.
    let boxes = [
        [0.0, 0.0, 10.0, 10.0],
        [20.0, 0.0, 30.0, 10.0],
        [40.0, 0.0, 50.0, 10.0],
    ];
    let lg = [
        vec![0.0, 1.0, -9.0],
        vec![0.0, 3.0, -9.0],
        vec![0.0, 2.0, -9.0],
    ];
    let cands: Vec<(f32, B)> = boxes.iter().map(|&b| (1.0, b)).collect();
    let out = run_post(
        &post_op([100, 100], 0.05, 2),
        &cands,
        &lg,
        &[zero.clone(), zero.clone(), zero],
    )?;
    let want = [
        row6(boxes[1], softmax(&lg[1])[1], 1.0),
        row6(boxes[2], softmax(&lg[2])[1], 1.0),
    ];
    assert_rows("detections_per_img", &out, &want, 1e-6);
    Ok(())
}

#[test]
fn box_postprocess_empty_results_are_unused_rows() -> Result<(), GraphError> {
    let empty = unused(6);
    let b = [10.0, 10.0, 50.0, 50.0];
    let zero = vec![0.0; 8];
    // Score equal to the threshold is dropped (`scores > box_score_thresh`).
    let out = run_post(
        &post_op([100, 100], 0.5, 2),
        &[(1.0, b)],
        &[vec![0.0, 0.0]],
        std::slice::from_ref(&zero),
    )?;
    assert_rows(
        "score == thresh",
        &out,
        &[empty.clone(), empty.clone()],
        0.0,
    );
    // Boxes thinner than min_size 1e-2 are dropped.
    let thin = [10.0, 10.0, 10.005, 50.0];
    let out = run_post(
        &post_op([100, 100], 0.05, 2),
        &[(1.0, thin)],
        &[vec![0.0, 4.0]],
        std::slice::from_ref(&zero),
    )?;
    assert_rows("thin box", &out, &[empty.clone(), empty.clone()], 0.0);
    // Unused proposal rows are skipped whatever their logits.
    let out = run_post(
        &post_op([100, 100], 0.05, 2),
        &[(INVALID_SCORE, b)],
        &[vec![0.0, 9.0]],
        &[zero],
    )?;
    assert_rows("unused proposals", &out, &[empty.clone(), empty], 0.0);
    Ok(())
}

#[test]
fn scale_boxes_scales_x_by_width_and_y_by_height_ratio() -> Result<(), GraphError> {
    let empty = unused(6);
    let mut data = row6([10.0, 20.0, 30.0, 40.0], 0.9, 3.0);
    data.extend(&empty);
    let dets = Tensor::new(&[1, 2, 6], data)?;
    // scale = (original / resized) as (height, width).
    let out = eval_op(&Op::ScaleBoxes { scale: [0.5, 2.0] }, &[&dets])?;
    assert_rows(
        "scale boxes",
        &out,
        &[row6([20.0, 10.0, 60.0, 20.0], 0.9, 3.0), empty],
        0.0,
    );
    Ok(())
}

#[test]
fn detection_ops_reject_mismatched_shapes() {
    let obj = Tensor::zeros(&[1, 3]);
    let del = Tensor::zeros(&[1, 3, 4]);
    let anc = Tensor::zeros(&[3, 4]);
    let r = eval_op(
        &props_op(&[2], 10, 2, 0.7, 0.0, [10, 10]),
        &[&obj, &del, &anc],
    );
    println!("level sizes 2 vs 3 anchors: {r:?}");
    assert!(matches!(r, Err(GraphError::Shape { .. })));
    let logits = Tensor::zeros(&[2, 3]);
    let reg = Tensor::zeros(&[2, 8]);
    let props = Tensor::zeros(&[1, 2, 5]);
    let r = eval_op(&post_op([10, 10], 0.05, 2), &[&logits, &reg, &props]);
    println!("regression [2, 8] for 3 classes: {r:?}");
    assert!(matches!(r, Err(GraphError::Shape { .. })));
    let r = eval_op(
        &Op::ScaleBoxes { scale: [1.0, 1.0] },
        &[&Tensor::zeros(&[1, 2, 5])],
    );
    println!("scale boxes [1, 2, 5]: {r:?}");
    assert!(matches!(r, Err(GraphError::Shape { .. })));
}
