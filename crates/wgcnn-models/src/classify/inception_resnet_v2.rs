//! Inception-ResNet-v2 as in timm (`inception_resnet_v2`): a stem of `BasicConv2d` units (conv
//! without bias, BatchNorm eps 0.001, ReLU; keys `.conv` / `.bn`), Mixed_5b, ten Block35,
//! Mixed_6a, twenty Block17, Mixed_7a, nine Block8 and a last Block8 without ReLU, `conv2d_7b`,
//! global average pooling and `classif`. Meant for 299x299 input.
//!
//! The residual blocks compute `relu(conv2d(cat(branches)) * scale + x)`: the scale is a
//! one-element constant multiplied in by an [`wgcnn_graph::Op::Mul`] node.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, TensorId};

use super::inception::{EPS, unit};
use super::inception_v4::{branch_pool, col7, reduce_pool, row7};
use crate::layers::{self, Conv};
use crate::{BuildOptions, Interpolation, ModelError, Preprocess};

/// timm's pretrained config: 299 crop at `crop_pct` 0.8975 (resize 333), bicubic, mean = std =
/// 0.5.
pub const PREPROCESS: Preprocess = Preprocess::imagenet(333, 299)
    .with_interpolation(Interpolation::Bicubic)
    .with_mean_std([0.5; 3], [0.5; 3]);

/// timm's `inception_resnet_v2`.
pub fn inception_resnet_v2(o: &BuildOptions) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        let x = layers::basic_conv(b, "conv2d_1a", x, Conv::new(32, 3).stride(2), EPS)?;
        let x = layers::basic_conv(b, "conv2d_2a", x, Conv::new(32, 3), EPS)?;
        let x = layers::basic_conv(b, "conv2d_2b", x, Conv::new(64, 3).pad(1), EPS)?;
        let x = reduce_pool(b, "maxpool_3a", x)?;
        let x = layers::basic_conv(b, "conv2d_3b", x, Conv::new(80, 1), EPS)?;
        let x = layers::basic_conv(b, "conv2d_4a", x, Conv::new(192, 3), EPS)?;
        let x = reduce_pool(b, "maxpool_5a", x)?;
        let mut x = mixed_5b(b, "mixed_5b", x)?;
        for i in 0..10 {
            x = block35(b, &format!("repeat.{i}"), x, 0.17)?;
        }
        x = mixed_6a(b, "mixed_6a", x)?;
        for i in 0..20 {
            x = block17(b, &format!("repeat_1.{i}"), x, 0.10)?;
        }
        x = mixed_7a(b, "mixed_7a", x)?;
        for i in 0..9 {
            x = block8(b, &format!("repeat_2.{i}"), x, 0.20, true)?;
        }
        x = block8(b, "block8", x, 1.0, false)?;
        let x = layers::basic_conv(b, "conv2d_7b", x, Conv::new(1536, 1), EPS)?;
        let x = layers::global_avg_pool(b, "global_pool.pool", x)?;
        let x = layers::flatten(b, "global_pool.flatten", x)?;
        layers::linear(b, "classif", x, o.classes, true)
    })?)
}

/// The residual tail of Block35/17/8: `conv2d` (1x1 with bias) back to the input's channels,
/// `* scale` (no node when the scale is 1), `+ x`, then ReLU when `relu`.
fn residual(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    mixed: TensorId,
    scale: f32,
    relu: bool,
) -> Result<TensorId, GraphError> {
    let c = layers::channels(b, p, "residual", x)?;
    let mut y = layers::conv(b, &format!("{p}.conv2d"), mixed, Conv::new(c, 1))?;
    if scale != 1.0 {
        let s = b.constant(&format!("{p}.scale"), &[1], vec![scale])?;
        y = layers::mul(b, &format!("{p}.mul"), y, s)?;
    }
    let y = layers::add(b, &format!("{p}.add"), y, x)?;
    if relu {
        layers::relu(b, &format!("{p}.relu"), y)
    } else {
        Ok(y)
    }
}

