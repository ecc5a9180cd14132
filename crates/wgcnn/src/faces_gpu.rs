//! The GPU side of [`super::FaceDetector`]. Per photo size, a [`PnetPipeline`] holding:
//! - the packed photo's bindings (a batch's later photos are copied in between chains);
//! - per pyramid level (or row strip of a level too large for one binding) the `face_pyramid`
//!   launch writing a P-Net plan's input, and the copies of that plan's maps into one buffer of
//!   every level's face probabilities and one of their regressions;
//! - the launches of `wgcnn_kernels::detect::faces`' P-Net, R-Net and O-Net stages, with the
//!   buffers R-Net's and O-Net's batches are gathered into.
//!
//! - the R-Net and O-Net sections (`faces_net`) that run the nets on the GPU-held counts.
//!
//! [`PnetPipeline::run_batch`] is the whole cascade on one or more photos of this size in one
//! submission (the counts and the faces read back). [`PnetPipeline::run`],
//! [`PnetPipeline::run_rnet`] and [`PnetPipeline::run_onet`] are its three stages as one submission each, reading back a count and its rows (boxes, then
//! faces), for per-stage times and the tests.
//!
//! Strips are exact: a strip starts on an even level row, so P-Net's stride-2 cells line up,
//! and keeps only the map rows its input fully covers.

use std::sync::Arc;

use wgcnn_exec::Plan;
use wgcnn_kernels::detect::faces::{
    self as kfaces, FACE_ROW, FaceLevel, MAX_MERGED, PnetStageDesc, PnetStageOutput,
};
use wgcnn_kernels::{Launch, map_read, map_read_with, preprocess};
use wgcnn_models::faces::{Candidate, Face, cascade, nets};

use super::FaceDetector;
use super::net::{NetSection, SectionIo};
use crate::Error;

/// One buffer-to-buffer copy of a P-Net plan output (`output` 0: reg, 1: prob) into the
/// concatenated maps: `bytes` from byte `from` to byte `to` of `probs` (`to_probs`) or `regs`.
struct MapCopy {
    output: usize,
    from: u64,
    to_probs: bool,
    to: u64,
    bytes: u64,
}

/// One P-Net run: its input written by `resample`, its maps copied out by `copies`.
struct Step {
    resample: Launch,
    plan: Arc<Plan>,
    copies: Vec<MapCopy>,
}

/// The whole cascade for one photo size.
pub(super) struct PnetPipeline {
    /// The photo's `[height, width]`.
    photo: [usize; 2],
    /// The packed photo: rows `0..split` in `image`, the rest in `image_hi`.
    pub(super) image: wgpu::Buffer,
    pub(super) image_hi: wgpu::Buffer,
    pub(super) split: usize,
    steps: Vec<Step>,
    probs: wgpu::Buffer,
    regs: wgpu::Buffer,
    /// Cells of every level's map (the length of `probs`; read back by tests).
    #[cfg_attr(not(test), allow(dead_code))]
    cells: usize,
    stage: Vec<Launch>,
    out: PnetStageOutput,
    /// R-Net's outputs for `out`'s boxes, gathered over its batches: `reg [MAX_MERGED, 4]`,
    /// `prob [MAX_MERGED, 2]` (rows past the box count cleared to probability 0).
    rnet_reg: wgpu::Buffer,
    rnet_prob: wgpu::Buffer,
    /// From R-Net's outputs to O-Net's boxes (`onet_out`).
    rnet_stage: Vec<Launch>,
    onet_out: PnetStageOutput,
    /// O-Net's outputs gathered over its batches (`reg`, `landmarks`, `prob`; rows past the
    /// box count cleared to probability 0).
    onet_reg: wgpu::Buffer,
    onet_landmarks: wgpu::Buffer,
    onet_prob: wgpu::Buffer,
    /// From O-Net's outputs to the faces (`faces [MAX_MERGED, FACE_ROW]`, `face_count`).
    onet_stage: Vec<Launch>,
    faces: wgpu::Buffer,
    face_count: wgpu::Buffer,
    /// R-Net and O-Net on the GPU-held counts (the one-submission path).
    rnet_section: NetSection,
    onet_section: NetSection,
    /// Read-back copies of the staged path: boxes (or faces) and their count.
    staging: [wgpu::Buffer; 2],
}

