//! `adaptive_avgpool2d`: PyTorch's AdaptiveAvgPool2d, global average pooling included.
//! Shader: `shaders/adaptive_avgpool2d.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::softmax::{cooperative, groups};
use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "adaptive_avgpool2d",
    source: shaders::ADAPTIVE_AVGPOOL2D,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// On GPUs, windows of at least this many elements are summed by a whole workgroup (one output
/// per workgroup) instead of one invocation.
///
/// CPU adapters always take one invocation per output: on lavapipe (2 Zen 3 cores) the
/// workgroup reduction was slower in every case measured, e.g. global pooling 64x56x56 208 us
/// vs 531 us, 64x112x112 752 us vs 1415 us, 2048x7x7 104 us vs 6.6 ms.
pub const COOPERATIVE_WINDOW: usize = 256;

/// Mirrors `Params` in `shaders/adaptive_avgpool2d.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AdaptiveAvgPool2dParams {
    pub total: u32,
    pub height: u32,
    pub width: u32,
    pub out_height: u32,
    pub out_width: u32,
    /// 1: one workgroup per output (large windows); chosen by [`Self::new`].
    pub cooperative: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// The longest window along an axis of `input` pooled to `out` bins.
fn longest_window(input: usize, out: usize) -> usize {
    (0..out)
        .map(|i| ((i + 1) * input).div_ceil(out) - i * input / out)
        .max()
        .unwrap_or(0)
}

impl AdaptiveAvgPool2dParams {
    /// Pools `input` `[N, C, H, W]` to `[N, C, out[0], out[1]]` (`out` non-zero); picks the
    /// cooperative mapping on GPU adapters when the largest window has
    /// [`COOPERATIVE_WINDOW`] elements or more.
    pub fn new(ctx: &Context, input: [usize; 4], out: [usize; 2]) -> Self {
        let [n, c, h, w] = input;
        let window = longest_window(h, out[0]) * longest_window(w, out[1]);
        AdaptiveAvgPool2dParams {
            total: (n * c * out[0] * out[1]) as u32,
            height: h as u32,
            width: w as u32,
            out_height: out[0] as u32,
            out_width: out[1] as u32,
            cooperative: cooperative(ctx, window, COOPERATIVE_WINDOW) as u32,
            _pad0: 0,
            _pad1: 0,
        }
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records `y = adaptive_avg_pool2d(x)`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &AdaptiveAvgPool2dParams,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[x, y],
        grid(groups(p.cooperative, p.total), MAX_GROUPS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{Op, Tensor, interp};

    /// Runs the kernel with the given thread mapping (None: the automatic one) and compares.
    fn check(x: &Tensor, out: [usize; 2], cooperative: Option<bool>) {
        let ctx = ctx();
        let op = Op::AdaptiveAvgPool2d { output: out };
        let want = interp::eval_op(&op, &[x]).expect("interpreter");
        let input: [usize; 4] = x.shape.as_slice().try_into().expect("4-D input");
        let mut p = AdaptiveAvgPool2dParams::new(ctx, input, out);
        if let Some(c) = cooperative {
            p.cooperative = c as u32;
        }
        let what = format!(
            "adaptive_avgpool2d {:?} -> {out:?} cooperative={}",
            x.shape, p.cooperative
        );
        let (xb, yb) = (
            ctx.upload("x", &x.data),
            ctx.storage("y", want.numel() as u64 * 4),
        );
        ctx.run(&[launch(ctx, &what, &p, &xb, &yb)]).expect("run");
        let got =
            Tensor::new(&want.shape, ctx.read(&yb, want.numel()).expect("read")).expect("shape");
        assert_close(&what, &got, &want, 1e-5);
    }

    #[test]
    fn adaptive_avgpool2d_random_sizes_both_mappings() {
        let mut rng = Rng::new(31);
        for case in 0..24 {
            let shape = [
                rng.range(1, 3),
                rng.range(1, 67),
                rng.range(1, 17),
                rng.range(1, 17),
            ];
            let out = [rng.range(1, 9), rng.range(1, 9)];
            let x = rng.tensor(&shape, 3.0);
            check(&x, out, Some(case % 3 == 0));
        }
    }

    #[test]
    fn adaptive_avgpool2d_13_to_6() {
        let mut rng = Rng::new(13);
        // AlexNet's avgpool: 6x6 maps stay, 13x13 (larger inputs) overlap windows.
        let x = rng.tensor(&[2, 256, 13, 13], 2.0);
        check(&x, [6, 6], None);
        let x = rng.tensor(&[1, 7, 13, 11], 2.0);
        check(&x, [6, 6], None);
        // Upsampling-like: more outputs than inputs repeats values.
        let x = rng.tensor(&[1, 3, 5, 4], 2.0);
        check(&x, [7, 9], None);
    }

    #[test]
    fn global_avgpool_7x7x2048() {
        let mut rng = Rng::new(2048);
        let x = rng.tensor(&[2, 2048, 7, 7], 5.0);
        // 49-element windows: one invocation per (n, c) on every device.
        assert_eq!(
            AdaptiveAvgPool2dParams::new(ctx(), [2, 2048, 7, 7], [1, 1]).cooperative,
            0
        );
        check(&x, [1, 1], None);
        check(&x, [1, 1], Some(true));
    }

    #[test]
    fn global_avgpool_56x56_cooperative_on_gpus_direct_on_cpus() {
        let mut rng = Rng::new(56);
        let x = rng.tensor(&[2, 5, 56, 56], 5.0);
        let gpu = ctx().info.device_type != wgpu::DeviceType::Cpu;
        assert_eq!(
            AdaptiveAvgPool2dParams::new(ctx(), [2, 5, 56, 56], [1, 1]).cooperative,
            gpu as u32
        );
        check(&x, [1, 1], Some(true));
        check(&x, [1, 1], Some(false));
    }

    #[test]
    fn longest_window_matches_pytorch_bins() {
        assert_eq!(longest_window(7, 1), 7);
        assert_eq!(longest_window(13, 6), 3); // bins start 0,2,4,6,8,10 and end 3,5,7,9,11,13
        assert_eq!(longest_window(6, 6), 1);
        assert_eq!(longest_window(5, 7), 2);
    }
}
