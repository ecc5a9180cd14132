//! Mesh R-CNN's mesh stages on the GPU (`shaders/mesh_*.wgsl`): pytorch3d `cubify` of a voxel
//! grid, its unique edges and CSR adjacency, and meshrcnn's refinement stages (project,
//! vert_align fused into the bottleneck, GraphConv, offsets), all recorded once and run in one
//! submission.
//!
//! The mesh's size depends on the voxels, so the counts live in a GPU buffer ([`slot`]):
//! compaction is by exclusive prefix sums (`mesh_scan_*`), edges and adjacency come from a
//! per-lattice-point bit set (`mesh_cubify_remap`: integer atomics only, no sort: a vertex's
//! number follows its lattice index, so set bits in lattice order are pytorch3d's sorted unique
//! edges), and every kernel after cubify is dispatched indirectly on the counts
//! (`mesh_dispatch_args`). No float atomics: every sum has a fixed order.
//!
//! [`MeshParams`] is the one params struct of every mesh kernel.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

mod cubify;
mod refine;
#[cfg(test)]
mod tests;

pub use cubify::{CubifyGpu, MeshCounts, lattice_deltas};
pub use refine::{FeatureMap, HeadWeightsGpu, LinearGpu, MeshInput, RefineGpu, StageWeightsGpu};

/// Slots of the counts buffer (`MESH_*` in `shaders/lib/mesh.wgsl`).
pub mod slot {
    /// 1 when some probability is above the threshold (meshrcnn's empty-grid test).
    pub const ANY: u32 = 0;
    pub const FACES: u32 = 1;
    pub const VERTS: u32 = 2;
    pub const EDGES: u32 = 3;
    /// Entries of the CSR adjacency (twice the edges).
    pub const ADJ: u32 = 4;
    /// Slots in all.
    pub const COUNT: usize = 8;
    /// No count bounds the launch (`params.n` alone).
    pub const NONE: u32 = u32::MAX;
}

/// Flag bits of [`MeshParams::flags`] (`MESH_*` in `shaders/lib/mesh.wgsl`).
pub mod flag {
    pub const SIGMOID: u32 = 1;
    pub const FALLBACK: u32 = 2;
    pub const WORLD: u32 = 4;
    pub const FLIP_Y: u32 = 8;
    pub const BORDER: u32 = 16;
    pub const FIRST: u32 = 32;
    pub const LAST: u32 = 64;
    pub const COPY2: u32 = 128;
}

/// Mirrors `MeshParams` in `shaders/lib/mesh.wgsl`; keep both in step. Each kernel's header says
/// which fields it reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MeshParams {
    pub n: u32,
    pub count_slot: u32,
    pub flags: u32,
    pub act: u32,
    pub dim_d: u32,
    pub dim_h: u32,
    pub dim_w: u32,
    pub thresh: f32,
    pub in_f: u32,
    pub out_f: u32,
    pub ld_x: u32,
    pub ld_y: u32,
    pub col_x: u32,
    pub col_y: u32,
    pub map_c: u32,
    pub map_h: u32,
    pub map_w: u32,
    pub col_map: u32,
    pub n_deltas: u32,
    pub slot2: u32,
    pub aux0: u32,
    pub aux1: u32,
    pub deltas: [u32; 9],
    pub _pad: [u32; 5],
    pub k: [f32; 16],
}

impl MeshParams {
    /// `n` elements, no count slot, everything else zero.
    pub fn elements(n: usize) -> Self {
        MeshParams {
            n: n as u32,
            count_slot: slot::NONE,
            ..Default::default()
        }
    }
}

macro_rules! spec {
    ($name:ident, $file:literal, $src:ident, [$($a:ident),*]) => {
        pub const $name: KernelSpec = KernelSpec {
            name: $file,
            source: shaders::$src,
            buffers: &[$(Access::$a),*],
        };
    };
}