/// One photo's faces (best first) and its numbers of R-Net and O-Net boxes.
pub(super) type PhotoResult = (Vec<Face>, [usize; 2]);

/// A batch's read-back per photo: the R-Net box, O-Net box and face counts and a pad word,
/// then `faces [MAX_MERGED, FACE_ROW]` (123 KB).
const RESULT_HEAD: u64 = 16;
pub(super) const RESULT_BYTES: u64 = RESULT_HEAD + (MAX_MERGED * FACE_ROW) as u64 * 4;

/// P-Net's map size for an input of `[h, w]` (conv 3, max-pool 2/2 ceil, conv 3, conv 3).
fn map_size(level: [usize; 2]) -> [usize; 2] {
    level.map(|n| (n - 2).div_ceil(2) - 4)
}

impl PnetPipeline {
    /// The pipeline for a `height` x `width` photo whose pyramid levels are `levels` at
    /// `scales`; P-Net runs whole on levels whose first activation (10 channels) fits
    /// `strip_bytes`, in row strips that fit it otherwise.
    pub(super) fn new(
        det: &FaceDetector,
        [height, width]: [usize; 2],
        levels: &[[usize; 2]],
        scales: &[f64],
        strip_bytes: u64,
    ) -> Result<PnetPipeline, Error> {
        let ctx = det.engine.context();
        let limit = ctx.max_binding();
        // The packed photo takes up to two bindings (rows 0..split, then the rest).
        let row = width as u64 * 4;
        let split = ((det.band_bytes / row) as usize).clamp(1, height);
        let rest = (height - split) as u64 * row;
        if rest > limit {
            return Err(Error::ImageTooLarge {
                what: format!("a {width}x{height} photo (in two bindings)"),
                bytes: height as u64 * row,
                limit: 2 * limit,
            });
        }
        let image = ctx.storage("faces: photo pixels", split as u64 * row);
        let image_hi = ctx.storage("faces: photo pixels (lower rows)", rest);
        let photo = kfaces::Photo {
            size: [height, width],
            lo: &image,
            hi: &image_hi,
            split,
        };
        let mut descs = Vec::with_capacity(levels.len());
        let mut cells = 0;
        for (&level, &scale) in levels.iter().zip(scales) {
            let map = map_size(level);
            descs.push(FaceLevel {
                map,
                scale,
                offset: cells,
            });
            cells += map[0] * map[1];
        }
        if cells as u64 * 16 > limit {
            return Err(Error::ImageTooLarge {
                what: format!("P-Net's regression maps of a {width}x{height} photo"),
                bytes: cells as u64 * 16,
                limit,
            });
        }
        let probs = ctx.storage("faces: P-Net probabilities", cells as u64 * 4);
        let regs = ctx.storage("faces: P-Net regressions", cells as u64 * 16);
        let mut steps = Vec::new();
        for (g, (&[lh, lw], d)) in levels.iter().zip(&descs).enumerate() {
            let [oh, ow] = d.map;
            let whole = 10 * 4 * (lh * lw) as u64 <= strip_bytes;
            // A strip of 2r + 10 input rows gives r exact map rows.
            let r = if whole {
                oh
            } else {
                ((strip_bytes / (40 * lw as u64)).saturating_sub(10) / 2).clamp(1, oh as u64)
                    as usize
            };
            let mut a = 0;
            while a < oh {
                let rows = (2 * a)..(2 * a + 2 * r + 10).min(lh);
                let sh = rows.len();
                let plan = det
                    .levels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_try((sh, lw), || det.plan(nets::pnet(1, sh, lw)?, "pnet"))?;
                let input = plan
                    .input_buffer(0)
                    .ok_or(Error::Internal("P-Net plan has no input"))?;
                let resample = kfaces::pyramid_launch(
                    ctx,
                    &format!("faces: level {g} rows {}..{}", rows.start, rows.end),
                    &photo,
                    [lh, lw],
                    rows,
                    input,
                );
                let soh = map_size([sh, lw])[0];
                let n = r.min(oh - a).min(soh);
                let (plane, splane) = ((oh * ow) as u64, (soh * ow) as u64);
                let run = (n * ow) as u64 * 4;
                let mut copies: Vec<MapCopy> = (0..4u64)
                    .map(|c| MapCopy {
                        output: 0,
                        from: c * splane * 4,
                        to_probs: false,
                        to: (4 * d.offset as u64 + c * plane + (a * ow) as u64) * 4,
                        bytes: run,
                    })
                    .collect();
                copies.push(MapCopy {
                    output: 1,
                    from: splane * 4,
                    to_probs: true,
                    to: (d.offset + a * ow) as u64 * 4,
                    bytes: run,
                });
                steps.push(Step {
                    resample,
                    plan,
                    copies,
                });
                a += n.max(1);
            }
        }
        let out = PnetStageOutput {
            boxes: ctx.storage("faces: R-Net boxes", (MAX_MERGED * 5) as u64 * 4),
            count: ctx.storage("faces: R-Net box count", 4),
        };
        let desc = PnetStageDesc {
            levels: descs,
            thresh: det.config.thresholds[0],
            photo: [height, width],
        };
        let stage = kfaces::pnet_stage(ctx, "faces: P-Net stage", &desc, &probs, &regs, &out)?;
        let rnet_reg = ctx.storage("faces: R-Net regressions", (MAX_MERGED * 4) as u64 * 4);
        let rnet_prob = ctx.storage("faces: R-Net probabilities", (MAX_MERGED * 2) as u64 * 4);
        let onet_out = PnetStageOutput {
            boxes: ctx.storage("faces: O-Net boxes", (MAX_MERGED * 5) as u64 * 4),
            count: ctx.storage("faces: O-Net box count", 4),
        };
        let rnet_stage = kfaces::rnet_stage(
            ctx,
            "faces: R-Net stage",
            det.config.thresholds[1],
            [height, width],
            kfaces::RnetStageBuffers {
                rnet_boxes: &out.boxes,
                reg: &rnet_reg,
                prob: &rnet_prob,
                out: &onet_out,
            },
        )?;
        let staging = |label: &str, bytes: u64| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let onet_reg = ctx.storage("faces: O-Net regressions", (MAX_MERGED * 4) as u64 * 4);
        let onet_landmarks = ctx.storage("faces: O-Net landmarks", (MAX_MERGED * 10) as u64 * 4);
        let onet_prob = ctx.storage("faces: O-Net probabilities", (MAX_MERGED * 2) as u64 * 4);
        let faces = ctx.storage("faces: faces", (MAX_MERGED * FACE_ROW) as u64 * 4);
        let face_count = ctx.storage("faces: face count", 4);
        let onet_stage = kfaces::onet_stage(
            ctx,
            "faces: O-Net stage",
            det.config.thresholds[2],
            kfaces::OnetStageBuffers {
                onet_boxes: &onet_out.boxes,
                reg: &onet_reg,
                landmarks: &onet_landmarks,
                prob: &onet_prob,
                faces: &faces,
                count: &face_count,
            },
        )?;
        let staging = [
            staging("faces: rows (read)", (MAX_MERGED * FACE_ROW) as u64 * 4),
            staging("faces: row count (read)", 4),
        ];
        let rnet_section = NetSection::new(
            det,
            &SectionIo {
                net: "rnet",
                photo,
                boxes: &out.boxes,
                count: &out.count,
                gathered: &[(&rnet_reg, 4), (&rnet_prob, 2)],
            },
        )?;
        let onet_section = NetSection::new(
            det,
            &SectionIo {
                net: "onet",
                photo,
                boxes: &onet_out.boxes,
                count: &onet_out.count,
                gathered: &[(&onet_reg, 4), (&onet_landmarks, 10), (&onet_prob, 2)],
            },
        )?;
        // Every resample launch shares one pipeline.
        if let Some(first) = steps.first() {
            ctx.compile_pipelines(std::slice::from_ref(&first.resample))?;
        }
        ctx.compile_pipelines(&stage)?;
        ctx.compile_pipelines(&rnet_stage)?;
        ctx.compile_pipelines(&onet_stage)?;
        Ok(PnetPipeline {
            photo: [height, width],
            image,
            image_hi,
            split,
            steps,
            probs,
            regs,
            cells,
            stage,
            out,
            rnet_reg,
            rnet_prob,
            rnet_stage,
            onet_out,
            onet_reg,
            onet_landmarks,
            onet_prob,
            onet_stage,
            faces,
            face_count,
            rnet_section,
            onet_section,
            staging,
        })
    }

