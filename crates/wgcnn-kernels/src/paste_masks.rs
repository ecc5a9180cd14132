//! `paste_masks`: Mask R-CNN's per-detection mask (sigmoid of its label's channel) pasted into
//! the image frame as torchvision's `paste_masks_in_image`, one invocation per output pixel.
//! Shader: `shaders/paste_masks.wgsl`. Also `mask_bits` (`shaders/mask_bits.wgsl`): the pasted
//! masks thresholded and bit-packed, what a detector reads back.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelError, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "paste_masks",
    source: shaders::PASTE_MASKS,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/paste_masks.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PasteMasksParams {
    pub total: u32,
    pub height: u32,
    pub width: u32,
    pub classes: u32,
    pub mask: u32,
    pub padding: u32,
    pub scale: f32,
    pub _pad: u32,
}

impl PasteMasksParams {
    /// `rows` detections (`N * D`) with `classes` x `mask` x `mask` logits each, pasted into
    /// `size` (height, width) images with `padding`.
    pub fn new(
        rows: usize,
        classes: usize,
        mask: usize,
        padding: usize,
        size: [usize; 2],
    ) -> Result<Self, KernelError> {
        let total = rows * size[0] * size[1];
        let logits = rows * classes * mask * mask;
        if mask == 0 || classes == 0 || total.max(logits) > u32::MAX as usize {
            return Err(KernelError::BadShape {
                kernel: SPEC.name,
                detail: format!(
                    "{rows} masks of {classes} x {mask} x {mask} into {size:?}: empty or past u32 indexing"
                ),
            });
        }
        Ok(PasteMasksParams {
            total: total as u32,
            height: size[0] as u32,
            width: size[1] as u32,
            classes: classes as u32,
            mask: mask as u32,
            padding: padding as u32,
            // torchvision: `float(M + 2 * padding) / M`, applied to f32 boxes.
            scale: ((mask + 2 * padding) as f64 / mask as f64) as f32,
            _pad: 0,
        })
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the paste of `logits` `[N * D, K, M, M]` for `dets` `[N, D, 6]` into `out`
/// `[N, D, H, W]`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &PasteMasksParams,
    logits: &wgpu::Buffer,
    dets: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[logits, dets, out],
        grid(p.total.div_ceil(256), MAX_GROUPS),
    )
}

