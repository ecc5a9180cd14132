//! `roi_align` against the CPU interpreter: random boxes (unused rows, boxes on and past the
//! image border, tiny and huge boxes) over several FPN levels.

use super::*;
use crate::testing::{Rng, assert_close, ctx};
use wgcnn_graph::{INVALID_SCORE, Op, RoiAlign, Tensor, interp};

/// Random boxes `[n, r, 5]` inside (and a little beyond) an `h` x `w` image; every fifth row
/// unused.
fn random_boxes(rng: &mut Rng, n: usize, r: usize, h: f32, w: f32) -> Tensor {
    let mut data = Vec::with_capacity(n * r * 5);
    for i in 0..n * r {
        if i % 5 == 4 {
            data.extend([0.0, 0.0, 0.0, 0.0, INVALID_SCORE]);
            continue;
        }
        let size = match i % 4 {
            0 => 0.5 + rng.uniform(1.0).abs() * 3.0,
            1 => 8.0 + rng.uniform(1.0).abs() * 40.0,
            2 => 60.0 + rng.uniform(1.0).abs() * 200.0,
            _ => rng.uniform(1.0).abs() * w,
        };
        let x1 = rng.uniform(1.0).abs() * w - 4.0;
        let y1 = rng.uniform(1.0).abs() * h - 4.0;
        let (x2, y2) = if i % 7 == 3 {
            (w, h)
        } else {
            (x1 + size, y1 + size * (0.5 + rng.uniform(0.4).abs()))
        };
        data.extend([
            x1.max(0.0),
            y1.max(0.0),
            x2.min(w),
            y2.min(h),
            rng.uniform(1.0).abs(),
        ]);
    }
    Tensor::new(&[n, r, 5], data).expect("boxes")
}

fn check(seed: u64, n: usize, r: usize, c: usize, image: [usize; 2], levels: usize, op: RoiAlign) {
    check_with(seed, n, r, c, image, levels, op, |_| {});
}

/// [`check`] with the random boxes changed by `poison` first.
#[allow(clippy::too_many_arguments)]
fn check_with(
    seed: u64,
    n: usize,
    r: usize,
    c: usize,
    image: [usize; 2],
    levels: usize,
    op: RoiAlign,
    poison: impl Fn(&mut Tensor),
) {
    let ctx = ctx();
    let mut rng = Rng::new(seed);
    let mut boxes = random_boxes(&mut rng, n, r, image[0] as f32, image[1] as f32);
    poison(&mut boxes);
    let feats: Vec<Tensor> = (0..levels)
        .map(|l| {
            rng.tensor(
                &[n, c, image[0].div_ceil(4 << l), image[1].div_ceil(4 << l)],
                2.0,
            )
        })
        .collect();
    let mut inputs = vec![&boxes];
    inputs.extend(feats.iter());
    let want = interp::eval_op(&Op::RoiAlign(op.clone()), &inputs).expect("interp");
    let desc = RoiAlignDesc {
        images: n,
        rows: r,
        box_stride: boxes.shape[2],
        channels: c,
        levels: feats.iter().map(|f| [f.shape[2], f.shape[3]]).collect(),
        scales: op.scales.clone(),
        output: op.output,
        sampling_ratio: op.sampling_ratio,
        aligned: op.aligned,
        canonical_scale: op.canonical_scale,
        canonical_level: op.canonical_level,
    };
    let bb = ctx.upload("boxes", &boxes.data);
    let fb: Vec<wgpu::Buffer> = feats
        .iter()
        .map(|f| ctx.upload("feature", &f.data))
        .collect();
    let refs: Vec<&wgpu::Buffer> = fb.iter().collect();
    let out = ctx.storage("out", want.numel() as u64 * 4);
    // Garbage in the output first: every element must be written.
    ctx.queue
        .write_buffer(&out, 0, bytemuck::cast_slice(&vec![f32::NAN; want.numel()]));
    let launches = launches(ctx, "t", &desc, &bb, &refs, &out).expect("launches");
    ctx.run(&launches).expect("run");
    let got = Tensor::new(&want.shape, ctx.read(&out, want.numel()).expect("read")).expect("shape");
    assert_close(
        &format!(
            "roi_align {n}x{r} boxes, {levels} levels, out {:?}, sampling {}, aligned {}",
            op.output, op.sampling_ratio, op.aligned
        ),
        &got,
        &want,
        1e-5,
    );
}

