//! Inception-v4 as in timm (`inception_v4`): a flat `features` sequence of `ConvNormAct` units
//! (conv without bias, BatchNorm eps 0.001, ReLU; keys `.conv` / `.bn`) and mixed blocks, then
//! global average pooling and `last_linear`. Meant for 299x299 input.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, TensorId};

use super::inception::unit;
use crate::layers::{self, Conv, Pool2d};
use crate::{BuildOptions, Interpolation, ModelError, Preprocess};

/// timm's pretrained config: 299 crop at `crop_pct` 0.875 (resize 341), bicubic, mean = std =
/// 0.5.
pub const PREPROCESS: Preprocess = Preprocess::imagenet(341, 299)
    .with_interpolation(Interpolation::Bicubic)
    .with_mean_std([0.5; 3], [0.5; 3]);

/// A 1x7 conv (padding `(0, 3)`).
pub(super) fn row7(out: usize) -> Conv {
    Conv::rect(out, [1, 7]).pad_hw(0, 3)
}

/// A 7x1 conv (padding `(3, 0)`).
pub(super) fn col7(out: usize) -> Conv {
    Conv::rect(out, [7, 1]).pad_hw(3, 0)
}

/// The 3x3 stride-2 max pool of the reduction blocks (and of Inception-ResNet-v2's stem).
pub(super) fn reduce_pool(
    b: &mut GraphBuilder,
    name: &str,
    x: TensorId,
) -> Result<TensorId, GraphError> {
    layers::max_pool(b, name, x, Pool2d::new(3, 2, 0, false))
}

/// The 3x3 stride-1 average pool of the pool branches, padding not counted in the divisor.
pub(super) fn branch_pool(
    b: &mut GraphBuilder,
    name: &str,
    x: TensorId,
) -> Result<TensorId, GraphError> {
    let mut pool = Pool2d::new(3, 1, 1, false);
    pool.count_include_pad = false;
    layers::avg_pool(b, name, x, pool)
}

/// timm's `inception_v4`.
pub fn inception_v4(o: &BuildOptions) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        let x = unit(b, "features", "0", x, Conv::new(32, 3).stride(2))?;
        let x = unit(b, "features", "1", x, Conv::new(32, 3))?;
        let x = unit(b, "features", "2", x, Conv::new(64, 3).pad(1))?;
        let x = mixed_3a(b, "features.3", x)?;
        let x = mixed_4a(b, "features.4", x)?;
        let x = mixed_5a(b, "features.5", x)?;
        let mut x = x;
        let mut i = 6;
        for _ in 0..4 {
            x = inception_a(b, &format!("features.{i}"), x)?;
            i += 1;
        }
        x = reduction_a(b, &format!("features.{i}"), x)?;
        i += 1;
        for _ in 0..7 {
            x = inception_b(b, &format!("features.{i}"), x)?;
            i += 1;
        }
        x = reduction_b(b, &format!("features.{i}"), x)?;
        i += 1;
        for _ in 0..3 {
            x = inception_c(b, &format!("features.{i}"), x)?;
            i += 1;
        }
        let x = layers::global_avg_pool(b, "global_pool.pool", x)?;
        let x = layers::flatten(b, "global_pool.flatten", x)?;
        layers::linear(b, "last_linear", x, o.classes, true)
    })?)
}

/// `Mixed3a`: max pool and a strided 3x3 conv side by side (pool first).
fn mixed_3a(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let x0 = reduce_pool(b, &format!("{p}.maxpool"), x)?;
    let x1 = unit(b, p, "conv", x, Conv::new(96, 3).stride(2))?;
    layers::concat(b, &format!("{p}.cat"), &[x0, x1])
}

/// `Mixed4a`: a 1x1 + 3x3 branch and a 1x1 + 1x7 + 7x1 + 3x3 branch.
fn mixed_4a(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0.0", x, Conv::new(64, 1))?;
    let x0 = unit(b, p, "branch0.1", x0, Conv::new(96, 3))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(64, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, row7(64))?;
    let x1 = unit(b, p, "branch1.2", x1, col7(64))?;
    let x1 = unit(b, p, "branch1.3", x1, Conv::new(96, 3))?;
    layers::concat(b, &format!("{p}.cat"), &[x0, x1])
}

