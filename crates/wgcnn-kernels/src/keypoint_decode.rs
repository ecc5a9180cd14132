//! `keypoint_decode`: Keypoint R-CNN's `heatmaps_to_keypoints` (bicubic resize of each heatmap
//! to its box, argmax) and `resize_keypoints`, one workgroup per detection and keypoint,
//! sampling the bicubic map on the fly. Shader: `shaders/keypoint_decode.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelError, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "keypoint_decode",
    source: shaders::KEYPOINT_DECODE,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/keypoint_decode.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct KeypointDecodeParams {
    pub groups: u32,
    pub joints: u32,
    pub height: u32,
    pub width: u32,
    pub scale_y: f32,
    pub scale_x: f32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl KeypointDecodeParams {
    /// `rows` detections (`N * D`) with `joints` heatmaps of `height` x `width` each, positions
    /// scaled by `scale` (`[h, w]`, as `Op::KeypointDecode`).
    pub fn new(
        rows: usize,
        joints: usize,
        height: usize,
        width: usize,
        scale: [f32; 2],
    ) -> Result<Self, KernelError> {
        let maps = rows * joints * height * width;
        if joints == 0 || height == 0 || width == 0 || maps > u32::MAX as usize {
            return Err(KernelError::BadShape {
                kernel: SPEC.name,
                detail: format!(
                    "{rows} x {joints} heatmaps of {height} x {width}: empty or past u32 indexing"
                ),
            });
        }
        Ok(KeypointDecodeParams {
            groups: (rows * joints) as u32,
            joints: joints as u32,
            height: height as u32,
            width: width as u32,
            scale_y: scale[0],
            scale_x: scale[1],
            _pad0: 0,
            _pad1: 0,
        })
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the decode of `heatmaps` `[N * D, J, H, W]` in the boxes of `dets` `[N, D, 6]`
/// into `out` `[N, D, J, 3]`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &KeypointDecodeParams,
    heatmaps: &wgpu::Buffer,
    dets: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[heatmaps, dets, out],
        grid(p.groups, MAX_GROUPS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, ctx};
    use wgcnn_graph::{INVALID_SCORE, Op, Tensor, interp};

    /// Random detections in (and a little beyond) an `h` x `w` image, by row: under a pixel,
    /// thin, wider than the heatmap, exactly the heatmap's size, large; some rows unused.
    fn detections(rng: &mut Rng, rows: usize, map: usize, h: f32, w: f32) -> Tensor {
        let mut data = Vec::with_capacity(rows * 6);
        for i in 0..rows {
            let x1 = rng.uniform(1.0).abs() * w - 0.05 * w;
            let y1 = rng.uniform(1.0).abs() * h - 0.05 * h;
            let (bw, bh) = match i % 5 {
                0 => (rng.uniform(1.0).abs() * 0.9, rng.uniform(1.0).abs() * 0.9),
                1 => (rng.uniform(1.0).abs() * w, 1.0 + rng.uniform(1.0).abs()),
                2 => (
                    map as f32 * (1.5 + rng.uniform(1.0).abs()),
                    rng.uniform(1.0).abs() * h,
                ),
                3 => (map as f32, map as f32),
                _ => (rng.uniform(1.0).abs() * w, rng.uniform(1.0).abs() * h),
            };
            let score = if i % 7 == 5 { INVALID_SCORE } else { 0.5 };
            data.extend([x1, y1, x1 + bw, y1 + bh, score, 1.0]);
        }
        Tensor::new(&[1, rows, 6], data).expect("detections")
    }

    fn run(heat: &Tensor, dets: &Tensor, scale: [f32; 2]) -> (Tensor, Tensor) {
        let ctx = ctx();
        let op = Op::KeypointDecode { scale };
        let want = interp::eval_op(&op, &[heat, dets]).expect("interp");
        let [rows, joints, h, w] = <[usize; 4]>::try_from(heat.shape.as_slice()).expect("4-D");
        let p = KeypointDecodeParams::new(rows, joints, h, w, scale).expect("params");
        let (hb, db) = (
            ctx.upload("heatmaps", &heat.data),
            ctx.upload("dets", &dets.data),
        );
        let out = ctx.storage("out", want.numel() as u64 * 4);
        ctx.queue
            .write_buffer(&out, 0, bytemuck::cast_slice(&vec![f32::NAN; want.numel()]));
        ctx.run(&[launch(ctx, "t", &p, &hb, &db, &out)])
            .expect("run");
        let got =
            Tensor::new(&want.shape, ctx.read(&out, want.numel()).expect("read")).expect("shape");
        (got, want)
    }

    /// Scores (the maxima) within `1e-5` relative; positions equal, except where the GPU's
    /// maximum is a different pixel of the same value within that tolerance (a near tie
    /// broken by rounding).
    fn check(what: &str, got: &Tensor, want: &Tensor) {
        let scale = want.data.iter().fold(1f32, |m, v| m.max(v.abs()));
        let (mut moved, mut worst) = (0, 0f32);
        for (i, (g, w)) in got
            .data
            .chunks_exact(3)
            .zip(want.data.chunks_exact(3))
            .enumerate()
        {
            let ds = (g[2] - w[2]).abs();
            worst = worst.max(ds);
            assert!(
                ds <= 1e-5 * scale,
                "{what}: keypoint {i}: score {} vs {}",
                g[2],
                w[2]
            );
            let dp = (g[0] - w[0]).abs().max((g[1] - w[1]).abs());
            if dp > 1e-4 * scale {
                moved += 1;
            }
        }
        let n = want.numel() / 3;
        println!(
            "{what}: max score diff {worst:.3e}, {moved} of {n} positions on another near-tied pixel"
        );
        assert!(moved * 50 <= n, "{what}: {moved} of {n} positions differ");
    }

    #[test]
    fn keypoint_decode_matches_interpreter_on_random_heatmaps_and_boxes() {
        let mut rng = Rng::new(7);
        for (rows, joints, map, size, scale) in [
            (12, 17, 56, [160.0, 213.0], [0.75, 0.751_173_7]),
            (11, 3, 9, [40.0, 30.0], [1.0, 1.0]),
            (6, 2, 1, [20.0, 20.0], [2.0, 0.5]),
        ] {
            let heat = rng.tensor(&[rows, joints, map, map], 8.0);
            let dets = detections(&mut rng, rows, map, size[0], size[1]);
            let (got, want) = run(&heat, &dets, scale);
            check(
                &format!("keypoint_decode {rows} x {joints} x {map}^2"),
                &got,
                &want,
            );
            for (i, d) in dets.data.chunks_exact(6).enumerate() {
                if d[4] == INVALID_SCORE {
                    let out = &got.data[i * joints * 3..(i + 1) * joints * 3];
                    assert!(out.iter().all(|&v| v == 0.0), "unused row {i} is zero");
                }
            }
        }
    }

    #[test]
    fn keypoint_decode_breaks_ties_at_the_first_pixel_like_the_interpreter() {
        // Boxes of exactly the heatmap's size resize by the identity, so equal heatmap values
        // are exactly equal candidates: a plateau of maxima, an all-zero map, a row-major tie.
        let map = 8;
        let mut data = vec![0f32; 3 * map * map];
        for (y, x) in [(5, 6), (2, 7), (2, 3), (6, 1)] {
            data[y * map + x] = 4.0;
        }
        data[2 * map * map + 3 * map + 5] = -1.0;
        data[2 * map * map + map + 2] = 2.0;
        data[2 * map * map + 2 * map] = 2.0;
        let heat = Tensor::new(&[1, 3, map, map], data).expect("heat");
        let dets = Tensor::new(&[1, 1, 6], vec![3.0, 5.0, 11.0, 13.0, 0.9, 1.0]).expect("dets");
        let (got, want) = run(&heat, &dets, [1.0, 1.0]);
        assert_eq!(got.data, want.data);
        // (2, 3) comes first row-major; the zero map's first pixel; (1, 2) before (2, 0).
        assert_eq!(
            got.data,
            [3.0 + 3.5, 5.0 + 2.5, 4.0, 3.5, 5.5, 0.0, 5.5, 6.5, 2.0]
        );
    }

    #[test]
    fn keypoint_decode_rejects_empty_heatmaps() {
        assert!(KeypointDecodeParams::new(4, 0, 56, 56, [1.0, 1.0]).is_err());
        assert!(KeypointDecodeParams::new(4, 17, 0, 56, [1.0, 1.0]).is_err());
    }
}