fn op(levels: usize, output: [usize; 2], sampling_ratio: usize, aligned: bool) -> RoiAlign {
    RoiAlign {
        output,
        sampling_ratio,
        scales: (0..levels).map(|l| 1.0 / (4 << l) as f32).collect(),
        canonical_scale: 224.0,
        canonical_level: 4.0,
        aligned,
    }
}

#[test]
fn roi_align_four_fpn_levels_7x7_sampling2_matches_interpreter() {
    check(1, 1, 60, 13, [160, 213], 4, op(4, [7, 7], 2, false));
}

#[test]
fn roi_align_two_images_14x14_aligned_adaptive_grid_matches_interpreter() {
    check(2, 2, 23, 5, [96, 128], 4, op(4, [14, 14], 0, true));
}

#[test]
fn roi_align_single_level_and_five_levels_in_two_launches_match_interpreter() {
    check(3, 1, 31, 3, [64, 80], 1, op(1, [7, 7], 2, false));
    // canonical scale 56: boxes of side 112 and more land on levels 3 and 4 (second launch).
    check(
        4,
        1,
        45,
        4,
        [256, 256],
        5,
        RoiAlign {
            canonical_scale: 56.0,
            ..op(5, [5, 3], 2, false)
        },
    );
}

/// NaN in one coordinate of every third used box (each coordinate in turn, both signs of
/// NaN): the level, the extent, the grid and the sample points of those boxes.
fn nan_coordinates(boxes: &mut Tensor) {
    let nans = [
        f32::NAN,
        f32::from_bits(0xffc0_0000),
        f32::from_bits(0x7f80_0001),
    ];
    for (i, row) in boxes.data.chunks_exact_mut(5).enumerate() {
        if row[4] != INVALID_SCORE && i % 3 == 0 {
            row[(i / 3) % 4] = nans[i % 3];
        }
    }
}

#[test]
fn roi_align_nan_box_coordinates_match_interpreter_and_stay_finite() {
    // Not aligned (NaN extents become 1) with a fixed grid, and aligned with the adaptive grid
    // (NaN extents give an empty grid).
    check_with(
        5,
        1,
        40,
        5,
        [160, 213],
        4,
        op(4, [7, 7], 2, false),
        nan_coordinates,
    );
    check_with(
        6,
        1,
        40,
        3,
        [96, 128],
        4,
        op(4, [5, 5], 0, true),
        nan_coordinates,
    );
    check_with(
        7,
        1,
        40,
        3,
        [96, 128],
        4,
        op(4, [5, 5], 0, false),
        nan_coordinates,
    );
}

/// The rows widened to detections `(x1, y1, x2, y2, score, label)`, as Mask and Keypoint
/// R-CNN pool them.
fn as_detections(boxes: &mut Tensor) {
    let data = boxes
        .data
        .chunks_exact(5)
        .enumerate()
        .flat_map(|(i, row)| row.iter().copied().chain([(i % 91) as f32]))
        .collect();
    let [n, r] = [boxes.shape[0], boxes.shape[1]];
    *boxes = Tensor::new(&[n, r, 6], data).expect("detections");
}

#[test]
fn roi_align_14x14_over_detection_rows_matches_interpreter_and_five_wide_rows() {
    // Mask R-CNN's mask_roi_pool: 14x14, sampling 2, not aligned, over [N, 100, 6] detections.
    check_with(
        6,
        1,
        100,
        7,
        [160, 213],
        4,
        op(4, [14, 14], 2, false),
        as_detections,
    );
    let mut rng = Rng::new(7);
    let five = random_boxes(&mut rng, 2, 9, 64.0, 80.0);
    let mut six = five.clone();
    as_detections(&mut six);
    let feats: Vec<Tensor> = (0..2)
        .map(|l| rng.tensor(&[2, 3, 16 >> l, 20 >> l], 1.0))
        .collect();
    let pool = |boxes: &Tensor| {
        let mut inputs = vec![boxes];
        inputs.extend(feats.iter());
        interp::eval_op(&Op::RoiAlign(op(2, [4, 4], 2, false)), &inputs).expect("interp")
    };
    assert_eq!(
        pool(&six).data,
        pool(&five).data,
        "the label column is ignored"
    );
}
