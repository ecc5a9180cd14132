//! AlexNet as in torchvision (the "one weird trick" variant: 64-192-384-256-256 channels).

use wgcnn_graph::Graph;

use crate::layers::{self, Conv, Pool2d};
use crate::{BuildOptions, ModelError};

/// torchvision's `alexnet`: `features.{0,3,6,8,10}` convs with ReLU and 3x3/2 max pools,
/// `AdaptiveAvgPool2d((6, 6))`, then `classifier.{1,4,6}` linear layers (dropout is the
/// identity at inference).
pub fn alexnet(o: &BuildOptions) -> Result<Graph, ModelError> {
    Ok(layers::graph(o, 3, |b, x| {
        let pool = Pool2d::new(3, 2, 0, false);
        let x = layers::conv(b, "features.0", x, Conv::new(64, 11).stride(4).pad(2))?;
        let x = layers::relu(b, "features.1", x)?;
        let x = layers::max_pool(b, "features.2", x, pool.clone())?;
        let x = layers::conv(b, "features.3", x, Conv::new(192, 5).pad(2))?;
        let x = layers::relu(b, "features.4", x)?;
        let x = layers::max_pool(b, "features.5", x, pool.clone())?;
        let x = layers::conv(b, "features.6", x, Conv::new(384, 3).pad(1))?;
        let x = layers::relu(b, "features.7", x)?;
        let x = layers::conv(b, "features.8", x, Conv::new(256, 3).pad(1))?;
        let x = layers::relu(b, "features.9", x)?;
        let x = layers::conv(b, "features.10", x, Conv::new(256, 3).pad(1))?;
        let x = layers::relu(b, "features.11", x)?;
        let x = layers::max_pool(b, "features.12", x, pool)?;
        let x = layers::adaptive_avg_pool(b, "avgpool", x, [6, 6])?;
        let x = layers::flatten(b, "flatten", x)?;
        let x = layers::linear(b, "classifier.1", x, 4096, true)?;
        let x = layers::relu(b, "classifier.2", x)?;
        let x = layers::linear(b, "classifier.4", x, 4096, true)?;
        let x = layers::relu(b, "classifier.5", x)?;
        layers::linear(b, "classifier.6", x, o.classes, true)
    })?)
}
