//! meshrcnn's `MeshRefinementHead` (three `MeshRefinementStage`s) and the voxels-to-mesh step
//! between the voxel head and it, on the CPU: the reference the GPU path is tested against.

use wgcnn_graph::interp::eval_op;
use wgcnn_graph::mesh::{
    SamplePadding, TriMesh, cubify, graph_conv, occupancy_probs, project_vert, vert_align,
    voxel_to_world,
};
use wgcnn_graph::{Activation, GraphError, Op, Shape, Tensor, WeightReport, WeightSource};

use crate::ModelError;

/// `VOXEL_HEAD.CUBIFY_THRESH`.
pub const VOXEL_THRESHOLD: f32 = 0.2;
/// `MESH_HEAD.GRAPH_CONV_DIM`.
const HIDDEN: usize = 128;
/// `sum(feat_dims)` of ResNet-50's four stages: 256 + 512 + 1024 + 2048.
const IMG_FEATS: usize = 3840;
const STAGES: usize = 3;
const GCONVS: usize = 3;

/// Every key of the mesh head with its shape, in meshrcnn's `state_dict` order: `K [4, 4]`, then
/// per stage `bottleneck`, `vert_offset`, `gconvs.{g}.w0`, `.w1` (weight, bias).
pub fn mesh_head_keys() -> Vec<(String, Shape)> {
    let mut keys = vec![("K".to_string(), vec![4, 4])];
    for s in 0..STAGES {
        let p = format!("mesh_head.stages.{s}");
        let mut linear = |name: String, out: usize, inp: usize| {
            keys.push((format!("{name}.weight"), vec![out, inp]));
            keys.push((format!("{name}.bias"), vec![out]));
        };
        linear(format!("{p}.bottleneck"), HIDDEN, IMG_FEATS);
        linear(format!("{p}.vert_offset"), 3, HIDDEN + 3);
        for g in 0..GCONVS {
            let inp = if g == 0 && s > 0 {
                2 * HIDDEN + 3
            } else {
                HIDDEN + 3
            };
            for w in ["w0", "w1"] {
                linear(format!("{p}.gconvs.{g}.{w}"), HIDDEN, inp);
            }
        }
    }
    keys
}

/// An `nn.Linear`: `weight [out, in]`, `bias [out]`.
#[derive(Clone, Debug)]
pub struct LinearWeights {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl LinearWeights {
    fn apply(&self, x: &Tensor, act: Activation) -> Result<Tensor, GraphError> {
        eval_op(
            &Op::Linear { bias: true, act },
            &[x, &self.weight, &self.bias],
        )
    }
}

/// pytorch3d `GraphConv`'s two Linear layers.
#[derive(Clone, Debug)]
pub struct GraphConvWeights {
    pub w0: LinearWeights,
    pub w1: LinearWeights,
}

/// One `MeshRefinementStage`.
#[derive(Clone, Debug)]
pub struct RefineStage {
    pub bottleneck: LinearWeights,
    pub gconvs: Vec<GraphConvWeights>,
    pub vert_offset: LinearWeights,
}

/// `K` (the Blender intrinsic matrix, row-major) and the refinement stages.
#[derive(Clone, Debug)]
pub struct MeshHead {
    pub k: [f32; 16],
    pub stages: Vec<RefineStage>,
}

/// What one stage computed, for stage tests and `--stage` output.
#[derive(Clone, Debug)]
pub struct StageTrace {
    /// `project_verts(verts, K)` (NDC, y not flipped): the `pos` features.
    pub proj: Vec<[f32; 3]>,
    /// `vert_align` of res2..res5 at `(proj.x, -proj.y)`, `[V, 3840]`.
    pub aligned: Tensor,
    /// `relu(bottleneck(aligned))`, `[V, 128]`.
    pub bottleneck: Tensor,
    /// Each GraphConv's output after ReLU, `[V, 128]`; the last is the next stage's `prev`.
    pub gconvs: Vec<Tensor>,
    /// `tanh(vert_offset(h))`.
    pub offsets: Vec<[f32; 3]>,
    /// The vertices after adding the offsets (camera frame).
    pub verts: Vec<[f32; 3]>,
}

impl MeshHead {
    /// Reads `K` and every `mesh_head.*` key (see [`mesh_head_keys`]) from `source`; all missing
    /// and misshapen keys are reported at once. Other keys are left alone.
    pub fn load(source: &dyn WeightSource) -> Result<MeshHead, ModelError> {
        let keys = mesh_head_keys();
        let mut report = WeightReport::default();
        for (key, shape) in &keys {
            match source.shape(key) {
                None => report.missing.push((key.clone(), shape.clone())),
                Some(found) if &found != shape => {
                    report.mismatched.push((key.clone(), shape.clone(), found))
                }
                Some(_) => {}
            }
        }
        if !report.is_empty() {
            return Err(GraphError::Weights(report).into());
        }
        let tensor = |key: &str, shape: &[usize]| -> Result<Tensor, GraphError> {
            let data = source.load(key).map_err(|reason| GraphError::WeightLoad {
                key: key.to_string(),
                reason,
            })?;
            Tensor::new(shape, data).map_err(|e| GraphError::WeightLoad {
                key: key.to_string(),
                reason: e.to_string(),
            })
        };
        let mut it = keys.iter();
        let mut next = || -> Result<Tensor, GraphError> {
            let (key, shape) = it
                .next()
                .ok_or_else(|| GraphError::Invalid("key table".into()))?;
            tensor(key, shape)
        };
        let k: [f32; 16] = next()?
            .data
            .try_into()
            .map_err(|_| GraphError::Invalid("K is not 4x4".into()))?;
        let mut linear = || -> Result<LinearWeights, GraphError> {
            Ok(LinearWeights {
                weight: next()?,
                bias: next()?,
            })
        };
        let mut stages = Vec::with_capacity(STAGES);
        for _ in 0..STAGES {
            let bottleneck = linear()?;
            let vert_offset = linear()?;
            let gconvs = (0..GCONVS)
                .map(|_| {
                    Ok(GraphConvWeights {
                        w0: linear()?,
                        w1: linear()?,
                    })
                })
                .collect::<Result<Vec<_>, GraphError>>()?;
            stages.push(RefineStage {
                bottleneck,
                gconvs,
                vert_offset,
            });
        }
        Ok(MeshHead { k, stages })
    }

