//! CPU references for Mesh R-CNN's mesh operators (pytorch3d `cubify`, `edges_packed`,
//! `vert_align`, `GraphConv`; meshrcnn's coordinate transforms). These work on meshes whose
//! size depends on the data, so they are plain functions rather than graph ops; the GPU kernels
//! and the model's stage tests compare against them.

mod cubify;
mod ops;

pub use cubify::{TriMesh, cubify, grid_dims, occupancy_probs, topleft_coord};
pub use ops::{SamplePadding, edges_packed, graph_conv, project_vert, vert_align, voxel_to_world};
