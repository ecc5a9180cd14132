//! Network architectures as [`wgcnn_graph::Graph`]s, in torchvision/timm naming.
//!
//! Every network is a function `fn(&BuildOptions) -> Result<Graph, ModelError>` that declares
//! its parameters by their exact PyTorch `state_dict` key (`features.0.weight`,
//! `layer1.0.bn1.running_mean`, `fc.bias`) and shape, and adds one node per module in the order
//! of the PyTorch `forward`. Conventions every builder follows:
//!
//! - one graph input named `input`, `[batch, channels, height, width]`; one output, the logits
//!   `[batch, classes]`;
//! - node names are module paths (`layer1.0.conv1`); nodes with no module of their own get a
//!   descriptive suffix (`layer1.0.add`, `flatten`); names are unique within a graph;
//! - BatchNorm stays an [`wgcnn_graph::Op::BatchNorm`] node (eps `1e-5` unless the model says
//!   otherwise; the executor folds it into the conv); dropout is the identity at inference and
//!   adds no node; activations are separate [`wgcnn_graph::Op::Act`] nodes (the passes fuse them);
//! - `num_batches_tracked` keys are ignored when binding (see [`layers::begin`]);
//! - no weights are allocated: building at any resolution is cheap, values arrive with
//!   [`wgcnn_graph::Graph::bind`].
//!
//! ```
//! let info = wgcnn_models::find("resnet18")?;
//! let graph = info.graph(&info.default_options())?;
//! assert_eq!(graph.shape(graph.outputs[0]), [1, 1000]);
//! println!("{} parameter values, {:.2} GMACs", graph.param_count(), graph.macs() as f64 / 1e9);
//! # Ok::<(), wgcnn_models::ModelError>(())
//! ```
//!
//! Adding an architecture: write `classify/<family>.rs` with one `pub fn <name>(&BuildOptions)`
//! per variant built from the helpers in [`layers`], declare the module in `classify/mod.rs`,
//! and add one [`ModelInfo`] line per variant to the table in `registry.rs`.

pub mod classify;
pub mod detect;
pub mod faces;
mod info;
pub mod layers;
pub mod mesh;
mod registry;
pub mod segment;

pub use info::{
    BuildFn, BuildOptions, Interpolation, KeyNaming, ModelInfo, ModelStats, Preprocess,
};
use wgcnn_graph::{Graph, GraphError};

/// Errors of looking up and building a network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// No registered network has this name.
    #[error("unknown model {name:?}; known models: {known}")]
    Unknown { name: String, known: String },
    /// The options have a zero extent.
    #[error("model {model}: invalid build options: {reason}")]
    InvalidOptions { model: String, reason: String },
    /// The input resolution does not fit the architecture.
    #[error(
        "model {model} cannot run on a {height}x{width} input (too small for its downsampling, \
         or not the size its classifier was built for): {detail}"
    )]
    InputSize {
        model: String,
        height: usize,
        width: usize,
        detail: String,
    },
    /// Any other graph construction error.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Every registered network, in listing order.
pub fn models() -> &'static [ModelInfo] {
    registry::MODELS
}

/// The registered network called `name`; an unknown name is an error listing the known ones.
pub fn find(name: &str) -> Result<&'static ModelInfo, ModelError> {
    models()
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ModelError::Unknown {
            name: name.to_string(),
            known: models()
                .iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Builds the network called `name` for `options` (see [`ModelInfo::graph`]).
pub fn build(name: &str, options: &BuildOptions) -> Result<Graph, ModelError> {
    find(name)?.graph(options)
}
