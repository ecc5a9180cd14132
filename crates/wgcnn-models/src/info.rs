//! What the registry knows about each network: [`ModelInfo`], its [`Preprocess`] and the
//! [`BuildOptions`] a graph is built for.

use wgcnn_graph::{Graph, GraphError};

use crate::ModelError;

/// How a checkpoint's keys are spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyNaming {
    /// torchvision's `state_dict` keys (`layer1.0.conv1.weight`, `features.0.weight`).
    Torchvision,
    /// timm's `state_dict` keys (`conv_stem.weight`, `blocks.0.0.bn1.running_mean`).
    Timm,
}

impl KeyNaming {
    /// `"torchvision"` or `"timm"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyNaming::Torchvision => "torchvision",
            KeyNaming::Timm => "timm",
        }
    }
}

impl std::fmt::Display for KeyNaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resampling filter used when resizing the image before the crop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    Bilinear,
    Bicubic,
}

/// The image preprocessing a network was trained with: resize the shorter side to `resize`,
/// center-crop `crop` x `crop`, scale to `[0, 1]`, then `(x - mean[c]) / std[c]` per channel.
///
/// Single-channel networks (LeNet-5) take the image's luminance and use `mean[0]`, `std[0]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// Length of the shorter side after resizing.
    pub resize: usize,
    /// Side of the square center crop fed to the network.
    pub crop: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub interpolation: Interpolation,
}

impl Preprocess {
    /// ImageNet's channel means (RGB).
    pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
    /// ImageNet's channel standard deviations (RGB).
    pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

    /// torchvision's classification default: resize 256, crop 224, bilinear, ImageNet mean/std.
    pub const IMAGENET: Preprocess = Preprocess::imagenet(256, 224);

    /// torchvision's Inception-v3 transform: resize 342, crop 299, bilinear, ImageNet mean/std.
    pub const INCEPTION: Preprocess = Preprocess::imagenet(342, 299);

    /// ImageNet mean/std with bilinear resizing to `resize`, then a `crop` center crop.
    pub const fn imagenet(resize: usize, crop: usize) -> Preprocess {
        Preprocess {
            resize,
            crop,
            mean: Self::IMAGENET_MEAN,
            std: Self::IMAGENET_STD,
            interpolation: Interpolation::Bilinear,
        }
    }

    /// The same with another resampling filter (timm models often use bicubic).
    pub const fn with_interpolation(mut self, interpolation: Interpolation) -> Preprocess {
        self.interpolation = interpolation;
        self
    }

    /// The same with other normalization constants (e.g. `[0.5; 3]` for TensorFlow ports).
    pub const fn with_mean_std(mut self, mean: [f32; 3], std: [f32; 3]) -> Preprocess {
        self.mean = mean;
        self.std = std;
        self
    }
}

/// What to build a graph for. The input is `[batch, channels, height, width]`, where the
/// channel count is the architecture's own ([`ModelInfo::channels`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildOptions {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    /// Number of output logits (size of the last classifier layer).
    pub classes: usize,
}

impl BuildOptions {
    /// Batch 1, a `size` x `size` input, `classes` logits.
    pub const fn square(size: usize, classes: usize) -> BuildOptions {
        BuildOptions {
            batch: 1,
            height: size,
            width: size,
            classes,
        }
    }

    /// Checks that every extent is positive.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 || self.height == 0 || self.width == 0 || self.classes == 0 {
            return Err(format!(
                "batch ({}), height ({}), width ({}) and classes ({}) must all be positive",
                self.batch, self.height, self.width, self.classes
            ));
        }
        Ok(())
    }
}

/// Builds a network's graph for the given options. Parameters are declared (key + shape) but
/// hold no values until [`Graph::bind`], so building is cheap at any resolution.
pub type BuildFn = fn(&BuildOptions) -> Result<Graph, ModelError>;

/// One registered network.
///
/// Registry entries are written as one `const` expression, e.g.
/// `ModelInfo::torchvision("resnet50", "resnet", resnet::resnet50)` or
/// `ModelInfo::timm("seresnet50", "senet", senet::seresnet50).with_preprocess(...)`.
#[derive(Clone, Copy, Debug)]
pub struct ModelInfo {
    /// The name users type and fixtures are named after (`resnet50`, `squeezenet1_1`).
    pub name: &'static str,
    /// Architecture family (`resnet`, `vgg`, ...), for grouping in listings.
    pub family: &'static str,
    /// The resolution the network is meant to run at (224, 299 for Inception, 32 for LeNet-5).
    pub default_resolution: usize,
    /// Number of classes of the standard checkpoints (1000 for ImageNet).
    pub classes: usize,
    /// Input channels (3, or 1 for LeNet-5).
    pub channels: usize,
    /// How the checkpoints' keys are spelled.
    pub key_naming: KeyNaming,
    /// The preprocessing the standard checkpoints expect.
    pub preprocess: Preprocess,
    /// The graph builder; prefer [`ModelInfo::graph`], which validates the options and turns a
    /// shape failure into [`ModelError::InputSize`].
    pub build: BuildFn,
}

