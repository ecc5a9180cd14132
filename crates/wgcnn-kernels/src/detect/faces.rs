//! MTCNN's cascade on the GPU (facenet-pytorch 2.6.0's `detect_face`), around the nets' plans:
//! - [`pyramid_launch`] (`face_pyramid`): a pyramid level (or row strip) area-resampled from the
//!   8-bit photo and normalized, P-Net's input;
//! - [`pnet_stage`]: from P-Net's maps to R-Net's crop boxes: per level the cells with face
//!   probability `>=` the threshold sorted by score ([`crate::segment_keys`] +
//!   [`crate::topk_sort`]) and turned into boxes (`face_candidates`), NMS 0.5 per level and 0.7
//!   over all levels (the detector's NMS kernels; `nms_gather` carries each kept candidate's
//!   slot so its regression follows it, `face_merge`), regression, squaring and the empty-crop
//!   filter, compacted in order (`face_boxes`);
//! - [`crops_launch`] (`face_crops`): R-Net's 24x24 / O-Net's 48x48 crops of GPU boxes from the
//!   8-bit photo (`pad`'s integer boxes, area resampling);
//! - [`rnet_stage`]: R-Net's rows with probability `> 0.7` sorted (`face_select`), NMS 0.7,
//!   `bbreg`, squaring, empty-crop filter: O-Net's boxes;
//! - [`onet_stage`]: O-Net's rows `> 0.7` sorted with their landmarks in pixels and `bbreg`
//!   (`face_landmarks`), 'Min' NMS 0.7 (`nms_mask` mode 1), the faces (`face_output`).
//! - [`dispatch_launch`] (`face_dispatch`) and [`rows_launch`] (`face_rows`): R-Net and O-Net
//!   on a box count only the GPU holds: indirect dispatch arguments per chunk and batch
//!   capacity from the count, and the gathering of the nets' output rows (`wgcnn::FaceDetector`
//!   runs every stage in one submission with them).
//!
//! No CPU round trip inside a stage; unused rows carry score -1 (INVALID_SCORE).
//!
//! Capacities (the CPU reference, `wgcnn_models::faces::cascade`, has none): each level keeps
//! its best [`MAX_LEVEL_CANDIDATES`] cells by score, the per-level NMS its best [`MAX_MERGED`]
//! boxes over all levels (R-Net's and O-Net's row capacity). Greedy NMS decides a box only from better-scored ones,
//! so the boxes kept are exactly the reference's best ones; only boxes past a capacity are
//! lost, which takes a photo of thousands of face-like cells (a 4000x3000 photo's first level).

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::nms::{self, Candidates, NmsLayout, Overlap};
use super::{bad, pairs_buffer, to_u32};
use crate::segment_keys::{self, KeySegment, SegmentKeysParams};
use crate::{Access, Context, Kernel, KernelError, KernelSpec, Launch, MAX_GROUPS, grid};
use crate::{shaders, topk_sort};

#[path = "faces_refine.rs"]
mod refine;
pub use refine::*;

/// Candidates each pyramid level keeps, best probability first (one sort block).
pub const MAX_LEVEL_CANDIDATES: usize = topk_sort::BLOCK;
/// Boxes the per-level NMS keeps over all levels (NMS 0.7's input, R-Net's crop capacity).
pub const MAX_MERGED: usize = topk_sort::BLOCK;

pub const PYRAMID_SPEC: KernelSpec = KernelSpec {
    name: "face_pyramid",
    source: shaders::FACE_PYRAMID,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// The uploaded photo: `[height, width]`, its packed pixels ([`crate::preprocess::pack_rgb8`])
/// rows `0..split` in `lo` and the rest in `hi` (a photo over one binding takes two; `hi` is
/// any small buffer otherwise).
#[derive(Clone, Copy, Debug)]
pub struct Photo<'a> {
    pub size: [usize; 2],
    pub lo: &'a wgpu::Buffer,
    pub hi: &'a wgpu::Buffer,
    pub split: usize,
}

