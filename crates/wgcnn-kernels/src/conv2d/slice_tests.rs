//! Convolutions writing a channel slice of a wider tensor ([`ChannelSlice`]): every variant
//! writes exactly its channels of every image and leaves the rest of the buffer alone, while
//! the residual is still read in the output's own `[N, K, OH, OW]` layout.

use super::*;
use crate::testing::{Rng, assert_close, ctx};
use wgcnn_graph::{Activation, Tensor};

/// What the channels outside the slice hold before and after the launch.
const SENTINEL: f32 = 123.5;

/// Which kernel writes the slice.
#[derive(Clone, Copy, Debug)]
enum Path {
    Variant(Variant),
    Winograd,
}

/// Runs `desc` (bias, residual, ReLU) into channels `offset..offset + K` of an
/// `[N, total, OH, OW]` buffer filled with [`SENTINEL`], and checks the slice against the
/// interpreter and every other value unchanged. Returns the slice's relative error.
fn check_slice(rng: &mut Rng, desc: &ConvDesc, path: Path, total: usize, offset: usize) -> f32 {
    let ctx = ctx();
    let name = format!("{path:?} into channels {offset}.. of {total}");
    let desc = ConvDesc {
        bias: true,
        residual: true,
        ..*desc
    };
    let crate::testing::ConvCase {
        desc,
        x,
        w,
        b,
        r,
        want,
    } = crate::testing::conv_case(rng, &name, &desc, Activation::Relu);
    let out = desc.output().expect("valid desc");
    let [n, k, oh, ow] = out;
    let (xb, bb, rb) = (
        ctx.upload("x", &x.data),
        ctx.upload("b", &b.data),
        ctx.upload("r", &r.data),
    );
    let plane = oh * ow;
    let yb = ctx.upload("y", &vec![SENTINEL; n * total * plane]);
    let slice = ChannelSlice { total, offset };
    let launches = match path {
        Path::Variant(v) => {
            let wp = ctx.upload("w", &prepare_weights(v, &desc, &w.data).expect("weights"));
            vec![
                launch_variant_into(ctx, &name, v, &desc, &xb, &wp, &bb, &rb, &yb, slice)
                    .expect("launch"),
            ]
        }
        Path::Winograd => {
            let p = winograd::WinogradParams::new(&desc)
                .expect("winograd desc")
                .into_channels(slice);
            let u = winograd::transform_weights(&w.data, k, desc.weight[1]).expect("weights");
            let ub = ctx.upload("u", &u);
            let mut scratch = winograd::Scratch::default();
            let (vb, mb) = scratch.buffers(ctx, &p);
            winograd::launches(ctx, &name, &p, &xb, &ub, &bb, &rb, &yb, &vb, &mb)
        }
    };
    ctx.run(&launches).expect("run");
    let all = ctx.read(&yb, n * total * plane).expect("read");
    let mut got = Vec::with_capacity(want.numel());
    for (i, v) in all.iter().enumerate() {
        let c = (i / plane) % total;
        if (offset..offset + k).contains(&c) {
            got.push(*v);
        } else {
            assert_eq!(
                *v, SENTINEL,
                "{name}: element {i} (channel {c}) outside the slice"
            );
        }
    }
    let got = Tensor::new(&out, got).expect("shape");
    let terms = desc.weight[1] * desc.weight[2] * desc.weight[3];
    assert_close(&name, &got, &want, tests::tolerance(terms));
    let err = got.rel_error(&want);
    println!("{name}: rel error {err:e}");
    err
}

#[test]
fn conv2d_every_variant_writes_a_channel_slice_of_a_batch_of_two() {
    let ctx = ctx();
    let mut rng = Rng::new(77);
    let d = |input, weight, stride: usize, pad: usize| {
        ConvDesc::new(input, weight, [stride; 2], [pad; 4], [1, 1], 1)
    };
    // 3x3 stride 2 with 6 input channels: the general and the plain subgroup kernel.
    let odd = d([2, 6, 9, 7], [20, 6, 3, 3], 2, 1);
    check_slice(&mut rng, &odd, Path::Variant(Variant::General), 52, 13);
    if !subgroups_usable(ctx) {
        println!("no usable subgroups: only the general kernel checked");
        return;
    }
    check_slice(&mut rng, &odd, Path::Variant(Variant::Subgroup), 52, 13);
    // Input channels a multiple of 4: conv2d_sg with SG4.
    let sg4 = d([2, 8, 9, 7], [24, 8, 3, 3], 2, 1);
    check_slice(&mut rng, &sg4, Path::Variant(Variant::Subgroup4), 40, 16);
    // 1x1 with H*W a multiple of 4 (vec4 stores at offset * H*W).
    let pw = d([2, 16, 6, 6], [24, 16, 1, 1], 1, 0);
    check_slice(&mut rng, &pw, Path::Variant(Variant::Pointwise), 56, 7);
    // 3x3 stride 1: the Winograd path, odd output extents (partial tiles).
    let wino = d([2, 8, 9, 7], [20, 8, 3, 3], 1, 1);
    check_slice(&mut rng, &wino, Path::Winograd, 33, 9);
    // A slice that ends at the last channel.
    check_slice(&mut rng, &wino, Path::Winograd, 29, 9);
}

#[test]
fn conv2d_slice_past_the_end_or_depthwise_slice_is_refused() {
    let ctx = ctx();
    let dummy = ctx.upload("dummy", &[0.0; 4]);
    let desc = ConvDesc::new([1, 4, 5, 5], [8, 4, 1, 1], [1, 1], [0; 4], [1, 1], 1);
    let past = ChannelSlice {
        total: 10,
        offset: 3,
    };
    let err = launch_variant_into(
        ctx,
        "past",
        Variant::General,
        &desc,
        &dummy,
        &dummy,
        &dummy,
        &dummy,
        &dummy,
        past,
    )
    .expect_err("8 channels at 3 do not fit in 10");
    assert!(err.to_string().contains("do not fit"), "{err}");
    let dw = ConvDesc::new([1, 4, 5, 5], [4, 1, 3, 3], [1, 1], [1; 4], [1, 1], 4);
    let err = launch_variant_into(
        ctx,
        "dw",
        Variant::Depthwise,
        &dw,
        &dummy,
        &dummy,
        &dummy,
        &dummy,
        &dummy,
        ChannelSlice {
            total: 8,
            offset: 4,
        },
    )
    .expect_err("depthwise writes whole tensors");
    assert!(err.to_string().contains("whole tensors"), "{err}");
}
