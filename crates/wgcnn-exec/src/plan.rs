//! [`Plan`]: the lowered, ready-to-run form of a graph.

use std::sync::{Arc, Mutex};

use wgcnn_graph::{Graph, Tensor, TensorId, passes};
use wgcnn_kernels::{Context, Launch, map_read};

use crate::ExecError;
use crate::lower::Lowering;
use crate::memory::MemoryPlan;
use crate::profile::{self, OutputIo, Profile, ProfileMethod};

/// What a plan holds, for `wgcnn bench` and logs.
#[derive(Clone, Debug, Default)]
pub struct PlanStats {
    /// Kernel dispatches per run.
    pub launches: usize,
    /// Distinct compiled pipelines used (kernel and override constants).
    pub pipelines: usize,
    /// Bytes of activation buffers (after reuse).
    pub activation_bytes: u64,
    /// Bytes of weight buffers.
    pub weight_bytes: u64,
    /// Nodes in the optimized graph.
    pub nodes: usize,
    /// Multiply-accumulates per run.
    pub macs: u64,
}

struct Io {
    buffer: Arc<wgpu::Buffer>,
    shape: Vec<usize>,
}

struct Output {
    io: Io,
    staging: wgpu::Buffer,
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
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("stats", &self.stats).finish()
    }
}

impl Plan {
    /// Lowers a bound graph onto `ctx`'s device.
    pub fn new(ctx: Arc<Context>, graph: &Graph) -> Result<Plan, ExecError> {
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
        let graph = passes::optimize(graph);
        let memory = MemoryPlan::new(&graph);
        let limit = ctx.max_binding();
        for (i, t) in graph.tensors.iter().enumerate() {
            let bytes = t.numel() as u64 * 4;
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
        let mut lowering = Lowering::new(&ctx, &graph, &buffer_of, &memory.place_of);
        for node in &graph.nodes {
            lowering.node(node)?;
        }
        let (launches, weight_bytes) = lowering.finish();

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
                let bytes = (graph.tensor(t).numel() as u64 * 4).max(4);
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
        let pipelines = ctx.compile_pipelines(&launches)?;
        let stats = PlanStats {
            launches: launches.len(),
            pipelines,
            activation_bytes: memory.slot_bytes.iter().sum(),
            weight_bytes,
            nodes: graph.nodes.len(),
            macs: graph.macs(),
        };
        tracing::debug!(?stats, "planned");
        Ok(Plan {
            ctx,
            launches,
            inputs,
            outputs,
            stats,
            lock: Mutex::new(()),
            graph,
        })
    }

    pub fn stats(&self) -> &PlanStats {
        &self.stats
    }

    /// The optimized graph this plan runs.
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
            self.ctx
                .queue
                .write_buffer(&io.buffer, 0, bytemuck::cast_slice(&t.data));
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

    /// The GPU buffer of input `i`, for producers on the GPU (preprocessing).
    pub fn input_buffer(&self, i: usize) -> Option<&wgpu::Buffer> {
        self.inputs.get(i).map(|io| io.buffer.as_ref())
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
        self.read_outputs()
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
        let data = map_read(&self.ctx, &staging)?;
        Ok(self
            .outputs
            .iter()
            .zip(data)
            .map(|(o, mut d)| {
                d.truncate(o.io.shape.iter().product());
                Tensor {
                    shape: o.io.shape.clone(),
                    data: d,
                }
            })
            .collect())
    }
}