pub const CANDIDATES_SPEC: KernelSpec = KernelSpec {
    name: "face_candidates",
    source: shaders::FACE_CANDIDATES,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

pub const MERGE_SPEC: KernelSpec = KernelSpec {
    name: "face_merge",
    source: shaders::FACE_MERGE,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

pub const BOXES_SPEC: KernelSpec = KernelSpec {
    name: "face_boxes",
    source: shaders::FACE_BOXES,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

pub const CROPS_SPEC: KernelSpec = KernelSpec {
    name: "face_crops",
    source: shaders::FACE_CROPS,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};

/// Mirrors `Params` in `shaders/face_crops.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FaceCropsParams {
    pub height: u32,
    pub width: u32,
    pub size: u32,
    pub rows: u32,
    pub first: u32,
    pub split: u32,
    pub _pad: [u32; 2],
}

/// Records R-Net's or O-Net's input `y [rows, 3, size, size]`: boxes `first ..` of `boxes [.,
/// 5]` (as many as `count [1]` leaves, at most `rows`) cropped from the `photo` as MTCNN's
/// `pad` gives their pixel ranges, area-resampled to `size` x `size` and normalized; the other
/// rows zero.
#[allow(clippy::too_many_arguments)]
pub fn crops_launch(
    ctx: &Context,
    label: &str,
    photo: &Photo<'_>,
    size: usize,
    rows: usize,
    first: usize,
    box_rows: &wgpu::Buffer,
    count: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let p = FaceCropsParams {
        height: photo.size[0] as u32,
        width: photo.size[1] as u32,
        size: size as u32,
        rows: rows as u32,
        first: first as u32,
        split: photo.split as u32,
        _pad: [0; 2],
    };
    let groups = (rows * size * size).div_ceil(64) as u32;
    ctx.launch(
        label,
        &ctx.kernel(&CROPS_SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[photo.lo, photo.hi, box_rows, count, y],
        grid(groups, MAX_GROUPS),
    )
}

/// Mirrors `Params` in `shaders/face_pyramid.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FacePyramidParams {
    pub height: u32,
    pub width: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub row0: u32,
    pub rows: u32,
    pub split: u32,
    pub _pad: u32,
}

/// Mirrors `Params` in `shaders/face_candidates.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FaceCandidatesParams {
    pub kmax: u32,
    pub levels: u32,
    pub _pad: [u32; 2],
}

/// Mirrors `Params` in `shaders/face_merge.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FaceMergeParams {
    pub count: u32,
    pub slots: u32,
    pub _pad: [u32; 2],
}

/// Mirrors `Params` in `shaders/face_boxes.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FaceBoxesParams {
    pub rows: u32,
    pub cap: u32,
    pub height: f32,
    pub width: f32,
    /// Added to the widths of the regression: 0 after P-Net, 1 after R-Net (`bbreg`).
    pub extra: f32,
    pub _pad: [u32; 3],
}

/// Records output rows `rows` (`[start, end)`) of the pyramid level `level` (`[h, w]`) of the
/// `photo` into `y` `[1, 3, end - start, w]`, normalized as P-Net takes it.
pub fn pyramid_launch(
    ctx: &Context,
    label: &str,
    photo: &Photo<'_>,
    level: [usize; 2],
    rows: std::ops::Range<usize>,
    y: &wgpu::Buffer,
) -> Launch {
    let p = FacePyramidParams {
        height: photo.size[0] as u32,
        width: photo.size[1] as u32,
        out_height: level[0] as u32,
        out_width: level[1] as u32,
        row0: rows.start as u32,
        rows: rows.len() as u32,
        split: photo.split as u32,
        _pad: 0,
    };
    let groups = (rows.len() * level[1]).div_ceil(64) as u32;
    ctx.launch(
        label,
        &ctx.kernel(&PYRAMID_SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[photo.lo, photo.hi, y],
        grid(groups, MAX_GROUPS),
    )
}

/// One pyramid level's P-Net maps in [`pnet_stage`]'s concatenated buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaceLevel {
    /// P-Net's map size `[h, w]`.
    pub map: [usize; 2],
    /// The level's scale (as facenet-pytorch computes it, in f64).
    pub scale: f64,
    /// Offset of its face-probability plane in `probs`; its 4 regression planes start at `4 *
    /// offset` in `regs`.
    pub offset: usize,
}

/// The P-Net stage's sizes and thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct PnetStageDesc {
    pub levels: Vec<FaceLevel>,
    /// P-Net's probability threshold (kept when `>=`).
    pub thresh: f32,
    /// The photo's `[height, width]`.
    pub photo: [usize; 2],
}

/// The buffers [`pnet_stage`] writes: `boxes [MAX_MERGED, 5]` (x1, y1, x2, y2, score of the
/// squared crop boxes in order; unused rows score -1) and `count [1]` (u32).
pub struct PnetStageOutput {
    pub boxes: wgpu::Buffer,
    pub count: wgpu::Buffer,
}

