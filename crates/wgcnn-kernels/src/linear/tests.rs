//! linear against the CPU interpreter, unsplit and split across weight chunks.

use super::*;
use crate::conv2d::tests::{ACTS, tolerance};
use crate::testing::{Rng, assert_close, ctx, linear_case, read_tensor};
use wgcnn_graph::Activation;

/// Runs a random `[n, k] x [m, k]^T` layer with W split into `chunks` (row ranges) and compares
/// it with the interpreter; returns the relative error.
fn check(
    rng: &mut Rng,
    name: &str,
    desc: &LinearDesc,
    act: Activation,
    chunks: &[Range<usize>],
) -> f32 {
    let ctx = ctx();
    let case = linear_case(rng, name, desc, act);
    let (desc, want) = (case.desc, &case.want);
    let buffers = case.upload_chunks(ctx, chunks);
    let pairs: Vec<(Range<usize>, &wgpu::Buffer)> =
        chunks.iter().cloned().zip(buffers.iter()).collect();
    let (xb, bb) = (
        ctx.upload("x", &case.x.data),
        if desc.bias {
            ctx.upload("b", &case.b.data)
        } else {
            ctx.upload("dummy", &[0.0])
        },
    );
    // Both kernels: `linear`, and `linear_sg` where the device has subgroups (lavapipe does) and
    // K is a multiple of 4.
    let mut worst = 0f32;
    let sg_ok = crate::conv2d::subgroups_usable(ctx) && desc.in_features.is_multiple_of(4);
    for sg in [false, sg_ok] {
        let yb = ctx.storage("y", want.numel() as u64 * 4);
        let launches = launches_on(ctx, name, &desc, &xb, &pairs, &bb, &yb, sg).expect("launches");
        assert_eq!(launches.len(), chunks.len());
        ctx.run(&launches).expect("run");
        let got = read_tensor(ctx, &yb, &want.shape);
        assert_close(
            &format!("{name} (subgroups: {sg}) {desc:?} {act:?} chunks {chunks:?}"),
            &got,
            want,
            tolerance(desc.in_features),
        );
        worst = worst.max(got.rel_error(want));
    }
    worst
}

fn desc(batch: usize, in_features: usize, out_features: usize, bias: bool) -> LinearDesc {
    LinearDesc {
        batch,
        in_features,
        out_features,
        bias,
        act: (0, 0.0, 0.0),
    }
}

#[test]
fn linear_split_rows_across_three_chunks() {
    let mut rng = Rng::new(31);
    let d = desc(3, 37, 150, true);
    check(
        &mut rng,
        "linear_split_rows_across_three_chunks",
        &d,
        Activation::Relu,
        &[0..64, 64..128, 128..150],
    );
    // Uneven, not 64-aligned chunks too.
    check(
        &mut rng,
        "linear_split_rows_across_three_chunks",
        &d,
        Activation::Tanh,
        &[0..1, 1..100, 100..150],
    );
}

#[test]
fn linear_row_chunks_fit_the_binding_limit() {
    // VGG-16's fc6: [4096, 25088] f32 = 392 MiB against lavapipe's 128 MiB.
    let chunks = row_chunks(4096, 25088, 128 << 20).expect("splits");
    println!("vgg16 fc6 chunks: {chunks:?}");
    assert_eq!(chunks.len(), 4);
    assert!(
        chunks
            .iter()
            .all(|r| r.len() as u64 * 25088 * 4 <= 128 << 20)
    );
    assert_eq!(chunks.first().map(|r| r.start), Some(0));
    assert_eq!(chunks.last().map(|r| r.end), Some(4096));
    assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
    assert_eq!(row_chunks(10, 4, 1 << 20).expect("fits"), vec![0..10]);
    // A limit that fits 3 rows of 100 floats: chunks of at most 3 rows.
    let small = row_chunks(10, 100, 1200).expect("splits");
    println!("10 rows, 3 per chunk: {small:?}");
    assert!(
        small.iter().all(|r| r.len() <= 3) && small.iter().map(|r| r.len()).sum::<usize>() == 10
    );
    let err = row_chunks(10, 1000, 1000).expect_err("one row does not fit");
    println!("{err}");
}

