//! `detect_rows_args`: indirect dispatch arguments for the launches of a detector head that run
//! per detection (mask, keypoint heads), from the number of leading rows (image-major) of the
//! fixed-capacity detection tensor `[images, rows, width]` that hold kept detections. The
//! head's layers run in blocks of rows; a block's launches get their grid when its first row
//! is in use and an empty one otherwise, so a photo with 3 people runs one block instead of
//! all `detections_per_img` rows. Any kernel can run this way (a block is a whole smaller
//! batch), whatever order its workgroups take the rows in. Shader:
//! `shaders/detect_rows_args.wgsl`.

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, KernelSpec, Launch, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "detect_rows_args",
    source: shaders::DETECT_ROWS_ARGS,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// Mirrors `Params` in `shaders/detect_rows_args.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RowsArgsParams {
    pub total_rows: u32,
    pub width: u32,
    pub score_col: u32,
    pub entries: u32,
}

/// One launch dispatched on the rows in use: it runs with `workgroups` when the detection
/// tensor's rows in use reach past `first`, else not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowsEntry {
    pub first: u32,
    pub workgroups: [u32; 3],
}

/// A buffer of indirect dispatch arguments for `entries` launches (12 bytes each), also bound
/// as storage (and copied from, for tests and debugging).
pub fn args_buffer(ctx: &Context, label: &str, entries: usize) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (entries.max(1) * 12) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::INDIRECT
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

/// Records `detect_rows_args`: `args` (an [`args_buffer`]) for `entries` from `dets [images,
/// rows, width]` (score in column 4, as the NMS gather writes detections and proposals).
pub fn args_launch(
    ctx: &Context,
    label: &str,
    dets_shape: [usize; 3],
    dets: &wgpu::Buffer,
    entries: &[RowsEntry],
    args: &wgpu::Buffer,
) -> Launch {
    let table: Vec<u32> = entries
        .iter()
        .flat_map(|e| [e.first, e.workgroups[0], e.workgroups[1], e.workgroups[2]])
        .collect();
    let table = ctx.device_buffer_u32(&table);
    let [images, rows, width] = dets_shape;
    let p = RowsArgsParams {
        total_rows: (images * rows) as u32,
        width: width as u32,
        score_col: 4,
        entries: entries.len() as u32,
    };
    ctx.launch(
        label,
        &ctx.kernel(&SPEC, &[]),
        bytemuck::bytes_of(&p),
        &[dets, &table, args],
        [1, 1, 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, ctx};
    use wgcnn_graph::INVALID_SCORE;

    /// Detections `[images, rows, 6]` with `kept[n]` scored rows first, the rest unused.
    fn dets(rng: &mut Rng, rows: usize, kept: &[usize]) -> Vec<f32> {
        let mut v = Vec::new();
        for &k in kept {
            for r in 0..rows {
                let score = if r < k {
                    rng.uniform(1.0).abs()
                } else {
                    INVALID_SCORE
                };
                v.extend([1.0, 2.0, 3.0, 4.0, score, 1.0]);
            }
        }
        v
    }

    /// The args written for entries whose first rows are `0..total` (workgroups `(i + 1, 2,
    /// 3)` for entry i), as the number of leading entries that run; checks the rest are empty.
    fn running(rows: usize, data: &[f32]) -> usize {
        let ctx = ctx();
        let images = data.len() / (rows * 6);
        let total = images * rows;
        let entries: Vec<RowsEntry> = (0..total)
            .map(|i| RowsEntry {
                first: i as u32,
                workgroups: [i as u32 + 1, 2, 3],
            })
            .collect();
        let dets = ctx.upload("dets", data);
        let args = args_buffer(ctx, "args", entries.len());
        let l = args_launch(ctx, "rows", [images, rows, 6], &dets, &entries, &args);
        ctx.run(&[l]).expect("run");
        let got: Vec<u32> = ctx
            .read(&args, 3 * total)
            .expect("read")
            .into_iter()
            .map(f32::to_bits)
            .collect();
        let used = got.chunks(3).take_while(|a| a[0] != 0).count();
        for (i, a) in got.chunks(3).enumerate() {
            let want = if i < used {
                [i as u32 + 1, 2, 3]
            } else {
                [0, 0, 0]
            };
            assert_eq!(a, want, "entry {i}");
        }
        used
    }

    #[test]
    fn rows_args_run_the_blocks_up_to_the_last_kept_row_image_major() {
        let mut rng = Rng::new(7);
        let rows = 100;
        for (kept, want) in [
            (vec![3], 3),
            (vec![0], 0),
            (vec![100], 100),
            (vec![5, 0], 5),
            (vec![0, 7], 107),
            (vec![100, 0, 1], 201),
            (vec![0, 0, 0], 0),
        ] {
            let data = dets(&mut rng, rows, &kept);
            assert_eq!(running(rows, &data), want, "kept per image {kept:?}");
        }
    }

    #[test]
    fn rows_args_treat_a_nan_score_as_kept() {
        let mut rng = Rng::new(8);
        let mut data = dets(&mut rng, 10, &[2]);
        data[6 * 6 + 4] = f32::NAN;
        assert_eq!(running(10, &data), 7);
    }
}
