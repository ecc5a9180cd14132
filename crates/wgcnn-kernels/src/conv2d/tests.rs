//! conv2d against the CPU interpreter, plus the shared case runner the depthwise tests use.

use super::*;
use crate::testing::{Rng, assert_close, ctx};
use wgcnn_graph::{Activation, Tensor};

/// Every activation, with non-default parameters where it has some.
pub(crate) const ACTS: [Activation; 9] = [
    Activation::Identity,
    Activation::Relu,
    Activation::RELU6,
    Activation::Clip {
        min: -0.5,
        max: 0.25,
    },
    Activation::Sigmoid,
    Activation::Silu,
    Activation::HARDSIGMOID,
    Activation::HardSwish,
    Activation::Tanh,
];

/// Which kernel runs a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    General,
    /// `conv2d_sg` with `SG4` false and true, `conv2d_1x1_sg` (the device must have subgroups).
    Subgroup,
    Subgroup4,
    Pointwise,
    Depthwise,
    /// `dwconv2d_tile`.
    DepthwiseTile,
    /// `dwconv2d_tile` with vec4 stores (output width a multiple of 4).
    DepthwiseTile4,
    /// `subsample` + `conv2d_1x1_sg` ([`super::strided`]).
    Subsampled,
    /// [`launch_for`]'s choice.
    Auto,
}

/// Runs `desc` (its `act` is taken from `act`) on the GPU with random data and compares it with
/// the interpreter; returns the relative error it measured.
pub(crate) fn check(
    rng: &mut Rng,
    name: &str,
    desc: &ConvDesc,
    act: Activation,
    which: Which,
) -> f32 {
    let ctx = ctx();
    let crate::testing::ConvCase {
        desc,
        x,
        w,
        b,
        r,
        want,
    } = crate::testing::conv_case(rng, name, desc, act);
    let len = want.numel();
    let (xb, wb, bb, rb) = (
        ctx.upload("x", &x.data),
        ctx.upload("w", &w.data),
        ctx.upload("b", &b.data),
        ctx.upload("r", &r.data),
    );
    let yb = ctx.storage("y", len as u64 * 4);
    let dummy = ctx.upload("dummy", &[0.0]);
    let bias = if desc.bias { &bb } else { &dummy };
    let residual = if desc.residual { &rb } else { &dummy };
    let l = match which {
        Which::General => launch(
            ctx,
            name,
            &Conv2dParams::new(&desc).expect("valid desc"),
            &xb,
            &wb,
            bias,
            residual,
            &yb,
        ),
        Which::Subgroup | Which::Subgroup4 | Which::Pointwise => {
            let v = match which {
                Which::Subgroup => Variant::Subgroup,
                Which::Subgroup4 => Variant::Subgroup4,
                _ => Variant::Pointwise,
            };
            let prepared = prepare_weights(v, &desc, &w.data).expect("weight shape");
            let wp = ctx.upload("w prepared", &prepared);
            launch_variant(ctx, name, v, &desc, &xb, &wp, bias, residual, &yb).expect("valid desc")
        }
        Which::Depthwise => {
            let p = crate::dwconv2d::DwConv2dParams::new(&desc).expect("valid depthwise desc");
            crate::dwconv2d::launch(ctx, name, &p, &xb, &wb, bias, residual, &yb)
        }
        Which::DepthwiseTile => {
            let p =
                crate::dwconv2d::DwConv2dParams::tile(&desc).expect("valid tiled depthwise desc");
            crate::dwconv2d::launch_tile(ctx, name, &p, &xb, &wb, bias, residual, &yb)
        }
        Which::DepthwiseTile4 => {
            let p =
                crate::dwconv2d::DwConv2dParams::tile(&desc).expect("valid tiled depthwise desc");
            crate::dwconv2d::launch_tile4(ctx, name, &p, &xb, &wb, bias, residual, &yb)
                .expect("output width a multiple of 4")
        }
        Which::Subsampled => {
            let bytes = super::strided::scratch_bytes(&desc).expect("valid desc");
            let scratch = ctx.storage("subsample scratch", bytes);
            let [copy, gemm] = super::strided::launch_subsampled_into(
                ctx,
                name,
                &desc,
                &xb,
                &wb,
                bias,
                residual,
                &yb,
                ChannelSlice::whole(desc.weight[0]),
                &scratch,
            )
            .expect("a strided 1x1 convolution");
            ctx.run(&[copy]).expect("run subsample");
            gemm
        }
        Which::Auto => {
            launch_for(ctx, name, &desc, &xb, &wb, bias, residual, &yb).expect("valid desc")
        }
    };
    ctx.run(&[l]).expect("run");
    let got = Tensor::new(&want.shape, ctx.read(&yb, len).expect("read")).expect("shape");
    assert_close(
        &format!("{name} {desc:?} {act:?}"),
        &got,
        &want,
        tolerance(desc.weight[1] * desc.weight[2] * desc.weight[3]),
    );
    got.rel_error(&want)
}

