//! `topk_sort`: bitonic sort of (key, index) pairs in blocks of up to [`BLOCK`] in workgroup
//! memory, and the merge that keeps the best [`BLOCK`] of two sorted blocks; together a top-k
//! (k <= [`BLOCK`]) over segments of any length. Shader: `shaders/topk_sort.wgsl`.
//!
//! Order: key descending, then index ascending (a stable descending sort).

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "topk_sort",
    source: shaders::TOPK_SORT,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// Pairs sorted in workgroup memory at once: 16 KiB of (u32, u32), exactly WebGPU's default
/// `maxComputeWorkgroupStorageSize`, so the shader keeps nothing else there.
pub const BLOCK: usize = 2048;

/// Mirrors `Params` in `shaders/topk_sort.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct TopkSortParams {
    pub entries: u32,
    /// 0: sort each block; 1: merge block pairs.
    pub mode: u32,
    pub _pad: [u32; 2],
}

/// The block size for a top-`k`: the smallest power of two holding `k`, at most [`BLOCK`]
/// (smaller blocks sort in fewer stages).
pub fn block_for(k: usize) -> usize {
    k.max(1).next_power_of_two().min(BLOCK)
}

/// The pair layout of one segment of `len` values with blocks of `block` (a power of two up to
/// [`BLOCK`]): padded to a power of two when it fits one block, else to whole blocks.
pub fn padded_len(len: usize, block: usize) -> usize {
    if len == 0 {
        0
    } else if len <= block {
        len.next_power_of_two()
    } else {
        len.div_ceil(block) * block
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the launches that leave each segment's best `min(block, padded)` pairs sorted at
/// its start, labelled `label[sort]` and `label[merge s]`. `segments` are `(offset, padded_len)`
/// in pairs, laid out by [`padded_len`] with the same `block`.
pub fn launches(
    ctx: &Context,
    label: &str,
    segments: &[(usize, usize)],
    block: usize,
    pairs: &wgpu::Buffer,
) -> Vec<Launch> {
    let kernel = kernel(ctx);
    let record = |name: String, mode: u32, table: Vec<[usize; 3]>| {
        let words: Vec<u32> = table
            .iter()
            .flat_map(|e| [e[0] as u32, e[1] as u32, e[2] as u32, 0])
            .collect();
        let buffer = ctx.device_buffer_u32(&words);
        let p = TopkSortParams {
            entries: table.len() as u32,
            mode,
            _pad: [0; 2],
        };
        ctx.launch(
            &name,
            &kernel,
            bytemuck::bytes_of(&p),
            &[&buffer, pairs],
            grid(p.entries, MAX_GROUPS),
        )
    };
    let mut sort = Vec::new();
    for &(off, padded) in segments {
        let len = padded.min(block);
        for b in (0..padded).step_by(len.max(1)) {
            sort.push([off + b, 0, len]);
        }
    }
    let mut out = Vec::new();
    if sort.is_empty() {
        return out;
    }
    out.push(record(format!("{label}[sort]"), 0, sort));
    let mut stride = 1;
    loop {
        let mut merge = Vec::new();
        for &(off, padded) in segments {
            let blocks = padded.div_ceil(block);
            let mut i = 0;
            while i + stride < blocks {
                merge.push([off + i * block, off + (i + stride) * block, block]);
                i += 2 * stride;
            }
        }
        if merge.is_empty() {
            break;
        }
        out.push(record(format!("{label}[merge {stride}]"), 1, merge));
        stride *= 2;
    }
    out
}

#[cfg(test)]
mod tests;
