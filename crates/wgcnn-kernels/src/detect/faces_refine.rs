//! MTCNN after R-Net and O-Net on the GPU, and the indirect dispatch that runs the nets on a
//! box count only the GPU knows (see the parent module).

use super::nms::{self, Candidates, NmsLayout, Overlap};
use super::{MAX_MERGED, PnetStageOutput, boxes_launches, pairs_buffer, to_u32};
use crate::segment_keys::{self, KeySegment, SegmentKeysParams};
use crate::{Access, Context, KernelError, KernelSpec, Launch, MAX_GROUPS, grid};
use crate::{shaders, topk_sort};
use bytemuck::{Pod, Zeroable};

pub const DISPATCH_SPEC: KernelSpec = KernelSpec {
    name: "face_dispatch",
    source: shaders::FACE_DISPATCH,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

pub const ROWS_SPEC: KernelSpec = KernelSpec {
    name: "face_rows",
    source: shaders::FACE_ROWS,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/face_dispatch.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FaceDispatchParams {
    pub entries: u32,
    pub chunk: u32,
    pub _pad: [u32; 2],
}

/// Mirrors `Params` in `shaders/face_rows.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FaceRowsParams {
    pub first: u32,
    pub rows: u32,
    pub width: u32,
    /// 0: copy a batch's rows; 1: clear the rows past the count.
    pub mode: u32,
}

/// One launch of a net section dispatched indirectly: it runs (with `workgroups`) only when
/// the chunk starting at row `first` holds more than `lo` and at most `hi` boxes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndirectEntry {
    pub first: usize,
    pub lo: usize,
    pub hi: usize,
    pub workgroups: [u32; 3],
}

/// A buffer of indirect dispatch arguments (3 u32 per entry), also bound as storage.
pub fn indirect_buffer(ctx: &Context, label: &str, entries: usize) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (entries.max(1) * 12) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::INDIRECT,
        mapped_at_creation: false,
    })
}