/// Relative tolerance for an f32 sum of `terms` products of values in [-1, 1] against the
/// interpreter: summation error grows with the term count (about `terms * 2^-23` of the partial
/// sums in the worst case), and clamping activations can leave an output scale of 1 over
/// pre-activation sums much larger than that.
pub(crate) fn tolerance(terms: usize) -> f32 {
    1e-5 + terms as f32 * 1e-7
}

fn desc(
    input: [usize; 4],
    weight: [usize; 4],
    stride: usize,
    pad: [usize; 4],
    dil: usize,
    groups: usize,
) -> ConvDesc {
    ConvDesc::new(input, weight, [stride; 2], pad, [dil; 2], groups)
}

#[test]
fn conv2d_3x3_stride2_pad1_groups4() {
    let mut rng = Rng::new(1);
    let d = ConvDesc {
        bias: true,
        ..desc([2, 16, 11, 9], [12, 4, 3, 3], 2, [1; 4], 1, 4)
    };
    check(
        &mut rng,
        "conv2d_3x3_stride2_pad1_groups4",
        &d,
        Activation::Relu,
        Which::General,
    );
}

#[test]
fn conv2d_1x1_resnet_bottleneck() {
    // ResNet bottleneck's closing 1x1 expansion with the identity shortcut fused: 64 -> 256,
    // bias (folded BatchNorm), residual add, ReLU.
    let mut rng = Rng::new(2);
    let d = ConvDesc {
        bias: true,
        residual: true,
        ..desc([1, 64, 14, 14], [256, 64, 1, 1], 1, [0; 4], 1, 1)
    };
    check(
        &mut rng,
        "conv2d_1x1_resnet_bottleneck",
        &d,
        Activation::Relu,
        Which::General,
    );
}

#[test]
fn conv2d_tf_same_asymmetric_padding() {
    // TensorFlow "SAME" with stride 2 on an even input pads only bottom/right.
    let mut rng = Rng::new(3);
    for (i, (k, pad)) in [(3, [0, 0, 1, 1]), (5, [1, 1, 2, 2]), (1, [0, 0, 0, 0])]
        .into_iter()
        .enumerate()
    {
        let d = ConvDesc {
            bias: i % 2 == 0,
            ..desc([1, 5, 12, 10], [7, 5, k, k], 2, pad, 1, 1)
        };
        check(
            &mut rng,
            "conv2d_tf_same_asymmetric_padding",
            &d,
            ACTS[i * 3],
            Which::General,
        );
    }
}

#[test]
fn conv2d_1x7_and_7x1_inception() {
    let mut rng = Rng::new(4);
    for (kh, kw, pad) in [(1, 7, [0, 3, 0, 3]), (7, 1, [3, 0, 3, 0])] {
        let d = ConvDesc {
            bias: true,
            ..desc([2, 9, 13, 11], [10, 9, kh, kw], 1, pad, 1, 1)
        };
        check(
            &mut rng,
            "conv2d_1x7_and_7x1_inception",
            &d,
            Activation::Relu,
            Which::General,
        );
    }
}

#[test]
fn conv2d_resnext_32_groups() {
    // ResNeXt-style grouped 3x3: 32 groups of 4 channels each.
    let mut rng = Rng::new(5);
    let d = ConvDesc {
        bias: true,
        ..desc([1, 128, 9, 9], [128, 4, 3, 3], 1, [1; 4], 1, 32)
    };
    check(
        &mut rng,
        "conv2d_resnext_32_groups",
        &d,
        Activation::Relu,
        Which::General,
    );
}

#[test]
fn conv2d_output_larger_than_one_grid_axis() {
    // 64 groups of one channel over 512 x 513 pixels: 1026 pixel blocks x 64 groups = 65 664
    // workgroups, more than one grid axis holds, so the 2-D grid path runs.
    let mut rng = Rng::new(6);
    let d = desc([1, 64, 512, 513], [64, 1, 1, 1], 1, [0; 4], 1, 64);
    assert!(Conv2dParams::new(&d).expect("valid").workgroups() > MAX_GROUPS);
    check(
        &mut rng,
        "conv2d_output_larger_than_one_grid_axis",
        &d,
        Activation::Identity,
        Which::General,
    );
}

