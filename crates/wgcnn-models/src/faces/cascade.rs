//! The MTCNN cascade between the nets, as facenet-pytorch 2.6.0's `detect_face` computes it
//! (`facenet_pytorch/models/utils/detect_face.py`), expression by expression in f32: the
//! pyramid scales, P-Net candidates (stride 2, cell 12), torchvision NMS and the 'Min' NMS of
//! `nms_numpy`, box regression (`bbreg`), squaring (`rerec`), the integer crop boxes (`pad`)
//! and their area resampling. The nets themselves run elsewhere: [`detect`] drives any
//! [`Backend`] (the interpreter's, `super::Interpreter`). This is the CPU reference the GPU
//! cascade (`wgcnn_kernels::detect::faces`, `wgcnn::FaceDetector`) is tested against.

use wgcnn_graph::{Op, Tensor, interp};

/// facenet-pytorch's `MTCNN` defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CascadeConfig {
    /// Smallest face side in pixels (`min_face_size`, 20).
    pub min_face_size: f32,
    /// Probability thresholds of P-Net (`>=`), R-Net and O-Net (`>`): 0.6, 0.7, 0.7.
    pub thresholds: [f32; 3],
    /// Pyramid scale step (0.709).
    pub factor: f64,
}

impl Default for CascadeConfig {
    fn default() -> Self {
        CascadeConfig {
            min_face_size: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
        }
    }
}

/// A candidate box `(x1, y1, x2, y2)` in image pixels with its probability and the
/// regression its net gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub bbox: [f32; 4],
    pub score: f32,
    pub reg: [f32; 4],
}

/// A detected face: probability, box `(x1, y1, x2, y2)` and five landmarks `(x, y)` (left
/// eye, right eye, nose, left and right mouth corner), in image pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Face {
    pub score: f32,
    pub bbox: [f32; 4],
    pub landmarks: [[f32; 2]; 5],
}

/// The pyramid scales (f64, as Python computes them): `12 / min_face_size` times `factor^i`
/// while the scaled short side is at least 12.
pub fn pyramid_scales(height: usize, width: usize, min_face_size: f32, factor: f64) -> Vec<f64> {
    let m = 12.0 / min_face_size as f64;
    let mut minl = height.min(width) as f64 * m;
    let mut s = m;
    let mut scales = Vec::new();
    // The factor bound keeps a nonsense factor (>= 1) from looping forever.
    while minl >= 12.0 && factor < 1.0 && factor > 0.0 {
        scales.push(s);
        s *= factor;
        minl *= factor;
    }
    scales
}

/// A pyramid level's size `[int(h*s + 1), int(w*s + 1)]`.
pub fn level_size(height: usize, width: usize, scale: f64) -> [usize; 2] {
    [
        (height as f64 * scale + 1.0) as usize,
        (width as f64 * scale + 1.0) as usize,
    ]
}

/// `generateBoundingBox`: every cell of one image's P-Net maps (`prob [2, h, w]`, `reg [4, h,
/// w]`) with face probability `>= thresh`, row-major: `(x1, y1) = floor((2 (col, row) + 1) /
/// s)`, `(x2, y2) = floor((2 (col, row) + 12) / s)`.
pub fn pnet_candidates(
    prob: &[f32],
    reg: &[f32],
    size: [usize; 2],
    scale: f64,
    thresh: f32,
) -> Vec<Candidate> {
    let plane = size[0] * size[1];
    let s = scale as f32;
    let mut out = Vec::new();
    for (i, &p) in prob[plane..2 * plane].iter().enumerate() {
        if p >= thresh {
            let (row, col) = ((i / size[1]) as f32, (i % size[1]) as f32);
            out.push(Candidate {
                bbox: [
                    ((2.0 * col + 1.0) / s).floor(),
                    ((2.0 * row + 1.0) / s).floor(),
                    ((2.0 * col + 12.0) / s).floor(),
                    ((2.0 * row + 12.0) / s).floor(),
                ],
                score: p,
                reg: std::array::from_fn(|k| reg[k * plane + i]),
            });
        }
    }
    out
}

/// Indices by descending score, equal scores by lower index (the order NMS visits them in).
fn by_score(boxes: &[Candidate]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score).then(a.cmp(&b)));
    order
}

