//! `pool2d`: MaxPool2d and AvgPool2d (kernel, stride, asymmetric padding, ceil_mode,
//! count_include_pad). Shaders: `shaders/pool2d.wgsl` (one output per invocation, any window)
//! and `shaders/pool2d_tile.wgsl` (4-column strips walked down with the input rows in
//! registers, one pipeline per window, stride and mode; windows up to 5x5, strides up to 2:
//! every pooling of the classic networks); [`launch`] picks one.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "pool2d",
    source: shaders::POOL2D,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// The tiled variant's registry entry: the bindings of [`SPEC`], then y again (its vec4 view;
/// WGSL fixes a binding's type, so the scalar and vec4 stores need one binding each).
pub const TILE_SPEC: KernelSpec = KernelSpec {
    name: "pool2d_tile",
    source: shaders::POOL2D_TILE,
    buffers: &[Access::Read, Access::ReadWrite, Access::ReadWrite],
};

/// The tiled variant's output strips (4 columns, up to 16 rows), largest window side and
/// stride; keep in step with the shader.
const TILE: u32 = 4;
const TILE_ROWS: u32 = 16;
const TILE_MAX_KERNEL: u32 = 5;
const TILE_MAX_STRIDE: u32 = 2;

/// Which reduction a pooling window does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    /// The largest in-bounds value.
    Max,
    /// The mean, divided per `count_include_pad`.
    Avg { count_include_pad: bool },
}

/// Mirrors `PoolParams` in `shaders/lib/pool.wgsl` (read by `pool2d` and `pool2d_tile`); keep
/// both in step (80 bytes).
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

impl Pool2dParams {
    /// Whether `pool2d_tile` runs these params: windows up to 5x5, strides up to 2, at least
    /// one vec4 of output (y's vec4 view is bound in every tiled launch, and wgpu wants a
    /// binding to hold one element of its array), and a workgroup grid within the limit.
    pub fn tile_fits(&self) -> bool {
        let side = 1..=TILE_MAX_KERNEL;
        let stride = 1..=TILE_MAX_STRIDE;
        side.contains(&self.kernel_h)
            && side.contains(&self.kernel_w)
            && stride.contains(&self.stride_h)
            && stride.contains(&self.stride_w)
            && self.channels > 0
            && self.total >= TILE
            && self.tile_grid().iter().all(|&g| g <= MAX_GROUPS)
    }

    /// Whether the tiled launch also stores vec4s: the output width is a multiple of 4, so
    /// every strip is full and its row one aligned vec4 (the channel slice's planes too).
    pub fn tile4_fits(&self) -> bool {
        self.out_width.is_multiple_of(TILE)
    }

