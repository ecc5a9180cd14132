//! Mesh R-CNN's ShapeNet single-image model `voxmesh_R50` (facebookresearch/meshrcnn
//! `VoxMeshHead`, `configs/shapenet/voxmesh_R50.yaml`), keyed as meshrcnn's `state_dict`.
//!
//! The model splits where the data decides the sizes:
//! - [`voxmesh_r50`]: a [`Graph`] for the fixed-size part, the ResNet-50 backbone
//!   (`backbone.stem.*`, `backbone.stage{1..4}.*`) and the voxel head (`voxel_head.*`). Its
//!   outputs are the four stage maps (res2..res5) and the `[N, 48, 48, 48]` voxel logits
//!   (`[N, z, y, x]`).
//! - [`MeshHead`]: `K` and the three refinement stages (`mesh_head.stages.*`), run on the mesh
//!   that cubify makes of the logits; its vertex/face counts depend on the voxels.
//!
//! A released checkpoint holds both parts under one set of keys: see it through [`CleanKeys`]
//! (meshrcnn's `clean_state_dict`), bind the graph through [`GraphKeys`] (which hides the mesh
//! head's keys) and load the head with [`MeshHead::load`].

mod head;

use std::collections::HashMap;

pub use head::{
    GraphConvWeights, LinearWeights, MeshHead, RefineStage, StageTrace, VOXEL_THRESHOLD,
    cubify_world, mesh_head_keys,
};

use wgcnn_graph::{
    Activation, ConvTranspose2d, Graph, GraphBuilder, GraphError, Op, ResizeMode, Shape, TensorId,
    WeightSource,
};

use crate::classify::resnet::{self, Block, ResNetConfig};
use crate::layers::{self, BN_EPS, Conv, Pool2d};
use crate::{BuildOptions, ModelError};

/// Voxel grid extent (`VOXEL_HEAD.VOXEL_SIZE`).
pub const VOXEL_SIZE: usize = 48;
/// Channels of the voxel head's convs (`VOXEL_HEAD.CONV_DIM`).
const VOXEL_CONV_DIM: usize = 256;

/// The backbone and voxel head of `voxmesh_R50`: input `[N, 3, H, W]` (ImageNet-normalized RGB;
/// meshrcnn feeds 137x137 renders), outputs `[res2, res3, res4, res5, voxel_logits]`.
pub fn voxmesh_r50(o: &BuildOptions) -> Result<Graph, ModelError> {
    o.validate().map_err(|reason| ModelError::InvalidOptions {
        model: "voxmesh_r50".into(),
        reason,
    })?;
    let (mut b, x) = layers::begin(o, 3);
    let feats = backbone(&mut b, x)?;
    let logits = voxel_head(&mut b, feats[3])?;
    for f in feats {
        b.output(f);
    }
    b.output(logits);
    Ok(b.finish())
}

/// meshrcnn's `ResNetBackbone`: torchvision ResNet-50's `conv1, bn1, relu, maxpool` as
/// `backbone.stem.{0..3}` and `layer1..4` as `backbone.stage1..4`.
fn backbone(b: &mut GraphBuilder, x: TensorId) -> Result<Vec<TensorId>, GraphError> {
    let config = ResNetConfig {
        block: Block::Bottleneck,
        layers: [3, 4, 6, 3],
        groups: 1,
        width_per_group: 64,
    };
    let x = layers::conv_bn_act(
        b,
        ["backbone.stem.0", "backbone.stem.1", "backbone.stem.2"],
        x,
        Conv::new(64, 7).stride(2).pad(3).bias(false),
        BN_EPS,
        Activation::Relu,
    )?;
    let mut x = layers::max_pool(b, "backbone.stem.3", x, Pool2d::new(3, 2, 1, false))?;
    let mut outputs = Vec::with_capacity(4);
    for (stage, (&blocks, planes)) in config.layers.iter().zip([64, 128, 256, 512]).enumerate() {
        for i in 0..blocks {
            let stride = if i == 0 && stage > 0 { 2 } else { 1 };
            let p = format!("backbone.stage{}.{i}", stage + 1);
            x = resnet::block(b, &p, x, planes, stride, &config)?;
        }
        outputs.push(x);
    }
    Ok(outputs)
}