#[test]
fn linear_chunks_that_do_not_tile_are_rejected() {
    let ctx = ctx();
    let d = desc(1, 4, 10, false);
    let (x, w, y) = (
        ctx.upload("x", &[0.0; 4]),
        ctx.upload("w", &[0.0; 40]),
        ctx.storage("y", 40),
    );
    for chunks in [
        vec![(0..5, &w)],
        vec![(0..5, &w), (6..10, &w)],
        vec![(0..11, &w)],
    ] {
        let err =
            launches(ctx, "fc", &d, &x, &chunks, &x, &y).expect_err("gap, overlap or overrun");
        println!("{err}");
        assert!(err.to_string().contains("fc"), "{err}");
    }
}

#[test]
fn linear_forced_small_chunks_match_interpreter() {
    // row_chunks with a tiny binding limit, as the executor would split a huge weight.
    let mut rng = Rng::new(32);
    let d = desc(2, 300, 500, true);
    let chunks = row_chunks(d.out_features, d.in_features, 300 * 4 * 130).expect("splits");
    assert!(chunks.len() >= 4, "{chunks:?}");
    check(
        &mut rng,
        "linear_forced_small_chunks",
        &d,
        Activation::Sigmoid,
        &chunks,
    );
}

#[test]
fn linear_gemv_batch1_k_not_multiple_of_4() {
    // The batch-1 loop with a K tail (4099 = 4 * 1024 + 3) and more rows than one workgroup.
    let mut rng = Rng::new(34);
    check(
        &mut rng,
        "linear_gemv_batch1_k_not_multiple_of_4",
        &desc(1, 4099, 130, true),
        Activation::Identity,
        std::slice::from_ref(&(0..130)),
    );
}

#[test]
fn linear_random_shapes_match_interpreter() {
    let mut rng = Rng::new(33);
    let mut worst = 0f32;
    for case in 0..60 {
        // Every other case has K a multiple of 4, so linear_sg runs it too.
        let k = if case % 2 == 0 {
            4 * rng.range(1, 75)
        } else {
            rng.range(1, 300)
        };
        let d = desc(rng.range(1, 9), k, rng.range(1, 200), rng.range(0, 1) == 1);
        let act = ACTS[case % ACTS.len()];
        worst = worst.max(check(
            &mut rng,
            &format!("linear random case {case}"),
            &d,
            act,
            std::slice::from_ref(&(0..d.out_features)),
        ));
    }
    println!("linear: 60 random cases, worst relative error {worst:.3e}");
}

#[test]
fn linear_sg_rejects_k_not_multiple_of_4() {
    let ctx = ctx();
    let d = desc(1, 6, 8, false);
    let (x, w, y) = (
        ctx.upload("x", &[0.0; 6]),
        ctx.upload("w", &[0.0; 48]),
        ctx.storage("y", 32),
    );
    let err = launches_on(ctx, "fc", &d, &x, &[(0..8, &w)], &x, &y, true)
        .expect_err("K = 6 cannot be read as vec4s");
    println!("{err}");
    assert!(err.to_string().contains("K = 6"), "{err}");
}

#[test]
fn linear_sg_k_mod_8_eq_4_reads_nothing_past_its_rows() {
    // With K % 8 == 4 linear_sg's last step covers 4 columns past the row; on the last row those
    // are past the weights. Here the bound weight buffer goes on with NaNs (as the words after a
    // chunk of a larger buffer would), so a read past the rows poisons the last rows' outputs.
    let ctx = ctx();
    if !crate::conv2d::subgroups_usable(ctx) {
        println!("no usable subgroups: linear_sg does not run here");
        return;
    }
    let mut rng = Rng::new(35);
    for (batch, k, m) in [(1, 12, 9), (3, 20, 16), (5, 4, 3), (2, 36, 17)] {
        let case = linear_case(
            &mut rng,
            "fc",
            &desc(batch, k, m, true),
            Activation::Identity,
        );
        let (d, want) = (case.desc, &case.want);
        let mut padded = case.w.data.clone();
        padded.extend([f32::NAN; 8]);
        let (xb, wb, bb) = (
            ctx.upload("x", &case.x.data),
            ctx.upload("w", &padded),
            ctx.upload("b", &case.b.data),
        );
        let yb = ctx.storage("y", want.numel() as u64 * 4);
        let launches =
            launches_on(ctx, "fc", &d, &xb, &[(0..m, &wb)], &bb, &yb, true).expect("launches");
        ctx.run(&launches).expect("run");
        let got = read_tensor(ctx, &yb, &want.shape);
        assert!(
            got.data.iter().all(|v| v.is_finite()),
            "K = {k}: linear_sg read past the weight rows: {:?}",
            got.data
        );
        assert_close(&format!("linear_sg K = {k}"), &got, want, tolerance(k));
    }
}
