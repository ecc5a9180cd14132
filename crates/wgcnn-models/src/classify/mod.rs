//! Image classification networks, one file per architecture family. Each exposes one
//! `pub fn <name>(&BuildOptions) -> Result<Graph, ModelError>` per registered variant.

pub mod alexnet;
pub mod densenet;
pub mod efficientnet;
pub mod googlenet;
pub mod inception;
pub mod inception_resnet_v2;
pub mod inception_v4;
pub mod lenet;
pub mod mobilenet;
pub mod resnet;
pub mod senet;
pub mod squeezenet;
pub mod vgg;
