//! The subgroup kernels' lane layouts ([`SubgroupForm`]) against the CPU interpreter:
//! `conv2d_sg` (both steps), `conv2d_1x1_sg` and `linear_sg` in the wide form forced with 1, 2
//! and 4 groups of 8 lanes per workgroup, on awkward shapes (pixel, channel and row tails,
//! channel counts that are not multiples of 16, batches, bias, residual, activations); and the
//! form the adapter's own subgroup sizes pick, also in child processes where lavapipe reports
//! 16-lane (`LP_NATIVE_VECTOR_WIDTH=512`: the wide form forced there has groups at lane bases 0
//! and 8, the real check of the shuffle lanes) and 4-lane subgroups (`=128`: the portable
//! kernels).

use std::ops::Range;
use std::sync::OnceLock;

use super::tests::tolerance;
use super::*;
use crate::linear::{self, LinearDesc};
use crate::testing::lanes::{child_lanes, run_at_16_and_4_lavapipe_lanes};
use crate::testing::{Rng, assert_close, read_tensor};
use crate::{Context, ContextOptions};
use wgcnn_graph::Activation;

/// The group counts the tests force.
const FORCED: [u32; 3] = [1, 2, 4];

/// One context per forced group count (`None`: the adapter's own form), shared by the tests.
fn ctx_with(groups: Option<u32>) -> &'static Context {
    static CTXS: [OnceLock<Context>; 4] = [const { OnceLock::new() }; 4];
    let slot = match groups {
        None => 0,
        Some(1) => 1,
        Some(2) => 2,
        _ => 3,
    };
    CTXS[slot].get_or_init(|| {
        Context::new(&ContextOptions {
            subgroup_groups: groups,
            no_cache: true,
            ..Default::default()
        })
        .expect("a GPU adapter (lavapipe in CI)")
    })
}

/// The convolutions every form runs: (name, desc, activation). Pixel blocks come fastest in
/// the block order, so neighbouring groups of a wide workgroup share weights unless they
/// straddle a channel block: most cases have an odd number of pixel blocks so that some do,
/// which a wrong shuffle lane would show.
fn conv_cases() -> Vec<(&'static str, ConvDesc, Activation)> {
    let d = |input, weight, stride: usize, padding, dil: usize, groups| {
        ConvDesc::new(input, weight, [stride; 2], padding, [dil; 2], groups)
    };
    vec![
        (
            // C/groups = 5 (scalar step only), 20 channels (a 4-channel tail block), 75
            // pixels over 3 images (an 11-pixel tail block).
            "3x3_stride2_c5_k20_batch3",
            ConvDesc {
                bias: true,
                residual: true,
                ..d([3, 5, 9, 9], [20, 5, 3, 3], 2, [1; 4], 1, 1)
            },
            Activation::Relu,
        ),
        (
            "3x3_asymmetric_pad_c12_k36_batch2",
            ConvDesc {
                bias: true,
                ..d([2, 12, 7, 6], [36, 12, 3, 3], 1, [1, 0, 2, 1], 1, 1)
            },
            Activation::Silu,
        ),
        (
            "3x3_dilation2_groups2_k40",
            ConvDesc {
                residual: true,
                ..d([1, 24, 9, 9], [40, 12, 3, 3], 1, [2; 4], 2, 2)
            },
            Activation::HardSwish,
        ),
        (
            "1x5_c8_k17_batch2",
            ConvDesc {
                bias: true,
                ..d([2, 8, 5, 7], [17, 8, 1, 5], 1, [0, 2, 0, 2], 1, 1)
            },
            Activation::Sigmoid,
        ),
        (
            // 7 pixel blocks x 3 channel blocks = 21 blocks: no group count divides it.
            "3x3_c16_k48_14x14",
            ConvDesc {
                bias: true,
                ..d([1, 16, 14, 14], [48, 16, 3, 3], 1, [1; 4], 1, 1)
            },
            Activation::RELU6,
        ),
        (
            "1x1_c20_k44_batch2_residual",
            ConvDesc {
                bias: true,
                residual: true,
                ..d([2, 20, 6, 6], [44, 20, 1, 1], 1, [0; 4], 1, 1)
            },
            Activation::Relu,
        ),
        (
            "1x1_c8_k8_one_block",
            d([1, 8, 2, 2], [8, 8, 1, 1], 1, [0; 4], 1, 1),
            Activation::Identity,
        ),
        (
            // 324 pixels (11 blocks, the last of 4) x 5 channel blocks (the last of 6).
            "1x1_c36_k70_batch3",
            ConvDesc {
                bias: true,
                ..d([3, 36, 9, 12], [70, 36, 1, 1], 1, [0; 4], 1, 1)
            },
            Activation::Tanh,
        ),
    ]
}