#[test]
fn conv2d_channel_block_follows_group_width() {
    // 16-channel blocks for wide layers, 4 where most of a 16-block would be dropped sums.
    for (kg, want) in [
        (1, 4),
        (4, 4),
        (6, 4),
        (8, 4),
        (12, 16),
        (16, 16),
        (64, 16),
        (1000, 16),
    ] {
        assert_eq!(channel_block(kg), want, "channel_block({kg})");
    }
    let p =
        Conv2dParams::new(&desc([1, 128, 8, 8], [128, 4, 3, 3], 1, [1; 4], 1, 32)).expect("valid");
    assert_eq!((p.cb, p.chan_blocks), (4, 1));
    let p =
        Conv2dParams::new(&desc([1, 64, 8, 8], [100, 64, 3, 3], 1, [1; 4], 1, 1)).expect("valid");
    assert_eq!((p.cb, p.chan_blocks), (16, 7));
}

#[test]
fn conv2d_launch_for_picks_depthwise_and_general() {
    let mut rng = Rng::new(7);
    let dw = ConvDesc {
        bias: true,
        ..desc([1, 24, 10, 10], [48, 1, 3, 3], 1, [1; 4], 1, 24)
    };
    let grouped = ConvDesc {
        bias: true,
        ..desc([1, 24, 10, 10], [48, 2, 3, 3], 2, [1; 4], 1, 12)
    };
    for d in [dw, grouped] {
        check(
            &mut rng,
            "conv2d_launch_for_picks_depthwise_and_general",
            &d,
            Activation::Relu,
            Which::Auto,
        );
    }
}

#[test]
fn conv2d_rejects_mismatched_shapes() {
    let bad_groups = desc([1, 6, 5, 5], [4, 3, 3, 3], 1, [0; 4], 1, 4);
    let too_big = desc([1, 3, 2, 2], [4, 3, 5, 5], 1, [0; 4], 1, 1);
    for d in [bad_groups, too_big] {
        let err = Conv2dParams::new(&d).expect_err("must be rejected");
        println!("{err}");
        assert!(err.to_string().contains("conv2d"), "{err}");
    }
}

/// A random convolution: kernel 1/3/5/7 or 1x7/7x1, stride 1-3, symmetric or asymmetric
/// padding, dilation 1-3, groups 1/2/4 or channel-per-group 1..4 style, odd sizes.
fn random_desc(rng: &mut Rng) -> ConvDesc {
    let (kh, kw) = match rng.range(0, 5) {
        0 => (1, 1),
        1 => (3, 3),
        2 => (5, 5),
        3 => (7, 7),
        4 => (1, 7),
        _ => (7, 1),
    };
    let groups = [1, 1, 1, 2, 4, 8][rng.range(0, 5)];
    let cg = rng.range(1, if groups == 1 { 67 } else { 9 });
    let kg = rng.range(1, if groups == 1 { 67 } else { 9 });
    let dil = if rng.range(0, 3) == 0 {
        rng.range(2, 3)
    } else {
        1
    };
    let stride = rng.range(1, 3);
    let pad = if rng.range(0, 1) == 0 {
        [rng.range(0, 3); 4].map(|p| p.min(kh.max(kw)))
    } else {
        [
            rng.range(0, 2),
            rng.range(0, 2),
            rng.range(0, 3),
            rng.range(0, 3),
        ]
    };
    // Big enough for the dilated kernel, at most 17.
    let min_h = (dil * (kh - 1) + 1).saturating_sub(pad[0] + pad[2]).max(1);
    let min_w = (dil * (kw - 1) + 1).saturating_sub(pad[1] + pad[3]).max(1);
    let h = rng.range(min_h, min_h.max(17));
    let w = rng.range(min_w, min_w.max(17));
    let n = rng.range(1, 3);
    ConvDesc {
        bias: rng.range(0, 1) == 1,
        residual: rng.range(0, 2) == 0,
        ..desc(
            [n, cg * groups, h, w],
            [kg * groups, cg, kh, kw],
            stride,
            pad,
            dil,
            groups,
        )
    }
    .with_stride([stride, rng.range(1, 3)])
}

impl ConvDesc {
    fn with_stride(self, stride: [usize; 2]) -> Self {
        ConvDesc { stride, ..self }
    }
}

