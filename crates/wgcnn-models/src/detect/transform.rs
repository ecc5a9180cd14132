//! torchvision's `GeneralizedRCNNTransform` at inference for a fixed input size: normalize,
//! resize (bilinear) so the shorter side is `min_size` unless the longer would exceed
//! `max_size`, pad bottom/right to a multiple of `size_divisible`.

use wgcnn_graph::{GraphBuilder, GraphError, Op, ResizeMode, TensorId};

use super::DetectorConfig;

/// The image sizes the transform produces for one input size, computed as torchvision does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformSizes {
    /// `(height, width)` of the input image.
    pub input: [usize; 2],
    /// `(height, width)` after resizing: torchvision's `image_sizes`, which boxes are clipped to.
    pub resized: [usize; 2],
    /// `(height, width)` of the padded batch fed to the backbone.
    pub padded: [usize; 2],
    /// The resize factor (f32, as torchvision computes it).
    pub scale: f32,
}

impl TransformSizes {
    /// torchvision's rule: `scale = min(min_size / min(h, w), max_size / max(h, w))` in f32;
    /// `F.interpolate(scale_factor=scale, recompute_scale_factor=True)` makes the resized size
    /// `floor(h * scale)` x `floor(w * scale)` (in f64); the batch is padded up to a multiple of
    /// `size_divisible`. Errors when a size comes out zero.
    pub fn new(
        height: usize,
        width: usize,
        min_size: usize,
        max_size: usize,
        size_divisible: usize,
    ) -> Result<Self, String> {
        if height == 0 || width == 0 || min_size == 0 || max_size == 0 || size_divisible == 0 {
            return Err(format!(
                "image {height}x{width}, min_size {min_size}, max_size {max_size} and size_divisible {size_divisible} must be positive"
            ));
        }
        let short = height.min(width) as f32;
        let long = height.max(width) as f32;
        let scale = (min_size as f32 / short).min(max_size as f32 / long);
        let resize = |len: usize| (len as f64 * f64::from(scale)).floor() as usize;
        let resized = [resize(height), resize(width)];
        if resized.contains(&0) {
            return Err(format!(
                "a {height}x{width} image resizes to {resized:?} at scale {scale}"
            ));
        }
        let pad = |len: usize| len.div_ceil(size_divisible) * size_divisible;
        Ok(TransformSizes {
            input: [height, width],
            resized,
            padded: [pad(resized[0]), pad(resized[1])],
            scale,
        })
    }

    /// The sizes for `config`'s `min_size`, `max_size` and `size_divisible`.
    pub fn for_config(
        height: usize,
        width: usize,
        config: &DetectorConfig,
    ) -> Result<Self, String> {
        Self::new(
            height,
            width,
            config.min_size,
            config.max_size,
            config.size_divisible,
        )
    }

    /// The sizes of a network input already resized to `height` x `width` (the graph starts
    /// after torchvision's resize): nothing left to resize, padding to `size_divisible`.
    pub fn resized(height: usize, width: usize, size_divisible: usize) -> Result<Self, String> {
        if height == 0 || width == 0 || size_divisible == 0 {
            return Err(format!(
                "image {height}x{width} and size_divisible {size_divisible} must be positive"
            ));
        }
        let pad = |len: usize| len.div_ceil(size_divisible) * size_divisible;
        Ok(TransformSizes {
            input: [height, width],
            resized: [height, width],
            padded: [pad(height), pad(width)],
            scale: 1.0,
        })
    }

    /// `(height, width)` factors mapping boxes of the resized image back to the input image, as
    /// torchvision's `resize_boxes` computes them: `original / resized` in f32.
    pub fn box_scale(&self) -> [f32; 2] {
        [
            self.input[0] as f32 / self.resized[0] as f32,
            self.input[1] as f32 / self.resized[1] as f32,
        ]
    }
}

