//! `Op::Resize` (PyTorch's `F.interpolate`, nearest and bilinear) and `Op::Permute` on the CPU
//! interpreter, against hand-computed values.

use wgcnn_graph::{GraphError, Op, ResizeMode, Tensor, interp::eval_op};

#[path = "support/tensors.rs"]
mod tensors;

use tensors::{check, from_fn, t};

fn resize(x: &Tensor, size: [usize; 2], mode: ResizeMode) -> Result<Tensor, GraphError> {
    eval_op(&Op::Resize { size, mode }, &[x])
}

const BILINEAR: ResizeMode = ResizeMode::Bilinear {
    align_corners: false,
};

#[test]
fn resize_nearest_2x_upsample_repeats_each_pixel() -> Result<(), GraphError> {
    let x = t(&[1, 1, 2, 2], &[1., 2., 3., 4.]);
    let got = resize(&x, [4, 4], ResizeMode::Nearest)?;
    #[rustfmt::skip]
    let want = t(&[1, 1, 4, 4], &[
        1., 1., 2., 2.,
        1., 1., 2., 2.,
        3., 3., 4., 4.,
        3., 3., 4., 4.,
    ]);
    check("nearest 2x2->4x4", &got, &want, 0.0);
    Ok(())
}

#[test]
fn resize_nearest_odd_upsample_3_to_5_and_downsample_5x5_to_2x3() -> Result<(), GraphError> {
    // 3 -> 5: scale 0.6, floor(0, 0.6, 1.2, 1.8, 2.4) = 0, 0, 1, 1, 2.
    let x = from_fn(&[1, 2, 3, 3], |i| (100 * i[1] + 10 * i[2] + i[3]) as f32);
    let got = resize(&x, [5, 5], ResizeMode::Nearest)?;
    let src = [0, 0, 1, 1, 2];
    let want = from_fn(&[1, 2, 5, 5], |i| {
        (100 * i[1] + 10 * src[i[2]] + src[i[3]]) as f32
    });
    check("nearest 3x3->5x5", &got, &want, 0.0);

    // 5 -> 2 rows: scale 2.5, rows 0, 2; 5 -> 3 cols: scale 5/3, cols 0, 1, 3.
    let x = from_fn(&[1, 1, 5, 5], |i| (10 * i[2] + i[3]) as f32);
    let got = resize(&x, [2, 3], ResizeMode::Nearest)?;
    let want = t(&[1, 1, 2, 3], &[0., 1., 3., 20., 21., 23.]);
    check("nearest 5x5->2x3", &got, &want, 0.0);
    Ok(())
}

#[test]
fn resize_nearest_same_size_is_identity() -> Result<(), GraphError> {
    let x = from_fn(&[2, 3, 4, 5], |i| {
        (i[0] * 60 + i[1] * 20 + i[2] * 5 + i[3]) as f32
    });
    let got = resize(&x, [4, 5], ResizeMode::Nearest)?;
    check("nearest identity", &got, &x, 0.0);
    Ok(())
}

#[test]
fn resize_bilinear_2x_upsample_clamps_edges() -> Result<(), GraphError> {
    // scale 0.5: src = max(0.5 * (d + 0.5) - 0.5, 0) = 0, 0.25, 0.75, 1.25 (index 1 clamped).
    // x(y, c) = 2y + c, so the result is 2 * ry + rx with r = 0, 0.25, 0.75, 1.
    let x = t(&[1, 1, 2, 2], &[0., 1., 2., 3.]);
    let got = resize(&x, [4, 4], BILINEAR)?;
    let r = [0.0, 0.25, 0.75, 1.0];
    let want = from_fn(&[1, 1, 4, 4], |i| 2.0 * r[i[2]] + r[i[3]]);
    check("bilinear 2x2->4x4", &got, &want, 1e-6);
    Ok(())
}

#[test]
fn resize_bilinear_odd_downsample_3x5_to_2x3_of_a_ramp() -> Result<(), GraphError> {
    // A plane linear in (y, x) is reproduced exactly at the source coordinates:
    // rows scale 1.5: 0.25, 1.75; cols scale 5/3: 1/3, 2, 11/3.
    let x = from_fn(&[1, 1, 3, 5], |i| (10 * i[2] + i[3]) as f32);
    let got = resize(&x, [2, 3], BILINEAR)?;
    let ys = [0.25f32, 1.75];
    let xs = [1.0f32 / 3.0, 2.0, 11.0 / 3.0];
    let want = from_fn(&[1, 1, 2, 3], |i| 10.0 * ys[i[2]] + xs[i[3]]);
    check("bilinear 3x5->2x3", &got, &want, 1e-5);
    Ok(())
}