/// torchvision's `nms`: areas `(x2 - x1) * (y2 - y1)`, drops boxes whose IoU with a kept
/// higher-scoring box is above `thresh` (compared in f64, as its kernel does); the kept
/// indices by descending score.
pub fn nms(boxes: &[Candidate], thresh: f32) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    suppress(boxes, |a, b| {
        let (a, b) = (&a.bbox, &b.bbox);
        let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
        let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
        let inter = w * h;
        (inter / (area(a) + area(b) - inter)) as f64 > thresh as f64
    })
}

/// `nms_numpy(..., 'Min')`: areas `(x2 - x1 + 1) * (y2 - y1 + 1)`, overlap
/// `inter / min(area_a, area_b)` with `+1` widths; drops overlaps above `thresh`.
pub fn nms_min(boxes: &[Candidate], thresh: f32) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    suppress(boxes, |a, b| {
        let (a, b) = (&a.bbox, &b.bbox);
        let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
        let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
        // numpy 2 compares the f32 ratio with the threshold as f32.
        w * h / area(a).min(area(b)) > thresh
    })
}

/// Greedy suppression by descending score with the overlap test `drops(kept, other)`.
fn suppress(boxes: &[Candidate], drops: impl Fn(&Candidate, &Candidate) -> bool) -> Vec<usize> {
    let order = by_score(boxes);
    let mut removed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if removed[i] {
            continue;
        }
        keep.push(i);
        for &j in &order[k + 1..] {
            if !removed[j] && drops(&boxes[i], &boxes[j]) {
                removed[j] = true;
            }
        }
    }
    keep
}

/// P-Net's regression: `x1 += r0 (x2 - x1)`, `y1 += r1 (y2 - y1)`, `x2 += r2 (x2 - x1)`,
/// `y2 += r3 (y2 - y1)` (the widths of the box before the update).
pub fn pnet_regress(c: &Candidate) -> [f32; 4] {
    let [x1, y1, x2, y2] = c.bbox;
    let (w, h) = (x2 - x1, y2 - y1);
    let r = c.reg;
    [x1 + r[0] * w, y1 + r[1] * h, x2 + r[2] * w, y2 + r[3] * h]
}

/// `bbreg`: as [`pnet_regress`] with widths `x2 - x1 + 1`, `y2 - y1 + 1`.
pub fn bbreg(b: [f32; 4], r: [f32; 4]) -> [f32; 4] {
    let (w, h) = (b[2] - b[0] + 1.0, b[3] - b[1] + 1.0);
    [
        b[0] + r[0] * w,
        b[1] + r[1] * h,
        b[2] + r[2] * w,
        b[3] + r[3] * h,
    ]
}

/// `rerec`: the square of side `max(w, h)` about the box's centre.
pub fn rerec(b: [f32; 4]) -> [f32; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let l = w.max(h);
    let x1 = b[0] + w * 0.5 - l * 0.5;
    let y1 = b[1] + h * 0.5 - l * 0.5;
    [x1, y1, x1 + l, y1 + l]
}

/// `pad`: the box truncated toward zero, clamped to `x1, y1 >= 1`, `x2 <= width`, `y2 <=
/// height`, as the zero-based pixel ranges `[y1 - 1, y2)`, `[x1 - 1, x2)` it crops
/// (`(rows, cols)`); `None` when a range is empty (facenet-pytorch skips those crops).
pub fn crop_rect(b: [f32; 4], height: usize, width: usize) -> Option<([usize; 2], [usize; 2])> {
    // `as i64` truncates toward zero and saturates (NaN becomes 0), never panics.
    let t = |v: f32| v as i64;
    let x1 = t(b[0]).max(1);
    let y1 = t(b[1]).max(1);
    let x2 = t(b[2]).min(width as i64);
    let y2 = t(b[3]).min(height as i64);
    // `pad`'s ranges [y1 - 1, y2) and [x1 - 1, x2) are empty.
    if y2 < y1 || x2 < x1 {
        return None;
    }
    Some((
        [(y1 - 1) as usize, y2 as usize],
        [(x1 - 1) as usize, x2 as usize],
    ))
}