/// `Mixed_5b`: 192 channels to 320 (35x35 grid at 299).
fn mixed_5b(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0", x, Conv::new(96, 1))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(48, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, Conv::new(64, 5).pad(2))?;
    let x2 = unit(b, p, "branch2.0", x, Conv::new(64, 1))?;
    let x2 = unit(b, p, "branch2.1", x2, Conv::new(96, 3).pad(1))?;
    let x2 = unit(b, p, "branch2.2", x2, Conv::new(96, 3).pad(1))?;
    let x3 = branch_pool(b, &format!("{p}.branch3.0"), x)?;
    let x3 = unit(b, p, "branch3.1", x3, Conv::new(64, 1))?;
    layers::concat(b, &format!("{p}.cat"), &[x0, x1, x2, x3])
}

/// `Block35` (Inception-ResNet-A, 320 channels).
fn block35(b: &mut GraphBuilder, p: &str, x: TensorId, scale: f32) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0", x, Conv::new(32, 1))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(32, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, Conv::new(32, 3).pad(1))?;
    let x2 = unit(b, p, "branch2.0", x, Conv::new(32, 1))?;
    let x2 = unit(b, p, "branch2.1", x2, Conv::new(48, 3).pad(1))?;
    let x2 = unit(b, p, "branch2.2", x2, Conv::new(64, 3).pad(1))?;
    let mixed = layers::concat(b, &format!("{p}.cat"), &[x0, x1, x2])?;
    residual(b, p, x, mixed, scale, true)
}

/// `Mixed_6a` (Reduction-A): 320 channels to 1088, halving the grid.
fn mixed_6a(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0", x, Conv::new(384, 3).stride(2))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(256, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, Conv::new(256, 3).pad(1))?;
    let x1 = unit(b, p, "branch1.2", x1, Conv::new(384, 3).stride(2))?;
    let x2 = reduce_pool(b, &format!("{p}.branch2"), x)?;
    layers::concat(b, &format!("{p}.cat"), &[x0, x1, x2])
}

/// `Block17` (Inception-ResNet-B, 1088 channels).
fn block17(b: &mut GraphBuilder, p: &str, x: TensorId, scale: f32) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0", x, Conv::new(192, 1))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(128, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, row7(160))?;
    let x1 = unit(b, p, "branch1.2", x1, col7(192))?;
    let mixed = layers::concat(b, &format!("{p}.cat"), &[x0, x1])?;
    residual(b, p, x, mixed, scale, true)
}

/// `Mixed_7a` (Reduction-B): 1088 channels to 2080, halving the grid.
fn mixed_7a(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0.0", x, Conv::new(256, 1))?;
    let x0 = unit(b, p, "branch0.1", x0, Conv::new(384, 3).stride(2))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(256, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, Conv::new(288, 3).stride(2))?;
    let x2 = unit(b, p, "branch2.0", x, Conv::new(256, 1))?;
    let x2 = unit(b, p, "branch2.1", x2, Conv::new(288, 3).pad(1))?;
    let x2 = unit(b, p, "branch2.2", x2, Conv::new(320, 3).stride(2))?;
    let x3 = reduce_pool(b, &format!("{p}.branch3"), x)?;
    layers::concat(b, &format!("{p}.cat"), &[x0, x1, x2, x3])
}

/// `Block8` (Inception-ResNet-C, 2080 channels); the last one has no ReLU.
fn block8(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    scale: f32,
    relu: bool,
) -> Result<TensorId, GraphError> {
    let x0 = unit(b, p, "branch0", x, Conv::new(192, 1))?;
    let x1 = unit(b, p, "branch1.0", x, Conv::new(192, 1))?;
    let x1 = unit(b, p, "branch1.1", x1, Conv::rect(224, [1, 3]).pad_hw(0, 1))?;
    let x1 = unit(b, p, "branch1.2", x1, Conv::rect(256, [3, 1]).pad_hw(1, 0))?;
    let mixed = layers::concat(b, &format!("{p}.cat"), &[x0, x1])?;
    residual(b, p, x, mixed, scale, relu)
}