    /// The 3-D grid of 8-invocation workgroups a `pool2d_tile` launch needs: (8-channel
    /// groups, strips per row, 16-row blocks x images).
    pub fn tile_grid(&self) -> [u32; 3] {
        let batch = self.total / (self.channels * self.out_height * self.out_width).max(1);
        [
            self.channels.div_ceil(8),
            self.out_width.div_ceil(TILE),
            self.out_height.div_ceil(TILE_ROWS) * batch,
        ]
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = pool(x)`: on `pool2d_tile` where it fits ([`Pool2dParams::tile_fits`], with
/// vec4 stores where [`Pool2dParams::tile4_fits`]), on `pool2d` otherwise.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &Pool2dParams,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    if p.tile_fits() {
        launch_tile(ctx, label, p, p.tile4_fits(), x, y)
    } else {
        launch_general(ctx, label, p, x, y)
    }
}

/// Records `y = pool(x)` on `pool2d`, whatever the window.
pub fn launch_general(
    ctx: &Context,
    label: &str,
    p: &Pool2dParams,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let groups = grid(p.total.div_ceil(256), MAX_GROUPS);
    ctx.launch(label, &kernel(ctx), bytemuck::bytes_of(p), &[x, y], groups)
}

/// Records `y = pool(x)` on `pool2d_tile`, specialized to the params' window, stride and mode,
/// with vec4 stores if `vec4`. The caller checks [`Pool2dParams::tile_fits`] (and
/// [`Pool2dParams::tile4_fits`] for `vec4`); [`launch`] does.
fn launch_tile(
    ctx: &Context,
    label: &str,
    p: &Pool2dParams,
    vec4: bool,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let constants = [
        ("KH", f64::from(p.kernel_h)),
        ("KW", f64::from(p.kernel_w)),
        ("SH", f64::from(p.stride_h)),
        ("SW", f64::from(p.stride_w)),
        ("MAX", f64::from(u8::from(p.mode == 0))),
        ("VEC4", f64::from(u8::from(vec4))),
    ];
    ctx.launch(
        label,
        &ctx.kernel(&TILE_SPEC, &constants),
        bytemuck::bytes_of(p),
        &[x, y, y],
        p.tile_grid(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{Op, Pool2d, Tensor, interp};

    /// Runs `op` (MaxPool2d or AvgPool2d) on the GPU, through [`launch`] (the tiled kernel
    /// where it fits) and through `pool2d`, and on the interpreter, and compares. Returns
    /// whether the tiled kernel ran.
    fn check(what: &str, op: &Op, x: &Tensor) -> bool {
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
        let xb = ctx.upload("x", &x.data);
        for (kernel, general) in [("auto", false), ("pool2d", true)] {
            let yb = ctx.storage("y", want.numel() as u64 * 4);
            let l = if general {
                launch_general(ctx, what, &p, &xb, &yb)
            } else {
                launch(ctx, what, &p, &xb, &yb)
            };
            ctx.run(&[l]).expect("run");
            let got = Tensor::new(&want.shape, ctx.read(&yb, want.numel()).expect("read"))
                .expect("shape");
            assert_close(&format!("{what} ({kernel})"), &got, &want, 1e-5);
        }
        p.tile_fits()
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
        let (mut done, mut tiled) = (0, 0);
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
            if check(&format!("{} {op:?} {shape:?}", op.kind()), &op, &x) {
                tiled += 1;
            }
            done += 1;
        }
        // Strides of 3 (a third of the draws per axis) and tiny outputs stay on pool2d: about
        // 4 cases in 9 fit the tiled kernel.
        println!("{tiled} of 48 cases on pool2d_tile");
        assert!(tiled >= 12, "only {tiled} of 48 cases on pool2d_tile");
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
    fn pool2d_tile_network_pools_batch_of_two_ragged_channels() {
        // The classic networks' poolings, on 2 images of 13 channels (not a multiple of the 8
        // lanes), heights past one 16-row block; (window, stride, pad, ceil, input side,
        // whether the output width is a multiple of 4).
        let mut rng = Rng::new(17);
        for (k, s, pad, ceil, hw, vec4) in [
            (3, 2, 0, true, 37, false), // SqueezeNet / GoogLeNet 3x3/2 ceil (odd side)
            (3, 2, 0, true, 40, false), // ... even side: one extra window
            (3, 2, 1, false, 40, true), // ResNet's stem pool
            (2, 2, 0, false, 41, true), // VGG, DenseNet's transition average
            (3, 1, 1, false, 22, false), // GoogLeNet / Inception branch pools
            (3, 1, 1, true, 37, true),
            (5, 2, 2, true, 35, false),
        ] {
            let x = rng.tensor(&[2, 13, hw, hw - 1], 3.0);
            let ow = Pool2d::new(k, s, pad, ceil)
                .out_extent(hw - 1, 1)
                .expect("window fits");
            for op in [
                Op::MaxPool2d(Pool2d::new(k, s, pad, ceil)),
                Op::AvgPool2d(Pool2d::new(k, s, pad, ceil)),
                Op::AvgPool2d(Pool2d {
                    count_include_pad: false,
                    ..Pool2d::new(k, s, pad, ceil)
                }),
            ] {
                let what = format!("{} {k}x{k}/{s} pad {pad} ceil {ceil} on {hw}", op.kind());
                assert_eq!(ow.is_multiple_of(4), vec4, "{what}: output width {ow}");
                assert!(check(&what, &op, &x), "{what}: not on pool2d_tile");
            }
        }
    }

    #[test]
    fn pool2d_tile_leaves_stride_3_large_windows_and_tiny_outputs_to_pool2d() {
        let p = |k, s, hw| {
            Pool2dParams::new(
                PoolMode::Max,
                [1, 2, hw, hw],
                [1 + (hw - k) / s; 2],
                [k; 2],
                [s; 2],
                [0; 4],
            )
        };
        assert!(p(3, 2, 9).tile_fits());
        assert!(!p(3, 3, 9).tile_fits(), "stride 3");
        assert!(!p(6, 1, 9).tile_fits(), "6x6 window");
        assert!(!p(3, 1, 3).tile_fits(), "2 outputs: under one vec4");
        let mut rng = Rng::new(19);
        let x = rng.tensor(&[1, 2, 9, 9], 3.0);
        assert!(!check(
            "maxpool 3x3/3",
            &Op::MaxPool2d(Pool2d::new(3, 3, 0, false)),
            &x
        ));
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
