//! wgcnn's intermediate representation.
//!
//! - [`Graph`], [`Node`], [`Op`], [`TensorId`]: networks as NCHW f32 dataflow graphs whose
//!   parameters are named by their PyTorch keys.
//! - [`GraphBuilder`]: adds nodes with shape inference, so a wrong architecture fails at build
//!   time with the node's name.
//! - [`interp`]: a plain CPU interpreter of every op, the oracle that kernel and network tests
//!   compare the GPU against. f32 throughout; conv and linear use a cache-blocked GEMM so whole
//!   networks run in about a second.
//! - [`mesh`]: CPU references of Mesh R-CNN's data-dependent mesh operators (cubify, edges,
//!   vert_align, GraphConv).
//! - [`passes`]: rewrites that keep results equal (BatchNorm folding, epilogue fusion).
//!
//! This crate never touches the GPU.

mod graph;
pub mod interp;
pub mod mesh;
mod op;
pub mod passes;

pub use graph::{
    Graph, GraphBuilder, Node, TensorId, TensorInfo, TensorKind, WeightReport, WeightSource,
};
pub use op::{
    Activation, BoxPostprocess, Conv2d, ConvTranspose2d, INVALID_SCORE, Lrn, Op, Pool2d, Proposals,
    ResizeMode, RoiAlign, broadcasts_to,
};

/// A tensor shape, outermost axis first (NCHW for images).
pub type Shape = Vec<usize>;

/// A dense row-major f32 tensor: what the interpreter computes on and tests compare.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Shape,
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and values; errors when the counts differ.
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Self, GraphError> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(GraphError::Invalid(format!(
                "{} values for shape {shape:?}",
                data.len()
            )));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    pub fn zeros(shape: &[usize]) -> Self {
        Tensor {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// `max|self - want| / max|want|`, the figure tests report (0 when both are zero).
    pub fn rel_error(&self, want: &Tensor) -> f32 {
        let diff = self.max_abs_diff(want);
        let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
        if scale == 0.0 { diff } else { diff / scale }
    }

    /// `max|self - want|` (infinite when shapes differ or a value is NaN).
    pub fn max_abs_diff(&self, want: &Tensor) -> f32 {
        if self.shape != want.shape {
            return f32::INFINITY;
        }
        self.data.iter().zip(&want.data).fold(0f32, |m, (a, b)| {
            let d = (a - b).abs();
            if d.is_nan() { f32::INFINITY } else { m.max(d) }
        })
    }

    /// The fixtures' tolerance: `max|got - want| <= 1e-3 * max|want| + 1e-5`.
    pub fn allclose_fixture(&self, want: &Tensor) -> bool {
        let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
        self.max_abs_diff(want) <= 1e-3 * scale + 1e-5
    }
}

/// Errors of graph construction, weight binding and interpretation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    #[error("node {node} ({op}): {message}; input shapes {inputs:?}")]
    Shape {
        node: String,
        op: &'static str,
        inputs: Vec<Shape>,
        message: String,
    },
    #[error("{0}")]
    Weights(WeightReport),
    #[error("weight {key}: {reason}")]
    WeightLoad { key: String, reason: String },
    #[error("invalid graph: {0}")]
    Invalid(String),
}
