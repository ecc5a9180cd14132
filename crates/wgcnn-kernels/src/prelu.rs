//! `prelu`: per-channel PReLU on planes of at least [`MIN_SPATIAL`] elements (MTCNN's large
//! conv outputs).
//! Shader: `shaders/prelu.wgsl`. Smaller planes (dense layers) take `binary`'s PReLU mode.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "prelu",
    source: shaders::PRELU,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// Planes smaller than this leave most lanes of a 256-offset workgroup idle (a dense layer's
/// output has one element per plane): `binary` instead.
pub const MIN_SPATIAL: usize = 32;

/// Planes each workgroup row walks (`PLANES` in the shader).
pub const PLANES_PER_GROUP: u32 = 16;

/// Mirrors `Params` in `shaders/prelu.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PreluParams {
    pub spatial: u32,
    pub channels: u32,
    pub planes: u32,
    pub single: u32,
}

impl PreluParams {
    /// PReLU of `x` `[N, C, ...]` with `slopes` values (`C`, or 1 for every channel).
    pub fn new(shape: &[usize], slopes: usize) -> Self {
        let channels = shape.get(1).copied().unwrap_or(1).max(1);
        let spatial: usize = shape.get(2..).map_or(1, |s| s.iter().product());
        PreluParams {
            spatial: spatial as u32,
            channels: channels as u32,
            planes: (shape.first().copied().unwrap_or(1) * channels) as u32,
            single: (slopes == 1) as u32,
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = prelu(x, slope)`; `y` must not be `x`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &PreluParams,
    x: &wgpu::Buffer,
    slope: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let rows = p.planes.div_ceil(PLANES_PER_GROUP).max(1);
    let groups = [
        p.spatial.div_ceil(256).max(1),
        rows.min(MAX_GROUPS),
        rows.div_ceil(MAX_GROUPS),
    ];
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[x, slope, y],
        groups,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{Op, Tensor, interp};

    /// Random NCHW shapes (planes from 1 to ~5000 elements, plane counts not multiples of 16,
    /// one slope or one per channel) against the interpreter's PReLU.
    #[test]
    fn prelu_planes_match_interpreter_per_channel_and_single_slope() {
        let ctx = ctx();
        let mut rng = Rng::new(53);
        for case in 0..16 {
            let shape = [
                rng.range(1, 4),
                rng.range(1, 40),
                rng.range(1, 70),
                rng.range(1, 75),
            ];
            let slopes = if case % 4 == 3 { 1 } else { shape[1] };
            let x = rng.tensor(&shape, 3.0);
            let slope = rng.tensor(&[slopes], 1.0);
            let want = interp::eval_op(&Op::PRelu, &[&x, &slope]).expect("interpreter");
            let p = PreluParams::new(&shape, slopes);
            let what = format!("prelu {shape:?} slopes {slopes}");
            let (xb, sb, yb) = (
                ctx.upload("x", &x.data),
                ctx.upload("slope", &slope.data),
                ctx.storage("y", x.numel() as u64 * 4),
            );
            ctx.run(&[launch(ctx, &what, &p, &xb, &sb, &yb)])
                .expect("run");
            let got = Tensor::new(&shape, ctx.read(&yb, x.numel()).expect("read")).expect("shape");
            assert_close(&what, &got, &want, 0.0);
        }
    }
}
