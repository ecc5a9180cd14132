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

/// The shared context, or `None` (saying so) where it has no subgroups of >= 8 lanes, which
/// the Winograd kernels need.
fn subgroup_ctx() -> Option<&'static crate::Context> {
    let ctx = ctx();
    if crate::conv2d::subgroups_usable(ctx) {
        Some(ctx)
    } else {
        println!("skipped: {} has no subgroups of >= 8 lanes", ctx.info.name);
        None
    }
}

/// Runs `desc` (act from `act`) through the three launches of output tiles `tile` with random
/// data and compares with the interpreter; returns the relative error. `scratch` is shared
/// across calls, as in a plan.
fn check_tile(
    rng: &mut Rng,
    scratch: &mut Scratch,
    name: &str,
    desc: &ConvDesc,
    act: Activation,
    tile: Tile,
) -> f32 {
    let Some(ctx) = subgroup_ctx() else {
        return 0.0;
    };
    let case = crate::testing::conv_case(rng, name, desc, act);
    let desc = case.desc;
    let p = WinogradParams::with_tile(&desc, tile).unwrap_or_else(|e| panic!("{name}: {e}"));
    check_size(ctx, name, &p).unwrap_or_else(|e| panic!("{e}"));
    let [k, c] = [desc.weight[0], desc.weight[1]];
    let u = transform_weights_for(tile, &case.w.data, k, c).expect("weight shape");
    let bufs = case.upload(ctx, &u);
    let (vb, mb) = scratch.buffers(ctx, &p);
    let dummy = ctx.upload("dummy", &[0.0]);
    let bias = if desc.bias { &bufs.b } else { &dummy };
    let residual = if desc.residual { &bufs.r } else { &dummy };
    let y = &bufs.y;
    let ls = launches(ctx, name, &p, &bufs.x, &bufs.w, bias, residual, y, &vb, &mb);
    ctx.run(&ls).expect("run");
    let (got, want) = (case.read(ctx, y), case.want);
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

/// Checks `count` layers with random data seeded `seed` and one scratch shared by all (as by
/// a plan's layers): `layer(rng, i)` gives the i-th's name, desc, activation and output tiles
/// (drawing from `rng` where it is random). Returns the worst relative error.
fn check_layers(
    seed: u64,
    count: usize,
    mut layer: impl FnMut(&mut Rng, usize) -> (String, ConvDesc, Activation, Tile),
) -> f32 {
    let mut rng = Rng::new(seed);
    let mut scratch = Scratch::default();
    let mut worst = 0f32;
    for i in 0..count {
        let (name, d, act, tile) = layer(&mut rng, i);
        worst = worst.max(check_tile(&mut rng, &mut scratch, &name, &d, act, tile));
    }
    worst
}

fn desc(input: [usize; 4], k: usize, pad: [usize; 4]) -> ConvDesc {
    ConvDesc::new(input, [k, input[1], 3, 3], [1, 1], pad, [1, 1], 1)
}

/// `d` with a bias.
fn biased(d: ConvDesc) -> ConvDesc {
    ConvDesc { bias: true, ..d }
}

/// `d` with a residual.
fn with_residual(d: ConvDesc) -> ConvDesc {
    ConvDesc {
        residual: true,
        ..d
    }
}

#[test]
fn winograd_3x3_pad1_bias_residual_relu_resnet_block() {
    let d = biased(with_residual(desc([1, 64, 14, 14], 64, [1; 4])));
    check_layers(11, 1, |_, _| {
        let name = "winograd_3x3_pad1_bias_residual_relu_resnet_block";
        (name.into(), d, Activation::Relu, Tile::F2)
    });
}

#[test]
fn winograd_partial_tiles_and_channel_blocks() {
    // 13x11 outputs leave partial 2x2 tiles on both edges; 20 and 33 output channels leave
    // partial 16-channel blocks; 4 input channels; batch 2 puts tiles of two images in one GEMM
    // row.
    let cases = [
        biased(desc([2, 4, 13, 11], 20, [1; 4])),
        desc([1, 8, 9, 6], 7, [0; 4]),
        with_residual(desc([2, 20, 7, 7], 33, [1; 4])),
    ];
    check_layers(12, cases.len(), |_, i| {
        let name = "winograd_partial_tiles_and_channel_blocks";
        (name.into(), cases[i], ACTS[i * 4], Tile::F2)
    });
}

/// TensorFlow "SAME" style and lopsided padding on a biased 8 -> 16 channel layer 10 high and
/// `width` wide, through `tile` with random data seeded `seed`.
fn check_asymmetric_padding(name: &str, seed: u64, width: usize, tile: Tile) {
    let pads = [[0, 0, 2, 2], [2, 1, 0, 1], [1, 0, 1, 2]];
    check_layers(seed, pads.len(), |_, i| {
        let d = biased(desc([1, 8, 10, width], 16, pads[i]));
        (name.into(), d, Activation::RELU6, tile)
    });
}

#[test]
fn winograd_asymmetric_padding() {
    check_asymmetric_padding("winograd_asymmetric_padding", 13, 12, Tile::F2);
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
    let worst = check_layers(77, 40, |rng, case| {
        let d = random_desc(rng, 19);
        (
            format!("random case {case}"),
            d,
            ACTS[case % ACTS.len()],
            Tile::F2,
        )
    });
    println!("winograd: 40 random cases, worst relative error {worst:.3e}");
}

mod f4;