    /// Records everything from the uploaded photo to R-Net's boxes into `encoder`.
    fn encode(&self, det: &FaceDetector, encoder: &mut wgpu::CommandEncoder) -> Result<(), Error> {
        let ctx = det.engine.context();
        for step in &self.steps {
            ctx.encode(encoder, std::slice::from_ref(&step.resample));
            step.plan.encode(encoder);
            for c in &step.copies {
                let from = step
                    .plan
                    .output_buffer(c.output)
                    .ok_or(Error::Internal("P-Net plan has fewer than 2 outputs"))?;
                let to = if c.to_probs { &self.probs } else { &self.regs };
                encoder.copy_buffer_to_buffer(from, c.from, to, c.to, c.bytes);
            }
        }
        ctx.encode(encoder, &self.stage);
        Ok(())
    }

    /// The uploaded photo as the kernels take it.
    pub(super) fn photo_buffers(&self) -> kfaces::Photo<'_> {
        kfaces::Photo {
            size: self.photo,
            lo: &self.image,
            hi: &self.image_hi,
            split: self.split,
        }
    }

    /// Writes `rgb` (HWC, 8-bit) packed into the photo's bindings.
    fn upload(&self, det: &FaceDetector, rgb: &[u8]) {
        let pixels = self.photo[0] * self.photo[1] * 3;
        let packed = preprocess::pack_rgb8(&rgb[..pixels.min(rgb.len())]);
        let (lo, hi) = packed.split_at((self.split * self.photo[1]).min(packed.len()));
        let queue = &det.engine.context().queue;
        queue.write_buffer(&self.image, 0, bytemuck::cast_slice(lo));
        if !hi.is_empty() {
            queue.write_buffer(&self.image_hi, 0, bytemuck::cast_slice(hi));
        }
    }

    /// Uploads `rgb` (HWC, 8-bit) and runs the pipeline in one submission: R-Net's boxes, in
    /// order. The caller holds the detector's GPU lock (plans are shared between pipelines).
    pub(super) fn run(&self, det: &FaceDetector, rgb: &[u8]) -> Result<Vec<Candidate>, Error> {
        let ctx = det.engine.context();
        self.upload(det, rgb);
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("faces: P-Net"),
            });
        self.encode(det, &mut encoder)?;
        let rows = self.submit_and_read(det, encoder, [&self.out.boxes, &self.out.count], 5)?;
        Ok(rows.iter().map(|r| candidate(r)).collect())
    }

    /// The whole cascade on each of `photos` (HWC, 8-bit, this pipeline's size) in one
    /// submission: per photo its faces, best first, and the numbers of R-Net and O-Net boxes.
    ///
    /// The first photo is written straight into the photo's bindings; the others are packed
    /// into one upload buffer (a slot of `4 * height * width` bytes each) and copied into the
    /// bindings right before their own chain. All chains share the plans' scratch and the
    /// stages' buffers: command order within the submission makes each copy (and each later
    /// chain's writes) wait for the earlier chain's reads. Each photo's three counts and its
    /// `faces [MAX_MERGED, FACE_ROW]` rows are copied to its own slot of one read-back buffer
    /// ([`RESULT_BYTES`] a photo), mapped once at the end.
    pub(super) fn run_batch(
        &self,
        det: &FaceDetector,
        photos: &[&[u8]],
    ) -> Result<Vec<PhotoResult>, Error> {
        let ctx = det.engine.context();
        let Some((first, rest)) = photos.split_first() else {
            return Ok(Vec::new());
        };
        self.upload(det, first);
        let slot = self.photo_bytes();
        let pixels = slot as usize / 4 * 3;
        let uploads = (!rest.is_empty()).then(|| {
            let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("faces: batch photos"),
                size: slot * rest.len() as u64,
                usage: wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: true,
            });
            // A failed map means a lost device, which `take_error` reports after the submit.
            if let Ok(mut view) = buffer.get_mapped_range_mut(..) {
                for (k, rgb) in rest.iter().enumerate() {
                    let packed = preprocess::pack_rgb8(&rgb[..pixels.min(rgb.len())]);
                    let bytes: &[u8] = bytemuck::cast_slice(&packed);
                    let at = k * slot as usize;
                    view.slice(at..at + bytes.len()).copy_from_slice(bytes);
                }
            }
            buffer.unmap();
            buffer
        });
        let results = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("faces: batch results (read)"),
            size: RESULT_BYTES * photos.len() as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("faces"),
            });
        let lo = (self.split * self.photo[1]) as u64 * 4;
        for k in 0..photos.len() {
            if let (Some(up), Some(j)) = (&uploads, k.checked_sub(1)) {
                let base = j as u64 * slot;
                encoder.copy_buffer_to_buffer(up, base, &self.image, 0, lo);
                if slot > lo {
                    encoder.copy_buffer_to_buffer(up, base + lo, &self.image_hi, 0, slot - lo);
                }
            }
            self.encode(det, &mut encoder)?;
            self.rnet_section.encode(det, &mut encoder);
            ctx.encode(&mut encoder, &self.rnet_stage);
            self.onet_section.encode(det, &mut encoder);
            ctx.encode(&mut encoder, &self.onet_stage);
            let at = k as u64 * RESULT_BYTES;
            for (i, count) in [&self.out.count, &self.onet_out.count, &self.face_count]
                .into_iter()
                .enumerate()
            {
                encoder.copy_buffer_to_buffer(count, 0, &results, at + i as u64 * 4, 4);
            }
            encoder.copy_buffer_to_buffer(
                &self.faces,
                0,
                &results,
                at + RESULT_HEAD,
                RESULT_BYTES - RESULT_HEAD,
            );
        }
        ctx.queue.submit([encoder.finish()]);
        let mut found = Vec::with_capacity(photos.len());
        map_read_with(ctx, &[&results], |_, values| {
            let words = RESULT_BYTES as usize / 4;
            for slot in values.chunks_exact(words) {
                let count = |i: usize| slot[i].to_bits() as usize;
                let faces = slot[RESULT_HEAD as usize / 4..]
                    .chunks_exact(FACE_ROW)
                    .take(count(2).min(MAX_MERGED))
                    .map(face)
                    .collect();
                found.push((faces, [count(0), count(1)]));
            }
        })?;
        ctx.take_error()?;
        Ok(found)
    }

    /// Bytes of one packed photo (one `u32` a pixel): a batch's upload slot.
    pub(super) fn photo_bytes(&self) -> u64 {
        (self.photo[0] * self.photo[1]) as u64 * 4
    }

    /// Copies `rows [MAX_MERGED, width]` and `count` (`[rows, count]`) to the staging
    /// buffers, submits `encoder` and reads them: the first `count` rows.
    fn submit_and_read(
        &self,
        det: &FaceDetector,
        mut encoder: wgpu::CommandEncoder,
        [rows, count]: [&wgpu::Buffer; 2],
        width: usize,
    ) -> Result<Vec<Vec<f32>>, Error> {
        let ctx = det.engine.context();
        let bytes = (MAX_MERGED * width) as u64 * 4;
        encoder.copy_buffer_to_buffer(rows, 0, &self.staging[0], 0, bytes);
        encoder.copy_buffer_to_buffer(count, 0, &self.staging[1], 0, 4);
        ctx.queue.submit([encoder.finish()]);
        let read = map_read(ctx, &[&self.staging[0], &self.staging[1]])?;
        ctx.take_error()?;
        let count = read[1].first().map_or(0, |c| c.to_bits() as usize);
        Ok(read[0]
            .chunks_exact(width)
            .take(count.min(MAX_MERGED))
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// R-Net on the crops of the front's `n` boxes (cut on the GPU, padded batches of at most
    /// [`super::MAX_BATCH`]) and the R-Net stage in one submission: O-Net's boxes, in order.
    pub(super) fn run_rnet(&self, det: &FaceDetector, n: usize) -> Result<Vec<Candidate>, Error> {
        let ctx = det.engine.context();
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("faces: R-Net"),
            });
        for start in (0..n.min(MAX_MERGED)).step_by(super::MAX_BATCH) {
            let count = (n - start).min(super::MAX_BATCH);
            let (plan, crops) =
                self.batch(det, "rnet", &self.out.boxes, &self.out.count, start, count)?;
            ctx.encode(&mut encoder, std::slice::from_ref(&crops));
            plan.encode(&mut encoder);
            for (output, to, width) in [(0, &self.rnet_reg, 4u64), (1, &self.rnet_prob, 2)] {
                let from = plan
                    .output_buffer(output)
                    .ok_or(Error::Internal("R-Net plan has fewer than 2 outputs"))?;
                let row = width * 4;
                encoder.copy_buffer_to_buffer(from, 0, to, start as u64 * row, count as u64 * row);
            }
        }
        // Rows past the boxes hold an earlier photo's values: probability 0 drops them.
        if n < MAX_MERGED {
            encoder.clear_buffer(&self.rnet_prob, n as u64 * 8, None);
        }
        ctx.encode(&mut encoder, &self.rnet_stage);
        let rows = self.submit_and_read(
            det,
            encoder,
            [&self.onet_out.boxes, &self.onet_out.count],
            5,
        )?;
        Ok(rows.iter().map(|r| candidate(r)).collect())
    }

    /// The plan of `net` for a batch of `count` crops and the launch cutting boxes `start ..
    /// start + count` of `box_rows` into its input.
    #[allow(clippy::too_many_arguments)]
    fn batch(
        &self,
        det: &FaceDetector,
        net: &str,
        box_rows: &wgpu::Buffer,
        box_count: &wgpu::Buffer,
        start: usize,
        count: usize,
    ) -> Result<(Arc<Plan>, Launch), Error> {
        // The capacities the one-submission path chooses, so both paths run alike.
        let cap = match start {
            0 => super::net::CAPS
                .into_iter()
                .find(|&c| c >= count)
                .unwrap_or(super::MAX_BATCH),
            _ => super::MAX_BATCH,
        };
        let plan = det.net_plan(net, cap)?;
        let input = plan
            .input_buffer(0)
            .ok_or(Error::Internal("R-Net/O-Net plan has no input"))?;
        let crops = kfaces::crops_launch(
            det.engine.context(),
            &format!("faces: {net} crops"),
            &self.photo_buffers(),
            if net == "rnet" { 24 } else { 48 },
            cap,
            start,
            box_rows,
            box_count,
            input,
        );
        Ok((plan, crops))
    }

    /// O-Net on the crops of the R-Net stage's `n` boxes (cut on the GPU, padded batches of
    /// at most [`super::MAX_BATCH`]) and the O-Net stage in one submission: the faces, best
    /// first.
    pub(super) fn run_onet(&self, det: &FaceDetector, n: usize) -> Result<Vec<Face>, Error> {
        let ctx = det.engine.context();
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("faces: O-Net"),
            });
        for start in (0..n.min(MAX_MERGED)).step_by(super::MAX_BATCH) {
            let count = (n - start).min(super::MAX_BATCH);
            let (plan, crops) = self.batch(
                det,
                "onet",
                &self.onet_out.boxes,
                &self.onet_out.count,
                start,
                count,
            )?;
            ctx.encode(&mut encoder, std::slice::from_ref(&crops));
            plan.encode(&mut encoder);
            let outputs = [
                (0, &self.onet_reg, 4u64),
                (1, &self.onet_landmarks, 10),
                (2, &self.onet_prob, 2),
            ];
            for (output, to, width) in outputs {
                let from = plan
                    .output_buffer(output)
                    .ok_or(Error::Internal("O-Net plan has fewer than 3 outputs"))?;
                let row = width * 4;
                encoder.copy_buffer_to_buffer(from, 0, to, start as u64 * row, count as u64 * row);
            }
        }
        if n < MAX_MERGED {
            encoder.clear_buffer(&self.onet_prob, n as u64 * 8, None);
        }
        ctx.encode(&mut encoder, &self.onet_stage);
        let rows = self.submit_and_read(det, encoder, [&self.faces, &self.face_count], FACE_ROW)?;
        Ok(rows.iter().map(|r| face(r)).collect())
    }

    /// P-Net's maps of the last run, per level `(reg [1, 4, h, w], prob [1, 2, h, w])` with
    /// the background channel zero (tests compare them with the interpreter's).
    #[cfg(test)]
    pub(super) fn maps(
        &self,
        det: &FaceDetector,
        levels: &[[usize; 2]],
    ) -> Result<Vec<(wgcnn_graph::Tensor, wgcnn_graph::Tensor)>, Error> {
        use wgcnn_graph::Tensor;
        let ctx = det.engine.context();
        let probs = ctx.read(&self.probs, self.cells)?;
        let regs = ctx.read(&self.regs, 4 * self.cells)?;
        let mut off = 0;
        let mut maps = Vec::new();
        for &level in levels {
            let [h, w] = map_size(level);
            let plane = h * w;
            let reg = Tensor::new(&[1, 4, h, w], regs[4 * off..4 * (off + plane)].to_vec())?;
            let mut p = vec![0.0; plane];
            p.extend_from_slice(&probs[off..off + plane]);
            maps.push((reg, Tensor::new(&[1, 2, h, w], p)?));
            off += plane;
        }
        Ok(maps)
    }
}

/// A [`kfaces::FACE_ROW`] row as a face.
fn face(r: &[f32]) -> Face {
    Face {
        score: r[0],
        bbox: [r[1], r[2], r[3], r[4]],
        landmarks: std::array::from_fn(|k| [r[5 + 2 * k], r[6 + 2 * k]]),
    }
}

/// A `[x1, y1, x2, y2, score]` row as a candidate box.
fn candidate(r: &[f32]) -> Candidate {
    Candidate {
        bbox: [r[0], r[1], r[2], r[3]],
        score: r[4],
        reg: [0.0; 4],
    }
}

/// The pyramid's level sizes of a `height` x `width` photo (empty when it is too small).
pub(super) fn levels(
    height: usize,
    width: usize,
    config: &wgcnn_models::faces::CascadeConfig,
) -> (Vec<f64>, Vec<[usize; 2]>) {
    let scales = cascade::pyramid_scales(height, width, config.min_face_size, config.factor);
    let levels = scales
        .iter()
        .map(|&s| cascade::level_size(height, width, s))
        .collect();
    (scales, levels)
}
