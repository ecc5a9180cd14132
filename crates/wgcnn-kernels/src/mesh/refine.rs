//! meshrcnn's `MeshRefinementStage`s on the GPU, recorded once and dispatched indirectly on the
//! vertex count: project, vert_align fused into the bottleneck, three GraphConvs (two Linear
//! layers, then a fixed-order neighbour sum over the CSR adjacency), tanh offsets.

use super::cubify::ARGS_USED;
use super::{MeshLaunch, MeshParams, dispatch_args, flag, indirect, slot, specs};
use crate::{Context, KernelError};

/// Activation codes (`wgcnn_graph::Activation::code`).
const ACT_RELU: u32 = 1;
const ACT_TANH: u32 = 7;

/// Args slots after the cubify step's.
const ARGS_V: u32 = ARGS_USED;
const ARGS_V_HIDDEN: u32 = ARGS_USED + 1;
const ARGS_V_BLOCKS: u32 = ARGS_USED + 2;
const ARGS_V_LINEAR: u32 = ARGS_USED + 3;
/// Outputs per thread of `mesh_bottleneck` and `mesh_gconv_linear` (their `OUTS`): the
/// workgroup rows of their grids.
const BOTTLENECK_OUTS: u32 = 32;
const LINEAR_OUTS: u32 = 16;

/// An `nn.Linear` on the GPU: `weight [out_f, in_f]`, also transposed (`weight_t [in_f,
/// out_f]`: the kernels that read 4 outputs' weights as one vec4 use it), `bias [out_f]`.
#[derive(Debug)]
pub struct LinearGpu {
    pub weight: wgpu::Buffer,
    pub weight_t: wgpu::Buffer,
    pub bias: wgpu::Buffer,
    pub out_f: usize,
    pub in_f: usize,
}

impl LinearGpu {
    /// Uploads a Linear layer; errors when the lengths do not match the sizes.
    pub fn upload(
        ctx: &Context,
        label: &str,
        weight: &[f32],
        bias: &[f32],
        out_f: usize,
        in_f: usize,
    ) -> Result<LinearGpu, KernelError> {
        if weight.len() != out_f * in_f || bias.len() != out_f {
            return Err(KernelError::BadShape {
                kernel: "mesh_linear",
                detail: format!(
                    "{label}: {} weights and {} biases for {out_f} x {in_f}",
                    weight.len(),
                    bias.len()
                ),
            });
        }
        let mut transposed = vec![0f32; weight.len()];
        for o in 0..out_f {
            for k in 0..in_f {
                transposed[k * out_f + o] = weight[o * in_f + k];
            }
        }
        Ok(LinearGpu {
            weight: ctx.upload(&format!("{label}.weight"), weight),
            weight_t: ctx.upload(&format!("{label}.weight_t"), &transposed),
            bias: ctx.upload(&format!("{label}.bias"), bias),
            out_f,
            in_f,
        })
    }
}

/// One stage's layers: bottleneck, GraphConvs as `(w0, w1)`, vert_offset.
#[derive(Debug)]
pub struct StageWeightsGpu {
    pub bottleneck: LinearGpu,
    pub gconvs: Vec<(LinearGpu, LinearGpu)>,
    pub vert_offset: LinearGpu,
}

/// The mesh head: `K` (row-major) and the stages.
#[derive(Debug)]
pub struct HeadWeightsGpu {
    pub k: [f32; 16],
    pub stages: Vec<StageWeightsGpu>,
}

/// The mesh a refinement reads: counts (the vertex count at [`slot::VERTS`]), the args buffer,
/// the input vertices and the CSR adjacency, with the vertex capacity they were sized for.
#[derive(Clone, Copy, Debug)]
pub struct MeshInput<'a> {
    pub counts: &'a wgpu::Buffer,
    pub args: &'a wgpu::Buffer,
    pub verts: &'a wgpu::Buffer,
    pub adj_offset: &'a wgpu::Buffer,
    pub adj: &'a wgpu::Buffer,
    pub vert_cap: usize,
}

/// A feature map `[C, H, W]` (batch 1) and its extent.
#[derive(Clone, Copy, Debug)]
pub struct FeatureMap<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub chw: [usize; 3],
}