/// Area-resamples (adaptive average pooling) rows `rows` and columns `cols` of `image [1, 3,
/// H, W]` to `size` x `size` and normalizes `(x - 127.5) * 0.0078125`: `3 * size * size`
/// values.
pub fn crop_resample(image: &Tensor, rows: [usize; 2], cols: [usize; 2], size: usize) -> Vec<f32> {
    let (h, w) = (image.shape[2], image.shape[3]);
    let (ch, cw) = (rows[1] - rows[0], cols[1] - cols[0]);
    let mut crop = Vec::with_capacity(3 * ch * cw);
    for c in 0..3 {
        for y in rows[0]..rows[1] {
            let row = &image.data[(c * h + y) * w..(c * h + y + 1) * w];
            crop.extend_from_slice(&row[cols[0]..cols[1]]);
        }
    }
    let crop = Tensor {
        shape: vec![1, 3, ch, cw],
        data: crop,
    };
    let op = Op::AdaptiveAvgPool2d {
        output: [size, size],
    };
    // The crop is a valid non-empty [1, 3, h, w] tensor, so the interpreter cannot refuse it.
    interp::eval_op(&op, &[&crop])
        .map(|t| t.data.iter().map(|&v| (v - 127.5) * 0.0078125).collect())
        .unwrap_or_default()
}

/// After P-Net: NMS 0.5 per level, NMS 0.7 over all levels, regression, squaring. `levels`
/// holds each level's candidates in [`pnet_candidates`] order.
pub fn merge_pnet(levels: &[Vec<Candidate>]) -> Vec<Candidate> {
    let mut all = Vec::new();
    for level in levels {
        all.extend(nms(level, 0.5).into_iter().map(|i| level[i]));
    }
    nms(&all, 0.7)
        .into_iter()
        .map(|i| Candidate {
            bbox: rerec(pnet_regress(&all[i])),
            ..all[i]
        })
        .collect()
}

/// After R-Net (`reg [N, 4]`, `prob [N, 2]` of `boxes`): keep probability `> thresh`, NMS 0.7,
/// `bbreg`, squaring.
pub fn refine_rnet(boxes: &[Candidate], reg: &[f32], prob: &[f32], thresh: f32) -> Vec<Candidate> {
    let kept: Vec<Candidate> = (0..boxes.len())
        .filter(|&i| prob[2 * i + 1] > thresh)
        .map(|i| Candidate {
            bbox: boxes[i].bbox,
            score: prob[2 * i + 1],
            reg: std::array::from_fn(|k| reg[4 * i + k]),
        })
        .collect();
    nms(&kept, 0.7)
        .into_iter()
        .map(|i| Candidate {
            bbox: rerec(bbreg(kept[i].bbox, kept[i].reg)),
            ..kept[i]
        })
        .collect()
}

/// After O-Net (`reg [N, 4]`, `landmarks [N, 10]`, `prob [N, 2]`): keep probability `>
/// thresh`, landmarks from the box before regression (`x = (x2 - x1 + 1) l + x1 - 1`), `bbreg`,
/// 'Min' NMS 0.7; the faces by descending probability.
pub fn finish_onet(
    boxes: &[Candidate],
    reg: &[f32],
    landmarks: &[f32],
    prob: &[f32],
    thresh: f32,
) -> Vec<Face> {
    let mut faces = Vec::new();
    let mut cands = Vec::new();
    for (i, b) in boxes.iter().enumerate() {
        let score = prob[2 * i + 1];
        if score <= thresh || score.is_nan() {
            continue;
        }
        let [x1, y1, x2, y2] = b.bbox;
        let (w, h) = (x2 - x1 + 1.0, y2 - y1 + 1.0);
        let l = &landmarks[10 * i..10 * i + 10];
        let bbox = bbreg(b.bbox, std::array::from_fn(|k| reg[4 * i + k]));
        faces.push(Face {
            score,
            bbox,
            landmarks: std::array::from_fn(|k| [w * l[k] + x1 - 1.0, h * l[5 + k] + y1 - 1.0]),
        });
        cands.push(Candidate {
            bbox,
            score,
            reg: [0.0; 4],
        });
    }
    nms_min(&cands, 0.7).into_iter().map(|i| faces[i]).collect()
}

/// Where the nets run: P-Net's pyramid besides [`Refiner`]'s R-Net and O-Net.
pub trait Backend: Refiner {
    /// P-Net on the pyramid of `image [1, 3, H, W]` (RGB 0..255, f32) at `levels`: `(reg,
    /// prob)` per level (see [`super::nets::pyramid`]).
    fn pyramid(
        &mut self,
        image: &Tensor,
        levels: &[[usize; 2]],
    ) -> Result<Vec<(Tensor, Tensor)>, Self::Error>;
}

