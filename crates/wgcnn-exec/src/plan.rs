//! [`Plan`]: the lowered, ready-to-run form of a graph.

use std::sync::{Arc, Mutex};

use wgcnn_graph::{Graph, Tensor, TensorId, passes};
use wgcnn_kernels::{Context, Launch, Precision, map_read_with, precision};

use crate::lower::Lowering;
use crate::memory::MemoryPlan;
use crate::profile::{self, OutputIo, Profile, ProfileMethod};
use crate::{ExecError, WeightCache};

/// What a plan holds, for `wgcnn bench` and logs.
#[derive(Clone, Debug, Default)]
pub struct PlanStats {
    /// Kernel dispatches per run.
    pub launches: usize,
    /// Distinct compiled pipelines used (kernel and override constants).
    pub pipelines: usize,
    /// Bytes of activation buffers (after reuse).
    pub activation_bytes: u64,
    /// Bytes of weight buffers the plan binds.
    pub weight_bytes: u64,
    /// Bytes of those this plan uploaded (the rest were in its [`WeightCache`] already).
    pub uploaded_weight_bytes: u64,
    /// Nodes in the optimized graph.
    pub nodes: usize,
    /// Multiply-accumulates per run.
    pub macs: u64,
}

/// Milliseconds to 0.1 for log fields (full precision only adds noise there).
fn log_ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// MiB to 0.1 for log fields.
fn log_mib(bytes: u64) -> f64 {
    (bytes as f64 / 104857.6).round() / 10.0
}

struct Io {
    buffer: Arc<wgpu::Buffer>,
    shape: Vec<usize>,
}

struct Output {
    io: Io,
    staging: wgpu::Buffer,
}

#[derive(Default)]
struct RunState {
    result: Option<Result<Vec<Tensor>, ExecError>>,
    waker: Option<std::task::Waker>,
}

/// The outputs of a [`Plan::run_async`], when the run is done.
pub struct RunFuture {
    state: Arc<Mutex<RunState>>,
}

impl std::future::Future for RunFuture {
    type Output = Result<Vec<Tensor>, ExecError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.result.take() {
            Some(r) => std::task::Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

/// A graph lowered onto one device: buffers, bind groups and launches made once.
pub struct Plan {
    ctx: Arc<Context>,
    launches: Vec<Launch>,
    inputs: Vec<Io>,
    outputs: Vec<Output>,
    stats: PlanStats,
    /// Serializes runs (staging buffers are mapped per run).
    lock: Mutex<()>,
    /// The graph as planned (after rewrites), for profiles and inspection.
    graph: Graph,
    /// How its tensors and weights are stored on the GPU.
    precision: Precision,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("stats", &self.stats).finish()
    }
}

impl Plan {
    /// Lowers a bound graph onto `ctx`'s device, with weight buffers of its own.
    pub fn new(ctx: Arc<Context>, graph: &Graph) -> Result<Plan, ExecError> {
        Self::with_weights(ctx, graph, &WeightCache::default())
    }

    /// Lowers a bound graph onto `ctx`'s device, taking weight buffers from `weights` and
    /// adding the ones it lacks: plans of one model at several sizes hold one copy.
    pub fn with_weights(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &WeightCache,
    ) -> Result<Plan, ExecError> {
        Self::with_precision(ctx, graph, weights, Precision::F32)
    }