#[test]
fn resize_bilinear_odd_upsample_2x3_to_3x7() -> Result<(), GraphError> {
    // rows scale 2/3: src 0 (clamped from -1/6), 0.5, 7/6 -> index 1 clamped, weight ignored.
    // cols scale 3/7: src max((d + 0.5) * 3/7 - 0.5, 0).
    let x = from_fn(&[1, 1, 2, 3], |i| (10 * i[2] + i[3]) as f32);
    let got = resize(&x, [3, 7], BILINEAR)?;
    let ry = [0.0f32, 0.5, 1.0];
    let rx: Vec<f32> = (0..7)
        .map(|d| ((d as f32 + 0.5) * 3.0 / 7.0 - 0.5).clamp(0.0, 2.0))
        .collect();
    let want = from_fn(&[1, 1, 3, 7], |i| 10.0 * ry[i[2]] + rx[i[3]]);
    check("bilinear 2x3->3x7", &got, &want, 1e-5);
    Ok(())
}

#[test]
fn resize_bilinear_align_corners_3_to_5_hits_the_corners() -> Result<(), GraphError> {
    let x = t(&[1, 1, 1, 3], &[0., 10., 20.]);
    let got = resize(
        &x,
        [1, 5],
        ResizeMode::Bilinear {
            align_corners: true,
        },
    )?;
    let want = t(&[1, 1, 1, 5], &[0., 5., 10., 15., 20.]);
    check("bilinear align_corners 1x3->1x5", &got, &want, 1e-6);
    Ok(())
}

#[test]
fn resize_rejects_zero_size_and_non_4d_input() {
    let x = t(&[1, 1, 2, 2], &[0.; 4]);
    assert!(resize(&x, [0, 2], ResizeMode::Nearest).is_err());
    let y = t(&[2, 2], &[0.; 4]);
    let err = resize(&y, [2, 2], ResizeMode::Nearest);
    println!("non-4-D input: {err:?}");
    assert!(matches!(err, Err(GraphError::Shape { .. })));
}

#[test]
fn permute_3d_rotates_axes() -> Result<(), GraphError> {
    // x[a, b, c] = 100a + 10b + c; out[i, j, k] = x[j, k, i] for perm [2, 0, 1].
    let x = from_fn(&[2, 3, 4], |i| (100 * i[0] + 10 * i[1] + i[2]) as f32);
    let got = eval_op(
        &Op::Permute {
            perm: vec![2, 0, 1],
        },
        &[&x],
    )?;
    let want = from_fn(&[4, 2, 3], |i| (100 * i[1] + 10 * i[2] + i[0]) as f32);
    check("permute [2,0,1]", &got, &want, 0.0);
    Ok(())
}

#[test]
fn permute_4d_nchw_to_nhwc() -> Result<(), GraphError> {
    let x = from_fn(&[2, 3, 4, 5], |i| {
        (1000 * i[0] + 100 * i[1] + 10 * i[2] + i[3]) as f32
    });
    let got = eval_op(
        &Op::Permute {
            perm: vec![0, 2, 3, 1],
        },
        &[&x],
    )?;
    let want = from_fn(&[2, 4, 5, 3], |i| {
        (1000 * i[0] + 100 * i[3] + 10 * i[1] + i[2]) as f32
    });
    check("permute [0,2,3,1]", &got, &want, 0.0);
    Ok(())
}

#[test]
fn permute_5d_rpn_deltas_layout_and_identity() -> Result<(), GraphError> {
    // torchvision's permute_and_flatten: [N, A, 4, H, W] -> [N, H, W, A, 4].
    let x = from_fn(&[1, 3, 4, 2, 5], |i| {
        (1000 * i[1] + 100 * i[2] + 10 * i[3] + i[4]) as f32
    });
    let got = eval_op(
        &Op::Permute {
            perm: vec![0, 3, 4, 1, 2],
        },
        &[&x],
    )?;
    let want = from_fn(&[1, 2, 5, 3, 4], |i| {
        (1000 * i[3] + 100 * i[4] + 10 * i[1] + i[2]) as f32
    });
    check("permute [0,3,4,1,2]", &got, &want, 0.0);
    let same = eval_op(
        &Op::Permute {
            perm: vec![0, 1, 2, 3, 4],
        },
        &[&x],
    )?;
    check("permute identity", &same, &x, 0.0);
    Ok(())
}

#[test]
fn permute_rejects_a_non_permutation() {
    let x = t(&[2, 3], &[0.; 6]);
    for perm in [vec![0, 0], vec![1], vec![0, 2]] {
        let err = eval_op(&Op::Permute { perm: perm.clone() }, &[&x]);
        println!("perm {perm:?}: {err:?}");
        assert!(matches!(err, Err(GraphError::Shape { .. })));
    }
}