/// meshrcnn's `VoxelHead`: bilinear resize to 24x24 (align_corners=False), `voxel_fcn1..4`
/// (3x3 conv + ReLU), `deconv` (ConvTranspose2d 2x2/2 + ReLU), `predictor` (1x1 conv to 48
/// depth channels).
fn voxel_head(b: &mut GraphBuilder, x: TensorId) -> Result<TensorId, GraphError> {
    let half = VOXEL_SIZE / 2;
    let resize = Op::Resize {
        size: [half, half],
        mode: ResizeMode::Bilinear {
            align_corners: false,
        },
    };
    let mut x = b.node("voxel_head.interpolate", resize, &[x])?;
    for k in 1..=4 {
        let name = format!("voxel_head.voxel_fcn{k}");
        x = layers::conv(b, &name, x, Conv::new(VOXEL_CONV_DIM, 3).pad(1))?;
        x = layers::relu(b, &format!("{name}.relu"), x)?;
    }
    let weight = b.param(
        "voxel_head.deconv.weight",
        &[VOXEL_CONV_DIM, VOXEL_CONV_DIM, 2, 2],
    );
    let bias = b.param("voxel_head.deconv.bias", &[VOXEL_CONV_DIM]);
    let up = ConvTranspose2d {
        act: Activation::Relu,
        ..ConvTranspose2d::new(2, 0, 1, true)
    };
    let x = b.node(
        "voxel_head.deconv",
        Op::ConvTranspose2d(up),
        &[x, weight, bias],
    )?;
    layers::conv(b, "voxel_head.predictor", x, Conv::new(VOXEL_SIZE, 1))
}

/// A checkpoint seen through the keys of the [`voxmesh_r50`] graph only: hides `K` and
/// `mesh_head.*` so that binding the graph does not report them as unexpected.
pub struct GraphKeys<'a>(pub &'a dyn WeightSource);

fn is_head_key(key: &str) -> bool {
    key == "K" || key.starts_with("mesh_head.")
}

impl WeightSource for GraphKeys<'_> {
    fn keys(&self) -> Vec<String> {
        self.0
            .keys()
            .into_iter()
            .filter(|k| !is_head_key(k))
            .collect()
    }

    fn shape(&self, key: &str) -> Option<Shape> {
        if is_head_key(key) {
            None
        } else {
            self.0.shape(key)
        }
    }

    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        self.0.load(key)
    }
}

/// A checkpoint seen through meshrcnn's `clean_state_dict` (`shapenet/utils/checkpoint.py`):
/// every key loses all its leading `module.` prefixes, whether or not the other keys have them.
///
/// The weight loaders strip a prefix only when every key shares it, since a model may name a
/// submodule `module`; meshrcnn's keys (`K`, `backbone.*`, `voxel_head.*`, `mesh_head.*`) never
/// start with one, so here a per-key prefix is always a wrapper's, as meshrcnn assumes. When two
/// keys clean to the same name the later one wins, as in meshrcnn's dict.
pub struct CleanKeys<'a> {
    source: &'a dyn WeightSource,
    /// Cleaned keys in the source's order.
    keys: Vec<String>,
    /// Cleaned key → the source's key.
    original: HashMap<String, String>,
}

impl<'a> CleanKeys<'a> {
    pub fn new(source: &'a dyn WeightSource) -> Self {
        let mut keys = Vec::new();
        let mut original = HashMap::new();
        for key in source.keys() {
            let mut clean = key.as_str();
            while let Some(rest) = clean.strip_prefix("module.") {
                clean = rest;
            }
            if original.insert(clean.to_string(), key.clone()).is_none() {
                keys.push(clean.to_string());
            }
        }
        CleanKeys {
            source,
            keys,
            original,
        }
    }

    fn source_key<'k>(&'k self, key: &'k str) -> &'k str {
        self.original.get(key).map_or(key, String::as_str)
    }
}

impl WeightSource for CleanKeys<'_> {
    fn keys(&self) -> Vec<String> {
        self.keys.clone()
    }

    fn shape(&self, key: &str) -> Option<Shape> {
        self.original.get(key).and_then(|k| self.source.shape(k))
    }

    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        self.source.load(self.source_key(key))
    }
}