/// The subgroup kernels that fit `desc` (each as [`variant`] would check it).
fn subgroup_variants(desc: &ConvDesc) -> Vec<Variant> {
    let [_, c, h, w] = desc.input;
    let [_, cg, kh, kw] = desc.weight;
    let mut out = vec![Variant::Subgroup];
    if cg.is_multiple_of(4) {
        out.push(Variant::Subgroup4);
    }
    if [kh, kw] == [1, 1] && desc.groups == 1 && c.is_multiple_of(4) && (h * w).is_multiple_of(4) {
        out.push(Variant::Pointwise);
    }
    out
}

/// Runs `desc` on `v`'s kernel on `ctx` with random data and compares it with the interpreter.
fn check_conv(
    ctx: &Context,
    rng: &mut Rng,
    name: &str,
    desc: &ConvDesc,
    act: Activation,
    v: Variant,
) {
    let case = crate::testing::conv_case(rng, name, desc, act);
    let desc = case.desc;
    let prepared = prepare_weights(v, &desc, &case.w.data).expect("weight shape");
    let bufs = case.upload(ctx, &prepared);
    let l = launch_variant(
        ctx, name, v, &desc, &bufs.x, &bufs.w, &bufs.b, &bufs.r, &bufs.y,
    )
    .expect("valid desc");
    ctx.run(&[l]).expect("run");
    let got = case.read(ctx, &bufs.y);
    let [_, cg, kh, kw] = desc.weight;
    assert_close(
        &format!("{name} {v:?} {:?}", subgroup_form(ctx)),
        &got,
        &case.want,
        tolerance(cg * kh * kw),
    );
}

/// One linear layer of the tests: `x [batch, k] x W [m, k]^T`, its weight split into row
/// chunks at `split` (none where 0).
struct LinearLayer {
    batch: usize,
    k: usize,
    m: usize,
    bias: bool,
    act: Activation,
    split: usize,
}

/// The linear layers every form runs. K % 8 == 4 in several (the last 8-column step half past
/// the row), M not a multiple of 8, batches over 4 (several batch blocks).
fn linear_cases() -> Vec<LinearLayer> {
    let c = |batch, k, m, bias, act, split| LinearLayer {
        batch,
        k,
        m,
        bias,
        act,
        split,
    };
    vec![
        c(1, 4, 1, true, Activation::Relu, 0),
        c(3, 12, 19, true, Activation::Identity, 0),
        c(5, 20, 70, false, Activation::Silu, 0),
        c(9, 64, 8, true, Activation::Tanh, 0),
        c(2, 36, 130, true, Activation::Relu, 0),
        c(3, 24, 70, true, Activation::Sigmoid, 40),
    ]
}

/// Runs a random linear layer on `ctx` (`linear_sg` if `subgroups`, else `linear`) and
/// compares it with the interpreter.
#[allow(clippy::too_many_arguments)]
fn check_linear(
    ctx: &Context,
    rng: &mut Rng,
    batch: usize,
    k: usize,
    m: usize,
    bias: bool,
    act: Activation,
    chunks: &[Range<usize>],
    subgroups: bool,
) {
    let desc = LinearDesc {
        batch,
        in_features: k,
        out_features: m,
        bias,
        act: act.code(),
    };
    let case = crate::testing::linear_case(rng, "fc", &desc, act);
    let buffers = case.upload_chunks(ctx, chunks);
    let pairs: Vec<(Range<usize>, &wgpu::Buffer)> =
        chunks.iter().cloned().zip(buffers.iter()).collect();
    let (xb, bb) = (ctx.upload("x", &case.x.data), ctx.upload("b", &case.b.data));
    let yb = ctx.storage("y", case.want.numel() as u64 * 4);
    let launches =
        linear::launches_on(ctx, "fc", &desc, &xb, &pairs, &bb, &yb, subgroups).expect("launches");
    ctx.run(&launches).expect("run");
    let (got, want) = (read_tensor(ctx, &yb, &case.want.shape), case.want);
    assert_close(
        &format!(
            "linear (subgroups: {subgroups}) {desc:?} chunks {chunks:?} {:?}",
            subgroup_form(ctx)
        ),
        &got,
        &want,
        tolerance(k),
    );
}

/// Every case of every subgroup kernel on `ctx` (or the portable kernels where it has no
/// usable subgroups).
fn run_all(ctx: &Context, seed: u64) {
    let mut rng = Rng::new(seed);
    let usable = subgroups_usable(ctx);
    for (name, desc, act) in conv_cases() {
        let variants = if usable {
            subgroup_variants(&desc)
        } else {
            vec![Variant::General]
        };
        for v in variants {
            check_conv(ctx, &mut rng, name, &desc, act, v);
        }
    }
    for c in linear_cases() {
        let cuts = if c.split == 0 {
            vec![0, c.m]
        } else {
            vec![0, c.split, c.m]
        };
        let chunks: Vec<Range<usize>> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
        check_linear(
            ctx, &mut rng, c.batch, c.k, c.m, c.bias, c.act, &chunks, usable,
        );
    }
}

