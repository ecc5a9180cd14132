//! WGSL compute kernels and their wgpu wrappers.
//!
//! [`Context`] opens the device and compiles each kernel once ([`Context::kernel`]); every
//! kernel module holds a `#[repr(C)]` params struct mirroring its WGSL `Params`, and a
//! `launch` function that records a [`Launch`] (bind group + workgroup grid) at plan time.
//! This crate knows no `Graph`: the executor (`wgcnn-exec`) maps graph nodes onto launches.
//!
//! Conventions shared by every kernel:
//! - binding 0 is the `Params` uniform; storage buffers follow at 1, 2, ... (see [`KernelSpec`]);
//! - launches over 65 535 workgroups use a 2-D grid ([`grid`]) and shaders rebuild the linear
//!   workgroup id as `wg.x + wg.y * num_workgroups.x`, returning for ids past the end;
//! - activations use the codes of `wgcnn_graph::Activation::code`.

pub mod adaptive_avgpool2d;
pub mod argmax2d;
pub mod binary;
mod context;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod copy_channels;
pub mod dwconv2d;
pub mod linear;
pub mod lrn;
pub mod mesh;
pub mod pad;
pub mod pipeline_cache;
pub mod pool2d;
pub mod precision;
pub mod prelu;
pub mod preprocess;
pub mod shaders;
pub mod softmax;
pub mod unary;
// Detection stages.
pub mod box_decode;
pub mod detect;
pub mod keypoint_decode;
pub mod nms_gather;
pub mod nms_mask;
pub mod nms_offsets;
pub mod nms_walk;
pub mod paste_masks;
pub mod permute;
pub mod resize;
pub mod roi_align;
pub mod scale_boxes;
pub mod segment_keys;
pub mod topk_sort;

#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod testing;

pub use context::{
    Access, Context, ContextOptions, Kernel, KernelSpec, Launch, MAX_BINDING_CAP, Variants,
    encode_launch, enumerate_adapters, grid, map_read, map_read_with, required_limits,
};
pub use pipeline_cache::CacheStatus;
pub use precision::Precision;

/// The most workgroups one grid axis may have (WebGPU's default limit).
pub const MAX_GROUPS: u32 = 65_535;

/// Errors of the GPU layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    #[error("no GPU adapter{}; adapters seen: {}. Install a Vulkan driver (e.g. Mesa's lavapipe: `apt-get install mesa-vulkan-drivers`) or pick another by name (--adapter, WGCNN_ADAPTER)",
        requested.as_ref().map(|r| format!(" matching {r:?}")).unwrap_or_default(),
        if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    NoAdapter {
        requested: Option<String>,
        available: Vec<String>,
    },
    #[error("could not open the GPU device: {0}")]
    Device(String),
    #[error("the GPU device of {adapter} is below the limits wgcnn's kernels need: {}", missing.join("; "))]
    Limits {
        adapter: String,
        missing: Vec<String>,
    },
    #[error("the GPU reported an error: {0}")]
    Gpu(String),
    #[error("the GPU device was lost ({0}); open a new engine")]
    DeviceLost(String),
    #[error("could not read a GPU buffer back: {0}")]
    Map(String),
    #[error("{what} needs {needed} bytes in one binding; the device allows {limit}")]
    TooLarge {
        what: String,
        needed: u64,
        limit: u64,
    },
    #[error("{kernel}: {detail}")]
    BadShape {
        kernel: &'static str,
        detail: String,
    },
    #[error("{kernel}: no f16 storage for binding {binding}: {detail}")]
    F16 {
        kernel: String,
        binding: String,
        detail: String,
    },
    #[error(
        "{adapter} has no shader-f16 feature: f16 storage (--precision f16) needs it; use --precision f32"
    )]
    NoF16 { adapter: String },
    #[error("could not write the pipeline cache {}: {source}", path.display())]
    PipelineCache {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
