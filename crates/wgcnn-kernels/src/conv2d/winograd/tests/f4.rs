//! F(4x4, 3x3) against the interpreter (edges, odd sizes, batch, epilogues), its transforms
//! against exact arithmetic, its error against the budget, and the tile choice.

use super::*;
use crate::testing::ConvBuffers;

#[test]
fn winograd4_partial_tiles_batch_and_channel_blocks() {
    // 13x11 and 9x6 outputs leave 1-3 wide partial 4x4 tiles on both edges, 2x3 is smaller
    // than one tile, 5x5 needs a second tile for one row; 20 and 33 output channels leave
    // partial 16-channel blocks; batch 2 puts tiles of two images in one GEMM row.
    let cases = [
        biased(desc([2, 4, 13, 11], 20, [1; 4])),
        desc([1, 8, 11, 8], 7, [0; 4]),
        with_residual(desc([2, 20, 7, 7], 33, [1; 4])),
        biased(with_residual(desc([1, 12, 2, 3], 16, [1; 4]))),
        desc([3, 16, 5, 5], 9, [1; 4]),
    ];
    check_layers(41, cases.len(), |_, i| {
        let name = "winograd4_partial_tiles_batch_and_channel_blocks";
        (name.into(), cases[i], ACTS[(i * 3) % ACTS.len()], Tile::F4)
    });
}

#[test]
fn winograd4_asymmetric_padding() {
    check_asymmetric_padding("winograd4_asymmetric_padding", 42, 13, Tile::F4);
}

#[test]
fn winograd4_random_shapes_match_interpreter() {
    // Shares the scratch with F(2x2, 3x3) layers, as a plan mixing both does.
    let worst = check_layers(43, 30, |rng, case| {
        let d = random_desc(rng, 23);
        let tile = if case % 3 == 2 { Tile::F2 } else { Tile::F4 };
        (
            format!("random case {case}"),
            d,
            ACTS[case % ACTS.len()],
            tile,
        )
    });
    println!("winograd4: 30 random cases, worst relative error {worst:.3e}");
}

/// `conv2d_winograd4_input.wgsl`'s B^T and `conv2d_winograd4_output.wgsl`'s A^T, written out
/// again: with [`G4`] they must compute the 1-D correlation exactly.
const BT4: [[f64; 6]; 6] = [
    [2.0, -3.0, -4.0, 3.0, 2.0, 0.0],
    [0.0, -2.0, 1.0, 5.0, 2.0, 0.0],
    [0.0, 2.0, -5.0, 1.0, 2.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 1.0, -2.0, -1.0, 2.0, 0.0],
    [0.0, 2.0, -3.0, -4.0, 3.0, 2.0],
];
const AT4: [[f64; 6]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 0.5, -2.0, 0.0],
    [0.0, 1.0, 1.0, 0.25, 4.0, 0.0],
    [0.0, 1.0, -1.0, 0.125, -8.0, 1.0],
];

#[test]
fn winograd4_transforms_compute_the_correlation_exactly() {
    // y_i = sum_k g_k d_{i+k} = A^T [(G g) . (B^T d)] for every unit g and d: the 18 x 6
    // products of basis vectors pin every entry that matters.
    for k in 0..3 {
        for l in 0..6 {
            let gg: Vec<f64> = G4.iter().map(|row| row[k]).collect();
            let bd: Vec<f64> = BT4.iter().map(|row| row[l]).collect();
            for (i, a) in AT4.iter().enumerate() {
                let got: f64 = (0..6).map(|j| a[j] * gg[j] * bd[j]).sum();
                let want = if l == i + k { 1.0 } else { 0.0 };
                assert!(
                    (got - want).abs() < 1e-12,
                    "y[{i}] from g[{k}], d[{l}]: {got}, want {want}"
                );
            }
        }
    }
}