#[test]
fn form_for_sizes_is_broadcast_up_to_8_lanes_and_wide_to_the_widest_subgroup() {
    assert_eq!(form_for_sizes(8, 8), SubgroupForm::Broadcast); // lavapipe
    assert_eq!(form_for_sizes(4, 4), SubgroupForm::Broadcast); // not usable anyway
    assert_eq!(form_for_sizes(4, 64), SubgroupForm::Broadcast); // min < 8: not usable
    assert_eq!(form_for_sizes(16, 16), SubgroupForm::Wide { groups: 2 });
    assert_eq!(form_for_sizes(32, 32), SubgroupForm::Wide { groups: 4 }); // NVIDIA, Apple
    assert_eq!(form_for_sizes(8, 32), SubgroupForm::Wide { groups: 4 }); // Intel
    assert_eq!(form_for_sizes(32, 64), SubgroupForm::Wide { groups: 8 }); // AMD RDNA
    assert_eq!(form_for_sizes(64, 64), SubgroupForm::Wide { groups: 8 }); // AMD GCN
    assert_eq!(form_for_sizes(64, 128), SubgroupForm::Wide { groups: 8 }); // Adreno
    assert_eq!(SubgroupForm::Wide { groups: 4 }.workgroups(21), 6);
    assert_eq!(SubgroupForm::Broadcast.workgroups(21), 21);
}

#[test]
fn forced_subgroup_groups_0_is_broadcast_and_more_than_8_is_8() {
    let ctx = ctx_with(None);
    assert_eq!(SubgroupForm::forced(0), SubgroupForm::Broadcast);
    assert_eq!(SubgroupForm::forced(3), SubgroupForm::Wide { groups: 3 });
    assert_eq!(SubgroupForm::forced(100), SubgroupForm::Wide { groups: 8 });
    // The forced contexts report the group count they were opened with.
    for g in FORCED {
        assert_eq!(
            subgroup_form(ctx_with(Some(g))),
            SubgroupForm::Wide { groups: g }
        );
    }
    // Unforced: the broadcast form on a CPU adapter (a shuffle is a gather there), else the
    // form of the adapter's subgroup sizes.
    let want = if ctx.info.device_type == wgpu::DeviceType::Cpu {
        SubgroupForm::Broadcast
    } else {
        form_for_sizes(ctx.info.subgroup_min_size, ctx.info.subgroup_max_size)
    };
    assert_eq!(subgroup_form(ctx), want);
}

#[test]
fn wide_subgroup_kernels_with_1_2_4_groups_match_the_interpreter() {
    if !subgroups_usable(ctx_with(None)) {
        println!("no usable subgroups: the subgroup kernels do not run here");
        return;
    }
    for (i, g) in FORCED.into_iter().enumerate() {
        run_all(ctx_with(Some(g)), 10 + i as u64);
    }
}

/// Also the child of [`subgroup_kernels_match_the_interpreter_at_16_and_4_lavapipe_lanes`]:
/// where `WGCNN_TEST_SUBGROUP_LANES` is set, the adapter (lavapipe) must report subgroups of
/// that size and the form that size implies; at 16 lanes the wide form with 2 groups (one
/// subgroup, lane bases 0 and 8) and 4 groups (two subgroups) runs too.
#[test]
fn subgroup_kernels_in_the_adapters_own_form_match_the_interpreter() {
    let ctx = ctx_with(None);
    println!(
        "{}: subgroups {}..{} lanes, form {:?}, usable {}",
        ctx.info.name,
        ctx.info.subgroup_min_size,
        ctx.info.subgroup_max_size,
        subgroup_form(ctx),
        subgroups_usable(ctx)
    );
    if let Some(lanes) = child_lanes() {
        assert_eq!(
            (ctx.info.subgroup_min_size, ctx.info.subgroup_max_size),
            (lanes, lanes)
        );
        match lanes {
            16 => {
                assert_eq!(subgroup_form(ctx), SubgroupForm::Broadcast);
                for g in [2, 4] {
                    run_all(ctx_with(Some(g)), 30 + u64::from(g));
                }
            }
            4 => assert!(
                !subgroups_usable(ctx),
                "4-lane subgroups must take the portable kernels"
            ),
            _ => {}
        }
    }
    run_all(ctx, 20);
}

#[test]
fn subgroup_kernels_match_the_interpreter_at_16_and_4_lavapipe_lanes() {
    // Each width runs in a child process of this test binary running the test above
    // (`testing::lanes`: lavapipe reads its SIMD width when the Vulkan instance is made).
    let ctx = ctx_with(None);
    if !ctx.info.name.to_lowercase().contains("llvmpipe") {
        println!(
            "{}: not lavapipe, the lane count cannot be set",
            ctx.info.name
        );
        return;
    }
    run_at_16_and_4_lavapipe_lanes(
        "conv2d::wide_tests::subgroup_kernels_in_the_adapters_own_form_match_the_interpreter",
    );
}