/// The kernels' bindings (after the params uniform), as their shader headers list them.
pub mod specs {
    use super::*;
    spec!(
        OCCUPANCY,
        "mesh_occupancy",
        MESH_OCCUPANCY,
        [Read, ReadWrite, ReadWrite]
    );
    spec!(FALLBACK, "mesh_fallback", MESH_FALLBACK, [ReadWrite, Read]);
    spec!(
        CUBIFY_COUNT,
        "mesh_cubify_count",
        MESH_CUBIFY_COUNT,
        [Read, ReadWrite]
    );
    spec!(
        CUBIFY_FACES,
        "mesh_cubify_faces",
        MESH_CUBIFY_FACES,
        [Read, Read, ReadWrite, ReadWrite]
    );
    spec!(
        CUBIFY_VERTS,
        "mesh_cubify_verts",
        MESH_CUBIFY_VERTS,
        [Read, ReadWrite, ReadWrite]
    );
    spec!(
        CUBIFY_REMAP,
        "mesh_cubify_remap",
        MESH_CUBIFY_REMAP,
        [Read, Read, Read, ReadWrite, ReadWrite]
    );
    spec!(
        SCAN_LOCAL,
        "mesh_scan_local",
        MESH_SCAN_LOCAL,
        [ReadWrite, ReadWrite]
    );
    spec!(
        SCAN_SUMS,
        "mesh_scan_sums",
        MESH_SCAN_SUMS,
        [ReadWrite, ReadWrite]
    );
    spec!(SCAN_ADD, "mesh_scan_add", MESH_SCAN_ADD, [ReadWrite, Read]);
    spec!(
        EDGE_COUNT,
        "mesh_edge_count",
        MESH_EDGE_COUNT,
        [Read, Read, Read, ReadWrite, ReadWrite]
    );
    spec!(
        EDGES,
        "mesh_edges",
        MESH_EDGES,
        [Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite]
    );
    spec!(
        PROJECT,
        "mesh_project",
        MESH_PROJECT,
        [Read, Read, ReadWrite, ReadWrite]
    );
    spec!(
        VERT_ALIGN,
        "mesh_vert_align",
        MESH_VERT_ALIGN,
        [Read, Read, Read, ReadWrite]
    );
    spec!(
        BOTTLENECK,
        "mesh_bottleneck",
        MESH_BOTTLENECK,
        [Read, Read, Read, Read, Read, ReadWrite]
    );
    spec!(
        GCONV_LINEAR,
        "mesh_gconv_linear",
        MESH_GCONV_LINEAR,
        [Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite]
    );
    spec!(
        GCONV_GATHER,
        "mesh_gconv_gather",
        MESH_GCONV_GATHER,
        [Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite]
    );
    spec!(
        OFFSET,
        "mesh_offset",
        MESH_OFFSET,
        [Read, Read, Read, Read, Read, ReadWrite, ReadWrite]
    );
    spec!(
        DISPATCH_ARGS,
        "mesh_dispatch_args",
        MESH_DISPATCH_ARGS,
        [Read, ReadWrite]
    );
}

/// A recorded mesh launch: a plain [`Launch`], or one whose grid a `mesh_dispatch_args` launch
/// wrote into the args buffer at this byte offset.
#[derive(Debug)]
pub struct MeshLaunch {
    pub launch: Launch,
    pub indirect: Option<u64>,
}

/// Records `spec` with `p` over `buffers`, on a direct grid of `threads` / 256 workgroups.
pub fn direct(
    ctx: &Context,
    label: &str,
    spec: &KernelSpec,
    p: &MeshParams,
    buffers: &[&wgpu::Buffer],
    threads: usize,
) -> MeshLaunch {
    let groups = (threads as u32).div_ceil(256);
    MeshLaunch {
        launch: launch_on(ctx, label, spec, p, buffers, grid(groups, MAX_GROUPS)),
        indirect: None,
    }
}

/// Records `spec` with `p` over `buffers` on an explicit workgroup grid.
pub fn launch_on(
    ctx: &Context,
    label: &str,
    spec: &KernelSpec,
    p: &MeshParams,
    buffers: &[&wgpu::Buffer],
    workgroups: [u32; 3],
) -> Launch {
    let kernel: Arc<Kernel> = ctx.kernel(spec, &[]);
    ctx.launch(label, &kernel, bytemuck::bytes_of(p), buffers, workgroups)
}