    /// [`Plan::with_weights`] storing weights and activations at `precision`. At
    /// [`Precision::F16`] every kernel still computes in f32 (it widens what it loads and
    /// narrows what it stores); the device needs `shader-f16`, and graphs with ops whose
    /// buffers hold integers or bits (detection) are refused ([`ExecError::NoF16`]).
    /// [`Plan::run`] still takes and returns f32 tensors; [`Plan::input_buffer`] and
    /// [`Plan::output_buffer`] hold f16 values.
    pub fn with_precision(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &WeightCache,
        precision: Precision,
    ) -> Result<Plan, ExecError> {
        if let Some(t) = graph.tensors.iter().find(|t| {
            matches!(
                t.kind,
                wgcnn_graph::TensorKind::Param | wgcnn_graph::TensorKind::Const
            ) && t.data.is_none()
        }) {
            return Err(ExecError::Graph(wgcnn_graph::GraphError::Invalid(format!(
                "parameter {} has no values: bind weights before planning",
                t.name
            ))));
        }
        let started = std::time::Instant::now();
        let nodes_before = graph.nodes.len();
        let graph = passes::optimize(graph);
        crate::precision::check(&ctx, &graph, precision)?;
        // Every kernel compiled below (by the kernel wrappers, through `Context::kernel`) is
        // made for this precision.
        let _precision = precision::scope(precision);
        tracing::debug!(
            nodes_before,
            nodes_after = graph.nodes.len(),
            "graph optimized (BatchNorm folded, residual adds and activations fused)"
        );
        let memory = MemoryPlan::with_element_bytes(&graph, precision.bytes());
        let limit = ctx.max_binding();
        tracing::debug!(
            slots = memory.slot_bytes.len(),
            bytes = memory.slot_bytes.iter().sum::<u64>(),
            largest = memory.slot_bytes.iter().max().copied().unwrap_or(0),
            "activation buffers allotted by liveness"
        );
        // Linear weights over the largest binding are split by rows (see `lower.rs`); other
        // constants that large fail there with `TooLarge`.
        for node in &graph.nodes {
            if let (wgcnn_graph::Op::Linear { .. }, Some(&w)) = (&node.op, node.inputs.get(1)) {
                let t = graph.tensor(w);
                let bytes = t.numel() as u64 * 4;
                if let ([m, k], true) = (t.shape.as_slice(), bytes > limit) {
                    let buffers =
                        wgcnn_kernels::linear::row_chunks(*m, *k, limit).map_or(0, |c| c.len());
                    tracing::info!(
                        weight = %t.name,
                        shape = ?t.shape,
                        bytes,
                        limit,
                        buffers,
                        "weight over the binding limit: split by rows"
                    );
                }
            }
        }
        for (i, t) in graph.tensors.iter().enumerate() {
            let bytes = t.numel() as u64 * precision.bytes();
            if memory.slot_of[i].is_some() && bytes > limit {
                return Err(ExecError::TooLarge {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    bytes,
                    limit,
                });
            }
        }
        let slots: Vec<Arc<wgpu::Buffer>> = memory
            .slot_bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| Arc::new(ctx.storage(&format!("activation slot {i}"), b)))
            .collect();
        // A tensor without a slot is a constant seen through Flatten/Reshape where a computed
        // value is expected.
        let buffer_of =
            |t: TensorId| -> Result<Arc<wgpu::Buffer>, ExecError> {
                memory.slot_of[t.0].map(|slot| slots[slot].clone()).ok_or_else(|| {
                ExecError::Graph(wgcnn_graph::GraphError::Invalid(format!(
                    "tensor {} is used as a computed value but is a constant; fold it first",
                    graph.tensor(t).name
                )))
            })
            };
        let mut lowering = Lowering::new(&ctx, &graph, &buffer_of, &memory.place_of, weights);
        for node in &graph.nodes {
            lowering.node(node)?;
        }
        let (launches, weight_bytes, uploaded_weight_bytes) = lowering.finish();
        let lowered = started.elapsed();
        tracing::debug!(
            launches = launches.len(),
            weight_bytes,
            ms = log_ms(lowered),
            "lowered: launches, bind groups, weights uploaded"
        );