/// The direct convolution of `x` `[1, C, H, W]` by `w` `[K, C, 3, 3]` (padding 1) in f64.
fn direct_f64(x: &Tensor, w: &Tensor) -> Vec<f64> {
    let [_, c, h, wd] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let k = w.shape[0];
    let mut y = vec![0f64; k * h * wd];
    for kk in 0..k {
        for cc in 0..c {
            for a in 0..3 {
                for b in 0..3 {
                    let g = f64::from(w.data[((kk * c + cc) * 3 + a) * 3 + b]);
                    for oy in 0..h {
                        let iy = oy + a;
                        if iy == 0 || iy > h {
                            continue;
                        }
                        let row = &x.data[(cc * h + iy - 1) * wd..][..wd];
                        let out = &mut y[(kk * h + oy) * wd..][..wd];
                        for (ox, o) in out.iter_mut().enumerate() {
                            let ix = ox + b;
                            if ix >= 1 && ix <= wd {
                                *o += g * f64::from(row[ix - 1]);
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

#[test]
fn winograd4_error_within_budget_on_fpn_like_layers() {
    // The FPN output / RPN head geometry (256 -> 256, 3x3, pad 1; fewer output channels and a
    // smaller map to keep the f64 reference quick), weights as the fixtures' rule makes them
    // (uniform within sqrt(6 / fan_in)), inputs centred (FPN sums), ReLU'd (RPN conv after the
    // FPN's ReLU-free output: the harder case for backbone layers) and offset.
    let Some(ctx) = subgroup_ctx() else {
        return;
    };
    let mut rng = Rng::new(44);
    let mut scratch = Scratch::default();
    let (c, k, h, w) = (256, 16, 24, 36);
    let d = desc([1, c, h, w], k, [1; 4]);
    let weight = rng.tensor(&[k, c, 3, 3], (6.0 / (c as f32 * 9.0)).sqrt());
    for (what, shift, relu) in [
        ("centred", 0.0, false),
        ("relu", 0.0, true),
        ("relu + 1", 1.0, true),
    ] {
        let mut x = rng.tensor(&[1, c, h, w], 1.0);
        for v in &mut x.data {
            *v = if relu { v.max(0.0) + shift } else { *v };
        }
        let want = direct_f64(&x, &weight);
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        let mut errors = Vec::new();
        for tile in [Tile::F2, Tile::F4] {
            let p = WinogradParams::with_tile(&d, tile).expect("shape");
            let u = transform_weights_for(tile, &weight.data, k, c).expect("shape");
            let (xb, ub) = (ctx.upload("x", &x.data), ctx.upload("u", &u));
            let yb = ctx.storage("y", want.len() as u64 * 4);
            let dummy = ctx.upload("dummy", &[0.0]);
            let (vb, mb) = scratch.buffers(ctx, &p);
            let ls = launches(ctx, "budget", &p, &xb, &ub, &dummy, &dummy, &yb, &vb, &mb);
            ctx.run(&ls).expect("run");
            let got = ctx.read(&yb, want.len()).expect("read");
            let err = got
                .iter()
                .zip(&want)
                .fold(0f64, |m, (g, w)| m.max((f64::from(*g) - w).abs()))
                / scale;
            errors.push(err);
        }
        println!(
            "{what} inputs, C={c}: F(2x2) {:.2e}, F(4x4) {:.2e} of max|y| (budget {F4_ERROR_BUDGET:.0e})",
            errors[0], errors[1]
        );
        assert!(
            errors[1] <= F4_ERROR_BUDGET,
            "{what}: F(4x4, 3x3) error {:e} over the budget {F4_ERROR_BUDGET:e}",
            errors[1]
        );
    }
}

#[test]
fn winograd4_params_and_tile_choice() {
    // FPN output convolutions and the RPN head at 800x1199 (stride-4 level 200x304): F(4x4).
    let fpn = desc([1, 256, 200, 304], 256, [1; 4]);
    assert_eq!(tile_for(&fpn), Tile::F4);
    let p = WinogradParams::with_tile(&fpn, Tile::F4).expect("shape");
    assert_eq!((p.tiles_h, p.tiles_w, p.tiles), (50, 76, 3800));
    assert_eq!((p.positions, p.t_stride), (36, 3808));
    assert_eq!(p.tile(), Tile::F4);
    assert_eq!(p.v_bytes(), 36 * 256 * 3808 * 4);
    for d in [
        desc([1, 256, 100, 152], 256, [1; 4]),
        desc([1, 256, 50, 76], 256, [1; 4]),
        desc([1, 128, 112, 112], 128, [1; 4]),
    ] {
        assert_eq!(tile_for(&d), Tile::F4, "{d:?}");
    }
    // Small maps, and narrow layers on large ones (Inception-v4's): F(2x2).
    for d in [
        desc([1, 256, 25, 38], 256, [1; 4]),
        desc([1, 64, 56, 56], 64, [1; 4]),
        desc([1, 64, 73, 73], 96, [0; 4]),
        desc([1, 256, 14, 14], 256, [1; 4]),
        desc([1, 512, 7, 7], 512, [1; 4]),
    ] {
        assert_eq!(tile_for(&d), Tile::F2, "{d:?}");
    }
    assert_eq!(WinogradParams::new(&fpn).expect("shape").positions, 16);
    let err = transform_weights_for(Tile::F4, &[0.0; 9], 2, 1).expect_err("9 values");
    assert!(err.to_string().contains("[2, 1, 3, 3]"), "{err}");
}

#[test]
fn winograd_bands_of_tile_rows_match_interpreter() {
    // Scratch for a few tile rows only: the launches cover the layer in bands (both tile
    // sizes; batch 2, so a band holds rows of both images; 23 output rows end in a partial
    // tile row and a shorter last band).
    let Some(ctx) = subgroup_ctx() else {
        return;
    };
    let mut rng = Rng::new(45);
    let d = biased(with_residual(desc([2, 8, 23, 10], 12, [1; 4])));
    let case = crate::testing::conv_case(&mut rng, "bands", &d, Activation::Relu);
    let d = case.desc;
    for (tile, rows) in [(Tile::F2, 3), (Tile::F4, 2)] {
        let p = WinogradParams::with_tile(
            &ConvDesc {
                act: Activation::Relu.code(),
                ..d
            },
            tile,
        )
        .expect("shape");
        let band = p.band(0, rows);
        let parts = p.bands(band.v_bytes(), band.m_bytes());
        // Rows of V and M are padded to 32 tiles, so a band may hold more rows than asked.
        assert!(parts.len() > 1, "{tile:?}: one band");
        assert!(
            parts
                .iter()
                .all(|q| q.v_bytes() <= band.v_bytes() && q.m_bytes() <= band.m_bytes()),
            "{tile:?}: {parts:?}"
        );
        assert_eq!(
            parts.iter().map(|q| q.tiles_h).sum::<u32>(),
            p.tiles_h,
            "{tile:?}: bands cover every tile row once"
        );
        let u = transform_weights_for(tile, &case.w.data, 12, 8).expect("shape");
        let ConvBuffers { x, w, b, r, y } = case.upload(ctx, &u);
        let vb = ctx.storage("v", band.v_bytes());
        let mb = ctx.storage("m", band.m_bytes());
        let ls = launches(ctx, "bands", &p, &x, &w, &b, &r, &y, &vb, &mb);
        assert_eq!(ls.len(), 3 * parts.len());
        ctx.run(&ls).expect("run");
        let got = case.read(ctx, &y);
        assert_close(&format!("bands {tile:?}"), &got, &case.want, tolerance4(8));
    }
}
