//! The Winograd path against the CPU interpreter.

use super::*;
use crate::conv2d::tests::ACTS;
use crate::testing::{Rng, assert_close, ctx};
use wgcnn_graph::{Activation, Tensor};

/// Relative tolerance over `c` input channels: as the direct kernel's (F(2x2, 3x3)'s transforms
/// only add and halve).
fn tolerance(c: usize) -> f32 {
    crate::conv2d::tests::tolerance(c * 9)
}

/// F(4x4, 3x3)'s tolerance: 4x F(2x2, 3x3)'s, since its f32 results are measured 2-4x
/// further from exact than the direct kernel's ([`F4_ERROR_BUDGET`]).
fn tolerance4(c: usize) -> f32 {
    4.0 * tolerance(c)
}

/// Runs `desc` (act from `act`) through the three F(2x2, 3x3) launches with random data and
/// compares with the interpreter; returns the relative error. `scratch` is shared across calls,
/// as in a plan.
fn check(
    rng: &mut Rng,
    scratch: &mut Scratch,
    name: &str,
    desc: &ConvDesc,
    act: Activation,
) -> f32 {
    check_tile(rng, scratch, name, desc, act, Tile::F2)
}

/// [`check`] with output tiles `tile`.
fn check_tile(
    rng: &mut Rng,
    scratch: &mut Scratch,
    name: &str,
    desc: &ConvDesc,
    act: Activation,
    tile: Tile,
) -> f32 {
    let ctx = ctx();
    if !crate::conv2d::subgroups_usable(ctx) {
        println!("skipped: {} has no subgroups of >= 8 lanes", ctx.info.name);
        return 0.0;
    }
    let crate::testing::ConvCase {
        desc,
        x,
        w,
        b,
        r,
        want,
    } = crate::testing::conv_case(rng, name, desc, act);
    let p = WinogradParams::with_tile(&desc, tile).unwrap_or_else(|e| panic!("{name}: {e}"));
    check_size(ctx, name, &p).unwrap_or_else(|e| panic!("{e}"));
    let [k, c] = [desc.weight[0], desc.weight[1]];
    let u = transform_weights_for(tile, &w.data, k, c).expect("weight shape");
    let (xb, ub, bb, rb) = (
        ctx.upload("x", &x.data),
        ctx.upload("u", &u),
        ctx.upload("b", &b.data),
        ctx.upload("r", &r.data),
    );
    let yb = ctx.storage("y", want.numel() as u64 * 4);
    let (vb, mb) = scratch.buffers(ctx, &p);
    let dummy = ctx.upload("dummy", &[0.0]);
    let bias = if desc.bias { &bb } else { &dummy };
    let residual = if desc.residual { &rb } else { &dummy };
    let ls = launches(ctx, name, &p, &xb, &ub, bias, residual, &yb, &vb, &mb);
    ctx.run(&ls).expect("run");
    let got = Tensor::new(&want.shape, ctx.read(&yb, want.numel()).expect("read")).expect("shape");
    let tol = match tile {
        Tile::F2 => tolerance(c),
        Tile::F4 => tolerance4(c),
    };
    assert_close(
        &format!("{name} {tile:?} {desc:?} {act:?}"),
        &got,
        &want,
        tol,
    );
    got.rel_error(&want)
}

fn desc(input: [usize; 4], k: usize, pad: [usize; 4]) -> ConvDesc {
    ConvDesc::new(input, [k, input[1], 3, 3], [1, 1], pad, [1, 1], 1)
}

#[test]
fn winograd_3x3_pad1_bias_residual_relu_resnet_block() {
    let mut rng = Rng::new(11);
    let d = ConvDesc {
        bias: true,
        residual: true,
        ..desc([1, 64, 14, 14], 64, [1; 4])
    };
    check(
        &mut rng,
        &mut Scratch::default(),
        "winograd_3x3_pad1_bias_residual_relu_resnet_block",
        &d,
        Activation::Relu,
    );
}

#[test]
fn winograd_partial_tiles_and_channel_blocks() {
    // 13x11 outputs leave partial 2x2 tiles on both edges; 20 and 33 output channels leave
    // partial 16-channel blocks; 4 input channels; batch 2 puts tiles of two images in one GEMM
    // row.
    let mut rng = Rng::new(12);
    let mut scratch = Scratch::default();
    for (i, d) in [
        ConvDesc {
            bias: true,
            ..desc([2, 4, 13, 11], 20, [1; 4])
        },
        desc([1, 8, 9, 6], 7, [0; 4]),
        ConvDesc {
            residual: true,
            ..desc([2, 20, 7, 7], 33, [1; 4])
        },
    ]
    .iter()
    .enumerate()
    {
        check(
            &mut rng,
            &mut scratch,
            "winograd_partial_tiles_and_channel_blocks",
            d,
            ACTS[i * 4],
        );
    }
}

