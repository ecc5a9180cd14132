//! `preprocess`: decoded RGBA8 image → normalized network input (resize with antialiasing,
//! center crop, mean/std), on the GPU. Shader: `shaders/preprocess.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "preprocess",
    source: shaders::PREPROCESS,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// Resampling filter of the resize (PIL's, with antialiasing when downscaling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    Bilinear = 0,
    Bicubic = 1,
}

/// What the transform does, independent of the image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    /// The shorter side after resizing (torchvision `Resize(resize)`).
    pub resize: usize,
    /// Square center crop side.
    pub crop: usize,
    pub filter: Filter,
    /// 3 for RGB, 1 for luminance.
    pub channels: usize,
    /// Per channel, in `[0, 1]` units (`(v / 255 - mean) / std`).
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Transform {
    /// torchvision's resized size: the shorter side becomes `resize`, the longer one is
    /// scaled and truncated.
    pub fn resized(&self, width: usize, height: usize) -> (usize, usize) {
        if width <= height {
            (
                self.resize,
                (self.resize as f64 * height as f64 / width as f64) as usize,
            )
        } else {
            (
                (self.resize as f64 * width as f64 / height as f64) as usize,
                self.resize,
            )
        }
    }

    /// Crop origin in the resized image (torchvision: `int(round((len - crop) / 2))`, with
    /// Python's round-half-to-even).
    pub fn crop_origin(&self, resized: (usize, usize)) -> (usize, usize) {
        let off =
            |len: usize| ((len.saturating_sub(self.crop)) as f64 / 2.0).round_ties_even() as usize;
        (off(resized.0), off(resized.1))
    }
}

/// Mirrors `Params` in `shaders/preprocess.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PreprocessParams {
    pub in_w: u32,
    pub in_h: u32,
    pub resized_w: u32,
    pub resized_h: u32,
    pub crop_left: u32,
    pub crop_top: u32,
    pub out_w: u32,
    pub out_h: u32,
    pub resample: u32,
    pub channels: u32,
    pub out_offset: u32,
    pub in_offset: u32,
    pub mean: [f32; 4],
    pub inv_std: [f32; 4],
}

impl PreprocessParams {
    /// Params for a `width` x `height` image written as batch item `index` (its pixels start
    /// at pixel `in_offset` of the image buffer; see [`PreprocessParams::with_input_offset`]).
    pub fn new(t: &Transform, width: usize, height: usize, index: usize) -> Self {
        let resized = t.resized(width, height);
        let (left, top) = t.crop_origin(resized);
        let mut mean = [0.0; 4];
        let mut inv_std = [1.0; 4];
        for c in 0..3 {
            mean[c] = t.mean[c];
            inv_std[c] = 1.0 / t.std[c];
        }
        PreprocessParams {
            in_w: width as u32,
            in_h: height as u32,
            resized_w: resized.0 as u32,
            resized_h: resized.1 as u32,
            crop_left: left as u32,
            crop_top: top as u32,
            out_w: t.crop as u32,
            out_h: t.crop as u32,
            resample: t.filter as u32,
            channels: t.channels as u32,
            out_offset: (index * t.channels * t.crop * t.crop) as u32,
            in_offset: 0,
            mean,
            inv_std,
        }
    }
}

impl PreprocessParams {
    /// Params that only convert a `width` x `height` image to `[1, 3, H, W]` floats in `[0, 1]`
    /// (no resize, no crop, no normalization): the detectors' input, whose transform is part of
    /// the network graph.
    pub fn identity(width: usize, height: usize) -> Self {
        Self::resize_only(width, height, width, height)
    }

    /// Params that resize a `width` x `height` image to `out_width` x `out_height` (PIL-style
    /// antialiased bilinear) into `[1, 3, H, W]` floats in `[0, 1]`, without crop or
    /// normalization: how detectors shrink photos too large for one buffer binding.
    pub fn resize_only(width: usize, height: usize, out_width: usize, out_height: usize) -> Self {
        PreprocessParams {
            in_w: width as u32,
            in_h: height as u32,
            resized_w: out_width as u32,
            resized_h: out_height as u32,
            crop_left: 0,
            crop_top: 0,
            out_w: out_width as u32,
            out_h: out_height as u32,
            resample: Filter::Bilinear as u32,
            channels: 3,
            out_offset: 0,
            in_offset: 0,
            mean: [0.0; 4],
            inv_std: [1.0; 4],
        }
    }