/// Where R-Net and O-Net run. Each call gets whole batches; the tensors it returns are the
/// nets' outputs in [`super::nets`] order.
pub trait Refiner {
    type Error;
    /// R-Net on `crops [N, 3, 24, 24]`: `(reg [N, 4], prob [N, 2])`.
    fn rnet(&mut self, crops: Tensor) -> Result<(Tensor, Tensor), Self::Error>;
    /// O-Net on `crops [N, 3, 48, 48]`: `(reg, landmarks, prob)`.
    fn onet(&mut self, crops: Tensor) -> Result<(Tensor, Tensor, Tensor), Self::Error>;
}

/// What [`detect`] saw between the stages (for tests and timing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub scales: Vec<f64>,
    /// Boxes cropped for R-Net and O-Net, in crop order.
    pub rnet_boxes: Vec<Candidate>,
    pub onet_boxes: Vec<Candidate>,
}

/// Crops of `boxes` that are not empty, with the boxes they belong to.
fn crops(image: &Tensor, boxes: &[Candidate], size: usize) -> (Vec<Candidate>, Tensor) {
    let (h, w) = (image.shape[2], image.shape[3]);
    let mut kept = Vec::new();
    let mut data = Vec::new();
    for b in boxes {
        if let Some((rows, cols)) = crop_rect(b.bbox, h, w) {
            kept.push(*b);
            data.extend(crop_resample(image, rows, cols, size));
        }
    }
    let shape = vec![kept.len(), 3, size, size];
    (kept, Tensor { shape, data })
}

/// The whole cascade on `image [1, 3, H, W]` (RGB 0..255 as f32): the faces and the trace.
pub fn detect<B: Backend>(
    backend: &mut B,
    image: &Tensor,
    config: &CascadeConfig,
) -> Result<(Vec<Face>, Trace), B::Error> {
    let (h, w) = (image.shape[2], image.shape[3]);
    let mut trace = Trace {
        scales: pyramid_scales(h, w, config.min_face_size, config.factor),
        ..Trace::default()
    };
    let levels: Vec<[usize; 2]> = trace.scales.iter().map(|&s| level_size(h, w, s)).collect();
    if levels.is_empty() {
        return Ok((Vec::new(), trace));
    }
    let maps = backend.pyramid(image, &levels)?;
    let candidates: Vec<Vec<Candidate>> = maps
        .iter()
        .zip(&trace.scales)
        .map(|((reg, prob), &s)| {
            pnet_candidates(
                &prob.data,
                &reg.data,
                [prob.shape[2], prob.shape[3]],
                s,
                config.thresholds[0],
            )
        })
        .collect();
    let boxes = merge_pnet(&candidates);
    let faces = refine(backend, image, &boxes, config, &mut trace)?;
    Ok((faces, trace))
}

/// The cascade from R-Net's crop boxes on (P-Net's squared boxes, as [`merge_pnet`] gives
/// them; boxes with an empty crop are skipped): R-Net, O-Net, the faces. Records the boxes
/// cropped for R-Net and O-Net in `trace`.
pub fn refine<B: Refiner>(
    backend: &mut B,
    image: &Tensor,
    boxes: &[Candidate],
    config: &CascadeConfig,
    trace: &mut Trace,
) -> Result<Vec<Face>, B::Error> {
    let (boxes, input) = crops(image, boxes, 24);
    trace.rnet_boxes = boxes.clone();
    if boxes.is_empty() {
        return Ok(Vec::new());
    }
    let (reg, prob) = backend.rnet(input)?;
    let boxes = refine_rnet(&boxes, &reg.data, &prob.data, config.thresholds[1]);
    let (boxes, input) = crops(image, &boxes, 48);
    trace.onet_boxes = boxes.clone();
    if boxes.is_empty() {
        return Ok(Vec::new());
    }
    let (reg, landmarks, prob) = backend.onet(input)?;
    Ok(finish_onet(
        &boxes,
        &reg.data,
        &landmarks.data,
        &prob.data,
        config.thresholds[2],
    ))
}

