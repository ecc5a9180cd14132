//! NaN inputs through the composed detection stages: NaN objectness logits and class logits
//! (both signs), NaN box deltas, NaN and degenerate reference boxes. The defined behaviour,
//! shared with the CPU interpreter, is that such rows are dropped: never a proposal or a
//! detection, never a slot of the top-k, never a NaN in the output.

use super::tests::{
    assert_same_rows, compare, head_op, random_postprocess, rpn_op, run_postprocess, run_proposals,
    used,
};
use crate::testing::Rng;
use wgcnn_graph::{INVALID_SCORE, Tensor};

/// A quiet NaN with the sign bit set: its order key would sort it below -inf.
fn neg_nan() -> f32 {
    f32::from_bits(0xffc0_0000)
}

/// A NaN with a payload other than the canonical one (a signalling pattern).
fn odd_nan() -> f32 {
    f32::from_bits(0x7f80_0001)
}

fn assert_no_nan(what: &str, t: &Tensor) {
    let bad: Vec<usize> = (0..t.data.len()).filter(|&i| t.data[i].is_nan()).collect();
    assert!(bad.is_empty(), "{what}: NaN at {bad:?}");
}

/// `n` boxes side by side in the 160 x 213 image, 20 x 20 each, disjoint (NMS keeps all).
fn disjoint_boxes(n: usize) -> Vec<f32> {
    (0..n)
        .flat_map(|i| {
            let x = 2.0 + i as f32 * 25.0;
            [x, 10.0, x + 20.0, 30.0]
        })
        .collect()
}

#[test]
fn proposals_drop_nan_logits_and_nan_boxes_before_the_top_k() {
    // Logits: NaN (both signs and a signalling pattern) where the best scores would be; box 4
    // has the best real logit but a NaN corner. With pre_nms_top_n 3 the NaN rows must not
    // take top-k slots: the top 3 are boxes 4, 1, 3, and box 4 then fails as a NaN box.
    let n = 7;
    let mut anchors = disjoint_boxes(n);
    anchors[4 * 4] = f32::NAN;
    let anchors = Tensor::new(&[n, 4], anchors).expect("anchors");
    let logits = vec![f32::NAN, 2.0, neg_nan(), 1.0, 3.0, 0.5, odd_nan()];
    let obj = Tensor::new(&[1, n], logits).expect("logits");
    let deltas = Tensor::zeros(&[1, n, 4]);
    let op = rpn_op(vec![n], 3, n, 0.0);
    let (got, want) = run_proposals(&op, &obj, &deltas, &anchors);
    assert_no_nan("interpreter", &want);
    assert_no_nan("gpu", &got);
    assert_same_rows("NaN logits, top 3", &got, &want);
    let kept: Vec<f32> = used(&got).iter().map(|r| r[0]).collect();
    println!("kept boxes at x1 = {kept:?}");
    // Boxes 1 and 3 (x1 = 27 and 77), best first.
    assert_eq!(kept, vec![27.0, 77.0]);
}

#[test]
fn proposals_with_nan_logits_deltas_and_anchors_match_interpreter() {
    let op = rpn_op(vec![3000, 800, 200], 500, 300, 0.0);
    let mut rng = Rng::new(41);
    let total: usize = op.level_sizes.iter().sum();
    let mut anchors = super::tests::anchors_for(&mut rng, &op.level_sizes, op.image_size);
    let mut obj = rng.tensor(&[1, total], 4.0);
    let mut deltas = rng.tensor(&[1, total, 4], 0.5);
    let nans = [f32::NAN, neg_nan(), odd_nan()];
    let mut offset = 0;
    for &size in &op.level_sizes {
        let level = offset..offset + size;
        // The best logit of each level becomes NaN: it would otherwise be kept first.
        let best = level
            .clone()
            .max_by(|&a, &b| obj.data[a].total_cmp(&obj.data[b]))
            .expect("non-empty level");
        obj.data[best] = f32::NAN;
        for i in level {
            if i % 17 == 0 {
                obj.data[i] = nans[i % 3];
            }
            if i % 23 == 0 {
                // High logits so that these rows are in the top-k and only the NaN drops them.
                obj.data[i] = 10.0 + (i % 7) as f32;
                deltas.data[i * 4 + i % 4] = nans[i % 3];
            }
            if i % 101 == 0 {
                obj.data[i] = 12.0;
                anchors.data[i * 4 + (i / 101) % 4] = f32::NAN;
            }
        }
        offset += size;
    }
    // A degenerate anchor (zero width) with an infinite dx: 0 * inf is NaN, as in torchvision.
    anchors.data[5 * 4 + 2] = anchors.data[5 * 4];
    deltas.data[5 * 4] = f32::INFINITY;
    obj.data[5] = 15.0;
    let (got, want) = run_proposals(&op, &obj, &deltas, &anchors);
    assert_no_nan("interpreter", &want);
    assert_no_nan("gpu", &got);
    let (_, _, unmatched) = compare("proposals with NaN rows", &got, &want, 1e-3);
    assert!(unmatched <= 3, "{unmatched} proposals unmatched");
    assert_eq!(used(&got).len(), used(&want).len());
}

#[test]
fn box_postprocess_drops_nan_scores_regressions_and_proposals_like_interpreter() {
    for (seed, k) in [(42u64, 91usize), (43, 2)] {
        let (mut logits, mut reg, mut props) = random_postprocess(seed, 1, 300, k, 10, 6.0);
        let nans = [f32::NAN, neg_nan(), odd_nan()];
        for r in 0..300 {
            if r % 29 == 0 {
                // One NaN logit makes the row's whole softmax NaN.
                logits.data[r * k + r % k] = nans[r % 3];
            }
            if r % 31 == 0 {
                let c = 1 + r % (k - 1);
                // A confident class so that only the NaN drops it.
                logits.data[r * k + c] = 20.0;
                reg.data[(r * k + c) * 4 + r % 4] = nans[r % 3];
            }
            if r % 37 == 0 && r < 290 {
                props.data[r * 5 + r % 4] = f32::NAN;
            }
        }
        // A proposal whose score is NaN is not a proposal.
        props.data[6 * 5 + 4] = f32::NAN;
        logits.data[6 * k + 1] = 20.0;
        let (got, want) = run_postprocess(&head_op(100), &logits, &reg, &props);
        assert_no_nan("interpreter", &want);
        assert_no_nan("gpu", &got);
        let (_, _, unmatched) = compare(
            &format!("box_postprocess with NaN rows, {k} classes"),
            &got,
            &want,
            1e-3,
        );
        assert!(unmatched <= 2, "{unmatched} detections unmatched");
        assert_eq!(used(&got).len(), used(&want).len());
    }
}

#[test]
fn box_postprocess_all_nan_gives_only_unused_rows() {
    let (logits, reg, props) = random_postprocess(44, 1, 40, 5, 0, 3.0);
    let logits = Tensor::new(&logits.shape, vec![f32::NAN; logits.numel()]).expect("logits");
    let (got, want) = run_postprocess(&head_op(10), &logits, &reg, &props);
    assert_same_rows("all NaN", &got, &want);
    assert!(used(&got).is_empty(), "{:?}", got.data);
    assert!(
        got.data.chunks_exact(6).all(|r| r[4] == INVALID_SCORE),
        "every row unused"
    );
}
