//! wgcnn: convolutional networks on WebGPU.
//!
//! ```no_run
//! use wgcnn::{Classifier, ClassifierOptions, Engine, EngineOptions};
//!
//! let engine = Engine::new(&EngineOptions::default())?;
//! // The bundled EfficientNet-Lite0 (ImageNet); pass `model`/`weights` for another network.
//! let classifier = Classifier::new(&engine, &ClassifierOptions::default())?;
//! for p in classifier.classify_file("assets/chelsea.png", 5)? {
//!     println!("{:5.1}%  {}", p.probability * 100.0, p.label);
//! }
//! # Ok::<(), wgcnn::Error>(())
//! ```
//!
//! [`Engine`] owns the GPU device; networks are built by name from [`wgcnn_models`], weights
//! bound from a checkpoint ([`wgcnn_io`]), and planned onto the device ([`wgcnn_exec::Plan`]).

mod classifier;
mod detector;
mod draw;
mod engine;
mod image;

use std::path::PathBuf;

pub use classifier::{
    Classifier, ClassifierOptions, DEFAULT_MODEL, IMAGENET_LABELS, Prediction, Timings, assets_dir,
    default_weights, model_transform, onnx_default_transform,
};
pub use detector::{COCO_LABELS, Detection, Detector, DetectorOptions};
pub use draw::class_color;
pub use engine::{AdapterReport, Engine, EngineOptions, adapters};
pub use image::{ImageError, RgbImage};
pub use wgcnn_exec::{Plan, PlanStats};
pub use wgcnn_graph::{Graph, Tensor};
pub use wgcnn_kernels::preprocess::{Filter, Transform};
pub use {wgcnn_exec, wgcnn_graph, wgcnn_io, wgcnn_kernels, wgcnn_models};

/// Everything that can go wrong in the library, with the file, key, node or shape named.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kernel(#[from] wgcnn_kernels::KernelError),
    #[error(transparent)]
    Exec(#[from] wgcnn_exec::ExecError),
    #[error(transparent)]
    Graph(#[from] wgcnn_graph::GraphError),
    #[error(transparent)]
    Io(#[from] wgcnn_io::IoError),
    #[error(transparent)]
    Models(#[from] wgcnn_models::ModelError),
    #[error(transparent)]
    Onnx(#[from] wgcnn_io::onnx::OnnxError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{}: {source}", path.display())]
    Weights {
        path: PathBuf,
        source: wgcnn_graph::GraphError,
    },
    #[error("model {model} needs a checkpoint: pass --weights FILE (.safetensors or PyTorch .pth)")]
    NoWeights { model: String },
    #[error("{0}")]
    Model(String),
}