#[test]
fn conv2d_random_shapes_match_interpreter() {
    let mut rng = Rng::new(42);
    let mut worst = 0f32;
    for case in 0..200 {
        let d = random_desc(&mut rng);
        let act = ACTS[case % ACTS.len()];
        worst = worst.max(check(
            &mut rng,
            &format!("random case {case}"),
            &d,
            act,
            Which::General,
        ));
    }
    println!("conv2d: 200 random cases, worst relative error {worst:.3e}");
}

#[test]
fn conv2d_sg_random_shapes_match_interpreter() {
    if !subgroups_usable(ctx()) {
        println!(
            "skipped: {} has no subgroups of >= 8 lanes",
            ctx().info.name
        );
        return;
    }
    let mut rng = Rng::new(43);
    let mut worst = 0f32;
    for case in 0..200 {
        let d = random_desc(&mut rng);
        let act = ACTS[case % ACTS.len()];
        worst = worst.max(check(
            &mut rng,
            &format!("sg random case {case}"),
            &d,
            act,
            Which::Subgroup,
        ));
    }
    println!("conv2d_sg: 200 random cases, worst relative error {worst:.3e}");
}

#[test]
fn conv2d_sg_channel_tail_groups_and_2d_grid() {
    // 40 output channels: two full 16-channel blocks and a tail of 8; ResNeXt-style groups;
    // the 2-D grid (64 groups x 8208 pixel blocks of 32).
    let mut rng = Rng::new(44);
    let tail = ConvDesc {
        bias: true,
        residual: true,
        ..desc([2, 24, 15, 13], [40, 24, 3, 3], 1, [1; 4], 1, 1)
    };
    let grouped = ConvDesc {
        bias: true,
        ..desc([1, 128, 9, 9], [128, 4, 3, 3], 1, [1; 4], 1, 32)
    };
    let wide = desc([1, 64, 512, 513], [64, 1, 1, 1], 1, [0; 4], 1, 64);
    assert!(Conv2dParams::subgroup(&wide).expect("valid").workgroups() > MAX_GROUPS);
    for (d, act) in [
        (tail, Activation::Relu),
        (grouped, Activation::Silu),
        (wide, Activation::Identity),
    ] {
        check(
            &mut rng,
            "conv2d_sg_channel_tail_groups_and_2d_grid",
            &d,
            act,
            Which::Subgroup,
        );
    }
}

#[test]
fn conv2d_variant_follows_geometry_and_device() {
    let ctx = ctx();
    let d3 = desc([1, 64, 56, 56], [64, 64, 3, 3], 1, [1; 4], 1, 1);
    let d3_small = desc([1, 512, 5, 5], [512, 512, 3, 3], 1, [1; 4], 1, 1);
    let d3_few = desc([1, 3, 224, 224], [64, 3, 3, 3], 1, [1; 4], 1, 1);
    let d3_s2 = desc([1, 64, 56, 56], [64, 64, 3, 3], 2, [1; 4], 1, 1);
    let d1 = desc([1, 256, 56, 56], [64, 256, 1, 1], 1, [0; 4], 1, 1);
    let d1_7x7 = desc([1, 512, 7, 7], [2048, 512, 1, 1], 1, [0; 4], 1, 1);
    let d1_s2 = desc([1, 256, 56, 56], [512, 256, 1, 1], 2, [0; 4], 1, 1);
    let resnext = desc([1, 128, 56, 56], [128, 4, 3, 3], 1, [1; 4], 1, 32);
    let dw = desc([1, 32, 56, 56], [32, 1, 3, 3], 1, [1; 4], 1, 32);
    let usable = subgroups_usable(ctx);
    let on = |v: Variant| if usable { v } else { Variant::General };
    for (d, want) in [
        (d3, on(Variant::Winograd)),
        (d3_small, on(Variant::Subgroup4)),
        (d3_few, on(Variant::Subgroup)),
        (d3_s2, on(Variant::Subgroup4)),
        (d1, on(Variant::Pointwise)),
        (d1_7x7, on(Variant::Subgroup4)),
        (d1_s2, on(Variant::Subgroup4)),
        (resnext, Variant::General),
        (dw, Variant::Depthwise),
    ] {
        assert_eq!(variant(ctx, &d), want, "{d:?}");
    }
}

