//! `Op::RoiAlign` (torchvision's `MultiScaleRoIAlign`) against hand-computed values: constant
//! maps, linear ramps (reproduced exactly by bilinear sampling), the out-of-map sampling rule,
//! `aligned`, the image index of each box row, unused rows, and the FPN level of each box size.

use wgcnn_graph::interp::{eval_op, infer_roi_scale};
use wgcnn_graph::{GraphError, INVALID_SCORE, Op, RoiAlign, Tensor};

#[path = "support/tensors.rs"]
mod tensors;

use tensors::{check, from_fn, t};

fn op(output: usize, sampling_ratio: usize, scales: &[f32], aligned: bool) -> Op {
    Op::RoiAlign(RoiAlign {
        output: [output, output],
        sampling_ratio,
        scales: scales.to_vec(),
        canonical_scale: 224.0,
        canonical_level: 4.0,
        aligned,
    })
}

#[test]
fn roi_align_of_a_constant_map_is_the_constant() -> Result<(), GraphError> {
    let feat = from_fn(&[1, 3, 8, 10], |i| [3.5, -1.0, 0.25][i[1]]);
    // Boxes inside the map (scale 1), of several sizes, one thinner than a pixel.
    let boxes = t(
        &[1, 3, 5],
        &[
            0.0, 0.0, 9.0, 7.0, 0.9, 2.5, 1.5, 6.0, 4.0, 0.8, 3.0, 3.0, 3.2, 3.1, 0.7,
        ],
    );
    for (ratio, size) in [(2, 7), (0, 3), (1, 1)] {
        let got = eval_op(&op(size, ratio, &[1.0], false), &[&boxes, &feat])?;
        let want = from_fn(&[3, 3, size, size], |i| [3.5, -1.0, 0.25][i[1]]);
        check(
            &format!("constant, {size}x{size}, sampling_ratio {ratio}"),
            &got,
            &want,
            1e-6,
        );
    }
    Ok(())
}

#[test]
fn roi_align_of_a_linear_ramp_averages_the_sample_points() -> Result<(), GraphError> {
    // f(y, x) = 10 y + x. Box [4, 2, 12, 10] at scale 1/2 is [2, 1, 6, 5] on the map; 2x2 bins
    // of 2x2 with 2x2 samples at x = 2.5, 3.5 | 4.5, 5.5 and y = 1.5, 2.5 | 3.5, 4.5: bin means
    // x = 3, 5 and y = 2, 4.
    let feat = from_fn(&[1, 1, 8, 8], |i| 10.0 * i[2] as f32 + i[3] as f32);
    let boxes = t(&[1, 1, 5], &[4.0, 2.0, 12.0, 10.0, 1.0]);
    let want = t(&[1, 1, 2, 2], &[23.0, 25.0, 43.0, 45.0]);
    let got = eval_op(&op(2, 2, &[0.5], false), &[&boxes, &feat])?;
    check("ramp, sampling_ratio 2", &got, &want, 1e-5);
    // Adaptive grid: ceil(4 / 2) = 2 samples per bin side, the same points.
    let got = eval_op(&op(2, 0, &[0.5], false), &[&boxes, &feat])?;
    check("ramp, sampling_ratio 0", &got, &want, 1e-5);
    // aligned=True shifts the box by half a pixel: x means 2.5, 4.5; y means 1.5, 3.5.
    let got = eval_op(&op(2, 2, &[0.5], true), &[&boxes, &feat])?;
    check(
        "ramp, aligned",
        &got,
        &t(&[1, 1, 2, 2], &[17.5, 19.5, 37.5, 39.5]),
        1e-5,
    );
    Ok(())
}

#[test]
fn roi_align_samples_outside_minus_one_count_as_zero_and_edges_clamp() -> Result<(), GraphError> {
    let feat = from_fn(&[1, 1, 8, 8], |_| 1.0);
    // One 1x1 bin, 2x2 samples at x = -4 (outside [-1, 8]: weight 0) and 0, y = 2 and 6:
    // (0 + 1 + 0 + 1) / 4.
    let boxes = t(&[1, 1, 5], &[-6.0, 0.0, 2.0, 8.0, 1.0]);
    let got = eval_op(&op(1, 2, &[1.0], false), &[&boxes, &feat])?;
    check("half outside", &got, &t(&[1, 1, 1, 1], &[0.5]), 1e-6);
    let ramp = from_fn(&[1, 1, 8, 8], |i| i[3] as f32);
    let boxes = t(&[1, 1, 5], &[-1.0, 0.0, 9.0, 8.0, 1.0]);
    let wide = Op::RoiAlign(RoiAlign {
        output: [1, 2],
        sampling_ratio: 1,
        scales: vec![1.0],
        canonical_scale: 224.0,
        canonical_level: 4.0,
        aligned: false,
    });
    // Two bins of width 5: one sample each at x = 1.5 and 6.5.
    let got = eval_op(&wide, &[&boxes, &ramp])?;
    check("ramp, 1x2 bins", &got, &t(&[1, 1, 1, 2], &[1.5, 6.5]), 1e-6);
    // Samples in [-1, 0) and (7, 8] clamp to the border pixels of the ramp f = x: box
    // x in [-1.5, 8.5] with 5 samples at -0.5, 1.5, 3.5, 5.5, 7.5 reads 0, 1.5, 3.5, 5.5, 7.
    let boxes = t(&[1, 1, 5], &[-1.5, 0.0, 8.5, 8.0, 1.0]);
    let got = eval_op(&op(1, 5, &[1.0], false), &[&boxes, &ramp])?;
    check("clamped edges", &got, &t(&[1, 1, 1, 1], &[3.5]), 1e-6);
    Ok(())
}