/// The largest f32 below `t`: `v > below(t)` is `v >= t` for every f32 `v`.
fn below(t: f32) -> f32 {
    if t.is_nan() || t == f32::NEG_INFINITY {
        return t;
    }
    if t == 0.0 {
        return -f32::from_bits(1);
    }
    let b = t.to_bits();
    f32::from_bits(if t > 0.0 { b - 1 } else { b + 1 })
}

/// Records P-Net's maps (`probs`: each level's face-probability plane; `regs`: its four
/// regression planes) to R-Net's crop boxes, into `out`.
pub fn pnet_stage(
    ctx: &Context,
    label: &str,
    d: &PnetStageDesc,
    probs: &wgpu::Buffer,
    regs: &wgpu::Buffer,
    out: &PnetStageOutput,
) -> Result<Vec<Launch>, KernelError> {
    const K: &str = "face_candidates";
    let planes: Vec<usize> = d.levels.iter().map(|l| l.map[0] * l.map[1]).collect();
    let kmax = planes
        .iter()
        .map(|&p| p.min(MAX_LEVEL_CANDIDATES))
        .max()
        .unwrap_or(0)
        .max(1);
    let groups = d.levels.len().max(1);
    let per_level = NmsLayout {
        images: 1,
        groups,
        kmax,
        cap: kmax,
        out_cap: MAX_MERGED,
        row_width: 7,
        label_offset: 0,
        group_offset: 0,
        thresh: 0.5,
    };
    let cand = Candidates::new(ctx, label, &per_level)?;
    let regs_a = ctx.storage(
        &format!("{label}[candidate regs]"),
        (groups * kmax) as u64 * 16,
    );
    let block = topk_sort::block_for(kmax);
    let mut segments = Vec::new();
    let mut table = Vec::new();
    let mut pair_off = 0;
    for (l, &plane) in d.levels.iter().zip(&planes) {
        let padded = topk_sort::padded_len(plane, block);
        if padded.div_ceil(256) > MAX_GROUPS as usize {
            return Err(bad(K, format!("a P-Net map of {plane} cells is too large")));
        }
        segments.push(KeySegment {
            src_off: l.offset,
            len: plane,
            dst_off: pair_off,
            padded,
        });
        table.extend([
            to_u32(K, "sort pairs", pair_off)?,
            to_u32(K, "map offset", l.offset)?,
            l.map[1] as u32,
            plane.min(kmax) as u32,
            to_u32(K, "map cells", plane)?,
            (l.scale as f32).to_bits(),
            0,
            0,
        ]);
        pair_off += padded;
    }
    let mut launches = Vec::new();
    if !d.levels.is_empty() && pair_off > 0 {
        let pairs = pairs_buffer(ctx, label, pair_off)?;
        let keys = SegmentKeysParams {
            groups: d.levels.len() as u32,
            src_img_stride: 0,
            src_elem_stride: 1,
            dst_img_stride: to_u32(K, "sort pairs", pair_off)?,
            mode: 1,
            _pad: [0; 2],
            thresh: below(d.thresh),
        };
        launches.push(segment_keys::launch(
            ctx,
            &format!("{label}[keys]"),
            &keys,
            1,
            &segments,
            probs,
            &pairs,
        ));
        let sort: Vec<(usize, usize)> = segments.iter().map(|s| (s.dst_off, s.padded)).collect();
        launches.extend(topk_sort::launches(ctx, label, &sort, block, &pairs));
        let p = FaceCandidatesParams {
            kmax: kmax as u32,
            levels: d.levels.len() as u32,
            _pad: [0; 2],
        };
        let table = ctx.device_buffer_u32(&table);
        launches.push(ctx.launch(
            &format!("{label}[candidates]"),
            &ctx.kernel(&CANDIDATES_SPEC, &[]),
            bytemuck::bytes_of(&p),
            &[
                &table,
                &pairs,
                probs,
                regs,
                &cand.boxes,
                &cand.scores,
                &regs_a,
            ],
            [kmax.div_ceil(256) as u32, d.levels.len() as u32, 1],
        ));
    }
    let levels = if d.levels.is_empty() {
        NmsLayout {
            groups: 0,
            ..per_level
        }
    } else {
        per_level
    };
    let rows1 = ctx.storage(&format!("{label}[level nms]"), (MAX_MERGED * 7) as u64 * 4);
    launches.extend(nms::launches_with(
        ctx,
        &format!("{label}[level nms]"),
        &levels,
        Overlap::Iou,
        &cand,
        &rows1,
    )?);
    let merged = NmsLayout {
        images: 1,
        groups: 1,
        kmax: MAX_MERGED,
        cap: MAX_MERGED,
        out_cap: MAX_MERGED,
        row_width: 7,
        label_offset: 0,
        group_offset: 0,
        thresh: 0.7,
    };
    let cand2 = Candidates::new(ctx, label, &merged)?;
    let regs_b = ctx.storage(&format!("{label}[merged regs]"), MAX_MERGED as u64 * 16);
    let p = FaceMergeParams {
        count: MAX_MERGED as u32,
        slots: (groups * kmax) as u32,
        _pad: [0; 2],
    };
    launches.push(ctx.launch(
        &format!("{label}[merge]"),
        &ctx.kernel(&MERGE_SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[&rows1, &regs_a, &cand2.boxes, &cand2.scores, &regs_b],
        [MAX_MERGED.div_ceil(256) as u32, 1, 1],
    ));
    let rows2 = ctx.storage(&format!("{label}[merged nms]"), (MAX_MERGED * 7) as u64 * 4);
    launches.extend(nms::launches_with(
        ctx,
        &format!("{label}[merged nms]"),
        &merged,
        Overlap::Iou,
        &cand2,
        &rows2,
    )?);
    // The merged NMS writes its rows in score order; their regressions are still indexed by
    // the merged candidate slot (column 6).
    launches.extend(boxes_launches(
        ctx, label, MAX_MERGED, d.photo, 0.0, &rows2, &regs_b, out,
    ));
    Ok(launches)
}

/// `face_merge` (each kept row's regression by its slot) then `face_boxes` (regression with
/// widths `+ extra`, squaring, empty-crop filter, compaction into `out`) on `rows [n, 7]`.
#[allow(clippy::too_many_arguments)]
fn boxes_launches(
    ctx: &Context,
    label: &str,
    n: usize,
    photo: [usize; 2],
    extra: f32,
    rows: &wgpu::Buffer,
    slot_regs: &wgpu::Buffer,
    out: &PnetStageOutput,
) -> Vec<Launch> {
    let kept_regs = ctx.storage(&format!("{label}[kept regs]"), n as u64 * 16);
    let p = FaceMergeParams {
        count: n as u32,
        slots: n as u32,
        _pad: [0; 2],
    };
    // face_merge also writes the rows as candidates, which nothing reads here.
    let (boxes_tmp, scores_tmp) = (
        ctx.storage(&format!("{label}[kept boxes]"), n as u64 * 16),
        ctx.storage(&format!("{label}[kept scores]"), n as u64 * 4),
    );
    let merge = ctx.launch(
        &format!("{label}[kept regs]"),
        &ctx.kernel(&MERGE_SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[rows, slot_regs, &boxes_tmp, &scores_tmp, &kept_regs],
        [n.div_ceil(256) as u32, 1, 1],
    );
    let p = FaceBoxesParams {
        rows: n as u32,
        cap: MAX_MERGED as u32,
        height: photo[0] as f32,
        width: photo[1] as f32,
        extra,
        _pad: [0; 3],
    };
    let boxes = ctx.launch(
        &format!("{label}[boxes]"),
        &ctx.kernel(&BOXES_SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[rows, &kept_regs, &out.boxes, &out.count],
        [1, 1, 1],
    );
    vec![merge, boxes]
}

/// The compiled kernels of this module (for `Context::compile_pipelines` callers and tests).
pub fn kernels(ctx: &Context) -> [Arc<Kernel>; 10] {
    [
        ctx.kernel(&DISPATCH_SPEC, &[]),
        ctx.kernel(&ROWS_SPEC, &[]),
        ctx.kernel(&LANDMARKS_SPEC, &[]),
        ctx.kernel(&OUTPUT_SPEC, &[]),
        ctx.kernel(&SELECT_SPEC, &[]),
        ctx.kernel(&CROPS_SPEC, &[]),
        ctx.kernel(&PYRAMID_SPEC, &[]),
        ctx.kernel(&CANDIDATES_SPEC, &[]),
        ctx.kernel(&MERGE_SPEC, &[]),
        ctx.kernel(&BOXES_SPEC, &[]),
    ]
}

#[cfg(test)]
#[path = "faces_tests.rs"]
mod tests;
