//! Voxels to mesh on the GPU: occupancy (with meshrcnn's fallback), pytorch3d `cubify`'s faces
//! and vertices, the unique edges and the CSR adjacency, recorded once for a grid size.

use super::{MeshLaunch, MeshParams, direct, dispatch_args, flag, indirect, scan, slot, specs};
use crate::{Context, KernelError};

/// Args slots of [`CubifyGpu::args`] used here (the refinement adds its own after them).
const ARGS_FACES: u32 = 0;
const ARGS_VERTS: u32 = 1;
/// Args slots reserved by the cubify step.
pub(crate) const ARGS_USED: u32 = 2;

/// The counts a run left on the GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeshCounts {
    /// Some probability was above the threshold (else meshrcnn's fallback block was used).
    pub any: bool,
    pub faces: usize,
    pub verts: usize,
    pub edges: usize,
    pub adj: usize,
}

/// The buffers and launches of cubify, edges and adjacency for one `[D, H, W]` grid.
#[derive(Debug)]
pub struct CubifyGpu {
    pub dims: [usize; 3],
    /// Lattice points, `(D+1)(H+1)(W+1)`: also the vertex capacity.
    pub lattice: usize,
    pub face_cap: usize,
    pub edge_cap: usize,
    /// Counts ([`slot`]), u32.
    pub counts: wgpu::Buffer,
    /// Indirect dispatch arguments.
    pub args: wgpu::Buffer,
    /// `[V, 3]` f32 vertices (voxel space, or camera frame with [`flag::WORLD`]).
    pub verts: wgpu::Buffer,
    /// `[F, 3]` u32 faces.
    pub faces: wgpu::Buffer,
    /// `[E, 2]` u32 edges, pytorch3d's order.
    pub edges: wgpu::Buffer,
    /// CSR: `adj_offset [V + 1]`, `adj [2E]` (neighbours ascending).
    pub adj_offset: wgpu::Buffer,
    pub adj: wgpu::Buffer,
    occ: wgpu::Buffer,
    rank: wgpu::Buffer,
    edge_bits: wgpu::Buffer,
    pub launches: Vec<MeshLaunch>,
    /// Keeps the scratch buffers the launches bind alive.
    _scratch: Vec<wgpu::Buffer>,
}

/// The ascending distinct lattice-index steps an edge of cubify can take (unit steps and face
/// diagonals) on a lattice of `(H+1)(W+1)(D+1)` points: bit k of a point's edge bits means an
/// edge to the point `deltas[k]` further.
pub fn lattice_deltas([d, _h, w]: [usize; 3]) -> Vec<u32> {
    let sx = (d + 1) as u32;
    let sy = ((w + 1) * (d + 1)) as u32;
    let mut v = vec![1, sx - 1, sx, sx + 1, sy - sx, sy - 1, sy, sy + 1, sy + sx];
    v.retain(|&x| x > 0);
    v.sort_unstable();
    v.dedup();
    v
}