#[test]
fn roi_align_reads_each_row_from_its_own_image_and_zeroes_unused_rows() -> Result<(), GraphError> {
    // Image 1 is image 0 + 100; rows [n, r]: the second row of image 0 is unused.
    let feat = from_fn(&[2, 2, 8, 8], |i| {
        100.0 * i[0] as f32 + 10.0 * i[2] as f32 + i[3] as f32 + 1000.0 * i[1] as f32
    });
    let b = [4.0, 2.0, 12.0, 10.0];
    let boxes = t(
        &[2, 2, 5],
        &[
            b[0],
            b[1],
            b[2],
            b[3],
            0.9, //
            b[0],
            b[1],
            b[2],
            b[3],
            INVALID_SCORE, //
            b[0],
            b[1],
            b[2],
            b[3],
            0.8, //
            0.0,
            0.0,
            16.0,
            16.0,
            0.7,
        ],
    );
    let got = eval_op(&op(2, 2, &[0.5], false), &[&boxes, &feat])?;
    assert_eq!(got.shape, [4, 2, 2, 2]);
    let ramp = [23.0f32, 25.0, 43.0, 45.0];
    let per = 8;
    let row = |r: usize| Tensor {
        shape: vec![2, 2, 2],
        data: got.data[r * per..(r + 1) * per].to_vec(),
    };
    let want0 = from_fn(&[2, 2, 2], |i| ramp[i[1] * 2 + i[2]] + 1000.0 * i[0] as f32);
    check("image 0", &row(0), &want0, 1e-4);
    check("unused row", &row(1), &Tensor::zeros(&[2, 2, 2]), 0.0);
    let want2 = from_fn(&[2, 2, 2], |i| {
        ramp[i[1] * 2 + i[2]] + 100.0 + 1000.0 * i[0] as f32
    });
    check("image 1", &row(2), &want2, 1e-4);
    Ok(())
}

#[test]
fn roi_align_maps_box_sizes_to_fpn_levels() -> Result<(), GraphError> {
    // Image 1024; levels of scale 1/4 .. 1/32 (k = 2..5), each a constant map of its index.
    let image = 1024;
    let sizes = [256, 128, 64, 32];
    let scales: Vec<f32> = sizes.iter().map(|&s| infer_roi_scale(s, image)).collect();
    assert_eq!(scales, [0.25, 0.125, 0.0625, 0.03125]);
    let feats: Vec<Tensor> = sizes
        .iter()
        .enumerate()
        .map(|(l, &s)| from_fn(&[1, 1, s, s], |_| l as f32))
        .collect();
    // k = floor(4 + log2(sqrt(area) / 224) + 1e-6), clamped to [2, 5], minus 2.
    let cases: [(f32, f32, f32); 9] = [
        (224.0, 224.0, 2.0),   // k = 4
        (112.0, 112.0, 1.0),   // log2(1/2) = -1 exactly: k = 3
        (111.0, 111.0, 0.0),   // just below: k = 2
        (56.0, 56.0, 0.0),     // k = 2
        (10.0, 10.0, 0.0),     // k = -0.48 -> clamped to 2
        (448.0, 448.0, 3.0),   // k = 5
        (447.0, 447.0, 2.0),   // k = 4.99 -> 4
        (1000.0, 1000.0, 3.0), // k = 6.16 -> clamped to 5
        (896.0, 224.0, 3.0),   // sqrt(area) = 448: k = 5
    ];
    let mut rows = Vec::new();
    for &(w, h, _) in &cases {
        rows.extend([8.0, 8.0, 8.0 + w, 8.0 + h, 1.0]);
    }
    let boxes = Tensor {
        shape: vec![1, cases.len(), 5],
        data: rows,
    };
    let mut inputs = vec![&boxes];
    inputs.extend(feats.iter());
    let got = eval_op(&op(2, 2, &scales, false), &inputs)?;
    for (i, &(w, h, level)) in cases.iter().enumerate() {
        let vals = &got.data[i * 4..(i + 1) * 4];
        println!("box {w}x{h}: level {}", vals[0]);
        assert!(
            vals.iter().all(|&v| v == level),
            "box {w}x{h}: got {vals:?}, want level {level}"
        );
    }
    Ok(())
}

#[test]
fn roi_align_single_level_pools_every_box_from_it() -> Result<(), GraphError> {
    // One level (as the MobileNet FPN's two same-size levels map everything to the first).
    let feat = from_fn(&[1, 1, 5, 7], |_| 2.0);
    let boxes = t(
        &[1, 2, 5],
        &[0.0, 0.0, 200.0, 150.0, 1.0, 10.0, 10.0, 20.0, 20.0, 1.0],
    );
    let scale = infer_roi_scale(5, 160);
    assert_eq!(scale, 1.0 / 32.0);
    let got = eval_op(&op(7, 2, &[scale], false), &[&boxes, &feat])?;
    check("single level", &got, &from_fn(&[2, 1, 7, 7], |_| 2.0), 1e-6);
    Ok(())
}

#[test]
fn roi_align_rejects_wrong_inputs() {
    let feat = Tensor::zeros(&[1, 1, 4, 4]);
    let boxes4 = Tensor::zeros(&[1, 2, 4]);
    let boxes = Tensor::zeros(&[1, 2, 5]);
    let other_batch = Tensor::zeros(&[2, 1, 4, 4]);
    for (what, inputs) in [
        ("boxes [1,2,4]", vec![&boxes4, &feat]),
        ("missing level", vec![&boxes]),
        ("batch mismatch", vec![&boxes, &other_batch]),
    ] {
        let r = eval_op(&op(2, 2, &[1.0], false), &inputs);
        println!("{what}: {r:?}");
        assert!(matches!(r, Err(GraphError::Shape { .. })), "{what}");
    }
}
