//! LeNet-5 as defined by the fixtures' `generate.py`: a 1x32x32 input, two 5x5 convs with ReLU
//! and 2x2 max pooling, then three linear layers (400 → 120 → 84 → classes).

use wgcnn_graph::Graph;

use crate::layers::{self, Conv, Pool2d};
use crate::{BuildOptions, ModelError};

/// LeNet-5: keys `conv1`, `conv2`, `fc1`, `fc2`, `fc3` (weights and biases). Only a 32x32 input
/// fits `fc1`'s 400 inputs.
pub fn lenet5(o: &BuildOptions) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 1, |b, x| {
        let x = layers::conv(b, "conv1", x, Conv::new(6, 5))?;
        let x = layers::relu(b, "relu1", x)?;
        let x = layers::max_pool(b, "pool1", x, Pool2d::new(2, 2, 0, false))?;
        let x = layers::conv(b, "conv2", x, Conv::new(16, 5))?;
        let x = layers::relu(b, "relu2", x)?;
        let x = layers::max_pool(b, "pool2", x, Pool2d::new(2, 2, 0, false))?;
        let x = layers::flatten(b, "flatten", x)?;
        let x = layers::linear_fixed(b, "fc1", x, 16 * 5 * 5, 120, true)?;
        let x = layers::relu(b, "relu3", x)?;
        let x = layers::linear(b, "fc2", x, 84, true)?;
        let x = layers::relu(b, "relu4", x)?;
        layers::linear(b, "fc3", x, o.classes, true)
    })?)
}
