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
pub mod draw;
mod engine;
mod faces;
mod image;
mod lru;
mod mesh;
pub mod rle;
mod segmenter;

use std::path::PathBuf;

pub use classifier::{
    Classifier, ClassifierOptions, DEFAULT_MODEL, DEFAULT_WEIGHTS, IMAGENET_LABELS, Prediction,
    Scores, Timings, default_weights, model_transform, onnx_default_transform,
};
pub use detector::{
    COCO_LABELS, COCO_PERSON_KEYPOINTS, COCO_PERSON_SKELETON, DetectTimings, Detection, Detector,
    DetectorOptions, Mask,
};
pub use draw::class_color;
pub use engine::{AdapterReport, Engine, EngineOptions, adapters};
pub use faces::{
    FACE_LANDMARKS, FACE_MODEL, Face, FaceDetector, FaceDetectorOptions, FaceTimings,
    MTCNN_WEIGHTS, extract_face,
};
pub use image::{ImageError, RgbImage};
pub use mesh::{
    MESH_INPUT_SIZE, MESH_MODEL, MeshOutput, MeshPredictor, MeshPredictorOptions, MeshRequest,
    MeshStage, MeshTimings, VOXMESH_R50_URL, render_wireframe,
};
pub use segmenter::{
    ClassShare, SegmentTimings, Segmentation, Segmenter, SegmenterOptions, VOC_LABELS,
    draw_segmentation, voc_color,
};
pub use wgcnn_exec::{Plan, PlanStats};
pub use wgcnn_graph::{Graph, Tensor};
pub use wgcnn_kernels::preprocess::{Filter, Transform};
pub use wgcnn_kernels::{Precision, Variants};
pub use {wgcnn_exec, wgcnn_graph, wgcnn_io, wgcnn_kernels, wgcnn_models};

/// Everything that can go wrong in the library, with the file, key, node or shape named.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    #[error(
        "{}: input {shape:?} is not a square NCHW image; pass the size and preprocessing explicitly",
        path.display()
    )]
    NonSquareInput { path: PathBuf, shape: Vec<usize> },
    #[error("{model}: {detail}")]
    NotAClassifier { model: String, detail: String },
    #[error("{model}: the input is {height}x{width} but the preprocessing crops {crop}x{crop}")]
    CropMismatch {
        model: String,
        height: usize,
        width: usize,
        crop: usize,
    },
    #[error("a batch takes 1..={max} images, got {got}")]
    BatchSize { max: usize, got: usize },
    #[error(
        "{what} needs {bytes} bytes in one buffer binding; the device allows {limit} (use smaller images or batches)"
    )]
    ImageTooLarge {
        what: String,
        bytes: u64,
        limit: u64,
    },
    #[error("a detector takes a [1, 3, H, W] image, got {shape:?}")]
    DetectorInput { shape: Vec<usize> },
    #[error(
        "a {width}x{height} float image is larger than this detector takes at full precision (longer side at most {max}); pass it as 8-bit pixels to `detect`, which shrinks it on the GPU"
    )]
    FloatImageTooLarge {
        width: usize,
        height: usize,
        max: usize,
    },
    #[error(
        "a segmenter takes a [1, 3, H, W] float image at its network size (shorter side {resize}, no resize), got {shape:?}; pass it as 8-bit pixels to `segment`, which resizes on the GPU"
    )]
    SegmenterInput { shape: Vec<usize>, resize: usize },
    #[error("class {class} does not fit an 8-bit palette mask")]
    TooManyClasses { class: u32 },
    #[error("cannot encode the image: {0}")]
    Encode(String),
    /// An invariant of the library broke (a bug: please report it).
    #[error("internal error: {0}")]
    Internal(&'static str),
}