#[test]
fn winograd_asymmetric_padding() {
    // TensorFlow "SAME" style and lopsided padding.
    let mut rng = Rng::new(13);
    let mut scratch = Scratch::default();
    for pad in [[0, 0, 2, 2], [2, 1, 0, 1], [1, 0, 1, 2]] {
        let d = ConvDesc {
            bias: true,
            ..desc([1, 8, 10, 12], 16, pad)
        };
        check(
            &mut rng,
            &mut scratch,
            "winograd_asymmetric_padding",
            &d,
            Activation::RELU6,
        );
    }
}

#[test]
fn winograd_weight_transform_of_a_delta_filter() {
    // A filter that is 1 at its centre and 0 elsewhere: U = G e G^T is the outer product of G's
    // middle column with itself.
    let mut g = vec![0f32; 9];
    g[4] = 1.0;
    let u = transform_weights(&g, 1, 1).expect("shape");
    let col = [0.0, 0.5, -0.5, 0.0];
    for i in 0..4 {
        for j in 0..4 {
            let want = col[i] * col[j];
            assert_eq!(u[i * 4 + j], want, "U[{i}][{j}]");
        }
    }
    let err = transform_weights(&g, 2, 1).expect_err("9 values are not [2, 1, 3, 3]");
    println!("{err}");
    assert!(err.to_string().contains("[2, 1, 3, 3]"), "{err}");
}

#[test]
fn winograd_rejects_other_geometry() {
    for d in [
        ConvDesc::new([1, 4, 8, 8], [4, 4, 3, 3], [2, 2], [1; 4], [1, 1], 1),
        ConvDesc::new([1, 4, 8, 8], [4, 4, 5, 5], [1, 1], [2; 4], [1, 1], 1),
        ConvDesc::new([1, 4, 8, 8], [4, 2, 3, 3], [1, 1], [1; 4], [1, 1], 2),
        ConvDesc::new([1, 4, 8, 8], [4, 4, 3, 3], [1, 1], [2; 4], [2, 2], 1),
        ConvDesc::new([1, 6, 8, 8], [4, 6, 3, 3], [1, 1], [1; 4], [1, 1], 1),
    ] {
        assert!(!fits(&d), "{d:?}");
        let err = WinogradParams::new(&d).expect_err("not a Winograd shape");
        println!("{err}");
        assert!(err.to_string().contains("winograd"), "{err}");
    }
}

/// A random 3x3 stride-1 layer up to `max_hw` wide and high: mostly padding 1, a third of the
/// time any padding 0..=2 per side (never leaving the input under one 3x3 window), batch 1-2,
/// 4-40 input channels, 1-40 outputs, bias and residual at random.
fn random_desc(rng: &mut Rng, max_hw: usize) -> ConvDesc {
    let pad = if rng.range(0, 3) == 0 {
        [
            rng.range(0, 2),
            rng.range(0, 2),
            rng.range(0, 2),
            rng.range(0, 2),
        ]
    } else {
        [1; 4]
    };
    let min_h = 3usize.saturating_sub(pad[0] + pad[2]).max(1);
    let min_w = 3usize.saturating_sub(pad[1] + pad[3]).max(1);
    ConvDesc {
        bias: rng.range(0, 1) == 1,
        residual: rng.range(0, 2) == 0,
        ..desc(
            [
                rng.range(1, 2),
                4 * rng.range(1, 10),
                rng.range(min_h, max_hw),
                rng.range(min_w, max_hw),
            ],
            rng.range(1, 40),
            pad,
        )
    }
}

#[test]
fn winograd_random_shapes_match_interpreter() {
    let mut rng = Rng::new(77);
    let mut scratch = Scratch::default();
    let mut worst = 0f32;
    for case in 0..40 {
        let d = random_desc(&mut rng, 19);
        worst = worst.max(check(
            &mut rng,
            &mut scratch,
            &format!("random case {case}"),
            &d,
            ACTS[case % ACTS.len()],
        ));
    }
    println!("winograd: 40 random cases, worst relative error {worst:.3e}");
}

mod f4;