/// Records `spec` dispatched indirectly from `args` slot `args_slot`.
pub fn indirect(
    ctx: &Context,
    label: &str,
    spec: &KernelSpec,
    p: &MeshParams,
    buffers: &[&wgpu::Buffer],
    args_slot: u32,
) -> MeshLaunch {
    MeshLaunch {
        launch: launch_on(ctx, label, spec, p, buffers, [0, 0, 0]),
        indirect: Some(u64::from(args_slot) * 12),
    }
}

/// Records a `mesh_dispatch_args` launch: args slot `args_slot` gets the grid for
/// `ceil(counts[count_slot] / items_per_group) * per_group` threads, 256 per workgroup; with
/// `rows > 0` a grid of that many workgroup rows (kernels that give each row an output block).
pub fn dispatch_args(
    ctx: &Context,
    counts: &wgpu::Buffer,
    args: &wgpu::Buffer,
    args_slot: u32,
    count_slot: u32,
    (items_per_group, per_group, rows): (u32, u32, u32),
) -> MeshLaunch {
    let p = MeshParams {
        n: args_slot,
        count_slot,
        in_f: items_per_group,
        ld_y: rows,
        aux0: per_group,
        aux1: 256,
        ..Default::default()
    };
    MeshLaunch {
        launch: launch_on(
            ctx,
            "mesh.dispatch_args",
            &specs::DISPATCH_ARGS,
            &p,
            &[counts, args],
            [1, 1, 1],
        ),
        indirect: None,
    }
}

/// An exclusive prefix sum of the `n` u32 of `data` in place; the total goes to
/// `counts[total_slot]`. `block_sums` holds at least `n.div_ceil(1024)` u32.
pub fn scan(
    ctx: &Context,
    label: &str,
    data: &wgpu::Buffer,
    n: usize,
    block_sums: &wgpu::Buffer,
    counts: &wgpu::Buffer,
    total_slot: u32,
) -> Vec<MeshLaunch> {
    let blocks = n.div_ceil(1024);
    let p = MeshParams::elements(n);
    let sums = MeshParams {
        slot2: total_slot,
        ..MeshParams::elements(blocks)
    };
    vec![
        MeshLaunch {
            launch: launch_on(
                ctx,
                &format!("{label}.scan_local"),
                &specs::SCAN_LOCAL,
                &p,
                &[data, block_sums],
                grid(blocks as u32, MAX_GROUPS),
            ),
            indirect: None,
        },
        MeshLaunch {
            launch: launch_on(
                ctx,
                &format!("{label}.scan_sums"),
                &specs::SCAN_SUMS,
                &sums,
                &[block_sums, counts],
                [1, 1, 1],
            ),
            indirect: None,
        },
        direct(
            ctx,
            &format!("{label}.scan_add"),
            &specs::SCAN_ADD,
            &p,
            &[data, block_sums],
            n,
        ),
    ]
}

/// Encodes `launches` into one compute pass of `encoder`, the indirect ones from `args`.
pub fn encode(encoder: &mut wgpu::CommandEncoder, launches: &[MeshLaunch], args: &wgpu::Buffer) {
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("wgcnn.mesh"),
        timestamp_writes: None,
    });
    for l in launches {
        pass.set_pipeline(&l.launch.kernel.pipeline);
        pass.set_bind_group(0, &l.launch.bind_group, &[]);
        match l.indirect {
            Some(offset) => pass.dispatch_workgroups_indirect(args, offset),
            None => {
                let [x, y, z] = l.launch.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
    }
}

/// A storage buffer that can also hold indirect dispatch arguments.
pub fn args_buffer(ctx: &Context, slots: usize) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("mesh.args"),
        size: (slots * 12).max(16) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::INDIRECT
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Reads the first `len` u32 of `buffer` (they travel as f32 bit patterns).
pub fn read_u32(
    ctx: &Context,
    buffer: &wgpu::Buffer,
    len: usize,
) -> Result<Vec<u32>, crate::KernelError> {
    Ok(ctx
        .read(buffer, len)?
        .into_iter()
        .map(f32::to_bits)
        .collect())
}

/// The bytes of `x` (for `queue.write_buffer` of f32 data).
pub fn as_bytes(x: &[f32]) -> &[u8] {
    bytemuck::cast_slice(x)
}