        let inputs = graph
            .inputs
            .iter()
            .map(|&t| {
                Ok(Io {
                    buffer: buffer_of(t)?,
                    shape: graph.shape(t).to_vec(),
                })
            })
            .collect::<Result<Vec<_>, ExecError>>()?;
        let outputs = graph
            .outputs
            .iter()
            .map(|&t| {
                // Whole 4-byte words: copies move multiples of 4 bytes.
                let bytes = (graph.tensor(t).numel() as u64 * precision.bytes())
                    .next_multiple_of(4)
                    .max(4);
                Ok(Output {
                    io: Io {
                        buffer: buffer_of(t)?,
                        shape: graph.shape(t).to_vec(),
                    },
                    staging: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("output staging"),
                        size: bytes,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }),
                })
            })
            .collect::<Result<Vec<_>, ExecError>>()?;
        // Compile every pipeline now (lavapipe would at its first dispatch, inside the first
        // run) and save the on-disk pipeline cache.
        let compile_started = std::time::Instant::now();
        let pipelines = ctx.compile_pipelines(&launches)?;
        tracing::debug!(
            pipelines,
            ms = log_ms(compile_started.elapsed()),
            "pipelines compiled"
        );
        ctx.take_error()?;
        let stats = PlanStats {
            launches: launches.len(),
            pipelines,
            activation_bytes: memory.slot_bytes.iter().sum(),
            weight_bytes,
            uploaded_weight_bytes,
            nodes: graph.nodes.len(),
            macs: graph.macs(),
        };
        tracing::info!(
            launches = stats.launches,
            pipelines = stats.pipelines,
            nodes = stats.nodes,
            activation_mib = log_mib(stats.activation_bytes),
            weight_mib = log_mib(stats.weight_bytes),
            gmacs = (stats.macs as f64 / 1e6).round() / 1e3,
            ms = log_ms(started.elapsed()),
            "plan built"
        );
        // The weights live on the GPU now; the plan keeps the graph for its names and shapes
        // only, not a CPU copy of every weight.
        let mut graph = graph;
        for t in &mut graph.tensors {
            if matches!(
                t.kind,
                wgcnn_graph::TensorKind::Param | wgcnn_graph::TensorKind::Const
            ) {
                t.data = None;
            }
        }
        Ok(Plan {
            ctx,
            launches,
            inputs,
            outputs,
            stats,
            lock: Mutex::new(()),
            graph,
            precision,
        })
    }

    /// How the plan stores tensors on the GPU.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    pub fn stats(&self) -> &PlanStats {
        &self.stats
    }

    /// The optimized graph this plan runs (names and shapes; weight values are on the GPU only).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn launches(&self) -> &[Launch] {
        &self.launches
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Shapes of the inputs, in graph order.
    pub fn input_shapes(&self) -> Vec<Vec<usize>> {
        self.inputs.iter().map(|i| i.shape.clone()).collect()
    }

    /// Shapes of the outputs, in graph order.
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        self.outputs.iter().map(|o| o.io.shape.clone()).collect()
    }

    /// Writes CPU inputs, runs, and returns the outputs: one submission.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.write_inputs(inputs)?;
        self.submit_and_read(|_| {})
    }

    /// Runs once as [`Plan::run`] does (same inputs, launches and outputs) while timing every
    /// launch (see [`crate::profile`]). Slower than `run`; `run` itself is never timed.
    pub fn profile(&self, inputs: &[Tensor]) -> Result<Profile, ExecError> {
        self.profile_with(inputs, ProfileMethod::for_features(self.ctx.features))
    }

    /// [`Plan::profile`] with a chosen timing method; a method the device cannot do falls back
    /// to the best one it can ([`Profile::method`] says which was used).
    pub fn profile_with(
        &self,
        inputs: &[Tensor],
        method: ProfileMethod,
    ) -> Result<Profile, ExecError> {
        let started = std::time::Instant::now();
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.write_inputs(inputs)?;
        let io = OutputIo {
            copy: &|encoder| self.copy_outputs(encoder),
            read: &|| self.read_outputs(),
        };
        profile::record(&self.ctx, &self.launches, method, io, started)
    }

    /// Checks the inputs against the plan and queues their upload.
    fn write_inputs(&self, inputs: &[Tensor]) -> Result<(), ExecError> {
        if inputs.len() != self.inputs.len() {
            return Err(ExecError::InputCount {
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        for (i, (io, t)) in self.inputs.iter().zip(inputs).enumerate() {
            if io.shape != t.shape {
                return Err(ExecError::InputShape {
                    index: i,
                    expected: io.shape.clone(),
                    got: t.shape.clone(),
                });
            }
            let expected: usize = t.shape.iter().product();
            if t.data.len() != expected {
                return Err(ExecError::InputData {
                    index: i,
                    shape: t.shape.clone(),
                    expected,
                    got: t.data.len(),
                });
            }
            precision::write(&self.ctx, &io.buffer, &t.data, self.precision);
        }
        Ok(())
    }

    /// Runs with inputs already on the GPU: `prepare` records work (e.g. the preprocessing
    /// kernel writing [`Plan::input_buffer`]) into the same command buffer, before the network.
    pub fn run_with(
        &self,
        prepare: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<Vec<Tensor>, ExecError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.submit_and_read(prepare)
    }

    /// The GPU buffer of input `i`, for producers on the GPU (preprocessing, another plan's
    /// output): the tensor's values in its first `numel * 4` bytes (`numel * 2`, f16, at
    /// [`Precision::F16`]).
    pub fn input_buffer(&self, i: usize) -> Option<&wgpu::Buffer> {
        self.inputs.get(i).map(|io| io.buffer.as_ref())
    }

    /// The GPU buffer holding output `i` after a run (its first `numel * 4` bytes; `numel * 2`
    /// at [`Precision::F16`]), for work that
    /// stays on the GPU: copy it into another plan's [`Plan::input_buffer`] in the same encoder,
    /// or bind it in a pipeline of the application's. Valid until the plan runs again.
    pub fn output_buffer(&self, i: usize) -> Option<&wgpu::Buffer> {
        self.outputs.get(i).map(|o| o.io.buffer.as_ref())
    }

    /// Records the plan's launches into `encoder`, reading inputs from and leaving outputs in
    /// the GPU buffers ([`Plan::input_buffer`], [`Plan::output_buffer`]): nothing is read back.
    /// Chain plans by encoding one, copying its output buffer into the next one's input buffer,
    /// and encoding the next; submit once. The caller keeps two submissions that use the same
    /// plan from overlapping ([`Plan::run`] serializes its own runs with a lock).
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        self.ctx.encode(encoder, &self.launches);
    }

    /// As [`Plan::run`], writing the outputs into `outputs` and reusing their allocations (for
    /// a server or a loop that runs the plan many times). `outputs` is resized to the plan's
    /// output count; each tensor takes the output's shape.
    pub fn run_into(&self, inputs: &[Tensor], outputs: &mut Vec<Tensor>) -> Result<(), ExecError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.write_inputs(inputs)?;
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgcnn run"),
            });
        self.ctx.encode(&mut encoder, &self.launches);
        self.copy_outputs(&mut encoder);
        self.ctx.queue.submit([encoder.finish()]);
        outputs.resize_with(self.outputs.len(), || Tensor {
            shape: Vec::new(),
            data: Vec::new(),
        });
        let staging: Vec<&wgpu::Buffer> = self.outputs.iter().map(|o| &o.staging).collect();
        map_read_with(&self.ctx, &staging, |i, values| {
            let shape = &self.outputs[i].io.shape;
            let n: usize = shape.iter().product();
            let t = &mut outputs[i];
            t.shape.clone_from(shape);
            precision::decode(values, n, self.precision, &mut t.data);
        })?;
        self.ctx.take_error()?;
        Ok(())
    }

    /// Runs on a thread of its own and returns a future of the outputs, for async servers: the
    /// caller's executor is never blocked on the GPU. Works with any executor (no runtime is
    /// assumed); runs of one plan still execute one at a time.
    pub fn run_async(self: &Arc<Self>, inputs: Vec<Tensor>) -> RunFuture {
        let state = Arc::new(Mutex::new(RunState::default()));
        let (plan, shared) = (self.clone(), state.clone());
        let spawned = std::thread::Builder::new()
            .name("wgcnn-run".into())
            .spawn(move || {
                let result = plan.run(&inputs);
                let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                s.result = Some(result);
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            });
        if let Err(e) = spawned {
            state.lock().unwrap_or_else(|p| p.into_inner()).result =
                Some(Err(ExecError::Kernel(wgcnn_kernels::KernelError::Device(
                    format!("could not start a thread for the run: {e}"),
                ))));
        }
        RunFuture { state }
    }

    fn submit_and_read(
        &self,
        prepare: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<Vec<Tensor>, ExecError> {
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgcnn run"),
            });
        prepare(&mut encoder);
        self.ctx.encode(&mut encoder, &self.launches);
        self.copy_outputs(&mut encoder);
        self.ctx.queue.submit([encoder.finish()]);
        let outputs = self.read_outputs();
        self.ctx.take_error()?;
        outputs
    }

    /// Records the copies of the outputs into their staging buffers.
    fn copy_outputs(&self, encoder: &mut wgpu::CommandEncoder) {
        for o in &self.outputs {
            encoder.copy_buffer_to_buffer(&o.io.buffer, 0, &o.staging, 0, o.staging.size());
        }
    }

    /// Maps the staging buffers (after the submission that filled them) into tensors.
    fn read_outputs(&self) -> Result<Vec<Tensor>, ExecError> {
        let staging: Vec<&wgpu::Buffer> = self.outputs.iter().map(|o| &o.staging).collect();
        let mut out: Vec<Tensor> = self
            .outputs
            .iter()
            .map(|o| Tensor {
                shape: o.io.shape.clone(),
                data: Vec::new(),
            })
            .collect();
        map_read_with(&self.ctx, &staging, |i, values| {
            let n = out[i].shape.iter().product();
            precision::decode(values, n, self.precision, &mut out[i].data);
        })?;
        Ok(out)
    }
}
