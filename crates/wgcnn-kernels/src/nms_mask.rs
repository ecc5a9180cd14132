//! `nms_mask`: the IoU suppression bitmask of NMS, one mask row per invocation.
//! Shader: `shaders/nms_mask.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "nms_mask",
    source: shaders::NMS_MASK,
    buffers: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/nms_mask.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct NmsMaskParams {
    pub kmax: u32,
    pub words: u32,
    pub groups: u32,
    pub group_offset: u32,
    pub trick_max: u32,
    /// 0: IoU; 1: MTCNN's 'Min' overlap (intersection over the smaller box, +1 widths).
    pub mode: u32,
    pub _pad: u32,
    /// From [`threshold_for_f32_compare`].
    pub thresh: f32,
}

/// torchvision's kernels compare the f32 IoU with the threshold as a double (`ovr >
/// iou_threshold`), the double of the Python literal. Returns the f32 `t` for which
/// `iou > t` in f32 agrees with that comparison for every f32 IoU: the literal is the f32's
/// shortest decimal form (`0.7`), and `t` is the largest f32 not above its double.
pub fn threshold_for_f32_compare(thresh: f32) -> f32 {
    let exact: f64 = format!("{thresh}").parse().unwrap_or(thresh as f64);
    let t = exact as f32;
    if (t as f64) > exact { t.next_down() } else { t }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the mask of `segments` segments of `p.kmax` candidates.
#[allow(clippy::too_many_arguments)]
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &NmsMaskParams,
    segments: usize,
    cand_boxes: &wgpu::Buffer,
    cand_scores: &wgpu::Buffer,
    stats: &wgpu::Buffer,
    mask: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[cand_boxes, cand_scores, stats, mask],
        [p.kmax.div_ceil(256).max(1), segments.max(1) as u32, 1],
    )
}

#[cfg(test)]
mod tests {
    use super::threshold_for_f32_compare;

    #[test]
    fn nms_threshold_agrees_with_the_double_comparison() {
        for t in [0.7f32, 0.5, 0.3, 0.45, 0.6, 0.65, 0.9, 1.0 / 3.0] {
            let adjusted = threshold_for_f32_compare(t);
            let exact: f64 = format!("{t}").parse().expect("decimal");
            // The f32 values around the threshold decide the same way both ways.
            let mut x = t.next_down().next_down();
            for _ in 0..5 {
                assert_eq!(x > adjusted, (x as f64) > exact, "threshold {t}: iou {x:e}");
                x = x.next_up();
            }
            println!("threshold {t}: f32 compare against {adjusted:e} (double {exact:e})");
        }
    }
}