/// `Mixed5a`: a strided 3x3 conv and a max pool side by side (conv first).
fn mixed_5a(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "conv", x, Conv::new(192, 3).stride(2))?;
    let x1 = reduce_pool(b, &format!("{p}.maxpool"), x)?;
    layers::concat(b, &format!("{p}.cat"), &[x0, x1])
}

/// `InceptionA` (384 channels in and out).
fn inception_a(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0", x, Conv::new(96, 1))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(64, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, Conv::new(96, 3).pad(1))?;
    let x2 = unit(b, p, "branch2.0", x, Conv::new(64, 1))?;
    let x2 = unit(b, p, "branch2.1", x2, Conv::new(96, 3).pad(1))?;
    let x2 = unit(b, p, "branch2.2", x2, Conv::new(96, 3).pad(1))?;
    let x3 = branch_pool(b, &format!("{p}.branch3.0"), x)?;
    let x3 = unit(b, p, "branch3.1", x3, Conv::new(96, 1))?;
    layers::concat(b, &format!("{p}.cat"), &[x0, x1, x2, x3])
}

/// `ReductionA` (Mixed6a): 384 channels to 1024, halving the grid.
fn reduction_a(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0", x, Conv::new(384, 3).stride(2))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(192, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, Conv::new(224, 3).pad(1))?;
    let x1 = unit(b, p, "branch1.2", x1, Conv::new(256, 3).stride(2))?;
    let x2 = reduce_pool(b, &format!("{p}.branch2"), x)?;
    layers::concat(b, &format!("{p}.cat"), &[x0, x1, x2])
}

/// `InceptionB` (1024 channels in and out).
fn inception_b(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0", x, Conv::new(384, 1))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(192, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, row7(224))?;
    let x1 = unit(b, p, "branch1.2", x1, col7(256))?;
    let x2 = unit(b, p, "branch2.0", x, Conv::new(192, 1))?;
    let x2 = unit(b, p, "branch2.1", x2, col7(192))?;
    let x2 = unit(b, p, "branch2.2", x2, row7(224))?;
    let x2 = unit(b, p, "branch2.3", x2, col7(224))?;
    let x2 = unit(b, p, "branch2.4", x2, row7(256))?;
    let x3 = branch_pool(b, &format!("{p}.branch3.0"), x)?;
    let x3 = unit(b, p, "branch3.1", x3, Conv::new(128, 1))?;
    layers::concat(b, &format!("{p}.cat"), &[x0, x1, x2, x3])
}

/// `ReductionB` (Mixed7a): 1024 channels to 1536, halving the grid.
fn reduction_b(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0.0", x, Conv::new(192, 1))?;
    let x0 = unit(b, p, "branch0.1", x0, Conv::new(192, 3).stride(2))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(256, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, row7(256))?;
    let x1 = unit(b, p, "branch1.2", x1, col7(320))?;
    let x1 = unit(b, p, "branch1.3", x1, Conv::new(320, 3).stride(2))?;
    let x2 = reduce_pool(b, &format!("{p}.branch2"), x)?;
    layers::concat(b, &format!("{p}.cat"), &[x0, x1, x2])
}

/// `InceptionC` (1536 channels in and out), with split 1x3 / 3x1 outputs.
fn inception_c(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let row = |out| Conv::rect(out, [1, 3]).pad_hw(0, 1);
    let col = |out| Conv::rect(out, [3, 1]).pad_hw(1, 0);
    let x0 = unit(b, p, "branch0", x, Conv::new(256, 1))?;
    let x1 = unit(b, p, "branch1_0", x, Conv::new(384, 1))?;
    let x1a = unit(b, p, "branch1_1a", x1, row(256))?;
    let x1b = unit(b, p, "branch1_1b", x1, col(256))?;
    let x2 = unit(b, p, "branch2_0", x, Conv::new(384, 1))?;
    let x2 = unit(b, p, "branch2_1", x2, col(448))?;
    let x2 = unit(b, p, "branch2_2", x2, row(512))?;
    let x2a = unit(b, p, "branch2_3a", x2, row(256))?;
    let x2b = unit(b, p, "branch2_3b", x2, col(256))?;
    let x3 = branch_pool(b, &format!("{p}.branch3.0"), x)?;
    let x3 = unit(b, p, "branch3.1", x3, Conv::new(256, 1))?;
    // The inner torch.cat of each split branch, then the outer cat: one flat concat is equal.
    layers::concat(b, &format!("{p}.cat"), &[x0, x1a, x1b, x2a, x2b, x3])
}