    /// Refinement stage `s` of one mesh: `feats` are res2..res5 of its image (batch 1), `prev`
    /// the previous stage's last GraphConv output (None for stage 0), `edges` from
    /// [`wgcnn_graph::mesh::edges_packed`].
    pub fn stage(
        &self,
        s: usize,
        feats: &[&Tensor],
        verts: &[[f32; 3]],
        prev: Option<&Tensor>,
        edges: &[[u32; 2]],
    ) -> Result<StageTrace, ModelError> {
        let st = self
            .stages
            .get(s)
            .ok_or_else(|| GraphError::Invalid(format!("no refinement stage {s}")))?;
        let v = verts.len();
        let proj: Vec<[f32; 3]> = verts.iter().map(|&p| project_vert(p, &self.k)).collect();
        let flipped: Vec<f32> = proj.iter().flat_map(|p| [p[0], -p[1], p[2]]).collect();
        let aligned = vert_align(
            feats,
            &Tensor::new(&[1, v, 3], flipped)?,
            SamplePadding::Zeros,
        )?;
        let aligned = Tensor::new(&[v, aligned.shape[2]], aligned.data)?;
        let bottleneck = st.bottleneck.apply(&aligned, Activation::Relu)?;
        let mut parts: Vec<&Tensor> = vec![&bottleneck];
        let pos = Tensor::new(&[v, 3], proj.iter().flatten().copied().collect())?;
        parts.push(&pos);
        if let Some(p) = prev {
            parts.push(p);
        }
        let mut h = concat_rows(&parts)?;
        let mut gconvs = Vec::with_capacity(st.gconvs.len());
        for g in &st.gconvs {
            let mut y = graph_conv(
                &h,
                edges,
                (&g.w0.weight, &g.w0.bias),
                (&g.w1.weight, &g.w1.bias),
            )?;
            for x in &mut y.data {
                *x = x.max(0.0);
            }
            h = concat_rows(&[&y, &pos])?;
            gconvs.push(y);
        }
        let off = st.vert_offset.apply(&h, Activation::Tanh)?;
        let offsets: Vec<[f32; 3]> = off.data.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        let verts = verts
            .iter()
            .zip(&offsets)
            .map(|(p, o)| [p[0] + o[0], p[1] + o[1], p[2] + o[2]])
            .collect();
        Ok(StageTrace {
            proj,
            aligned,
            bottleneck,
            gconvs,
            offsets,
            verts,
        })
    }

    /// All stages in order from the cubified mesh's world vertices.
    pub fn refine(
        &self,
        feats: &[&Tensor],
        verts: &[[f32; 3]],
        edges: &[[u32; 2]],
    ) -> Result<Vec<StageTrace>, ModelError> {
        let mut traces: Vec<StageTrace> = Vec::with_capacity(self.stages.len());
        for s in 0..self.stages.len() {
            let (v, prev) = match traces.last() {
                Some(t) => (t.verts.as_slice(), t.gconvs.last()),
                None => (verts, None),
            };
            let t = self.stage(s, feats, v, prev, edges)?;
            traces.push(t);
        }
        Ok(traces)
    }
}

/// Row-wise concatenation of `[V, C_i]` tensors into `[V, ΣC_i]`.
fn concat_rows(parts: &[&Tensor]) -> Result<Tensor, GraphError> {
    let v = parts.first().map_or(0, |p| p.shape[0]);
    let width: usize = parts.iter().map(|p| p.shape[1]).sum();
    let mut out = Vec::with_capacity(v * width);
    for i in 0..v {
        for p in parts {
            let c = p.shape[1];
            out.extend_from_slice(&p.data[i * c..(i + 1) * c]);
        }
    }
    Tensor::new(&[v, width], out)
}

/// meshrcnn `VoxMeshHead.cubify`: sigmoid, the empty-grid fallback, pytorch3d `cubify` at
/// [`VOXEL_THRESHOLD`], then `voxel_to_world`. Returns one camera-frame mesh per item and
/// whether the fallback fired for it.
pub fn cubify_world(logits: &Tensor) -> Result<(Vec<TriMesh>, Vec<bool>), GraphError> {
    let (probs, fired) = occupancy_probs(logits, VOXEL_THRESHOLD)?;
    let mut meshes = cubify(&probs, VOXEL_THRESHOLD)?;
    for m in &mut meshes {
        for p in &mut m.verts {
            *p = voxel_to_world(*p);
        }
    }
    Ok((meshes, fired))
}