impl ModelInfo {
    /// A torchvision ImageNet classifier: 224x224 RGB, 1000 classes, [`Preprocess::IMAGENET`].
    pub const fn torchvision(
        name: &'static str,
        family: &'static str,
        build: BuildFn,
    ) -> ModelInfo {
        ModelInfo {
            name,
            family,
            default_resolution: 224,
            classes: 1000,
            channels: 3,
            key_naming: KeyNaming::Torchvision,
            preprocess: Preprocess::IMAGENET,
            build,
        }
    }

    /// A timm ImageNet classifier: as [`ModelInfo::torchvision`] with timm key naming and
    /// bicubic resizing (timm's usual default; override with [`ModelInfo::with_preprocess`]).
    pub const fn timm(name: &'static str, family: &'static str, build: BuildFn) -> ModelInfo {
        let mut info = ModelInfo::torchvision(name, family, build);
        info.key_naming = KeyNaming::Timm;
        info.preprocess = Preprocess::IMAGENET.with_interpolation(Interpolation::Bicubic);
        info
    }

    /// The same entry with another default resolution (the preprocessing is not changed).
    pub const fn with_resolution(mut self, resolution: usize) -> ModelInfo {
        self.default_resolution = resolution;
        self
    }

    /// The same entry with another preprocessing.
    pub const fn with_preprocess(mut self, preprocess: Preprocess) -> ModelInfo {
        self.preprocess = preprocess;
        self
    }

    /// The same entry with another class count.
    pub const fn with_classes(mut self, classes: usize) -> ModelInfo {
        self.classes = classes;
        self
    }

    /// The same entry with another input channel count.
    pub const fn with_channels(mut self, channels: usize) -> ModelInfo {
        self.channels = channels;
        self
    }

    /// Batch 1 at the default resolution with the default class count.
    pub const fn default_options(&self) -> BuildOptions {
        BuildOptions::square(self.default_resolution, self.classes)
    }

    /// Size and cost at the default resolution, batch 1 (what `wgcnn models` lists). Cheap:
    /// builds the graph without weights.
    pub fn stats(&self) -> Result<ModelStats, ModelError> {
        Ok(ModelStats::of(&self.graph(&self.default_options())?))
    }

    /// Builds the graph for `options` (no weights are allocated).
    ///
    /// Errors: [`ModelError::InvalidOptions`] for a zero extent, [`ModelError::InputSize`] when
    /// the resolution does not fit the architecture (too small for its downsampling, or a
    /// classifier of fixed input size), [`ModelError::Graph`] otherwise.
    pub fn graph(&self, options: &BuildOptions) -> Result<Graph, ModelError> {
        options
            .validate()
            .map_err(|reason| ModelError::InvalidOptions {
                model: self.name.to_string(),
                reason,
            })?;
        (self.build)(options).map_err(|e| match e {
            ModelError::Graph(GraphError::Shape {
                node,
                op,
                inputs,
                message,
            }) => ModelError::InputSize {
                model: self.name.to_string(),
                height: options.height,
                width: options.width,
                detail: format!("node {node} ({op}): {message}; input shapes {inputs:?}"),
            },
            other => other,
        })
    }
}

/// A network's size and cost, counted on a built (not necessarily bound) graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelStats {
    /// Learned parameters, as PyTorch's `sum(p.numel() for p in model.parameters())` counts
    /// them (torchvision's published figures).
    pub params: usize,
    /// Non-learned state: BatchNorm running means and variances.
    pub buffers: usize,
    /// Multiply-accumulates of one forward pass (GFLOPs = 2 x MACs / 1e9; torchvision's
    /// "GFLOPS" column actually lists GMACs).
    pub macs: u64,
}

impl ModelStats {
    /// Counts `graph`'s parameters (split into learned ones and BatchNorm statistics by key)
    /// and multiply-accumulates.
    pub fn of(graph: &Graph) -> ModelStats {
        let (mut params, mut buffers) = (0, 0);
        for id in graph.params() {
            let t = graph.tensor(id);
            if t.name.ends_with("running_mean") || t.name.ends_with("running_var") {
                buffers += t.numel();
            } else {
                params += t.numel();
            }
        }
        ModelStats {
            params,
            buffers,
            macs: graph.macs(),
        }
    }
}