pub const BITS_SPEC: KernelSpec = KernelSpec {
    name: "mask_bits",
    source: shaders::MASK_BITS,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/mask_bits.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MaskBitsParams {
    pub total: u32,
    pub pixels: u32,
    pub words: u32,
    pub threshold: f32,
}

impl MaskBitsParams {
    /// `masks` masks of `pixels` pixels each, set where `> threshold`.
    pub fn new(masks: usize, pixels: usize, threshold: f32) -> Self {
        let words = pixels.div_ceil(32);
        MaskBitsParams {
            total: (masks * words) as u32,
            pixels: pixels as u32,
            words: words as u32,
            threshold,
        }
    }
}

/// Records the packing of `masks` `[R, P]` into `out` `[R, ceil(P / 32)]` u32 words.
pub fn bits_launch(
    ctx: &Context,
    label: &str,
    p: &MaskBitsParams,
    masks: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &ctx.kernel(&BITS_SPEC, &[]),
        bytemuck::bytes_of(p),
        &[masks, out],
        grid(p.total.div_ceil(256), MAX_GROUPS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{INVALID_SCORE, Op, Tensor, interp};

    /// Random detections in (and a little beyond) an `h` x `w` image: tiny, thin, large and
    /// border-crossing boxes, some rows unused, some labels past the channels.
    fn detections(rng: &mut Rng, rows: usize, classes: usize, h: f32, w: f32) -> Tensor {
        let mut data = Vec::with_capacity(rows * 6);
        for i in 0..rows {
            let x1 = rng.uniform(1.0).abs() * w * 1.1 - 0.05 * w;
            let y1 = rng.uniform(1.0).abs() * h * 1.1 - 0.05 * h;
            let (bw, bh) = match i % 4 {
                0 => (rng.uniform(1.0).abs() * 2.0, rng.uniform(1.0).abs() * 2.0),
                1 => (rng.uniform(1.0).abs() * w, 1.0 + rng.uniform(1.0).abs()),
                _ => (rng.uniform(1.0).abs() * w, rng.uniform(1.0).abs() * h),
            };
            let score = if i % 7 == 5 { INVALID_SCORE } else { 0.5 };
            let label = if i % 11 == 10 {
                classes as f32
            } else {
                rng.range(0, classes - 1) as f32
            };
            data.extend([x1, y1, x1 + bw, y1 + bh, score, label]);
        }
        Tensor::new(&[1, rows, 6], data).expect("detections")
    }

    fn check(seed: u64, rows: usize, classes: usize, mask: usize, size: [usize; 2]) {
        let ctx = ctx();
        let mut rng = Rng::new(seed);
        let logits = rng.tensor(&[rows, classes, mask, mask], 6.0);
        let dets = detections(&mut rng, rows, classes, size[0] as f32, size[1] as f32);
        let op = Op::PasteMasks { size, padding: 1 };
        let want = interp::eval_op(&op, &[&logits, &dets]).expect("interp");
        let p = PasteMasksParams::new(rows, classes, mask, 1, size).expect("params");
        let (lb, db) = (
            ctx.upload("logits", &logits.data),
            ctx.upload("dets", &dets.data),
        );
        let out = ctx.storage("out", want.numel() as u64 * 4);
        ctx.queue
            .write_buffer(&out, 0, bytemuck::cast_slice(&vec![f32::NAN; want.numel()]));
        ctx.run(&[launch(ctx, "t", &p, &lb, &db, &out)])
            .expect("run");
        let got =
            Tensor::new(&want.shape, ctx.read(&out, want.numel()).expect("read")).expect("shape");
        assert_close(
            &format!("paste_masks {rows} x {classes} x {mask}^2 into {size:?}"),
            &got,
            &want,
            1e-5,
        );
    }

    #[test]
    fn paste_masks_matches_interpreter_on_random_boxes_and_sizes() {
        // Mask R-CNN's 28x28 masks into the fixture's 120x160 image, then odd sizes.
        check(1, 24, 91, 28, [120, 160]);
        check(2, 30, 3, 5, [17, 9]);
        check(3, 13, 2, 1, [7, 31]);
    }

    #[test]
    fn paste_masks_rejects_empty_masks() {
        assert!(PasteMasksParams::new(4, 91, 0, 1, [8, 8]).is_err());
        assert!(PasteMasksParams::new(4, 0, 28, 1, [8, 8]).is_err());
    }

    #[test]
    fn mask_bits_packs_like_the_interpreter_with_partial_last_words() {
        let ctx = ctx();
        let mut rng = Rng::new(5);
        // 45 pixels: one whole word and a 13-pixel tail per mask; values at the threshold stay 0.
        for (n, d, h, w) in [(1, 3, 5, 9), (2, 2, 4, 8), (1, 1, 1, 1)] {
            let data: Vec<f32> = (0..n * d * h * w)
                .map(|i| match i % 7 {
                    0 => 0.5,
                    _ => rng.uniform(1.0).abs(),
                })
                .collect();
            let x = Tensor::new(&[n, d, h, w], data).expect("shape");
            let op = Op::MaskBits { threshold: 0.5 };
            let want = interp::eval_op(&op, &[&x]).expect("interp");
            let p = MaskBitsParams::new(n * d, h * w, 0.5);
            let (xb, yb) = (
                ctx.upload("x", &x.data),
                ctx.storage("y", p.total as u64 * 4),
            );
            ctx.run(&[bits_launch(ctx, "t", &p, &xb, &yb)])
                .expect("run");
            let got = ctx.read(&yb, p.total as usize).expect("read");
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
            assert_eq!(bits(&got), bits(&want.data), "[{n}, {d}, {h}, {w}]");
            // The interpreter's own packing, pixel by pixel.
            let words = (h * w).div_ceil(32);
            for (m, mask) in x.data.chunks(h * w).enumerate() {
                for (px, &v) in mask.iter().enumerate() {
                    let word = want.data[m * words + px / 32].to_bits();
                    assert_eq!(word >> (px % 32) & 1 == 1, v > 0.5, "mask {m} pixel {px}");
                }
            }
        }
    }
}
