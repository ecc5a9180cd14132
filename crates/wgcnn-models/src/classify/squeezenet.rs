//! SqueezeNet 1.0 and 1.1 as in torchvision: Fire modules between ceil-mode max pools, and a
//! 1x1 conv classifier with ReLU and global average pooling.

use wgcnn_graph::{Graph, GraphBuilder, GraphError, TensorId};

use crate::layers::{self, Conv, Pool2d};
use crate::{BuildOptions, ModelError};

/// One entry of `features` after the stem.
#[derive(Clone, Copy, Debug)]
enum Layer {
    /// `Fire(squeeze, expand1x1, expand3x3)`.
    Fire(usize, usize, usize),
    /// `MaxPool2d(3, 2, ceil_mode=True)`.
    Pool,
}

use Layer::{Fire as F, Pool as M};

#[rustfmt::skip]
/// SqueezeNet 1.0 `features` after the 7x7/2 96-channel stem conv and its ReLU (from index 2).
const V1_0: &[Layer] = &[
    M, F(16, 64, 64), F(16, 64, 64), F(32, 128, 128), M,
    F(32, 128, 128), F(48, 192, 192), F(48, 192, 192), F(64, 256, 256), M, F(64, 256, 256),
];
#[rustfmt::skip]
/// SqueezeNet 1.1 `features` after the 3x3/2 64-channel stem conv and its ReLU (from index 2).
const V1_1: &[Layer] = &[
    M, F(16, 64, 64), F(16, 64, 64), M, F(32, 128, 128), F(32, 128, 128), M,
    F(48, 192, 192), F(48, 192, 192), F(64, 256, 256), F(64, 256, 256),
];

/// torchvision's SqueezeNet 1.0.
pub fn squeezenet1_0(o: &BuildOptions) -> Result<Graph, ModelError> {
    squeezenet(o, Conv::new(96, 7).stride(2), V1_0)
}

/// torchvision's SqueezeNet 1.1.
pub fn squeezenet1_1(o: &BuildOptions) -> Result<Graph, ModelError> {
    squeezenet(o, Conv::new(64, 3).stride(2), V1_1)
}

fn squeezenet(o: &BuildOptions, stem: Conv, config: &[Layer]) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        let x = layers::conv(b, "features.0", x, stem)?;
        let mut x = layers::relu(b, "features.1", x)?;
        for (i, layer) in config.iter().enumerate() {
            let name = format!("features.{}", i + 2);
            x = match *layer {
                Layer::Fire(s, e1, e3) => fire(b, &name, x, s, e1, e3)?,
                Layer::Pool => layers::max_pool(b, &name, x, Pool2d::new(3, 2, 0, true))?,
            };
        }
        let x = layers::conv(b, "classifier.1", x, Conv::new(o.classes, 1))?;
        let x = layers::relu(b, "classifier.2", x)?;
        let x = layers::global_avg_pool(b, "classifier.3", x)?;
        layers::flatten(b, "flatten", x)
    })?)
}

/// A Fire module at `p`: `{p}.squeeze` 1x1 + ReLU, then `{p}.expand1x1` 1x1 and
/// `{p}.expand3x3` 3x3 (padding 1), each with ReLU, concatenated along channels (`{p}.cat`).
fn fire(
    b: &mut GraphBuilder,
    p: &str,
    x: TensorId,
    squeeze: usize,
    e1: usize,
    e3: usize,
) -> Result<TensorId, GraphError> {
    let s = layers::conv(b, &format!("{p}.squeeze"), x, Conv::new(squeeze, 1))?;
    let s = layers::relu(b, &format!("{p}.squeeze_activation"), s)?;
    let a = layers::conv(b, &format!("{p}.expand1x1"), s, Conv::new(e1, 1))?;
    let a = layers::relu(b, &format!("{p}.expand1x1_activation"), a)?;
    let c = layers::conv(b, &format!("{p}.expand3x3"), s, Conv::new(e3, 3).pad(1))?;
    let c = layers::relu(b, &format!("{p}.expand3x3_activation"), c)?;
    layers::concat(b, &format!("{p}.cat"), &[a, c])
}
