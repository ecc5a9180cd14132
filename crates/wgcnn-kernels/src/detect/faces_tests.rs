//! Tests of the MTCNN kernels that need no model: 'Min'-mode NMS against its CPU twin.

use super::*;
use crate::testing::{Rng, ctx};

/// CPU twin of `wgcnn_models::faces::cascade::nms_min` (facenet-pytorch's `nms_numpy(...,
/// 'Min')`) on boxes already in descending score order: the kept ranks.
fn nms_min_cpu(boxes: &[[f32; 4]], thresh: f32) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    let mut removed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for i in 0..boxes.len() {
        if removed[i] {
            continue;
        }
        keep.push(i);
        let a = &boxes[i];
        for j in i + 1..boxes.len() {
            let b = &boxes[j];
            let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
            if w * h / area(a).min(area(b)) > thresh {
                removed[j] = true;
            }
        }
    }
    keep
}

/// Runs the NMS kernels in 'Min' mode on one segment of `boxes` (descending scores) and
/// returns the kept ranks from the slot column of the gathered rows.
fn nms_min_gpu(boxes: &[[f32; 4]], thresh: f32) -> Vec<usize> {
    let ctx = ctx();
    let n = boxes.len();
    let l = NmsLayout {
        images: 1,
        groups: 1,
        kmax: n,
        cap: n,
        out_cap: n,
        row_width: 7,
        label_offset: 0,
        group_offset: 0,
        thresh,
    };
    let cand = Candidates::new(ctx, "t", &l).expect("candidates");
    let flat: Vec<f32> = boxes.iter().flatten().copied().collect();
    let scores: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 / (2 * n) as f32).collect();
    ctx.queue
        .write_buffer(&cand.boxes, 0, bytemuck::cast_slice(&flat));
    ctx.queue
        .write_buffer(&cand.scores, 0, bytemuck::cast_slice(&scores));
    let out = ctx.storage("rows", (n * 7) as u64 * 4);
    let launches = nms::launches_with(ctx, "t", &l, Overlap::Min, &cand, &out).expect("nms");
    ctx.run(&launches).expect("run");
    let rows = ctx.read(&out, n * 7).expect("read");
    rows.chunks_exact(7)
        .take_while(|r| r[4] >= 0.0)
        .map(|r| r[6] as usize)
        .collect()
}

/// 'Min' mode: a box nested in a better one is dropped although its IoU is low; an overlap
/// of exactly the threshold (7 of 10 pixel columns) survives; pixel widths count +1.
#[test]
fn nms_min_mode_drops_nested_boxes_and_keeps_an_overlap_equal_to_the_threshold() {
    let boxes = [
        [0.0, 0.0, 99.0, 99.0],
        [10.0, 10.0, 29.0, 29.0],
        [200.0, 0.0, 209.0, 9.0],
        [203.0, 0.0, 212.0, 9.0],
        [300.0, 0.0, 300.0, 0.0],
    ];
    assert_eq!(nms_min_cpu(&boxes, 0.7), vec![0, 2, 3, 4]);
    assert_eq!(nms_min_gpu(&boxes, 0.7), vec![0, 2, 3, 4]);
    assert_eq!(nms_min_gpu(&boxes, 0.69), vec![0, 2, 4]);
}

/// 'Min' mode against its CPU twin on random clustered boxes (O-Net's final NMS), many
/// segment sizes up to a whole sort block.
#[test]
fn nms_min_mode_matches_the_cpu_twin_on_random_boxes() {
    let mut rng = Rng::new(13);
    for n in [1, 2, 31, 33, 200, 777, 2048] {
        let boxes: Vec<[f32; 4]> = (0..n)
            .map(|_| {
                let (x, y) = (rng.range(0, 400) as f32, rng.range(0, 300) as f32);
                let s = rng.range(0, 80) as f32 + rng.uniform(1.0).abs();
                [x, y, x + s, y + s * (0.5 + rng.uniform(0.5).abs())]
            })
            .collect();
        for thresh in [0.3, 0.7] {
            assert_eq!(
                nms_min_gpu(&boxes, thresh),
                nms_min_cpu(&boxes, thresh),
                "{n} boxes, threshold {thresh}"
            );
        }
    }
}

#[test]
fn below_is_the_next_float_down_so_strict_compare_means_at_least() {
    for t in [0.6f32, 1.0, 1e-30, -0.5, 0.0] {
        let b = below(t);
        assert!(b < t, "{t}");
        // No f32 lies strictly between: the midpoint rounds to one of them.
        let mid = ((b as f64 + t as f64) / 2.0) as f32;
        assert!(mid == b || mid == t, "{t}");
    }
    assert_eq!(below(0.6).to_bits() + 1, 0.6f32.to_bits());
}
