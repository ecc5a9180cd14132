//! Per-launch GPU timing of a [`crate::Plan`]: what `wgcnn bench --profile` prints.
//!
//! [`crate::Plan::profile`] runs the plan once, as [`crate::Plan::run`] does (same inputs, same
//! launches, same outputs), but times every launch. The method depends on what the device offers
//! ([`ProfileMethod::for_features`]):
//!
//! 1. [`ProfileMethod::InsidePass`]: with `TIMESTAMP_QUERY_INSIDE_PASSES` (lavapipe has it), one
//!    compute pass with a timestamp written before and after every dispatch;
//! 2. [`ProfileMethod::PassPerLaunch`]: with plain `TIMESTAMP_QUERY`, one compute pass per launch
//!    whose `timestamp_writes` bracket it;
//! 3. [`ProfileMethod::CpuPerSubmission`]: otherwise one submission per launch, waited for and
//!    timed on the CPU (submission overhead included).
//!
//! Timestamps go into query sets of at most [`wgpu::QUERY_SET_MAX_QUERIES`] entries, are resolved
//! into one buffer and read back with [`wgpu::Queue::get_timestamp_period`]. Nothing here is on
//! the path of `Plan::run`, which stays a single untimed pass.
//!
//! [`report`] turns the per-launch times into per-layer and per-category figures and holds the
//! sample statistics (median, p90) that `wgcnn bench` reports.

pub mod report;

use std::time::Instant;

use wgcnn_graph::Tensor;
use wgcnn_kernels::{Context, KernelError, Launch, encode_launch};

pub use report::{
    Category, CategoryShare, LayerTiming, Summary, category_shares, layer_name, layers, summarize,
};

use crate::ExecError;

/// How the launches of a profile were timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileMethod {
    /// GPU timestamps before and after each dispatch inside one compute pass.
    InsidePass,
    /// GPU timestamps at the beginning and end of one compute pass per launch.
    PassPerLaunch,
    /// One submission per launch, timed on the CPU from submit to idle.
    CpuPerSubmission,
}

impl ProfileMethod {
    /// The most precise method the device's enabled `features` allow.
    pub fn for_features(features: wgpu::Features) -> ProfileMethod {
        [ProfileMethod::InsidePass, ProfileMethod::PassPerLaunch]
            .into_iter()
            .find(|m| m.supported(features))
            .unwrap_or(ProfileMethod::CpuPerSubmission)
    }

    /// Whether a device with `features` enabled can time this way.
    pub fn supported(self, features: wgpu::Features) -> bool {
        match self {
            ProfileMethod::InsidePass => features.contains(
                wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
            ),
            ProfileMethod::PassPerLaunch => features.contains(wgpu::Features::TIMESTAMP_QUERY),
            ProfileMethod::CpuPerSubmission => true,
        }
    }

    /// A short description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            ProfileMethod::InsidePass => "GPU timestamps around each dispatch in one pass",
            ProfileMethod::PassPerLaunch => "GPU timestamps, one compute pass per launch",
            ProfileMethod::CpuPerSubmission => "CPU clock, one submission per launch",
        }
    }

    /// A stable identifier for JSON output.
    pub fn id(self) -> &'static str {
        match self {
            ProfileMethod::InsidePass => "timestamps_inside_pass",
            ProfileMethod::PassPerLaunch => "timestamps_per_pass",
            ProfileMethod::CpuPerSubmission => "cpu_per_submission",
        }
    }
}

/// The time of one launch.
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchTiming {
    /// The launch's label: the layer it computes, with a `[..]` suffix for the parts of a split
    /// layer (`classifier.0[0..2048]`, `features.concat[1]`).
    pub label: String,
    /// The kernel (shader) name.
    pub kernel: &'static str,
    /// Milliseconds, never negative.
    pub ms: f64,
}

/// One profiled run: per-launch times in launch order and the run's outputs.
#[derive(Clone, Debug)]
pub struct Profile {
    pub method: ProfileMethod,
    /// One entry per launch of the plan, in order.
    pub launches: Vec<LaunchTiming>,
    /// The outputs, as [`crate::Plan::run`] returns them.
    pub outputs: Vec<Tensor>,
    /// Wall time of the whole profiled run (inputs written to outputs mapped), in ms.
    pub wall_ms: f64,
}

impl Profile {
    /// Sum of the launch times, in ms.
    pub fn total_ms(&self) -> f64 {
        self.launches.iter().map(|l| l.ms).sum()
    }

    /// Combines several profiles of the same plan into one whose every launch time (and wall
    /// time) is the median over `runs`; outputs and method come from the first run. `None` when
    /// `runs` is empty or the runs do not list the same launches.
    pub fn median(runs: Vec<Profile>) -> Option<Profile> {
        let first = runs.first()?;
        if runs
            .iter()
            .any(|r| r.launches.len() != first.launches.len())
        {
            return None;
        }
        let median_of = |values: Vec<f64>| summarize(&values).map(|s| s.median).unwrap_or(0.0);
        let launches = first
            .launches
            .iter()
            .enumerate()
            .map(|(i, l)| LaunchTiming {
                label: l.label.clone(),
                kernel: l.kernel,
                ms: median_of(runs.iter().map(|r| r.launches[i].ms).collect()),
            })
            .collect();
        let wall_ms = median_of(runs.iter().map(|r| r.wall_ms).collect());
        let mut runs = runs;
        let first = runs.swap_remove(0);
        Some(Profile {
            method: first.method,
            launches,
            outputs: first.outputs,
            wall_ms,
        })
    }
}

/// Timestamp queries of a run: query sets of at most `QUERY_SET_MAX_QUERIES` entries, each
/// launch owning two consecutive queries (begin, end).
struct Timestamps {
    sets: Vec<wgpu::QuerySet>,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    queries: u32,
}

