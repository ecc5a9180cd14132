//! Semantic segmenters as [`wgcnn_graph::Graph`]s: torchvision's FCN, DeepLabV3 and LR-ASPP with
//! their exact `state_dict` keys (`backbone.layer4.2.conv2.weight`, `backbone.16.0.weight`,
//! `classifier.0.convs.4.1.weight`, `classifier.cbr.0.weight`, `aux_classifier.0.weight`, ...).
//!
//! A segmenter graph takes one input `input` `[N, 3, H, W]`, already normalized (ImageNet
//! mean/std; the preprocessing of [`SegmenterInfo::preprocess`] runs before it), and has the
//! output `output` `[N, classes, H, W]`: torchvision's `out`, the head's logits bilinearly
//! upsampled (`align_corners=False`) to the input size. With [`SegmentBuildOptions::aux`] the
//! auxiliary `FCNHead` runs too and `aux` (upsampled the same way) is a second output; without
//! it the checkpoint's `aux_classifier.*` keys are accepted and ignored. Any input size works
//! (not only multiples of 8 or 16): the convolutions round as PyTorch's do.
//!
//! The stage tensors carry the golden fixtures' names:
//!
//! | name | what |
//! |---|---|
//! | `backbone.out`, `backbone.aux` | ResNet `layer4`, `layer3` (stride 8); MobileNetV3 blocks 16 and 4 (strides 16, 8) |
//! | `backbone.high`, `backbone.low` | LR-ASPP: MobileNetV3 blocks 16 and 4 |
//! | `classifier` | the head's logits before upsampling |
//! | `output` | the logits at the input size (the graph output) |
//!
//! [`with_argmax`] appends `output.argmax` (`[N, H', W']` class indices as f32, the first
//! maximum on ties), the per-pixel argmax of `output` bilinearly resized to `H' x W'`.
//!
//! ```
//! use wgcnn_models::segment::{SegmentBuildOptions, find_segmenter};
//!
//! let info = find_segmenter("lraspp_mobilenet_v3_large")?;
//! let graph = info.graph(&SegmentBuildOptions::new(1, 120, 160))?;
//! assert_eq!(graph.shape(graph.outputs[0]), [1, 21, 120, 160]);
//! # Ok::<(), wgcnn_models::ModelError>(())
//! ```

pub mod backbones;
pub mod heads;

use wgcnn_graph::{Graph, GraphBuilder, GraphError, Op, TensorId};

use crate::layers;
use crate::{ModelError, Preprocess};
use backbones::Features;

/// PASCAL VOC's 21 classes (background first), the class count of torchvision's checkpoints.
pub const VOC_CLASSES: usize = 21;

/// What a segmenter graph is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentBuildOptions {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    /// Output classes (21 for torchvision's VOC-labelled checkpoints).
    pub classes: usize,
    /// Run the auxiliary head too (a second output `aux`); its keys are then required.
    pub aux: bool,
}

impl SegmentBuildOptions {
    /// `batch` images of `height` x `width`, 21 classes, no aux head.
    pub const fn new(batch: usize, height: usize, width: usize) -> Self {
        SegmentBuildOptions {
            batch,
            height,
            width,
            classes: VOC_CLASSES,
            aux: false,
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

/// The backbone of a segmenter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backbone {
    /// ResNet with Bottleneck blocks per stage, layer3/layer4 dilated.
    ResNet([usize; 4]),
    /// MobileNetV3-Large, last three blocks dilated.
    MobileNetV3Large,
}

/// The segmentation head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    Fcn,
    DeepLabV3,
    LrAspp,
}

/// A registered segmenter: torchvision's builder name, its parts and its preprocessing.
#[derive(Clone, Copy, Debug)]
pub struct SegmenterInfo {
    /// torchvision's builder name (`deeplabv3_resnet50`).
    pub name: &'static str,
    pub backbone: Backbone,
    pub head: Head,
    /// torchvision's `SemanticSegmentation(resize_size=520)`: the shorter side to 520
    /// (bilinear, antialiased), ImageNet mean/std, no crop (`crop` is unused: 0).
    pub preprocess: Preprocess,
}

/// The short side torchvision's segmentation weights expect.
pub const RESIZE: usize = 520;

const PREPROCESS: Preprocess = Preprocess::imagenet(RESIZE, 0);

const fn segmenter(name: &'static str, backbone: Backbone, head: Head) -> SegmenterInfo {
    SegmenterInfo {
        name,
        backbone,
        head,
        preprocess: PREPROCESS,
    }
}

const R50: Backbone = Backbone::ResNet([3, 4, 6, 3]);
const R101: Backbone = Backbone::ResNet([3, 4, 23, 3]);

static SEGMENTERS: &[SegmenterInfo] = &[
    segmenter("fcn_resnet50", R50, Head::Fcn),
    segmenter("fcn_resnet101", R101, Head::Fcn),
    segmenter("deeplabv3_resnet50", R50, Head::DeepLabV3),
    segmenter("deeplabv3_resnet101", R101, Head::DeepLabV3),
    segmenter(
        "deeplabv3_mobilenet_v3_large",
        Backbone::MobileNetV3Large,
        Head::DeepLabV3,
    ),
    segmenter(
        "lraspp_mobilenet_v3_large",
        Backbone::MobileNetV3Large,
        Head::LrAspp,
    ),
];

/// Every registered segmenter, in listing order.
pub fn segmenters() -> &'static [SegmenterInfo] {
    SEGMENTERS
}