/// The transform's front as a graph of its own, for an image of `height` x `width`: input
/// `image` `[batch, 3, H, W]`, output `transform.resize` (or `transform.normalize`) `[batch, 3,
/// h, w]` at torchvision's resized size, normalized; no padding. With [`super::Front::Resized`]
/// networks it splits a detector in two: this per image size, the network per resized size
/// (images of many sizes resize to one network size). Returns the graph and the sizes.
pub fn front_graph(
    batch: usize,
    height: usize,
    width: usize,
    config: &DetectorConfig,
) -> Result<(wgcnn_graph::Graph, TransformSizes), String> {
    let mut sizes = TransformSizes::for_config(height, width, config)?;
    sizes.padded = sizes.resized;
    let mut b = GraphBuilder::new();
    let image = b.input("image", &[batch, 3, height, width]);
    let x = transform(&mut b, image, &sizes, config.image_mean, config.image_std)
        .map_err(|e| e.to_string())?;
    b.output(x);
    Ok((b.finish(), sizes))
}

/// Adds the transform on `image` `[N, 3, H, W]`: `(x - mean) / std` (constants
/// `transform.mean` and `transform.inv_std`, `[1, 3, 1, 1]`), bilinear resize
/// (`align_corners=False`) to `sizes.resized`, zero padding to `sizes.padded`. Resizing or
/// padding that would change nothing adds no node. The last node is named `transform`.
pub fn transform(
    b: &mut GraphBuilder,
    image: TensorId,
    sizes: &TransformSizes,
    mean: [f32; 3],
    std: [f32; 3],
) -> Result<TensorId, GraphError> {
    let resize = sizes.resized != sizes.input;
    let pad = sizes.padded != sizes.resized;
    let name = |step: &str, last: bool| {
        if last {
            "transform".to_string()
        } else {
            format!("transform.{step}")
        }
    };
    let neg_mean = b.constant(
        "transform.mean",
        &[1, 3, 1, 1],
        mean.iter().map(|m| -m).collect(),
    )?;
    let inv_std = b.constant(
        "transform.inv_std",
        &[1, 3, 1, 1],
        std.iter().map(|s| 1.0 / s).collect(),
    )?;
    let x = b.node("transform.sub_mean", Op::Add, &[image, neg_mean])?;
    let mut x = b.node(&name("normalize", !resize && !pad), Op::Mul, &[x, inv_std])?;
    if resize {
        let op = Op::Resize {
            size: sizes.resized,
            mode: ResizeMode::Bilinear {
                align_corners: false,
            },
        };
        x = b.node(&name("resize", !pad), op, &[x])?;
    }
    if pad {
        let padding = [
            0,
            0,
            sizes.padded[0] - sizes.resized[0],
            sizes.padded[1] - sizes.resized[1],
        ];
        x = b.node(
            "transform",
            Op::Pad {
                padding,
                value: 0.0,
            },
            &[x],
        )?;
    }
    Ok(x)
}

/// The end of the transform for an image already normalized and resized
/// ([`TransformSizes::resized`]): zero padding to `sizes.padded` (node `transform`), or the
/// image itself when it needs none.
pub fn pad_only(
    b: &mut GraphBuilder,
    image: TensorId,
    sizes: &TransformSizes,
) -> Result<TensorId, GraphError> {
    if sizes.padded == sizes.resized {
        return Ok(image);
    }
    let padding = [
        0,
        0,
        sizes.padded[0] - sizes.resized[0],
        sizes.padded[1] - sizes.resized[1],
    ];
    b.node(
        "transform",
        Op::Pad {
            padding,
            value: 0.0,
        },
        &[image],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transform_sizes_match_torchvision_for_the_fixture_image() {
        // The fixtures' 120x160 image at min_size 160, max_size 320: torchvision reports
        // image_sizes [[160, 213]] and a 160x224 batch.
        let s = TransformSizes::new(120, 160, 160, 320, 32).unwrap_or_else(|e| panic!("{e}"));
        println!("{s:?}");
        assert_eq!((s.resized, s.padded), ([160, 213], [160, 224]));
        // max_size binds: 100x1000 at 800/1333 scales by 1333/1000 rounded to f32
        // (1.3329999...), so the long side floors to 1332 as in torchvision.
        let s = TransformSizes::new(100, 1000, 800, 1333, 32).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.resized, s.padded), ([133, 1332], [160, 1344]));
        assert!(TransformSizes::new(0, 10, 800, 1333, 32).is_err());
    }
}