impl CubifyGpu {
    /// Records cubify of the `[D, H, W]` grid in `values` at `thresh`. `flags`: [`flag::SIGMOID`]
    /// (values are logits), [`flag::FALLBACK`] (meshrcnn's empty-grid block), [`flag::WORLD`]
    /// (vertices through voxel_to_world).
    pub fn new(
        ctx: &Context,
        values: &wgpu::Buffer,
        dims: [usize; 3],
        thresh: f32,
        flags: u32,
    ) -> Result<CubifyGpu, KernelError> {
        let [d, h, w] = dims;
        if d < 1 || h < 1 || w < 1 {
            return Err(KernelError::BadShape {
                kernel: "mesh_cubify",
                detail: format!("voxel grid {dims:?} has an empty axis"),
            });
        }
        let voxels = d * h * w;
        let lattice = (d + 1) * (h + 1) * (w + 1);
        let face_cap = 12 * voxels;
        let deltas = lattice_deltas(dims);
        let edge_cap = deltas.len() * lattice;
        let u32s = |label: &str, n: usize| ctx.storage(label, n as u64 * 4);
        let limit = ctx.max_binding();
        if (face_cap * 12) as u64 > limit || (edge_cap * 8) as u64 > limit {
            return Err(KernelError::TooLarge {
                what: format!("cubify of a {dims:?} grid"),
                needed: (face_cap * 12).max(edge_cap * 8) as u64,
                limit,
            });
        }
        let counts = u32s("mesh.counts", slot::COUNT);
        let args = super::args_buffer(ctx, 16);
        let occ = u32s("mesh.occ", voxels);
        let face_count = u32s("mesh.face_count", voxels + 1);
        let block_sums = u32s("mesh.block_sums", (lattice + 1).div_ceil(1024) + 1);
        let lattice_faces = u32s("mesh.lattice_faces", face_cap * 3);
        let rank = u32s("mesh.rank", lattice + 1);
        let verts = ctx.storage("mesh.verts", lattice as u64 * 12);
        let vert_lattice = u32s("mesh.vert_lattice", lattice);
        let faces = u32s("mesh.faces", face_cap * 3);
        let edge_bits = u32s("mesh.edge_bits", lattice);
        let edge_offset = u32s("mesh.edge_offset", lattice + 1);
        let adj_offset = u32s("mesh.adj_offset", lattice + 1);
        let edges = u32s("mesh.edges", edge_cap * 2);
        let adj = u32s("mesh.adj", edge_cap * 2);

        let mut deltas9 = [0u32; 9];
        deltas9[..deltas.len()].copy_from_slice(&deltas);
        let grid_params = MeshParams {
            dim_d: d as u32,
            dim_h: h as u32,
            dim_w: w as u32,
            thresh,
            flags,
            n_deltas: deltas.len() as u32,
            deltas: deltas9,
            ..MeshParams::elements(voxels)
        };
        let with_n = |n: usize| MeshParams {
            n: n as u32,
            ..grid_params
        };
        let mut l = Vec::new();
        l.push(direct(
            ctx,
            "mesh.occupancy",
            &specs::OCCUPANCY,
            &grid_params,
            &[values, &occ, &counts],
            voxels,
        ));
        if flags & flag::FALLBACK != 0 {
            l.push(direct(
                ctx,
                "mesh.fallback",
                &specs::FALLBACK,
                &grid_params,
                &[&occ, &counts],
                voxels,
            ));
        }
        l.push(direct(
            ctx,
            "mesh.cubify_count",
            &specs::CUBIFY_COUNT,
            &grid_params,
            &[&occ, &face_count],
            voxels + 1,
        ));
        l.extend(scan(
            ctx,
            "mesh.faces",
            &face_count,
            voxels + 1,
            &block_sums,
            &counts,
            slot::FACES,
        ));
        l.push(direct(
            ctx,
            "mesh.cubify_faces",
            &specs::CUBIFY_FACES,
            &grid_params,
            &[&occ, &face_count, &lattice_faces, &rank],
            voxels,
        ));
        l.extend(scan(
            ctx,
            "mesh.verts",
            &rank,
            lattice + 1,
            &block_sums,
            &counts,
            slot::VERTS,
        ));
        l.push(direct(
            ctx,
            "mesh.cubify_verts",
            &specs::CUBIFY_VERTS,
            &with_n(lattice),
            &[&rank, &verts, &vert_lattice],
            lattice,
        ));
        l.push(dispatch_args(
            ctx,
            &counts,
            &args,
            ARGS_FACES,
            slot::FACES,
            (1, 1, 0),
        ));
        let remap = MeshParams {
            count_slot: slot::FACES,
            ..with_n(face_cap)
        };
        l.push(indirect(
            ctx,
            "mesh.cubify_remap",
            &specs::CUBIFY_REMAP,
            &remap,
            &[&lattice_faces, &rank, &counts, &faces, &edge_bits],
            ARGS_FACES,
        ));
        l.push(direct(
            ctx,
            "mesh.edge_count",
            &specs::EDGE_COUNT,
            &with_n(lattice + 1),
            &[
                &edge_bits,
                &vert_lattice,
                &counts,
                &edge_offset,
                &adj_offset,
            ],
            lattice + 1,
        ));
        l.extend(scan(
            ctx,
            "mesh.edges",
            &edge_offset,
            lattice + 1,
            &block_sums,
            &counts,
            slot::EDGES,
        ));
        l.extend(scan(
            ctx,
            "mesh.adj",
            &adj_offset,
            lattice + 1,
            &block_sums,
            &counts,
            slot::ADJ,
        ));
        l.push(dispatch_args(
            ctx,
            &counts,
            &args,
            ARGS_VERTS,
            slot::VERTS,
            (1, 1, 0),
        ));
        l.push(indirect(
            ctx,
            "mesh.edges",
            &specs::EDGES,
            &with_n(lattice),
            &[
                &edge_bits,
                &vert_lattice,
                &rank,
                &counts,
                &edge_offset,
                &adj_offset,
                &edges,
                &adj,
            ],
            ARGS_VERTS,
        ));
        Ok(CubifyGpu {
            dims,
            lattice,
            face_cap,
            edge_cap,
            counts,
            args,
            verts,
            faces,
            edges,
            adj_offset,
            adj,
            occ,
            rank,
            edge_bits,
            launches: l,
            _scratch: vec![
                face_count,
                block_sums,
                lattice_faces,
                vert_lattice,
                edge_offset,
            ],
        })
    }

    /// Zeroes what the launches accumulate into (counts, marks, edge bits); call on `encoder`
    /// before the pass that holds [`Self::launches`].
    pub fn clear(&self, encoder: &mut wgpu::CommandEncoder) {
        for b in [&self.counts, &self.rank, &self.edge_bits, &self.occ] {
            encoder.clear_buffer(b, 0, None);
        }
    }

    /// Clears, then encodes the launches in one compute pass.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        self.clear(encoder);
        super::encode(encoder, &self.launches, &self.args);
    }

    /// Runs cubify alone (one submission) and waits.
    pub fn run(&self, ctx: &Context) -> Result<(), KernelError> {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        self.encode(&mut encoder);
        ctx.queue.submit([encoder.finish()]);
        ctx.wait()
    }

    /// The counts of the last run.
    pub fn read_counts(&self, ctx: &Context) -> Result<MeshCounts, KernelError> {
        let c = super::read_u32(ctx, &self.counts, slot::COUNT)?;
        Ok(MeshCounts {
            any: c[slot::ANY as usize] != 0,
            faces: c[slot::FACES as usize] as usize,
            verts: c[slot::VERTS as usize] as usize,
            edges: c[slot::EDGES as usize] as usize,
            adj: c[slot::ADJ as usize] as usize,
        })
    }
}
