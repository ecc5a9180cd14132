//! R-Net or O-Net on a box count that only the GPU knows: a [`NetSection`] records, for each
//! chunk of [`super::MAX_BATCH`] boxes and each batch capacity in [`CAPS`] (the first chunk;
//! later chunks only the largest), the crops, the net's launches and the copies of its outputs
//! into the gathered buffers, all dispatched indirectly; `face_dispatch` writes the arguments
//! from the count, so only the smallest capacity holding each chunk's boxes runs (the others
//! get zero workgroups), and chunks past the count run nothing. The whole cascade is then one submission with no read-back between
//! its stages.

use std::sync::Arc;

use wgcnn_exec::Plan;
use wgcnn_kernels::detect::faces::{self as kfaces, IndirectEntry, MAX_MERGED};
use wgcnn_kernels::{Launch, encode_launch};

use super::FaceDetector;
use crate::Error;

/// Batch capacities of R-Net and O-Net plans: a chunk of n boxes runs on the smallest that
/// holds n (at most a third of the rows wasted past 64).
pub(super) const CAPS: [usize; 7] = [16, 32, 64, 96, 128, 192, 256];

/// One indirectly dispatched launch: the section's own, or launch `1` of plan `0`.
enum Item {
    Own(Launch),
    Net(usize, usize),
}

/// See the module documentation.
pub(super) struct NetSection {
    plans: Vec<Arc<Plan>>,
    items: Vec<Item>,
    args: wgpu::Buffer,
    dispatch: Launch,
    /// Zeroes the probabilities of the gathered rows past the count.
    clear: Launch,
}

/// What a section reads and writes.
pub(super) struct SectionIo<'a> {
    /// `"rnet"` or `"onet"`.
    pub net: &'static str,
    pub photo: kfaces::Photo<'a>,
    /// The boxes `[MAX_MERGED, 5]` and their count `[1]` (u32).
    pub boxes: &'a wgpu::Buffer,
    pub count: &'a wgpu::Buffer,
    /// Where each net output's rows are gathered (`[MAX_MERGED, width]`, in output order);
    /// the last one is the probabilities.
    pub gathered: &'a [(&'a wgpu::Buffer, usize)],
}

impl NetSection {
    pub(super) fn new(det: &FaceDetector, io: &SectionIo<'_>) -> Result<NetSection, Error> {
        let ctx = det.engine.context();
        let chunk = super::MAX_BATCH;
        let size = if io.net == "rnet" { 24 } else { 48 };
        let plans: Vec<Arc<Plan>> = CAPS
            .iter()
            .map(|&cap| det.net_plan(io.net, cap))
            .collect::<Result<_, _>>()?;
        let mut items = Vec::new();
        let mut entries = Vec::new();
        for first in (0..MAX_MERGED).step_by(chunk) {
            // Past the first chunk (photos with hundreds of boxes) only the largest capacity:
            // each capacity costs its launches' (empty) dispatches in every photo.
            let from = if first == 0 { 0 } else { CAPS.len() - 1 };
            for (j, (&cap, plan)) in CAPS.iter().zip(&plans).enumerate().skip(from) {
                let lo = if j == from { 0 } else { CAPS[j - 1] };
                let entry = |workgroups| IndirectEntry {
                    first,
                    lo,
                    hi: cap,
                    workgroups,
                };
                let input = plan
                    .input_buffer(0)
                    .ok_or(Error::Internal("R-Net/O-Net plan has no input"))?;
                let crops = kfaces::crops_launch(
                    ctx,
                    &format!("faces: {} crops", io.net),
                    &io.photo,
                    size,
                    cap,
                    first,
                    io.boxes,
                    io.count,
                    input,
                );
                entries.push(entry(crops.workgroups));
                items.push(Item::Own(crops));
                for (k, l) in plan.launches().iter().enumerate() {
                    entries.push(entry(l.workgroups));
                    items.push(Item::Net(j, k));
                }
                for (o, &(dst, width)) in io.gathered.iter().enumerate() {
                    let src = plan
                        .output_buffer(o)
                        .ok_or(Error::Internal("R-Net/O-Net plan has too few outputs"))?;
                    let copy = kfaces::rows_launch(
                        ctx,
                        &format!("faces: {} output {o}", io.net),
                        0,
                        first,
                        cap,
                        width,
                        io.count,
                        src,
                        dst,
                    );
                    entries.push(entry(copy.workgroups));
                    items.push(Item::Own(copy));
                }
            }
        }
        let args = kfaces::indirect_buffer(ctx, "faces: indirect arguments", entries.len());
        let dispatch = kfaces::dispatch_launch(
            ctx,
            &format!("faces: {} dispatch", io.net),
            &entries,
            chunk,
            io.count,
            &args,
        );
        let &(prob, width) = io
            .gathered
            .last()
            .ok_or(Error::Internal("a net section gathers no output"))?;
        // The boxes are bound as the (unused) source: prob may not be bound twice.
        let clear = kfaces::rows_launch(
            ctx,
            &format!("faces: {} clear", io.net),
            1,
            0,
            MAX_MERGED,
            width,
            io.count,
            io.boxes,
            prob,
        );
        let own: Vec<&Launch> = items
            .iter()
            .filter_map(|i| match i {
                Item::Own(l) => Some(l),
                Item::Net(..) => None,
            })
            .take(2 + io.gathered.len())
            .collect();
        for l in own.into_iter().chain([&dispatch, &clear]) {
            ctx.compile_pipelines(std::slice::from_ref(l))?;
        }
        Ok(NetSection {
            plans,
            items,
            args,
            dispatch,
            clear,
        })
    }

    /// Records the section: the arguments from the count, then every launch indirectly, then
    /// the clearing of the rows past the count.
    pub(super) fn encode(&self, det: &FaceDetector, encoder: &mut wgpu::CommandEncoder) {
        let ctx = det.engine.context();
        ctx.encode(encoder, std::slice::from_ref(&self.dispatch));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("faces: net section"),
            timestamp_writes: None,
        });
        for (i, item) in self.items.iter().enumerate() {
            let l = match item {
                Item::Own(l) => l,
                Item::Net(p, k) => &self.plans[*p].launches()[*k],
            };
            pass.set_pipeline(&l.kernel.pipeline);
            pass.set_bind_group(0, &l.bind_group, &[]);
            pass.dispatch_workgroups_indirect(&self.args, i as u64 * 12);
        }
        encode_launch(&mut pass, &self.clear);
    }
}
