//! `copy_channels`: copies a channel range of `[outer, C_src, inner]` into a channel range of
//! `[outer, C_dst, inner]`: Concat on any axis (one launch per input), slicing, plain copies.
//! Shader: `shaders/copy_channels.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "copy_channels",
    source: shaders::COPY_CHANNELS,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/copy_channels.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CopyChannelsParams {
    pub total: u32,
    pub count: u32,
    pub inner: u32,
    pub src_channels: u32,
    pub src_offset: u32,
    pub dst_channels: u32,
    pub dst_offset: u32,
    pub _pad: u32,
}

impl CopyChannelsParams {
    /// Copies all of `x` `[outer, channels, inner]` into channels `offset..offset + channels`
    /// of `y` `[outer, dst_channels, inner]`: one input of a Concat, where `outer` is the
    /// product of the dims before the concat axis and `inner` the product after.
    pub fn concat(
        outer: usize,
        channels: usize,
        inner: usize,
        dst_channels: usize,
        offset: usize,
    ) -> Self {
        Self::slice(
            outer,
            inner,
            [channels, 0],
            [dst_channels, offset],
            channels,
        )
    }

    /// Copies channels `src[1]..src[1] + count` of `x` `[outer, src[0], inner]` into channels
    /// `dst[1]..dst[1] + count` of `y` `[outer, dst[0], inner]`.
    pub fn slice(
        outer: usize,
        inner: usize,
        src: [usize; 2],
        dst: [usize; 2],
        count: usize,
    ) -> Self {
        CopyChannelsParams {
            total: (outer * count * inner) as u32,
            count: count as u32,
            inner: inner as u32,
            src_channels: src[0] as u32,
            src_offset: src[1] as u32,
            dst_channels: dst[0] as u32,
            dst_offset: dst[1] as u32,
            _pad: 0,
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the copy from `x` into `y` (distinct buffers).
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &CopyChannelsParams,
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
    use wgcnn_graph::{Op, Tensor, interp};

    /// Concatenates `inputs` on `axis` with one launch per input (one submission) and compares
    /// with the interpreter.
    fn check_concat(inputs: &[Tensor], axis: usize) {
        let ctx = ctx();
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let want = interp::eval_op(&Op::Concat { axis }, &refs).expect("interpreter");
        let shape = &want.shape;
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let yb = ctx.storage("y", want.numel() as u64 * 4);
        let buffers: Vec<wgpu::Buffer> = inputs.iter().map(|t| ctx.upload("x", &t.data)).collect();
        let mut offset = 0;
        let mut launches = Vec::new();
        for (t, b) in inputs.iter().zip(&buffers) {
            let p = CopyChannelsParams::concat(outer, t.shape[axis], inner, shape[axis], offset);
            launches.push(launch(ctx, "concat", &p, b, &yb));
            offset += t.shape[axis];
        }
        ctx.run(&launches).expect("run");
        let got = Tensor::new(shape, ctx.read(&yb, want.numel()).expect("read")).expect("shape");
        let parts: Vec<&Vec<usize>> = inputs.iter().map(|t| &t.shape).collect();
        assert_close(
            &format!("concat axis {axis} of {parts:?}"),
            &got,
            &want,
            0.0,
        );
    }

    #[test]
    fn concat_random_two_to_four_inputs_on_every_axis() {
        let mut rng = Rng::new(51);
        for case in 0..24 {
            let base = [
                rng.range(1, 3),
                rng.range(1, 67),
                rng.range(1, 17),
                rng.range(1, 17),
            ];
            // Axis 1 (Inception, DenseNet) most often, the others too.
            let axis = if case % 2 == 0 {
                1
            } else {
                [0, 2, 3][case % 3]
            };
            let inputs: Vec<Tensor> = (0..rng.range(2, 4))
                .map(|_| {
                    let mut s = base;
                    s[axis] = rng.range(1, 40);
                    rng.tensor(&s, 5.0)
                })
                .collect();
            check_concat(&inputs, axis);
        }
    }

    #[test]
    fn concat_2d_and_single_input_is_a_copy() {
        let mut rng = Rng::new(53);
        check_concat(&[rng.tensor(&[3, 17], 1.0), rng.tensor(&[3, 5], 1.0)], 1);
        check_concat(&[rng.tensor(&[3, 17], 1.0), rng.tensor(&[2, 17], 1.0)], 0);
        check_concat(&[rng.tensor(&[2, 9, 4, 3], 1.0)], 1);
    }

    #[test]
    fn copy_channels_slice_between_offsets() {
        // Channels 3..8 of [2, 11, 4, 5] into channels 1..6 of [2, 7, 4, 5]; the rest keeps its
        // previous contents.
        let ctx = ctx();
        let mut rng = Rng::new(57);
        let x = rng.tensor(&[2, 11, 4, 5], 1.0);
        let y0 = rng.tensor(&[2, 7, 4, 5], 1.0);
        let mut want = y0.clone();
        for o in 0..2 {
            for c in 0..5 {
                for j in 0..20 {
                    want.data[(o * 7 + 1 + c) * 20 + j] = x.data[(o * 11 + 3 + c) * 20 + j];
                }
            }
        }
        let (xb, yb) = (ctx.upload("x", &x.data), ctx.upload("y", &y0.data));
        let p = CopyChannelsParams::slice(2, 20, [11, 3], [7, 1], 5);
        ctx.run(&[launch(ctx, "slice", &p, &xb, &yb)]).expect("run");
        let got =
            Tensor::new(&want.shape, ctx.read(&yb, want.numel()).expect("read")).expect("shape");
        assert_close("copy_channels slice 3..8 -> 1..6", &got, &want, 0.0);
    }
}