/// Launches per query set: two queries each.
const LAUNCHES_PER_SET: usize = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;

impl Timestamps {
    fn new(ctx: &Context, launches: usize) -> Timestamps {
        let queries = (launches * 2) as u32;
        let sets = (0..launches.div_ceil(LAUNCHES_PER_SET))
            .map(|s| {
                let n = (launches - s * LAUNCHES_PER_SET).min(LAUNCHES_PER_SET);
                ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("wgcnn profile"),
                    ty: wgpu::QueryType::Timestamp,
                    count: (n * 2) as u32,
                })
            })
            .collect();
        let bytes = u64::from(queries.max(1)) * wgpu::QUERY_SIZE as u64;
        let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgcnn profile resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgcnn profile staging"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Timestamps {
            sets,
            resolve,
            staging,
            queries,
        }
    }

    /// The query set and the index of launch `i`'s begin query.
    fn slot(&self, i: usize) -> (&wgpu::QuerySet, u32) {
        (
            &self.sets[i / LAUNCHES_PER_SET],
            (2 * (i % LAUNCHES_PER_SET)) as u32,
        )
    }

    /// Resolves every query set into the staging buffer.
    fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        let per_set = (LAUNCHES_PER_SET * 2) as u32;
        for (s, set) in self.sets.iter().enumerate() {
            let first = s as u32 * per_set;
            let count = (self.queries - first).min(per_set);
            // Offsets are multiples of 4096 * 8 bytes: QUERY_RESOLVE_BUFFER_ALIGNMENT holds.
            encoder.resolve_query_set(
                set,
                0..count,
                &self.resolve,
                u64::from(first) * wgpu::QUERY_SIZE as u64,
            );
        }
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.staging, 0, self.staging.size());
    }

    /// Reads the resolved timestamps back (after the submission that resolved them) as
    /// milliseconds per launch.
    fn read_ms(&self, ctx: &Context, launches: usize) -> Result<Vec<f64>, KernelError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        ctx.wait()?;
        rx.recv()
            .map_err(|e| KernelError::Map(e.to_string()))?
            .map_err(|e| KernelError::Map(e.to_string()))?;
        let ticks: Vec<u64> = {
            let view = self
                .staging
                .get_mapped_range(..)
                .map_err(|e| KernelError::Map(e.to_string()))?;
            view.chunks_exact(8)
                .map(bytemuck::pod_read_unaligned::<u64>)
                .collect()
        };
        self.staging.unmap();
        let ns_per_tick = f64::from(ctx.queue.get_timestamp_period());
        Ok((0..launches)
            .map(|i| {
                let (begin, end) = (ticks[2 * i], ticks[2 * i + 1]);
                end.saturating_sub(begin) as f64 * ns_per_tick / 1e6
            })
            .collect())
    }
}

/// What [`record`] needs from the plan besides its launches: recording the output copies and
/// mapping the outputs (both private to the plan).
pub(crate) struct OutputIo<'a> {
    pub copy: &'a dyn Fn(&mut wgpu::CommandEncoder),
    pub read: &'a dyn Fn() -> Result<Vec<Tensor>, ExecError>,
}

/// Runs `launches` once with per-launch timing by `method` (or the best the device can do, if
/// not that), with the inputs already written; copies and reads the outputs. `started` is when
/// the run began (before the inputs were written).
pub(crate) fn record(
    ctx: &Context,
    launches: &[Launch],
    method: ProfileMethod,
    io: OutputIo<'_>,
    started: Instant,
) -> Result<Profile, ExecError> {
    let method = if method.supported(ctx.features) {
        method
    } else {
        ProfileMethod::for_features(ctx.features)
    };
    let (times, outputs) = match method {
        ProfileMethod::InsidePass | ProfileMethod::PassPerLaunch => {
            let stamps = Timestamps::new(ctx, launches.len());
            let mut encoder = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("wgcnn profile"),
                });
            if method == ProfileMethod::InsidePass {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("wgcnn profile"),
                    timestamp_writes: None,
                });
                for (i, l) in launches.iter().enumerate() {
                    let (set, q) = stamps.slot(i);
                    pass.write_timestamp(set, q);
                    encode_launch(&mut pass, l);
                    pass.write_timestamp(set, q + 1);
                }
            } else {
                for (i, l) in launches.iter().enumerate() {
                    let (set, q) = stamps.slot(i);
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(&l.label),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: set,
                            beginning_of_pass_write_index: Some(q),
                            end_of_pass_write_index: Some(q + 1),
                        }),
                    });
                    encode_launch(&mut pass, l);
                }
            }
            if !launches.is_empty() {
                stamps.resolve(&mut encoder);
            }
            (io.copy)(&mut encoder);
            ctx.queue.submit([encoder.finish()]);
            let outputs = (io.read)()?;
            let times = if launches.is_empty() {
                Vec::new()
            } else {
                stamps.read_ms(ctx, launches.len())?
            };
            (times, outputs)
        }
        ProfileMethod::CpuPerSubmission => {
            let mut times = Vec::with_capacity(launches.len());
            for l in launches {
                let t = Instant::now();
                ctx.run(std::slice::from_ref(l))?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let mut encoder = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("wgcnn profile outputs"),
                });
            (io.copy)(&mut encoder);
            ctx.queue.submit([encoder.finish()]);
            (times, (io.read)()?)
        }
    };
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    let launches = launches
        .iter()
        .zip(times)
        .map(|(l, ms)| LaunchTiming {
            label: l.label.clone(),
            kernel: l.kernel.name,
            ms: ms.max(0.0),
        })
        .collect();
    Ok(Profile {
        method,
        launches,
        outputs,
        wall_ms,
    })
}
