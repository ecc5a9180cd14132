//! Inception-v3 as in torchvision, built with `aux_logits=False, transform_input=False`:
//! `BasicConv2d` units (conv without bias, BatchNorm eps 0.001, ReLU), the stem, Mixed_5b..7c
//! (InceptionA..E), global average pooling and `fc`. Meant for 299x299 input.
//!
//! torchvision's ImageNet checkpoint is used with `transform_input=True`, which turns
//! ImageNet-normalized input into `(x - 0.5) / 0.5`; the registry therefore lists this network
//! with mean = std = 0.5, which gives the same input to this graph.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, TensorId};

use crate::layers::{self, Conv, Pool2d};
use crate::{BuildOptions, ModelError, Preprocess};

/// The preprocessing torchvision's checkpoint expects of this graph: resize 342, crop 299,
/// bilinear, and mean = std = 0.5 (ImageNet normalization followed by `transform_input`).
pub const PREPROCESS: Preprocess = Preprocess::INCEPTION.with_mean_std([0.5; 3], [0.5; 3]);

/// The BatchNorm epsilon of the Inception family's conv units (torchvision's Inception-v3,
/// timm's Inception-v4 and Inception-ResNet-v2).
pub(super) const EPS: f32 = 1e-3;

/// Checkpoint keys of the auxiliary classifier `AuxLogits`, which torchvision's ImageNet
/// checkpoint holds although an `aux_logits=False` model has no such module.
const AUX_KEYS: &[&str] = &[
    "AuxLogits.conv0.conv.weight",
    "AuxLogits.conv0.bn.weight",
    "AuxLogits.conv0.bn.bias",
    "AuxLogits.conv0.bn.running_mean",
    "AuxLogits.conv0.bn.running_var",
    "AuxLogits.conv0.bn.num_batches_tracked",
    "AuxLogits.conv1.conv.weight",
    "AuxLogits.conv1.bn.weight",
    "AuxLogits.conv1.bn.bias",
    "AuxLogits.conv1.bn.running_mean",
    "AuxLogits.conv1.bn.running_var",
    "AuxLogits.conv1.bn.num_batches_tracked",
    "AuxLogits.fc.weight",
    "AuxLogits.fc.bias",
];

/// A `BasicConv2d` (timm's Inception-v4: `ConvNormAct`) at `{block}.{name}`: conv without
/// bias, BatchNorm eps [`EPS`], ReLU.
pub(super) fn unit(
    b: &mut GraphBuilder,
    block: &str,
    name: &str,
    x: TensorId,
    c: Conv,
) -> Result<TensorId, GraphError> {
    layers::basic_conv(b, &format!("{block}.{name}"), x, c, EPS)
}

/// torchvision's `inception_v3(aux_logits=False, transform_input=False)`.
pub fn inception_v3(o: &BuildOptions) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        for key in AUX_KEYS {
            b.ignore_key_suffix(key);
        }
        let x = layers::basic_conv(b, "Conv2d_1a_3x3", x, Conv::new(32, 3).stride(2), EPS)?;
        let x = layers::basic_conv(b, "Conv2d_2a_3x3", x, Conv::new(32, 3), EPS)?;
        let x = layers::basic_conv(b, "Conv2d_2b_3x3", x, Conv::new(64, 3).pad(1), EPS)?;
        let x = layers::max_pool(b, "maxpool1", x, Pool2d::new(3, 2, 0, false))?;
        let x = layers::basic_conv(b, "Conv2d_3b_1x1", x, Conv::new(80, 1), EPS)?;
        let x = layers::basic_conv(b, "Conv2d_4a_3x3", x, Conv::new(192, 3), EPS)?;
        let x = layers::max_pool(b, "maxpool2", x, Pool2d::new(3, 2, 0, false))?;
        let x = inception_a(b, "Mixed_5b", x, 32)?;
        let x = inception_a(b, "Mixed_5c", x, 64)?;
        let x = inception_a(b, "Mixed_5d", x, 64)?;
        let x = inception_b(b, "Mixed_6a", x)?;
        let x = inception_c(b, "Mixed_6b", x, 128)?;
        let x = inception_c(b, "Mixed_6c", x, 160)?;
        let x = inception_c(b, "Mixed_6d", x, 160)?;
        let x = inception_c(b, "Mixed_6e", x, 192)?;
        let x = inception_d(b, "Mixed_7a", x)?;
        let x = inception_e(b, "Mixed_7b", x)?;
        let x = inception_e(b, "Mixed_7c", x)?;
        let x = layers::global_avg_pool(b, "avgpool", x)?;
        let x = layers::flatten(b, "flatten", x)?;
        layers::linear(b, "fc", x, o.classes, true)
    })?)
}

/// `F.avg_pool2d(x, 3, stride=1, padding=1)` (padding counted in the divisor) then the
/// `branch_pool` unit with `out` channels.
fn pool_branch(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    out: usize,
) -> Result<TensorId, GraphError> {
    let y = layers::avg_pool(b, &format!("{p}.avg_pool"), x, Pool2d::new(3, 1, 1, false))?;
    unit(b, p, "branch_pool", y, Conv::new(out, 1))
}