/// Records `face_dispatch`: `args` (an [`indirect_buffer`]) for `entries` from the box count
/// `count`, chunks of `chunk` rows.
pub fn dispatch_launch(
    ctx: &Context,
    label: &str,
    entries: &[IndirectEntry],
    chunk: usize,
    count: &wgpu::Buffer,
    args: &wgpu::Buffer,
) -> Launch {
    let table: Vec<u32> = entries
        .iter()
        .flat_map(|e| {
            let [x, y, z] = e.workgroups;
            [e.first as u32, e.lo as u32, e.hi as u32, 0, x, y, z, 0]
        })
        .collect();
    let table = ctx.device_buffer_u32(&table);
    let p = FaceDispatchParams {
        entries: entries.len() as u32,
        chunk: chunk as u32,
        _pad: [0; 2],
    };
    ctx.launch(
        label,
        &ctx.kernel(&DISPATCH_SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[count, &table, args],
        [entries.len().div_ceil(64).max(1) as u32, 1, 1],
    )
}

/// Records `face_rows`: in mode 0 the first `min(count - first, rows)` rows of `src [rows,
/// width]` to rows `first..` of `dst`; in mode 1 zeroes the rows of `dst [rows, width]` from
/// `count` on (`src` unused but bound).
#[allow(clippy::too_many_arguments)]
pub fn rows_launch(
    ctx: &Context,
    label: &str,
    mode: u32,
    first: usize,
    rows: usize,
    width: usize,
    count: &wgpu::Buffer,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
) -> Launch {
    let p = FaceRowsParams {
        first: first as u32,
        rows: rows as u32,
        width: width as u32,
        mode,
    };
    ctx.launch(
        label,
        &ctx.kernel(&ROWS_SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[count, src, dst],
        grid((rows * width).div_ceil(256) as u32, MAX_GROUPS),
    )
}

pub const SELECT_SPEC: KernelSpec = KernelSpec {
    name: "face_select",
    source: shaders::FACE_SELECT,
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

/// Mirrors `Params` in `shaders/face_select.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FaceSelectParams {
    pub slots: u32,
    pub count: u32,
    pub _pad: [u32; 2],
}

/// The buffers of the R-Net stage: R-Net's outputs for the front's boxes (`reg [MAX_MERGED,
/// 4]`, `prob [MAX_MERGED, 2]`; rows past the box count must hold probability 0, e.g.
/// cleared) in, O-Net's crop boxes out (`boxes [MAX_MERGED, 5]`, `count [1]` u32).
pub struct RnetStageBuffers<'a> {
    /// The front's boxes ([`PnetStageOutput::boxes`]), R-Net's rows in order.
    pub rnet_boxes: &'a wgpu::Buffer,
    pub reg: &'a wgpu::Buffer,
    pub prob: &'a wgpu::Buffer,
    pub out: &'a PnetStageOutput,
}

/// Records MTCNN's step after R-Net: rows with probability `> thresh`, NMS 0.7 by
/// probability (ties by row), `bbreg`, squaring and the empty-crop filter: O-Net's boxes in
/// order.
pub fn rnet_stage(
    ctx: &Context,
    label: &str,
    thresh: f32,
    photo: [usize; 2],
    b: RnetStageBuffers<'_>,
) -> Result<Vec<Launch>, KernelError> {
    let n = MAX_MERGED;
    let layout = NmsLayout {
        images: 1,
        groups: 1,
        kmax: n,
        cap: n,
        out_cap: n,
        row_width: 7,
        label_offset: 0,
        group_offset: 0,
        thresh: 0.7,
    };
    let cand = Candidates::new(ctx, label, &layout)?;
    let regs = ctx.storage(&format!("{label}[candidate regs]"), n as u64 * 16);
    let (pairs, mut launches) = sorted_rows(ctx, label, b.prob, thresh)?;
    let p = FaceSelectParams {
        slots: n as u32,
        count: n as u32,
        _pad: [0; 2],
    };
    launches.push(ctx.launch(
        &format!("{label}[select]"),
        &ctx.kernel(&SELECT_SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[
            &pairs,
            b.rnet_boxes,
            b.prob,
            b.reg,
            &cand.boxes,
            &cand.scores,
            &regs,
        ],
        [n.div_ceil(256) as u32, 1, 1],
    ));
    let rows = ctx.storage(&format!("{label}[nms]"), (n * 7) as u64 * 4);
    launches.extend(nms::launches_with(
        ctx,
        &format!("{label}[nms]"),
        &layout,
        Overlap::Iou,
        &cand,
        &rows,
    )?);
    launches.extend(boxes_launches(
        ctx, label, n, photo, 1.0, &rows, &regs, b.out,
    ));
    Ok(launches)
}

pub const LANDMARKS_SPEC: KernelSpec = KernelSpec {
    name: "face_landmarks",
    source: shaders::FACE_LANDMARKS,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

pub const OUTPUT_SPEC: KernelSpec = KernelSpec {
    name: "face_output",
    source: shaders::FACE_OUTPUT,
    buffers: &[
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// Mirrors `Params` in `shaders/face_landmarks.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FaceLandmarksParams {
    pub slots: u32,
    pub count: u32,
    pub _pad: [u32; 2],
}

/// Mirrors `Params` in `shaders/face_output.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FaceOutputParams {
    pub rows: u32,
    pub slots: u32,
    pub _pad: [u32; 2],
}

/// Values per face row of [`onet_stage`]'s output: score, box (4), landmarks (5 x, y).
pub const FACE_ROW: usize = 15;

/// The buffers of the O-Net stage: O-Net's outputs for the R-Net stage's boxes (`reg
/// [MAX_MERGED, 4]`, `landmarks [MAX_MERGED, 10]`, `prob [MAX_MERGED, 2]`; rows past the box
/// count must hold probability 0) in; `faces [MAX_MERGED, FACE_ROW]` (best first, unused rows
/// score -1) and `count [1]` (u32) out.
pub struct OnetStageBuffers<'a> {
    /// The R-Net stage's boxes, O-Net's rows in order.
    pub onet_boxes: &'a wgpu::Buffer,
    pub reg: &'a wgpu::Buffer,
    pub landmarks: &'a wgpu::Buffer,
    pub prob: &'a wgpu::Buffer,
    pub faces: &'a wgpu::Buffer,
    pub count: &'a wgpu::Buffer,
}

/// Records MTCNN's end after O-Net: rows with probability `> thresh`, landmarks in image
/// pixels, `bbreg`, 'Min' NMS 0.7 (facenet-pytorch's `nms_numpy(..., 'Min')`): the faces.
pub fn onet_stage(
    ctx: &Context,
    label: &str,
    thresh: f32,
    b: OnetStageBuffers<'_>,
) -> Result<Vec<Launch>, KernelError> {
    let n = MAX_MERGED;
    let layout = NmsLayout {
        images: 1,
        groups: 1,
        kmax: n,
        cap: n,
        out_cap: n,
        row_width: 7,
        label_offset: 0,
        group_offset: 0,
        thresh: 0.7,
    };
    let cand = Candidates::new(ctx, label, &layout)?;
    let marks = ctx.storage(&format!("{label}[landmarks]"), (n * 10) as u64 * 4);
    let (pairs, mut launches) = sorted_rows(ctx, label, b.prob, thresh)?;
    let p = FaceLandmarksParams {
        slots: n as u32,
        count: n as u32,
        _pad: [0; 2],
    };
    launches.push(ctx.launch(
        &format!("{label}[landmarks]"),
        &ctx.kernel(&LANDMARKS_SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[
            &pairs,
            b.onet_boxes,
            b.prob,
            b.reg,
            b.landmarks,
            &cand.boxes,
            &cand.scores,
            &marks,
        ],
        [n.div_ceil(256) as u32, 1, 1],
    ));
    let rows = ctx.storage(&format!("{label}[nms]"), (n * 7) as u64 * 4);
    launches.extend(nms::launches_with(
        ctx,
        &format!("{label}[nms]"),
        &layout,
        Overlap::Min,
        &cand,
        &rows,
    )?);
    let p = FaceOutputParams {
        rows: n as u32,
        slots: n as u32,
        _pad: [0; 2],
    };
    launches.push(ctx.launch(
        &format!("{label}[faces]"),
        &ctx.kernel(&OUTPUT_SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[&rows, &marks, b.faces, b.count],
        [n.div_ceil(256) as u32, 1, 1],
    ));
    Ok(launches)
}

/// The (key, row) pairs of `prob [MAX_MERGED, 2]`'s face column `> thresh`, sorted by
/// descending probability then row (key 0 past the wanted ones), and the launches that make
/// them.
fn sorted_rows(
    ctx: &Context,
    label: &str,
    prob: &wgpu::Buffer,
    thresh: f32,
) -> Result<(wgpu::Buffer, Vec<Launch>), KernelError> {
    let n = MAX_MERGED;
    let block = topk_sort::block_for(n);
    let padded = topk_sort::padded_len(n, block);
    let pairs = pairs_buffer(ctx, label, padded)?;
    let keys = SegmentKeysParams {
        groups: 1,
        src_img_stride: 0,
        src_elem_stride: 2,
        dst_img_stride: to_u32("face_select", "sort pairs", padded)?,
        mode: 1,
        _pad: [0; 2],
        thresh,
    };
    let segment = KeySegment {
        src_off: 1,
        len: n,
        dst_off: 0,
        padded,
    };
    let mut launches = vec![segment_keys::launch(
        ctx,
        &format!("{label}[keys]"),
        &keys,
        1,
        &[segment],
        prob,
        &pairs,
    )];
    launches.extend(topk_sort::launches(
        ctx,
        label,
        &[(0, padded)],
        block,
        &pairs,
    ));
    Ok((pairs, launches))
}