    /// The same params for an image whose pixels start at pixel `offset` of the image buffer.
    pub fn with_input_offset(mut self, offset: usize) -> Self {
        self.in_offset = offset as u32;
        self
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the transform of one image (`image`: one RGBA8 u32 per pixel) into `out`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &PreprocessParams,
    image: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Launch {
    let groups = [p.out_w.div_ceil(16), p.out_h.div_ceil(16), 1];
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[image, out],
        groups,
    )
}

/// Packs RGB8 pixels (row-major, 3 bytes each) as one u32 per pixel, the layout the kernel reads.
pub fn pack_rgb8(rgb: &[u8]) -> Vec<u32> {
    rgb.chunks_exact(3)
        .map(|p| u32::from(p[0]) | u32::from(p[1]) << 8 | u32::from(p[2]) << 16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::Tensor;

    /// CPU twin of the shader: PIL's separable antialiased resampling with 8-bit rounding after
    /// each pass, then crop and normalize; in f32 with the shader's order of operations (sum the
    /// weighted taps, then divide by the sum of the weights), so ties round the same way.
    fn reference(t: &Transform, rgb: &[u8], w: usize, h: usize) -> Tensor {
        let p = PreprocessParams::new(t, w, h, 0);
        let support: f32 = if t.filter == Filter::Bilinear {
            1.0
        } else {
            2.0
        };
        let weight = |x: f32| -> f32 {
            let ax = x.abs();
            match t.filter {
                Filter::Bilinear => (1.0 - ax).max(0.0),
                Filter::Bicubic => {
                    let a = -0.5;
                    if ax < 1.0 {
                        ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1.0
                    } else if ax < 2.0 {
                        (((ax - 5.0) * ax + 8.0) * ax - 4.0) * a
                    } else {
                        0.0
                    }
                }
            }
        };
        // (taps with raw weights, sum of the weights)
        let taps = |o: usize, inl: usize, outl: usize| -> (Vec<(usize, f32)>, f32) {
            let scale = inl as f32 / outl as f32;
            let fs = scale.max(1.0);
            let center = (o as f32 + 0.5) * scale;
            let lo = ((center - support * fs + 0.5) as i64).max(0) as usize;
            let hi = ((center + support * fs + 0.5) as i64).min(inl as i64) as usize;
            let ws: Vec<(usize, f32)> = (lo..hi)
                .map(|i| (i, weight((i as f32 - center + 0.5) / fs)))
                .collect();
            let s = ws.iter().map(|w| w.1).sum();
            (ws, s)
        };
        let u8r = |v: f32| (v + 0.5).floor().clamp(0.0, 255.0);
        let crop = t.crop;
        let mut out = Tensor::zeros(&[1, t.channels, crop, crop]);
        for oy in 0..crop {
            let (ty, sy) = taps(oy + p.crop_top as usize, h, p.resized_h as usize);
            for ox in 0..crop {
                let (tx, sx) = taps(ox + p.crop_left as usize, w, p.resized_w as usize);
                let mut rgbv = [0.0f32; 3];
                for c in 0..3 {
                    let mut acc = 0.0;
                    for &(y, wy) in &ty {
                        let row: f32 = tx
                            .iter()
                            .map(|&(x, wx)| f32::from(rgb[(y * w + x) * 3 + c]) * wx)
                            .sum();
                        acc += u8r(row / sx) * wy;
                    }
                    rgbv[c] = u8r(acc / sy) / 255.0;
                }
                if t.channels == 1 {
                    let l = (rgbv[0] * 299.0 + rgbv[1] * 587.0 + rgbv[2] * 114.0) / 1000.0;
                    out.data[oy * crop + ox] = (l - t.mean[0]) / t.std[0];
                } else {
                    for (c, v) in rgbv.iter().enumerate() {
                        out.data[(c * crop + oy) * crop + ox] = (v - t.mean[c]) / t.std[c];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn preprocess_resize_crop_normalize_matches_cpu_twin() {
        let ctx = ctx();
        let mut rng = Rng::new(5);
        let cases = [
            (37, 23, 16, 14, Filter::Bilinear, 3),
            (23, 37, 16, 16, Filter::Bicubic, 3),
            (64, 48, 20, 18, Filter::Bilinear, 3),
            (9, 12, 20, 20, Filter::Bilinear, 3),
            (9, 12, 20, 17, Filter::Bicubic, 3),
            (101, 77, 12, 12, Filter::Bicubic, 3),
            (40, 40, 32, 28, Filter::Bilinear, 3),
            (40, 40, 32, 28, Filter::Bilinear, 1),
        ];
        for (w, h, resize, crop, filter, channels) in cases {
            let rgb: Vec<u8> = (0..w * h * 3)
                .map(|_| (rng.next_u64() % 256) as u8)
                .collect();
            let t = Transform {
                resize,
                crop,
                filter,
                channels,
                mean: [0.485, 0.456, 0.406],
                std: [0.229, 0.224, 0.225],
            };
            let want = reference(&t, &rgb, w, h);
            let img = ctx.device_buffer_u32(&pack_rgb8(&rgb));
            let out = ctx.storage("out", want.numel() as u64 * 4);
            ctx.run(&[launch(
                ctx,
                "pre",
                &PreprocessParams::new(&t, w, h, 0),
                &img,
                &out,
            )])
            .expect("run");
            let got = Tensor::new(&want.shape, ctx.read(&out, want.numel()).expect("read"))
                .expect("shape");
            // 8-bit rounding can flip by one level where float order differs: 1/255/std.
            assert_close(
                &format!("preprocess {w}x{h} -> {resize}/{crop} {filter:?} c{channels}"),
                &got,
                &want,
                0.02,
            );
            // Exact ties (two-tap windows such as 5/12 + 7/12 hit k + 0.5) may still round either
            // way where the GPU contracts a multiply-add; PIL's fixed point picks its own side too.
            let exact = got
                .data
                .iter()
                .zip(&want.data)
                .filter(|(a, b)| (*a - *b).abs() < 1e-4)
                .count();
            println!("  {exact} of {} values exact", want.numel());
            assert!(
                exact * 100 >= want.numel() * 97,
                "at most 3% of values may differ by one 8-bit level"
            );
        }
    }

    #[test]
    fn preprocess_geometry_follows_torchvision() {
        let t = Transform {
            resize: 256,
            crop: 224,
            filter: Filter::Bilinear,
            channels: 3,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        assert_eq!(t.resized(451, 300), (384, 256));
        assert_eq!(t.resized(300, 451), (256, 384));
        assert_eq!(t.crop_origin((384, 256)), (80, 16));
        // (257 - 224) / 2 = 16.5 rounds to even: 16.
        assert_eq!(t.crop_origin((257, 256)), (16, 16));
    }
}