/// The image as the cascade takes it: `[1, 3, H, W]` f32 0..255 from RGB8 rows (HWC).
pub fn image_tensor(rgb: &[u8], height: usize, width: usize) -> Tensor {
    let plane = height * width;
    let mut data = vec![0f32; 3 * plane];
    for (i, px) in rgb.chunks_exact(3).take(plane).enumerate() {
        for c in 0..3 {
            data[c * plane + i] = px[c] as f32;
        }
    }
    Tensor {
        shape: vec![1, 3, height, width],
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(bbox: [f32; 4], score: f32) -> Candidate {
        Candidate {
            bbox,
            score,
            reg: [0.0; 4],
        }
    }

    /// A small box inside a large one: IoU is low (kept by torchvision's NMS) but the
    /// intersection over the smaller box is 1 (dropped by 'Min').
    #[test]
    fn nms_min_drops_a_box_nested_in_a_better_one_that_iou_nms_keeps() {
        let boxes = [
            cand([0.0, 0.0, 99.0, 99.0], 0.9),
            cand([10.0, 10.0, 29.0, 29.0], 0.95),
        ];
        assert_eq!(nms(&boxes, 0.7), vec![1, 0]);
        assert_eq!(nms_min(&boxes, 0.7), vec![1]);
        // Disjoint boxes survive both, by descending score; equal scores by index.
        let apart = [
            cand([0.0, 0.0, 9.0, 9.0], 0.5),
            cand([20.0, 0.0, 29.0, 9.0], 0.5),
        ];
        assert_eq!(nms_min(&apart, 0.7), vec![0, 1]);
        assert_eq!(nms(&apart, 0.7), vec![0, 1]);
    }

    /// 'Min' areas count pixels (`+1`): two 10-pixel-wide boxes sharing 7 columns overlap by
    /// 0.7 exactly, which is not above the threshold.
    #[test]
    fn nms_min_uses_inclusive_pixel_areas_and_a_strict_threshold() {
        let boxes = [
            cand([0.0, 0.0, 9.0, 9.0], 0.9),
            cand([3.0, 0.0, 12.0, 9.0], 0.8),
        ];
        assert_eq!(nms_min(&boxes, 0.7), vec![0, 1]);
        assert_eq!(nms_min(&boxes, 0.69), vec![0]);
    }

    #[test]
    fn rerec_squares_about_the_centre_and_bbreg_adds_one_to_widths() {
        assert_eq!(rerec([10.0, 20.0, 30.0, 60.0]), [0.0, 20.0, 40.0, 60.0]);
        assert_eq!(
            bbreg([0.0, 0.0, 9.0, 19.0], [0.1, 0.1, -0.1, 0.5]),
            [1.0, 2.0, 8.0, 29.0]
        );
        let c = cand([0.0, 0.0, 10.0, 20.0], 1.0);
        let c = Candidate {
            reg: [0.1, 0.1, 0.0, 0.0],
            ..c
        };
        assert_eq!(pnet_regress(&c), [1.0, 2.0, 10.0, 20.0]);
    }

    /// `pad` truncates toward zero and clamps to the 1-based image; boxes outside give no crop.
    #[test]
    fn crop_rect_truncates_clamps_and_skips_empty_boxes() {
        assert_eq!(
            crop_rect([-5.7, 2.9, 20.2, 200.0], 50, 40),
            Some(([1, 50], [0, 20]))
        );
        assert_eq!(crop_rect([45.0, 0.0, 60.0, 10.0], 50, 40), None);
        assert_eq!(
            crop_rect([f32::NAN, 0.0, 5.0, 5.0], 50, 40),
            Some(([0, 5], [0, 5]))
        );
        assert_eq!(crop_rect([0.0, 0.0, -3.0, 5.0], 50, 40), None);
    }

    #[test]
    fn pyramid_scales_stop_below_twelve_pixels_and_refuse_a_growing_factor() {
        let s = pyramid_scales(600, 512, 20.0, 0.709);
        assert_eq!(s.len(), 10);
        assert_eq!(s[0], 0.6);
        assert_eq!(level_size(600, 512, s[0]), [361, 308]);
        assert!(pyramid_scales(19, 400, 20.0, 0.709).is_empty());
        assert!(pyramid_scales(600, 512, 20.0, 1.5).is_empty());
    }

    /// Cells at or above the threshold, row-major, with the stride-2 / cell-12 geometry.
    #[test]
    fn pnet_candidates_map_cells_to_image_boxes() {
        // A 2x3 map: face probabilities in channel 1.
        let prob = [0.0; 6]
            .into_iter()
            .chain([0.1, 0.6, 0.0, 0.9, 0.2, 0.59])
            .collect::<Vec<f32>>();
        let reg: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let c = pnet_candidates(&prob, &reg, [2, 3], 0.5, 0.6);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].bbox, [6.0, 2.0, 28.0, 24.0]);
        assert_eq!(c[0].reg, [1.0, 7.0, 13.0, 19.0]);
        assert_eq!(c[1].bbox, [2.0, 6.0, 24.0, 28.0]);
        assert_eq!(c[1].score, 0.9);
    }
}