/// The segmenter called `name`; an unknown name is an error listing the known ones.
pub fn find_segmenter(name: &str) -> Result<&'static SegmenterInfo, ModelError> {
    SEGMENTERS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ModelError::Unknown {
            name: name.to_string(),
            known: SEGMENTERS
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The keys of an `FCNHead` at `aux_classifier` (torchvision's aux head on every model but
/// LR-ASPP), ignored when the aux head is not built.
const AUX_KEYS: [&str; 7] = [
    "aux_classifier.0.weight",
    "aux_classifier.1.weight",
    "aux_classifier.1.bias",
    "aux_classifier.1.running_mean",
    "aux_classifier.1.running_var",
    "aux_classifier.4.weight",
    "aux_classifier.4.bias",
];

impl SegmenterInfo {
    /// Whether torchvision's checkpoints of this model carry an aux head (all but LR-ASPP).
    pub fn has_aux(&self) -> bool {
        self.head != Head::LrAspp
    }

    /// The graph for `options` (see the module docs).
    pub fn graph(&self, options: &SegmentBuildOptions) -> Result<Graph, ModelError> {
        let invalid = |reason| ModelError::InvalidOptions {
            model: self.name.to_string(),
            reason,
        };
        options.validate().map_err(invalid)?;
        if options.aux && !self.has_aux() {
            return Err(invalid(format!("{} has no aux head", self.name)));
        }
        let (mut b, x) = layers::begin(
            &crate::BuildOptions {
                batch: options.batch,
                height: options.height,
                width: options.width,
                classes: options.classes,
            },
            3,
        );
        let size = [options.height, options.width];
        let f = match self.backbone {
            Backbone::ResNet(blocks) => backbones::dilated_resnet(&mut b, x, blocks),
            Backbone::MobileNetV3Large => backbones::dilated_mobilenet_v3_large(&mut b, x),
        }
        .map_err(|e| self.input_size(options, e))?;
        let classes = options.classes;
        let logits = match self.head {
            Head::Fcn => heads::fcn_head(&mut b, "classifier", f.high, classes),
            Head::DeepLabV3 => heads::deeplab_head(&mut b, "classifier", f.high, classes),
            Head::LrAspp => heads::lraspp_head(&mut b, "classifier", f.low, f.high, classes),
        }?;
        let output = upsample(&mut b, "output", logits, size)?;
        b.output(output);
        if options.aux {
            let aux = heads::fcn_head(&mut b, "aux_classifier", f.low, classes)?;
            let aux = upsample(&mut b, "aux", aux, size)?;
            b.output(aux);
        } else if self.has_aux() {
            for key in AUX_KEYS {
                b.ignore_key_suffix(key);
            }
        }
        let mut graph = b.finish();
        let (high, low) = match self.head {
            Head::LrAspp => ("backbone.high", "backbone.low"),
            _ => ("backbone.out", "backbone.aux"),
        };
        rename(&mut graph, f, high, low, logits);
        Ok(graph)
    }

    /// A backbone too deep for the input (a 1-pixel map through a 3x3 stride 2, ...) as the
    /// registry reports it.
    fn input_size(&self, o: &SegmentBuildOptions, e: GraphError) -> ModelError {
        match e {
            GraphError::Shape { .. } => ModelError::InputSize {
                model: self.name.to_string(),
                height: o.height,
                width: o.width,
                detail: e.to_string(),
            },
            e => e.into(),
        }
    }
}

/// Gives the stage tensors the fixtures' names (the nodes keep their module paths, which
/// profiles show).
fn rename(graph: &mut Graph, f: Features, high: &str, low: &str, logits: TensorId) {
    graph.tensors[f.high.0].name = high.to_string();
    graph.tensors[f.low.0].name = low.to_string();
    graph.tensors[logits.0].name = "classifier".to_string();
}

/// torchvision's final `F.interpolate(x, size=input_shape, mode="bilinear",
/// align_corners=False)`.
fn upsample(
    b: &mut GraphBuilder,
    name: &str,
    x: TensorId,
    size: [usize; 2],
) -> Result<TensorId, GraphError> {
    b.node(
        name,
        Op::Resize {
            size,
            mode: heads::BILINEAR,
        },
        &[x],
    )
}

/// Appends `output.argmax` to a segmenter graph: the class of each pixel of `output` resized
/// to `size` (`[height, width]`; the input size gives torchvision's `out.argmax(1)`), and makes
/// it the graph's last output.
pub fn with_argmax(graph: &mut Graph, size: [usize; 2]) -> Result<TensorId, GraphError> {
    let output = graph
        .find("output")
        .ok_or_else(|| GraphError::Invalid("segmenter graph has no tensor `output`".into()))?;
    let id = graph.push_node("output.argmax", Op::ArgMax2d { size }, &[output])?;
    graph.outputs.push(id);
    Ok(id)
}