/// The refinement's buffers and launches.
#[derive(Debug)]
pub struct RefineGpu {
    /// `[V_cap, 3]` projected positions of the last stage.
    pub pos: wgpu::Buffer,
    /// `[V_cap, 2H + 3]`: `[bottleneck | pos | prev]` of the last stage (prev = its output).
    pub x0: wgpu::Buffer,
    /// `[V_cap, H + 3]`: the last GraphConv's output and pos; `h2`: the one before.
    pub h1: wgpu::Buffer,
    pub h2: wgpu::Buffer,
    /// Per stage, `[V_cap, 3]` vertices after it and its offsets.
    pub stage_verts: Vec<wgpu::Buffer>,
    pub stage_offsets: Vec<wgpu::Buffer>,
    pub hidden: usize,
    pub launches: Vec<MeshLaunch>,
    _scratch: Vec<wgpu::Buffer>,
}

impl RefineGpu {
    /// Records `weights.stages` on `mesh` with the four maps (res2..res5). When `prev` is set the
    /// first stage reads a previous stage's output from `x0` columns `H + 3 ..` (stage tests
    /// upload it there).
    pub fn new(
        ctx: &Context,
        mesh: MeshInput<'_>,
        feats: &[FeatureMap<'_>],
        weights: &HeadWeightsGpu,
        first_has_prev: bool,
    ) -> Result<RefineGpu, KernelError> {
        let first = weights
            .stages
            .first()
            .ok_or_else(|| KernelError::BadShape {
                kernel: "mesh_refine",
                detail: "no stages".into(),
            })?;
        let hidden = first.bottleneck.out_f;
        let total_c: usize = feats.iter().map(|f| f.chw[0]).sum();
        if !hidden.is_multiple_of(32) || first.bottleneck.in_f != total_c {
            return Err(KernelError::BadShape {
                kernel: "mesh_refine",
                detail: format!(
                    "bottleneck {} x {} for {total_c} feature channels (hidden must be a multiple of 32)",
                    hidden, first.bottleneck.in_f
                ),
            });
        }
        let cap = mesh.vert_cap;
        let ld0 = 2 * hidden + 3;
        let ld1 = hidden + 3;
        let f32s = |label: &str, n: usize| ctx.storage(label, n as u64 * 4);
        let limit = ctx.max_binding();
        if (cap * ld0 * 4) as u64 > limit {
            return Err(KernelError::TooLarge {
                what: format!("mesh refinement of {cap} vertices"),
                needed: (cap * ld0 * 4) as u64,
                limit,
            });
        }
        let pos = f32s("mesh.pos", cap * 3);
        let x0 = f32s("mesh.x0", cap * ld0);
        let y0 = f32s("mesh.y0", cap * hidden);
        let y1 = f32s("mesh.y1", cap * hidden);
        let h1 = f32s("mesh.h1", cap * ld1);
        let h2 = f32s("mesh.h2", cap * ld1);
        let dummy = f32s("mesh.unused", 1);
        let stage_verts: Vec<wgpu::Buffer> = (0..weights.stages.len())
            .map(|s| f32s(&format!("mesh.stage{s}.verts"), cap * 3))
            .collect();
        let stage_offsets: Vec<wgpu::Buffer> = (0..weights.stages.len())
            .map(|s| f32s(&format!("mesh.stage{s}.offsets"), cap * 3))
            .collect();

        let counted = MeshParams {
            count_slot: slot::VERTS,
            ..MeshParams::elements(cap)
        };
        let args = |slot_: u32, per: (u32, u32, u32)| {
            dispatch_args(ctx, mesh.counts, mesh.args, slot_, slot::VERTS, per)
        };
        let h = hidden as u32;
        let mut l = vec![
            args(ARGS_V, (1, 1, 0)),
            args(ARGS_V_HIDDEN, (1, h, 0)),
            args(ARGS_V_BLOCKS, (1, 1, h / BOTTLENECK_OUTS)),
            args(ARGS_V_LINEAR, (1, 1, h / LINEAR_OUTS)),
        ];
        for (s, st) in weights.stages.iter().enumerate() {
            let p = |name: &str| format!("mesh_head.stages.{s}.{name}");
            let verts_in = if s == 0 {
                mesh.verts
            } else {
                &stage_verts[s - 1]
            };
            let proj = MeshParams {
                k: weights.k,
                ld_x: ld0 as u32,
                col_x: hidden as u32,
                ..counted
            };
            l.push(indirect(
                ctx,
                &p("project"),
                &specs::PROJECT,
                &proj,
                &[verts_in, mesh.counts, &pos, &x0],
                ARGS_V,
            ));
            let mut col = 0;
            for (i, f) in feats.iter().enumerate() {
                let [c, h, w] = f.chw;
                let mut flags = 0;
                if i == 0 {
                    flags |= flag::FIRST;
                }
                if i + 1 == feats.len() {
                    flags |= flag::LAST;
                }
                let bp = MeshParams {
                    flags,
                    act: ACT_RELU,
                    map_c: c as u32,
                    map_h: h as u32,
                    map_w: w as u32,
                    col_map: col as u32,
                    in_f: total_c as u32,
                    out_f: hidden as u32,
                    ld_y: ld0 as u32,
                    col_y: 0,
                    ..counted
                };
                l.push(indirect(
                    ctx,
                    &p("bottleneck"),
                    &specs::BOTTLENECK,
                    &bp,
                    &[
                        &pos,
                        f.buffer,
                        &st.bottleneck.weight_t,
                        &st.bottleneck.bias,
                        mesh.counts,
                        &x0,
                    ],
                    ARGS_V_BLOCKS,
                ));
                col += c;
            }
            let n_g = st.gconvs.len();
            for (g, (w0, w1)) in st.gconvs.iter().enumerate() {
                // gconv 0 reads x0 ([bottleneck | pos | prev]); then h1 / h2 alternate.
                let (src, ld_src) = match g {
                    0 => (&x0, ld0),
                    g if g % 2 == 1 => (&h1, ld1),
                    _ => (&h2, ld1),
                };
                let dst = if g % 2 == 0 { &h1 } else { &h2 };
                let in_f = if g == 0 && (s > 0 || first_has_prev) {
                    ld0
                } else {
                    ld1
                };
                if w0.in_f != in_f || w1.in_f != in_f || w0.out_f != hidden || w1.out_f != hidden {
                    return Err(KernelError::BadShape {
                        kernel: "mesh_gconv",
                        detail: format!(
                            "{}: {} x {} weights, want {hidden} x {in_f}",
                            p(&format!("gconvs.{g}")),
                            w0.out_f,
                            w0.in_f
                        ),
                    });
                }
                let lp = MeshParams {
                    in_f: in_f as u32,
                    out_f: hidden as u32,
                    ld_x: ld_src as u32,
                    col_x: 0,
                    ..counted
                };
                l.push(indirect(
                    ctx,
                    &p(&format!("gconvs.{g}.linear")),
                    &specs::GCONV_LINEAR,
                    &lp,
                    &[
                        src,
                        &w0.weight_t,
                        &w0.bias,
                        &w1.weight_t,
                        &w1.bias,
                        mesh.counts,
                        &y0,
                        &y1,
                    ],
                    ARGS_V_LINEAR,
                ));
                let last = g + 1 == n_g;
                let gp = MeshParams {
                    act: ACT_RELU,
                    out_f: hidden as u32,
                    ld_y: ld1 as u32,
                    col_y: 0,
                    // The last GraphConv's output is also the next stage's `prev`.
                    ld_x: ld0 as u32,
                    col_x: ld1 as u32,
                    flags: if last { flag::COPY2 } else { 0 },
                    aux0: 1,
                    ..counted
                };
                let out2 = if last { &x0 } else { &dummy };
                l.push(indirect(
                    ctx,
                    &p(&format!("gconvs.{g}.gather")),
                    &specs::GCONV_GATHER,
                    &gp,
                    &[
                        &y0,
                        &y1,
                        mesh.adj_offset,
                        mesh.adj,
                        &pos,
                        mesh.counts,
                        dst,
                        out2,
                    ],
                    ARGS_V_HIDDEN,
                ));
            }
            let last_h = if n_g % 2 == 1 { &h1 } else { &h2 };
            if st.vert_offset.in_f != ld1 || st.vert_offset.out_f != 3 {
                return Err(KernelError::BadShape {
                    kernel: "mesh_offset",
                    detail: format!("{}: want 3 x {ld1}", p("vert_offset")),
                });
            }
            let op = MeshParams {
                in_f: ld1 as u32,
                ld_x: ld1 as u32,
                col_x: 0,
                act: ACT_TANH,
                ..counted
            };
            l.push(indirect(
                ctx,
                &p("vert_offset"),
                &specs::OFFSET,
                &op,
                &[
                    last_h,
                    &st.vert_offset.weight,
                    &st.vert_offset.bias,
                    mesh.counts,
                    verts_in,
                    &stage_verts[s],
                    &stage_offsets[s],
                ],
                ARGS_V,
            ));
        }
        Ok(RefineGpu {
            pos,
            x0,
            h1,
            h2,
            stage_verts,
            stage_offsets,
            hidden,
            launches: l,
            _scratch: vec![y0, y1, dummy],
        })
    }
}
