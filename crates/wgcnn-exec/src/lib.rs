//! The graph executor: lowers a bound [`wgcnn_graph::Graph`] to a [`Plan`] of GPU kernel
//! launches once, then runs it as many times as needed.
//!
//! `Plan::new`:
//! 1. rewrites the graph ([`wgcnn_graph::passes::optimize`]: BatchNorm folded into convs,
//!    other BatchNorms made depthwise 1x1 convs, bias/activation/residual add fused into conv
//!    and linear epilogues);
//! 2. assigns every activation to a reusable buffer ([`memory::MemoryPlan`]);
//! 3. uploads weights (splitting any tensor larger than the device's largest storage binding),
//!    once per [`WeightCache`]: plans of one model at other sizes share the buffers;
//! 4. records one [`wgcnn_kernels::Launch`] per kernel dispatch (pipelines compiled once per
//!    kernel, bind groups and params made here, never per run).
//!
//! `Plan::run` writes the inputs, encodes every launch into one compute pass, copies the
//! outputs to staging buffers, submits once, and maps the results. `Plan::profile` runs the same
//! launches with a GPU timestamp around each ([`profile`]), for `wgcnn bench --profile`.

mod lower;
pub mod memory;
mod plan;
mod precision;
pub mod profile;
mod weights;

pub use plan::{Plan, PlanStats, RunFuture};
pub use weights::WeightCache;
pub use wgcnn_kernels::Precision;

/// Errors of planning and running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    #[error(transparent)]
    Graph(#[from] wgcnn_graph::GraphError),
    #[error(transparent)]
    Kernel(#[from] wgcnn_kernels::KernelError),
    #[error("node {node} ({op}): {message}")]
    Unsupported {
        node: String,
        op: &'static str,
        message: String,
    },
    #[error(
        "tensor {name} {shape:?} needs {bytes} bytes in one buffer binding; the device allows {limit} (try a smaller batch or input size)"
    )]
    TooLarge {
        name: String,
        shape: Vec<usize>,
        bytes: u64,
        limit: u64,
    },
    #[error("node {node} (op {op}) cannot run at f16: {why}; use --precision f32")]
    NoF16 {
        node: String,
        op: &'static str,
        why: &'static str,
    },
    #[error("input {index}: expected shape {expected:?}, got {got:?}")]
    InputShape {
        index: usize,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("expected {expected} inputs, got {got}")]
    InputCount { expected: usize, got: usize },
    #[error("input {index}: shape {shape:?} holds {expected} values, its data has {got}")]
    InputData {
        index: usize,
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },
}