#[test]
fn conv2d_sg_sg4_step_random_shapes_match_interpreter() {
    if !subgroups_usable(ctx()) {
        println!(
            "skipped: {} has no subgroups of >= 8 lanes",
            ctx().info.name
        );
        return;
    }
    let mut rng = Rng::new(45);
    let mut worst = 0f32;
    for case in 0..120 {
        // random_desc's layers with input channels per group rounded up to a multiple of 4.
        let mut d = random_desc(&mut rng);
        let cg = d.weight[1].next_multiple_of(4);
        d.weight[1] = cg;
        d.input[1] = cg * d.groups;
        let act = ACTS[case % ACTS.len()];
        worst = worst.max(check(
            &mut rng,
            &format!("sg4 random case {case}"),
            &d,
            act,
            Which::Subgroup4,
        ));
    }
    println!("conv2d_sg (SG4): 120 random cases, worst relative error {worst:.3e}");
}

#[test]
fn pointwise_sg_random_shapes_match_interpreter() {
    if !subgroups_usable(ctx()) {
        println!(
            "skipped: {} has no subgroups of >= 8 lanes",
            ctx().info.name
        );
        return;
    }
    let mut rng = Rng::new(46);
    let mut worst = 0f32;
    for case in 0..60 {
        // 1x1, stride 1, no padding; C and H*W multiples of 4; batches, partial pixel and
        // channel blocks.
        let (h, w) = match rng.range(0, 2) {
            0 => (4 * rng.range(1, 5), rng.range(1, 9)),
            1 => (rng.range(1, 9), 4 * rng.range(1, 5)),
            _ => (2 * rng.range(1, 4), 2 * rng.range(1, 4)),
        };
        let d = ConvDesc {
            bias: rng.range(0, 1) == 1,
            residual: rng.range(0, 2) == 0,
            ..desc(
                [rng.range(1, 3), 4 * rng.range(1, 24), h, w],
                [rng.range(12, 70), 0, 1, 1],
                1,
                [0; 4],
                1,
                1,
            )
        };
        let d = ConvDesc {
            weight: [d.weight[0], d.input[1], 1, 1],
            ..d
        };
        assert_eq!(variant(ctx(), &d), Variant::Pointwise, "{d:?}");
        worst = worst.max(check(
            &mut rng,
            &format!("pointwise random case {case}"),
            &d,
            ACTS[case % ACTS.len()],
            Which::Pointwise,
        ));
    }
    println!("conv2d_1x1_sg: 60 random cases, worst relative error {worst:.3e}");
}

#[test]
fn conv2d_prepare_weights_reorders_for_sg4_only() {
    let d = desc([1, 8, 5, 5], [2, 8, 3, 3], 1, [1; 4], 1, 1);
    let w: Vec<f32> = (0..2 * 8 * 9).map(|i| i as f32).collect();
    let sg4 = prepare_weights(Variant::Subgroup4, &d, &w).expect("shape");
    // Output channel 1, kernel position (2, 1), input channel 5.
    assert_eq!(sg4[(9 + 2 * 3 + 1) * 8 + 5], w[(8 + 5) * 9 + 2 * 3 + 1]);
    let plain = prepare_weights(Variant::Subgroup, &d, &w).expect("shape");
    assert_eq!(&*plain, &w[..]);
    let err = prepare_weights(Variant::Subgroup4, &d, &w[1..]).expect_err("one value short");
    println!("{err}");
    assert!(err.to_string().contains("[2, 8, 3, 3]"), "{err}");
}

#[test]
fn conv2d_prepare_weights_pads_the_scalar_step_to_whole_vec4s() {
    // conv2d_sg binds its weights as vec4s: 2 x 3 x 3 x 3 = 54 values go up as 56, the
    // tail zero, the rest unchanged; a weight already of whole vec4s is passed through.
    let d = desc([1, 3, 5, 5], [2, 3, 3, 3], 1, [1; 4], 1, 1);
    let w: Vec<f32> = (1..=54).map(|i| i as f32).collect();
    let padded = prepare_weights(Variant::Subgroup, &d, &w).expect("shape");
    assert_eq!(padded.len(), 56);
    assert_eq!(&padded[..54], &w[..]);
    assert_eq!(&padded[54..], &[0.0, 0.0]);
    let d4 = desc([1, 4, 5, 5], [2, 4, 3, 3], 1, [1; 4], 1, 1);
    let w4: Vec<f32> = (0..72).map(|i| i as f32).collect();
    let same = prepare_weights(Variant::Subgroup, &d4, &w4).expect("shape");
    assert!(matches!(same, std::borrow::Cow::Borrowed(_)));
}
