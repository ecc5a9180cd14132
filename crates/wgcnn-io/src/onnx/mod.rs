//! ONNX import: a `.onnx` classifier (protobuf) → a fully bound [`wgcnn_graph::Graph`].
//!
//! - [`load_onnx`]: decodes the model, reads initializers (inline or external data), maps every
//!   node onto the IR's ops (opsets 7 to 21, each op's attribute or input form chosen by the
//!   model's opset; newer opsets are read with opset 21's forms), folds shape arithmetic (`Shape → Gather →
//!   Unsqueeze → Concat → Reshape` and the like) on the host, and returns the graph with every
//!   weight bound, ready for `wgcnn_graph::interp::run` or the GPU executor. Transposes
//!   that move data become `Op::Permute`; `Resize` and `Upsample` become `Op::Resize` only
//!   where ONNX's sampling is exactly wgcnn's (other attribute combinations are reported as
//!   unsupported, naming them).
//! - [`inspect_onnx`]: what a file holds (inputs, outputs, opsets, producer, op counts) and
//!   which of its ops cannot be imported, without failing.
//! - [`proto`]: the hand-written protobuf messages, public so tests and tools can write models.
//!
//! Initializers used unchanged become [`wgcnn_graph::TensorKind::Param`]s named by the
//! initializer (PyTorch exports keep the state-dict keys, e.g. `features.0.0.weight`), already
//! bound; values the importer derives (transposed Gemm weights, folded constants) become
//! `Const` tensors. Symbolic input dims (`dim_param`, e.g. `batch_size`) take
//! [`OnnxOptions::batch`]. Nothing panics on a corrupt file: every failure is an [`OnnxError`]
//! naming the file, and for graph problems the node, its op type, domain and opset. Unsupported
//! nodes are all collected before failing, so one run lists everything a model needs.

mod attrs;
mod fold;
mod import;
mod inspect;
mod nn;
mod ops;
pub mod proto;
mod resize;
mod tensor;

use std::fmt;
use std::path::{Path, PathBuf};

use wgcnn_graph::{Graph, Shape};

pub use inspect::{OnnxDim, OnnxReport, OnnxValueReport, inspect_onnx};

/// Import settings.
#[derive(Clone, Debug)]
pub struct OnnxOptions {
    /// The size given to symbolic batch dimensions (`dim_param` on axis 0 of an input).
    pub batch: usize,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        OnnxOptions { batch: 1 }
    }
}

/// A named tensor at the graph's boundary with its shape as imported.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxValue {
    pub name: String,
    pub shape: Shape,
}

/// An imported model: the graph and what the file said about itself.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    /// The network, every parameter and constant bound.
    pub graph: Graph,
    /// The run-time inputs in the graph's order (initializers listed as inputs excluded).
    pub inputs: Vec<OnnxValue>,
    /// The outputs in the graph's order.
    pub outputs: Vec<OnnxValue>,
    /// The version of the default (`ai.onnx`) operator set.
    pub opset: i64,
    /// Every imported operator set as `(domain, version)`; `""` is the default domain.
    pub opsets: Vec<(String, i64)>,
    pub ir_version: i64,
    pub producer_name: String,
    pub producer_version: String,
}

impl OnnxModel {
    /// `"pytorch 2.5.1"`, or whichever part of it the file gives.
    pub fn producer(&self) -> String {
        format!("{} {}", self.producer_name, self.producer_version)
            .trim()
            .to_string()
    }
}

/// A node the importer cannot map, with why.
#[derive(Clone, Debug, PartialEq)]
pub struct UnsupportedNode {
    /// The node's name, or `#index` when it has none.
    pub node: String,
    /// Position in the graph's node list.
    pub index: usize,
    pub op_type: String,
    /// `ai.onnx` for the default domain.
    pub domain: String,
    /// The version of the node's operator set (0 when the model imports none for its domain).
    pub opset: i64,
    pub reason: String,
}

impl fmt::Display for UnsupportedNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.node != format!("#{}", self.index) {
            write!(f, "node {} (#{})", self.node, self.index)?;
        } else {
            write!(f, "node #{}", self.index)?;
        }
        write!(
            f,
            ": {} (domain {}, opset {}): {}",
            self.op_type, self.domain, self.opset, self.reason
        )
    }
}

/// Everything that can go wrong importing or inspecting an ONNX file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The file (or an external data file it names) could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a valid ONNX protobuf (truncated, corrupted, or another format).
    #[error("{}: not a valid ONNX model (protobuf decoding failed: {source})", path.display())]
    Decode {
        path: PathBuf,
        #[source]
        source: prost::DecodeError,
    },
    /// The model as a whole is malformed or outside what is supported (no graph, no opset,
    /// an input without a static shape...).
    #[error("{}: {message}", path.display())]
    Model { path: PathBuf, message: String },
    /// An initializer or constant tensor cannot be decoded.
    #[error("{}: tensor {name:?}: {message}", path.display())]
    Tensor {
        path: PathBuf,
        name: String,
        message: String,
    },
    /// A supported node is malformed (wrong arity, bad attribute, shapes that do not fit).
    #[error("{}: node {node} ({op_type}, opset {opset}): {message}", path.display())]
    Node {
        path: PathBuf,
        node: String,
        op_type: String,
        opset: i64,
        message: String,
    },
    /// Nodes whose op type, domain or attributes the importer cannot map: all of them.
    #[error("{}: {} node(s) cannot be imported:{}", path.display(), nodes.len(), list_nodes(nodes))]
    Unsupported {
        path: PathBuf,
        nodes: Vec<UnsupportedNode>,
    },
}

fn list_nodes(nodes: &[UnsupportedNode]) -> String {
    nodes.iter().map(|n| format!("\n  {n}")).collect()
}

/// How one node failed: `Unsupported` is collected with the others, `Invalid` stops the import.
#[derive(Debug)]
pub(crate) enum NodeError {
    Unsupported(String),
    Invalid(String),
}

impl NodeError {
    pub(crate) fn message(&self) -> &str {
        match self {
            NodeError::Unsupported(m) | NodeError::Invalid(m) => m,
        }
    }
}

impl From<wgcnn_graph::GraphError> for NodeError {
    fn from(e: wgcnn_graph::GraphError) -> Self {
        NodeError::Invalid(e.to_string())
    }
}

/// Imports the ONNX model at `path`. See the module docs for what is supported.
pub fn load_onnx(path: impl AsRef<Path>, options: &OnnxOptions) -> Result<OnnxModel, OnnxError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    load_onnx_bytes(&bytes, path, dir, options)
}

/// Imports an ONNX model from its bytes. `path` names it in errors; external data is read
/// relative to `model_dir`.
pub fn load_onnx_bytes(
    bytes: &[u8],
    path: &Path,
    model_dir: &Path,
    options: &OnnxOptions,
) -> Result<OnnxModel, OnnxError> {
    let model = proto::ModelProto::from_bytes(bytes).map_err(|source| OnnxError::Decode {
        path: path.to_path_buf(),
        source,
    })?;
    import::import_model(&model, path, model_dir, options)
}

/// Whether the importer knows `op_type` of the default domain (it may still refuse particular
/// attribute values, e.g. a dilated MaxPool).
pub fn is_supported_op(op_type: &str) -> bool {
    ops::SUPPORTED_OPS.contains(&op_type)
}
