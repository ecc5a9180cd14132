//! `pool2d`: MaxPool2d and AvgPool2d (kernel, stride, asymmetric padding, ceil_mode,
//! count_include_pad) in one kernel. Shader: `shaders/pool2d.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "pool2d",
    source: shaders::POOL2D,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// Which reduction a pooling window does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    /// The largest in-bounds value.
    Max,
    /// The mean, divided per `count_include_pad`.
    Avg { count_include_pad: bool },
}

/// Mirrors `Params` in `shaders/pool2d.wgsl`; keep both in step (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Pool2dParams {
    pub total: u32,
    pub height: u32,
    pub width: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub pad_bottom: u32,
    pub pad_right: u32,
    pub mode: u32,
    pub count_include_pad: u32,
    /// `C`.
    pub channels: u32,
    /// Channels of the tensor the output is written into (`C` unless it is a channel slice of
    /// a wider tensor, see [`Pool2dParams::into_channels`]).
    pub out_c_total: u32,
    /// First channel of that tensor the output is written at.
    pub out_c_offset: u32,
    pub _pad: [u32; 2],
}

impl Pool2dParams {
    /// Pools `input` `[N, C, H, W]` into `[N, C, out[0], out[1]]`; `out` comes from the
    /// graph's shape rule (`Pool2d::out_extent`, which handles ceil_mode), `padding` is
    /// `[top, left, bottom, right]`.
    pub fn new(
        mode: PoolMode,
        input: [usize; 4],
        out: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 4],
    ) -> Self {
        let [n, c, h, w] = input;
        let (mode, count_include_pad) = match mode {
            PoolMode::Max => (0, 0),
            PoolMode::Avg { count_include_pad } => (1, count_include_pad as u32),
        };
        Pool2dParams {
            total: (n * c * out[0] * out[1]) as u32,
            height: h as u32,
            width: w as u32,
            out_height: out[0] as u32,
            out_width: out[1] as u32,
            kernel_h: kernel[0] as u32,
            kernel_w: kernel[1] as u32,
            stride_h: stride[0] as u32,
            stride_w: stride[1] as u32,
            pad_top: padding[0] as u32,
            pad_left: padding[1] as u32,
            pad_bottom: padding[2] as u32,
            pad_right: padding[3] as u32,
            mode,
            count_include_pad,
            channels: c as u32,
            out_c_total: c as u32,
            out_c_offset: 0,
            _pad: [0; 2],
        }
    }

    /// The same pooling writing its `[N, C, OH, OW]` output as channels `offset..offset + C`
    /// of an `[N, total, OH, OW]` tensor (a concatenation's buffer).
    pub fn into_channels(self, slice: crate::conv2d::ChannelSlice) -> Self {
        Pool2dParams {
            out_c_total: slice.total as u32,
            out_c_offset: slice.offset as u32,
            ..self
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = pool(x)`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &Pool2dParams,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let groups = grid(p.total.div_ceil(256), MAX_GROUPS);
    ctx.launch(label, &kernel(ctx), bytemuck::bytes_of(p), &[x, y], groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{Op, Pool2d, Tensor, interp};

    /// Runs `op` (MaxPool2d or AvgPool2d) on the GPU and on the interpreter and compares.
    fn check(what: &str, op: &Op, x: &Tensor) {
        let ctx = ctx();
        let (pool, mode) = match op {
            Op::MaxPool2d(p) => (p, PoolMode::Max),
            Op::AvgPool2d(p) => (
                p,
                PoolMode::Avg {
                    count_include_pad: p.count_include_pad,
                },
            ),
            other => panic!("not a pooling op: {other:?}"),
        };
        let want = interp::eval_op(op, &[x]).expect("interpreter");
        let input: [usize; 4] = x.shape.as_slice().try_into().expect("4-D input");
        let out = [want.shape[2], want.shape[3]];
        let expected_out = [pool.out_extent(input[2], 0), pool.out_extent(input[3], 1)];
        assert_eq!(
            expected_out,
            [Some(out[0]), Some(out[1])],
            "{what}: output extent"
        );
        let p = Pool2dParams::new(mode, input, out, pool.kernel, pool.stride, pool.padding);
        let (xb, yb) = (
            ctx.upload("x", &x.data),
            ctx.storage("y", want.numel() as u64 * 4),
        );
        ctx.run(&[launch(ctx, what, &p, &xb, &yb)]).expect("run");
        let got =
            Tensor::new(&want.shape, ctx.read(&yb, want.numel()).expect("read")).expect("shape");
        assert_close(what, &got, &want, 1e-5);
    }

    /// A random valid pooling configuration for an input of `h` x `w`, or None when the
    /// window does not fit.
    fn random_pool(rng: &mut Rng, h: usize, w: usize) -> Option<Pool2d> {
        let kernel = [rng.range(1, 5), rng.range(1, 5)];
        let stride = [rng.range(1, 3), rng.range(1, 3)];
        // PyTorch allows padding up to half the kernel; bottom/right may differ (TF "SAME").
        let padding = [
            rng.range(0, kernel[0] / 2),
            rng.range(0, kernel[1] / 2),
            rng.range(0, kernel[0] / 2),
            rng.range(0, kernel[1] / 2),
        ];
        let pool = Pool2d {
            kernel,
            stride,
            padding,
            ceil_mode: rng.range(0, 1) == 1,
            count_include_pad: rng.range(0, 1) == 1,
        };
        (pool.out_extent(h, 0).is_some() && pool.out_extent(w, 1).is_some()).then_some(pool)
    }

    #[test]
    fn pool2d_random_max_and_avg_match_interpreter() {
        let mut rng = Rng::new(21);
        let mut done = 0;
        while done < 48 {
            let shape = [
                rng.range(1, 3),
                rng.range(1, 67),
                rng.range(1, 17),
                rng.range(1, 17),
            ];
            let Some(pool) = random_pool(&mut rng, shape[2], shape[3]) else {
                continue;
            };
            let x = rng.tensor(&shape, 4.0);
            let op = if done % 2 == 0 {
                Op::MaxPool2d(pool)
            } else {
                Op::AvgPool2d(pool)
            };
            check(&format!("{} {op:?} {shape:?}", op.kind()), &op, &x);
            done += 1;
        }
    }

    #[test]
    fn maxpool2d_3x3_stride2_ceil_mode_drops_last_window() {
        // With symmetric padding <= kernel/2 a 3x3/2 window can never start in the bottom
        // padding; TF-style extra bottom/right padding makes it: 7 + 1 + 2 - 3 = 7 ->
        // ceil(7/2) + 1 = 5 windows, the 5th would start at 8 = H + pad_top, so PyTorch's rule
        // drops it: 4 x 4 outputs whose last window overhangs into the padding.
        let mut rng = Rng::new(3);
        let pool = Pool2d {
            padding: [1, 1, 2, 2],
            ..Pool2d::new(3, 2, 1, true)
        };
        assert_eq!(pool.out_extent(7, 0), Some(4));
        let x = rng.tensor(&[2, 5, 7, 7], 3.0);
        check(
            "maxpool2d 3x3 s2 pad [1,1,2,2] ceil 7x7",
            &Op::MaxPool2d(pool.clone()),
            &x,
        );
        check(
            "avgpool2d 3x3 s2 pad [1,1,2,2] ceil 7x7",
            &Op::AvgPool2d(pool),
            &x,
        );
        // The classic drop: 2x2/2 pad 1 on 5 -> ceil(5/2) + 1 = 4, minus the one in the padding.
        let pool = Pool2d::new(2, 2, 1, true);
        assert_eq!(pool.out_extent(5, 0), Some(3));
        let x = rng.tensor(&[1, 4, 5, 5], 3.0);
        check(
            "maxpool2d 2x2 s2 p1 ceil 5x5",
            &Op::MaxPool2d(pool.clone()),
            &x,
        );
        check("avgpool2d 2x2 s2 p1 ceil 5x5", &Op::AvgPool2d(pool), &x);
        // GoogLeNet's 3x3/2 ceil pools on odd and even maps, no padding (one extra window).
        for hw in [13, 14, 28, 57, 112] {
            let x = rng.tensor(&[1, 3, hw, hw], 3.0);
            check(
                &format!("maxpool2d 3x3 s2 ceil {hw}x{hw}"),
                &Op::MaxPool2d(Pool2d::new(3, 2, 0, true)),
                &x,
            );
        }
    }

    #[test]
    fn pool2d_writes_a_channel_slice_of_a_batch_of_two() {
        // Max and average pools into channels 5..8 of a [2, 11, OH, OW] buffer; the rest of
        // the buffer keeps its values.
        let ctx = ctx();
        let mut rng = Rng::new(13);
        let x = rng.tensor(&[2, 3, 9, 8], 2.0);
        let (total, offset) = (11, 5);
        for op in [
            Op::MaxPool2d(Pool2d::new(3, 2, 1, true)),
            Op::AvgPool2d(Pool2d::new(3, 1, 1, false)),
        ] {
            let (pool, mode) = match &op {
                Op::MaxPool2d(p) => (p, PoolMode::Max),
                Op::AvgPool2d(p) => (
                    p,
                    PoolMode::Avg {
                        count_include_pad: p.count_include_pad,
                    },
                ),
                other => panic!("not a pooling op: {other:?}"),
            };
            let want = interp::eval_op(&op, &[&x]).expect("interpreter");
            let [oh, ow] = [want.shape[2], want.shape[3]];
            let plane = oh * ow;
            let p = Pool2dParams::new(
                mode,
                [2, 3, 9, 8],
                [oh, ow],
                pool.kernel,
                pool.stride,
                pool.padding,
            )
            .into_channels(crate::conv2d::ChannelSlice { total, offset });
            let sentinel = -77.25;
            let (xb, yb) = (
                ctx.upload("x", &x.data),
                ctx.upload("y", &vec![sentinel; 2 * total * plane]),
            );
            ctx.run(&[launch(ctx, "pool slice", &p, &xb, &yb)])
                .expect("run");
            let all = ctx.read(&yb, 2 * total * plane).expect("read");
            let mut got = Vec::new();
            for (i, v) in all.iter().enumerate() {
                let c = (i / plane) % total;
                if (offset..offset + 3).contains(&c) {
                    got.push(*v);
                } else {
                    assert_eq!(*v, sentinel, "{}: element {i} outside the slice", op.kind());
                }
            }
            let got = Tensor::new(&want.shape, got).expect("shape");
            println!("{} slice: rel error {:e}", op.kind(), got.rel_error(&want));
            assert_close(&format!("{} into a slice", op.kind()), &got, &want, 1e-5);
        }
    }

    #[test]
    fn maxpool2d_all_negative_inputs_ignore_padding() {
        // Padded positions never win: with every input negative a zero pad would.
        let mut rng = Rng::new(5);
        let x = Tensor {
            shape: vec![1, 4, 7, 9],
            data: rng
                .tensor(&[1, 4, 7, 9], 1.0)
                .data
                .iter()
                .map(|v| -v.abs() - 0.5)
                .collect(),
        };
        check(
            "maxpool2d 3x3 s1 p1 negative",
            &Op::MaxPool2d(Pool2d::new(3, 1, 1, false)),
            &x,
        );
    }

    #[test]
    fn avgpool2d_count_include_pad_false_at_borders() {
        let mut rng = Rng::new(9);
        for (include, ceil) in [(false, false), (false, true), (true, false), (true, true)] {
            let mut pool = Pool2d::new(3, 2, 1, ceil);
            pool.count_include_pad = include;
            let x = rng.tensor(&[2, 3, 8, 11], 2.0);
            check(
                &format!("avgpool2d 3x3 s2 p1 ceil={ceil} count_include_pad={include}"),
                &Op::AvgPool2d(pool),
                &x,
            );
        }
        // Asymmetric TF-style padding, bottom/right beyond top/left.
        let pool = Pool2d {
            kernel: [3, 3],
            stride: [2, 2],
            padding: [0, 0, 1, 1],
            ceil_mode: false,
            count_include_pad: false,
        };
        let x = rng.tensor(&[1, 5, 9, 10], 2.0);
        check(
            "avgpool2d 3x3 s2 pad [0,0,1,1] exclude pad",
            &Op::AvgPool2d(pool),
            &x,
        );
    }
}
