//! `softmax`: max-subtracted softmax along one axis, viewed as `[outer, axis_len, inner]`.
//! Shader: `shaders/softmax.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, Variants, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "softmax",
    source: shaders::SOFTMAX,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// On GPUs, rows at least this long are reduced by a whole workgroup each (1000 logits),
/// shorter ones by one invocation each.
///
/// CPU adapters always take one invocation per row: on lavapipe (2 Zen 3 cores) the workgroup
/// reduction only won for a single long row (1x1000: 38 us vs 53 us) and lost elsewhere
/// (8x1000: 111 us vs 59 us, 1000x91: 5.5 ms vs 0.4 ms).
pub const COOPERATIVE_ROW: usize = 256;

/// Invocations per workgroup of the cooperative reductions: `WG` in this shader and in
/// `shaders/adaptive_avgpool2d.wgsl`.
const WORKGROUP: u32 = 64;

/// Whether a reduction of `len` elements per output takes the cooperative mapping (one
/// workgroup of [`WORKGROUP`] invocations per output): on GPU adapters when `len` is
/// `min_len` or more, never on CPU adapters (where one invocation per output measured
/// faster). [`Variants::Cooperative`] takes it for every reduction longer than one element,
/// [`Variants::Portable`] never. Shared with `adaptive_avgpool2d`.
pub(crate) fn cooperative(ctx: &Context, len: usize, min_len: usize) -> bool {
    match ctx.variants {
        Variants::Cooperative => len > 1,
        Variants::Portable => false,
        _ => len >= min_len && ctx.info.device_type != wgpu::DeviceType::Cpu,
    }
}

/// The workgroups of `outputs` outputs: one each when `cooperative` is 1, else one invocation
/// each.
pub(crate) fn groups(cooperative: u32, outputs: u32) -> u32 {
    if cooperative == 1 {
        outputs
    } else {
        outputs.div_ceil(WORKGROUP)
    }
}

/// Mirrors `Params` in `shaders/softmax.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct SoftmaxParams {
    pub rows: u32,
    pub axis_len: u32,
    pub inner: u32,
    /// 1: one workgroup per row; chosen by [`Self::new`].
    pub cooperative: u32,
}

impl SoftmaxParams {
    /// Softmax along axis `axis` of `shape` (`axis < shape.len()`); picks the cooperative
    /// mapping on GPU adapters for rows of [`COOPERATIVE_ROW`] elements or more.
    pub fn new(ctx: &Context, shape: &[usize], axis: usize) -> Self {
        let axis = axis.min(shape.len().saturating_sub(1));
        let outer: usize = shape[..axis].iter().product();
        let axis_len = shape.get(axis).copied().unwrap_or(1);
        let inner: usize = shape
            .get(axis + 1..)
            .map(|s| s.iter().product())
            .unwrap_or(1);
        SoftmaxParams {
            rows: (outer * inner) as u32,
            axis_len: axis_len as u32,
            inner: inner as u32,
            cooperative: cooperative(ctx, axis_len, COOPERATIVE_ROW) as u32,
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = softmax(x)`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &SoftmaxParams,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[x, y],
        grid(groups(p.cooperative, p.rows), MAX_GROUPS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{Op, Tensor, interp};

    /// Runs softmax on `axis` with the given mapping (None: automatic) and compares.
    fn check(x: &Tensor, axis: usize, cooperative: Option<bool>) {
        let ctx = ctx();
        let want = interp::eval_op(&Op::Softmax { axis }, &[x]).expect("interpreter");
        let mut p = SoftmaxParams::new(ctx, &x.shape, axis);
        if let Some(c) = cooperative {
            p.cooperative = c as u32;
        }
        let what = format!(
            "softmax axis {axis} of {:?} cooperative={}",
            x.shape, p.cooperative
        );
        let (xb, yb) = (
            ctx.upload("x", &x.data),
            ctx.storage("y", x.numel() as u64 * 4),
        );
        ctx.run(&[launch(ctx, &what, &p, &xb, &yb)]).expect("run");
        let got = Tensor::new(&x.shape, ctx.read(&yb, x.numel()).expect("read")).expect("shape");
        assert_close(&what, &got, &want, 1e-5);
    }

    #[test]
    fn softmax_random_last_axis_and_axis1_both_mappings() {
        let mut rng = Rng::new(71);
        for case in 0..24 {
            let shape = if case % 2 == 0 {
                vec![
                    rng.range(1, 3),
                    rng.range(1, 67),
                    rng.range(1, 17),
                    rng.range(1, 17),
                ]
            } else {
                vec![rng.range(1, 17), rng.range(1, 300)]
            };
            let x = rng.tensor(&shape, 10.0);
            let axis = if case % 4 < 2 { x.shape.len() - 1 } else { 1 };
            check(&x, axis, Some(case % 3 == 0));
        }
    }

    #[test]
    fn softmax_1000_logits_large_values() {
        let mut rng = Rng::new(73);
        // Logits around 80 overflow exp without the max subtraction.
        let x = Tensor {
            shape: vec![2, 1000],
            data: rng
                .tensor(&[2, 1000], 20.0)
                .data
                .iter()
                .map(|v| v + 80.0)
                .collect(),
        };
        let gpu = ctx().info.device_type != wgpu::DeviceType::Cpu;
        assert_eq!(
            SoftmaxParams::new(ctx(), &x.shape, 1).cooperative,
            gpu as u32
        );
        check(&x, 1, Some(true));
        check(&x, 1, Some(false));
    }

    #[test]
    fn softmax_detection_scores_1000x91_and_axis0() {
        let mut rng = Rng::new(79);
        check(&rng.tensor(&[1000, 91], 6.0), 1, None);
        check(&rng.tensor(&[5, 3, 4], 6.0), 0, None);
    }
}
