//! VGG as in torchvision: 3x3 convs (optionally with BatchNorm) and 2x2 max pools in
//! `features`, `AdaptiveAvgPool2d((7, 7))`, and a three-layer classifier.

use wgcnn_graph::Graph;

use crate::layers::{self, Activation, Conv, Pool2d};
use crate::{BuildOptions, ModelError};

/// One entry of a VGG configuration: a 3x3 conv with this many channels, or a max pool.
#[derive(Clone, Copy, Debug)]
enum Layer {
    Conv(usize),
    Pool,
}

use Layer::{Conv as C, Pool as M};

#[rustfmt::skip]
/// Configuration "A" (VGG-11).
const VGG11: &[Layer] = &[C(64), M, C(128), M, C(256), C(256), M, C(512), C(512), M, C(512), C(512), M];
#[rustfmt::skip]
/// Configuration "D" (VGG-16).
const VGG16: &[Layer] = &[
    C(64), C(64), M, C(128), C(128), M, C(256), C(256), C(256), M,
    C(512), C(512), C(512), M, C(512), C(512), C(512), M,
];
#[rustfmt::skip]
/// Configuration "E" (VGG-19).
const VGG19: &[Layer] = &[
    C(64), C(64), M, C(128), C(128), M, C(256), C(256), C(256), C(256), M,
    C(512), C(512), C(512), C(512), M, C(512), C(512), C(512), C(512), M,
];

/// torchvision's VGG-11.
pub fn vgg11(o: &BuildOptions) -> Result<Graph, ModelError> {
    vgg(o, VGG11, false)
}

/// torchvision's VGG-16.
pub fn vgg16(o: &BuildOptions) -> Result<Graph, ModelError> {
    vgg(o, VGG16, false)
}

/// torchvision's VGG-16 with BatchNorm after every conv.
pub fn vgg16_bn(o: &BuildOptions) -> Result<Graph, ModelError> {
    vgg(o, VGG16, true)
}

/// torchvision's VGG-19.
pub fn vgg19(o: &BuildOptions) -> Result<Graph, ModelError> {
    vgg(o, VGG19, false)
}

/// `features` is a flat `Sequential`: each conv takes index `i` (its BatchNorm `i + 1` and its
/// ReLU the next index), each pool one index.
fn vgg(o: &BuildOptions, config: &[Layer], batch_norm: bool) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, mut x| {
        let mut i = 0;
        for layer in config {
            match *layer {
                Layer::Conv(out) => {
                    let conv = Conv::new(out, 3).pad(1);
                    if batch_norm {
                        let names = [
                            format!("features.{i}"),
                            format!("features.{}", i + 1),
                            format!("features.{}", i + 2),
                        ];
                        x = layers::conv_bn_act(
                            b,
                            [&names[0], &names[1], &names[2]],
                            x,
                            conv,
                            layers::BN_EPS,
                            Activation::Relu,
                        )?;
                        i += 3;
                    } else {
                        x = layers::conv(b, &format!("features.{i}"), x, conv)?;
                        x = layers::relu(b, &format!("features.{}", i + 1), x)?;
                        i += 2;
                    }
                }
                Layer::Pool => {
                    x = layers::max_pool(
                        b,
                        &format!("features.{i}"),
                        x,
                        Pool2d::new(2, 2, 0, false),
                    )?;
                    i += 1;
                }
            }
        }
        let x = layers::adaptive_avg_pool(b, "avgpool", x, [7, 7])?;
        let x = layers::flatten(b, "flatten", x)?;
        let x = layers::linear(b, "classifier.0", x, 4096, true)?;
        let x = layers::relu(b, "classifier.1", x)?;
        let x = layers::linear(b, "classifier.3", x, 4096, true)?;
        let x = layers::relu(b, "classifier.4", x)?;
        layers::linear(b, "classifier.6", x, o.classes, true)
    })?)
}
