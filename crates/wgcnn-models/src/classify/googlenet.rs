//! GoogLeNet (Inception v1) as in torchvision, built with `aux_logits=False,
//! transform_input=False`: `BasicConv2d` units (conv without bias, BatchNorm eps 0.001, ReLU),
//! nine inception modules, ceil-mode max pools, global average pooling and `fc`.
//!
//! torchvision's inception branch 3 uses a 3x3 conv where the paper has 5x5; so do we, as the
//! checkpoints' `branch3.1.conv.weight` is `[.., .., 3, 3]`.
//!
//! torchvision's ImageNet checkpoint is used with `transform_input=True`, which turns
//! ImageNet-normalized input into `(x - 0.5) / 0.5`; the registry therefore lists this network
//! with mean = std = 0.5, which gives the same input to this graph.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, TensorId};

use crate::layers::{self, Conv, Pool2d};
use crate::{BuildOptions, ModelError, Preprocess};

/// The preprocessing torchvision's checkpoint expects of this graph: resize 256, crop 224,
/// bilinear, and mean = std = 0.5 (ImageNet normalization followed by `transform_input`).
pub const PREPROCESS: Preprocess = Preprocess::IMAGENET.with_mean_std([0.5; 3], [0.5; 3]);

/// GoogLeNet's BatchNorm epsilon.
const EPS: f32 = 1e-3;

/// Channel counts of one inception module: `1x1`, `3x3 reduce`, `3x3`, `"5x5" reduce`, `"5x5"`
/// (a 3x3 in torchvision), `pool proj`.
type InceptionCfg = [usize; 6];

/// Checkpoint keys of the auxiliary classifiers, which torchvision's ImageNet checkpoint holds
/// although an `aux_logits=False` model has no such modules.
const AUX_KEYS: &[&str] = &[
    "conv.conv.weight",
    "conv.bn.weight",
    "conv.bn.bias",
    "conv.bn.running_mean",
    "conv.bn.running_var",
    "conv.bn.num_batches_tracked",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
];

/// torchvision's `googlenet(aux_logits=False, transform_input=False)`.
pub fn googlenet(o: &BuildOptions) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        for aux in ["aux1", "aux2"] {
            for key in AUX_KEYS {
                b.ignore_key_suffix(&format!("{aux}.{key}"));
            }
        }
        let pool = |b: &mut GraphBuilder, name: &str, x: TensorId, k: usize| {
            layers::max_pool(b, name, x, Pool2d::new(k, 2, 0, true))
        };
        let x = layers::basic_conv(b, "conv1", x, Conv::new(64, 7).stride(2).pad(3), EPS)?;
        let x = pool(b, "maxpool1", x, 3)?;
        let x = layers::basic_conv(b, "conv2", x, Conv::new(64, 1), EPS)?;
        let x = layers::basic_conv(b, "conv3", x, Conv::new(192, 3).pad(1), EPS)?;
        let x = pool(b, "maxpool2", x, 3)?;
        let x = inception(b, "inception3a", x, [64, 96, 128, 16, 32, 32])?;
        let x = inception(b, "inception3b", x, [128, 128, 192, 32, 96, 64])?;
        let x = pool(b, "maxpool3", x, 3)?;
        let x = inception(b, "inception4a", x, [192, 96, 208, 16, 48, 64])?;
        let x = inception(b, "inception4b", x, [160, 112, 224, 24, 64, 64])?;
        let x = inception(b, "inception4c", x, [128, 128, 256, 24, 64, 64])?;
        let x = inception(b, "inception4d", x, [112, 144, 288, 32, 64, 64])?;
        let x = inception(b, "inception4e", x, [256, 160, 320, 32, 128, 128])?;
        let x = pool(b, "maxpool4", x, 2)?;
        let x = inception(b, "inception5a", x, [256, 160, 320, 32, 128, 128])?;
        let x = inception(b, "inception5b", x, [384, 192, 384, 48, 128, 128])?;
        let x = layers::global_avg_pool(b, "avgpool", x)?;
        let x = layers::flatten(b, "flatten", x)?;
        layers::linear(b, "fc", x, o.classes, true)
    })?)
}

/// One inception module: four branches concatenated along channels.
fn inception(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    c: InceptionCfg,
) -> Result<TensorId, GraphError> {
    let b1 = layers::basic_conv(b, &format!("{p}.branch1"), x, Conv::new(c[0], 1), EPS)?;
    let b2 = layers::basic_conv(b, &format!("{p}.branch2.0"), x, Conv::new(c[1], 1), EPS)?;
    let b2 = layers::basic_conv(
        b,
        &format!("{p}.branch2.1"),
        b2,
        Conv::new(c[2], 3).pad(1),
        EPS,
    )?;
    let b3 = layers::basic_conv(b, &format!("{p}.branch3.0"), x, Conv::new(c[3], 1), EPS)?;
    let b3 = layers::basic_conv(
        b,
        &format!("{p}.branch3.1"),
        b3,
        Conv::new(c[4], 3).pad(1),
        EPS,
    )?;
    let b4 = layers::max_pool(b, &format!("{p}.branch4.0"), x, Pool2d::new(3, 1, 1, true))?;
    let b4 = layers::basic_conv(b, &format!("{p}.branch4.1"), b4, Conv::new(c[5], 1), EPS)?;
    layers::concat(b, &format!("{p}.cat"), &[b1, b2, b3, b4])
}
