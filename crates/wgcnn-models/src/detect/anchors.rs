//! torchvision's `AnchorGenerator`, evaluated at build time: the anchors only depend on the
//! padded image size and the feature map sizes, which a fixed-size graph knows.

/// Anchor sizes and aspect ratios per feature level (torchvision's `sizes`, `aspect_ratios`).
#[derive(Clone, Debug, PartialEq)]
pub struct AnchorSpec {
    /// Per level, the anchor sizes (square root of the area) in pixels.
    pub sizes: Vec<Vec<f32>>,
    /// Per level, the height / width ratios.
    pub aspect_ratios: Vec<Vec<f32>>,
}

impl AnchorSpec {
    /// `_default_anchorgen()` of the ResNet-50 FPN models: one size per level
    /// (32, 64, 128, 256, 512), ratios (0.5, 1, 2).
    pub fn resnet_fpn() -> AnchorSpec {
        let sizes: Vec<Vec<f32>> = [32.0, 64.0, 128.0, 256.0, 512.0]
            .iter()
            .map(|&s| vec![s])
            .collect();
        let aspect_ratios = vec![vec![0.5, 1.0, 2.0]; sizes.len()];
        AnchorSpec {
            sizes,
            aspect_ratios,
        }
    }

    /// The MobileNetV3 FPN models: all five sizes on each of `levels` levels, ratios (0.5, 1, 2).
    pub fn mobilenet_fpn(levels: usize) -> AnchorSpec {
        AnchorSpec {
            sizes: vec![vec![32.0, 64.0, 128.0, 256.0, 512.0]; levels],
            aspect_ratios: vec![vec![0.5, 1.0, 2.0]; levels],
        }
    }

    /// Anchors per location on each level (`num_anchors_per_location`).
    pub fn per_location(&self) -> Vec<usize> {
        self.sizes
            .iter()
            .zip(&self.aspect_ratios)
            .map(|(s, r)| s.len() * r.len())
            .collect()
    }
}

/// `AnchorGenerator.generate_anchors`: zero-centred `[x1, y1, x2, y2]` anchors, ratio-major, in
/// f32 as torch computes them (`h = sqrt(ratio)`, `w = 1 / h`, sides times the size, halved),
/// rounded half to even as `torch.round`.
pub fn base_anchors(sizes: &[f32], aspect_ratios: &[f32]) -> Vec<[f32; 4]> {
    let mut out = Vec::with_capacity(sizes.len() * aspect_ratios.len());
    for &ratio in aspect_ratios {
        let h_ratio = ratio.sqrt();
        let w_ratio = 1.0 / h_ratio;
        for &size in sizes {
            let (ws, hs) = (w_ratio * size, h_ratio * size);
            out.push([-ws / 2.0, -hs / 2.0, ws / 2.0, hs / 2.0].map(f32::round_ties_even));
        }
    }
    out
}

/// `AnchorGenerator.grid_anchors` for one level: every base anchor shifted to every cell of a
/// `grid` (`[height, width]`) with `stride` (`[sy, sx]`), in `(y, x, anchor)` order, as
/// `[x1, y1, x2, y2]` rows appended to `out`.
pub fn grid_anchors(base: &[[f32; 4]], grid: [usize; 2], stride: [usize; 2], out: &mut Vec<f32>) {
    for y in 0..grid[0] {
        for x in 0..grid[1] {
            let (sx, sy) = ((x * stride[1]) as f32, (y * stride[0]) as f32);
            for a in base {
                out.extend_from_slice(&[sx + a[0], sy + a[1], sx + a[2], sy + a[3]]);
            }
        }
    }
}

/// All anchors of an image batch padded to `image` (`[height, width]`) with feature maps of
/// sizes `grids`: level-major, each level's strides `image / grid` (integer division, as
/// torchvision). Returns the `[A, 4]` values and the anchor count per level. Errors when the
/// spec's level count differs from the feature maps' or a grid is empty.
pub fn anchors(
    spec: &AnchorSpec,
    image: [usize; 2],
    grids: &[[usize; 2]],
) -> Result<(Vec<f32>, Vec<usize>), String> {
    if spec.sizes.len() != grids.len() || spec.aspect_ratios.len() != grids.len() {
        return Err(format!(
            "anchor generator has {} size and {} ratio levels for {} feature maps",
            spec.sizes.len(),
            spec.aspect_ratios.len(),
            grids.len()
        ));
    }
    let mut out = Vec::new();
    let mut per_level = Vec::with_capacity(grids.len());
    for ((sizes, ratios), &grid) in spec.sizes.iter().zip(&spec.aspect_ratios).zip(grids) {
        if grid.contains(&0) {
            return Err(format!("empty feature map {grid:?}"));
        }
        let base = base_anchors(sizes, ratios);
        let stride = [image[0] / grid[0], image[1] / grid[1]];
        let before = out.len();
        grid_anchors(&base, grid, stride, &mut out);
        per_level.push((out.len() - before) / 4);
    }
    Ok((out, per_level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_anchors_of_size_32_round_like_torch() {
        let got = base_anchors(&[32.0], &[0.5, 1.0, 2.0]);
        println!("{got:?}");
        assert_eq!(
            got,
            [
                [-23.0, -11.0, 23.0, 11.0],
                [-16.0, -16.0, 16.0, 16.0],
                [-11.0, -23.0, 11.0, 23.0]
            ]
        );
    }

    #[test]
    fn grid_anchors_are_cell_major_then_anchor() {
        let mut out = Vec::new();
        grid_anchors(
            &[[-1.0, -1.0, 1.0, 1.0], [-2.0, -2.0, 2.0, 2.0]],
            [2, 2],
            [4, 8],
            &mut out,
        );
        assert_eq!(out.len(), 2 * 2 * 2 * 4);
        // cell (y=0, x=1), second anchor: shift (8, 0).
        assert_eq!(&out[12..16], &[6.0, -2.0, 10.0, 2.0]);
        // cell (y=1, x=0), first anchor: shift (0, 4).
        assert_eq!(&out[16..20], &[-1.0, 3.0, 1.0, 5.0]);
    }
}
