//! `segment_keys` + `topk_sort` against a CPU twin: the best `min(block, padded)` pairs of a
//! segment, key descending then index ascending, NaN and unwanted values dropped to padding.

use super::*;
use crate::segment_keys::{self, KeySegment, SegmentKeysParams};
use crate::testing::{Rng, ctx};

const PADDING: (u32, u32) = (0, u32::MAX);

/// `segment_keys`' order key (the CPU twin of the shader's transform).
fn key(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The first `min(block, padded)` pairs the GPU leaves at the segment's start.
fn gpu_topk(values: &[f32], block: usize, mode: u32, thresh: f32) -> Vec<(u32, u32)> {
    let ctx = ctx();
    let padded = padded_len(values.len(), block);
    let scores = ctx.upload("scores", values);
    let pairs = ctx.storage("pairs", padded as u64 * 8);
    let p = SegmentKeysParams {
        groups: 1,
        src_img_stride: values.len() as u32,
        src_elem_stride: 1,
        dst_img_stride: padded as u32,
        mode,
        _pad: [0; 2],
        thresh,
    };
    let seg = KeySegment {
        src_off: 0,
        len: values.len(),
        dst_off: 0,
        padded,
    };
    let mut launches = vec![segment_keys::launch(
        ctx,
        "keys",
        &p,
        1,
        &[seg],
        &scores,
        &pairs,
    )];
    launches.extend(launches_for(ctx, padded, block, &pairs));
    ctx.run(&launches).expect("run");
    let words = ctx.read(&pairs, padded * 2).expect("read");
    let out = padded.min(block);
    words[..out * 2]
        .chunks_exact(2)
        .map(|w| (w[0].to_bits(), w[1].to_bits()))
        .collect()
}

fn launches_for(ctx: &Context, padded: usize, block: usize, pairs: &wgpu::Buffer) -> Vec<Launch> {
    launches(ctx, "topk", &[(0, padded)], block, pairs)
}

/// The CPU twin: values that are not NaN (and `> thresh` in mode 1), by `total_cmp`
/// descending (the key order: -0 below +0) then index, cut at `out` and padded.
fn cpu_topk(values: &[f32], out: usize, mode: u32, thresh: f32) -> Vec<(u32, u32)> {
    let mut idx: Vec<usize> = (0..values.len())
        .filter(|&i| !values[i].is_nan() && (mode == 0 || values[i] > thresh))
        .collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let mut pairs: Vec<(u32, u32)> = idx
        .iter()
        .take(out)
        .map(|&i| (key(values[i]), i as u32))
        .collect();
    pairs.resize(out, PADDING);
    pairs
}

/// Random values with many exact ties, infinities, signed zeros and NaNs of every kind
/// (about one in `nan_every`).
fn values(seed: u64, len: usize, nan_every: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let nans = [
        f32::NAN,
        f32::from_bits(0xffc0_0000),
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffff_ffff),
    ];
    (0..len)
        .map(|i| match rng.range(0, nan_every.max(2) - 1) {
            0 => nans[i % nans.len()],
            1 => [f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0][i % 4],
            _ => (rng.uniform(8.0) * 4.0).round() / 4.0,
        })
        .collect()
}

fn check(what: &str, values: &[f32], block: usize, mode: u32, thresh: f32) {
    let got = gpu_topk(values, block, mode, thresh);
    let want = cpu_topk(values, got.len(), mode, thresh);
    let wanted = want.iter().filter(|p| **p != PADDING).count();
    let nan = values.iter().filter(|v| v.is_nan()).count();
    println!(
        "{what}: {} values ({nan} NaN), block {block}, {wanted} of {} slots filled",
        values.len(),
        got.len()
    );
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!("{what}: slot {i} is {:?}, want {:?}", got[i], want[i]);
    }
}

#[test]
fn topk_of_one_block_with_nan_ties_and_infinities_matches_cpu() {
    check("one block", &values(1, 1500, 6), block_for(2048), 0, 0.0);
    check("small block", &values(2, 100, 4), block_for(100), 0, 0.0);
}

#[test]
fn topk_merging_blocks_with_nan_keeps_the_best_block_of_real_values() {
    // 5000 values in blocks of 2048: three blocks, merges at strides 1 and 2.
    check("merged 2048", &values(3, 5000, 5), BLOCK, 0, 0.0);
    // Top 300 of 2100 in blocks of 512.
    check("merged 512", &values(4, 2100, 3), block_for(300), 0, 0.0);
}

#[test]
fn topk_thresholded_drops_nan_and_values_not_above_thresh() {
    check("thresholded", &values(5, 1000, 4), BLOCK, 1, 0.5);
    // Fewer wanted than one power of two: the sort covers only the gathered prefix.
    let mut few = vec![-1.0f32; 2048];
    for (i, v) in [
        (7, 3.0),
        (100, f32::NAN),
        (1500, 2.0),
        (2047, 3.0),
        (30, 0.75),
    ] {
        few[i] = v;
    }
    check("three wanted of 2048", &few, BLOCK, 1, 0.5);
}

#[test]
fn topk_all_nan_or_none_wanted_is_all_padding() {
    let nan = vec![f32::NAN; 3000];
    let got = gpu_topk(&nan, BLOCK, 0, 0.0);
    assert!(
        got.iter().all(|p| *p == PADDING),
        "all NaN: {:?}",
        &got[..4]
    );
    let low = vec![0.1f32; 700];
    let got = gpu_topk(&low, block_for(700), 1, 0.5);
    assert!(
        got.iter().all(|p| *p == PADDING),
        "none above: {:?}",
        &got[..4]
    );
    check(
        "one wanted",
        &[f32::NAN, 0.2, f32::NAN],
        block_for(3),
        1,
        0.1,
    );
}