/// `InceptionA`: 1x1, 5x5, double 3x3 and pool branches (35x35 grid at 299).
fn inception_a(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    pool_features: usize,
) -> Result<TensorId, GraphError> {
    let b1 = unit(b, p, "branch1x1", x, Conv::new(64, 1))?;
    let b5 = unit(b, p, "branch5x5_1", x, Conv::new(48, 1))?;
    let b5 = unit(b, p, "branch5x5_2", b5, Conv::new(64, 5).pad(2))?;
    let b3 = unit(b, p, "branch3x3dbl_1", x, Conv::new(64, 1))?;
    let b3 = unit(b, p, "branch3x3dbl_2", b3, Conv::new(96, 3).pad(1))?;
    let b3 = unit(b, p, "branch3x3dbl_3", b3, Conv::new(96, 3).pad(1))?;
    let bp = pool_branch(b, p, x, pool_features)?;
    layers::concat(b, &format!("{p}.cat"), &[b1, b5, b3, bp])
}

/// `InceptionB` (Mixed_6a): grid reduction by a strided 3x3, a strided double 3x3 and a max pool.
fn inception_b(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let b3 = unit(b, p, "branch3x3", x, Conv::new(384, 3).stride(2))?;
    let bd = unit(b, p, "branch3x3dbl_1", x, Conv::new(64, 1))?;
    let bd = unit(b, p, "branch3x3dbl_2", bd, Conv::new(96, 3).pad(1))?;
    let bd = unit(b, p, "branch3x3dbl_3", bd, Conv::new(96, 3).stride(2))?;
    let bp = layers::max_pool(b, &format!("{p}.max_pool"), x, Pool2d::new(3, 2, 0, false))?;
    layers::concat(b, &format!("{p}.cat"), &[b3, bd, bp])
}

/// `InceptionC`: factorized 7x7 branches with `c7` inner channels (17x17 grid at 299).
fn inception_c(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    c7: usize,
) -> Result<TensorId, GraphError> {
    let row = |out| Conv::rect(out, [1, 7]).pad_hw(0, 3);
    let col = |out| Conv::rect(out, [7, 1]).pad_hw(3, 0);
    let b1 = unit(b, p, "branch1x1", x, Conv::new(192, 1))?;
    let b7 = unit(b, p, "branch7x7_1", x, Conv::new(c7, 1))?;
    let b7 = unit(b, p, "branch7x7_2", b7, row(c7))?;
    let b7 = unit(b, p, "branch7x7_3", b7, col(192))?;
    let bd = unit(b, p, "branch7x7dbl_1", x, Conv::new(c7, 1))?;
    let bd = unit(b, p, "branch7x7dbl_2", bd, col(c7))?;
    let bd = unit(b, p, "branch7x7dbl_3", bd, row(c7))?;
    let bd = unit(b, p, "branch7x7dbl_4", bd, col(c7))?;
    let bd = unit(b, p, "branch7x7dbl_5", bd, row(192))?;
    let bp = pool_branch(b, p, x, 192)?;
    layers::concat(b, &format!("{p}.cat"), &[b1, b7, bd, bp])
}

/// `InceptionD` (Mixed_7a): grid reduction by strided 3x3 convs and a max pool.
fn inception_d(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let b3 = unit(b, p, "branch3x3_1", x, Conv::new(192, 1))?;
    let b3 = unit(b, p, "branch3x3_2", b3, Conv::new(320, 3).stride(2))?;
    let b7 = unit(b, p, "branch7x7x3_1", x, Conv::new(192, 1))?;
    let b7 = unit(
        b,
        p,
        "branch7x7x3_2",
        b7,
        Conv::rect(192, [1, 7]).pad_hw(0, 3),
    )?;
    let b7 = unit(
        b,
        p,
        "branch7x7x3_3",
        b7,
        Conv::rect(192, [7, 1]).pad_hw(3, 0),
    )?;
    let b7 = unit(b, p, "branch7x7x3_4", b7, Conv::new(192, 3).stride(2))?;
    let bp = layers::max_pool(b, &format!("{p}.max_pool"), x, Pool2d::new(3, 2, 0, false))?;
    layers::concat(b, &format!("{p}.cat"), &[b3, b7, bp])
}

/// `InceptionE`: 1x1, split 3x3 (1x3 and 3x1 side by side), split double 3x3, pool
/// (8x8 grid at 299).
fn inception_e(b: &mut GraphBuilder, p: &str, x: TensorId) -> Result<TensorId, GraphError> {
    let row = Conv::rect(384, [1, 3]).pad_hw(0, 1);
    let col = Conv::rect(384, [3, 1]).pad_hw(1, 0);
    let b1 = unit(b, p, "branch1x1", x, Conv::new(320, 1))?;
    let b3 = unit(b, p, "branch3x3_1", x, Conv::new(384, 1))?;
    let b3a = unit(b, p, "branch3x3_2a", b3, row)?;
    let b3b = unit(b, p, "branch3x3_2b", b3, col)?;
    let bd = unit(b, p, "branch3x3dbl_1", x, Conv::new(448, 1))?;
    let bd = unit(b, p, "branch3x3dbl_2", bd, Conv::new(384, 3).pad(1))?;
    let bda = unit(b, p, "branch3x3dbl_3a", bd, row)?;
    let bdb = unit(b, p, "branch3x3dbl_3b", bd, col)?;
    let bp = pool_branch(b, p, x, 192)?;
    // torch.cat([a, b], 1) inside a branch, then the outer cat: one flat concat is equal.
    layers::concat(b, &format!("{p}.cat"), &[b1, b3a, b3b, bda, bdb, bp])
}
