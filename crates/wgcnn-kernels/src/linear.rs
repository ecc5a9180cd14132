//! `linear`: `y = act(x W^T + b)` for `x [N, K]`, `W [M, K]`, with W split by rows across
//! bindings when it exceeds the device's largest storage binding (VGG-16's first classifier
//! layer: 392 MiB). Shaders: `shaders/linear.wgsl` (any device) and `shaders/linear_sg.wgsl`
//! (x shared through subgroup broadcasts; devices with subgroups of at least 8 lanes, see
//! [`crate::conv2d::subgroups_usable`]), picked by [`launches`].

use std::ops::Range;
use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelError, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

/// The kernel's registry entry: params, then x, weight rows, bias, y.
pub const SPEC: KernelSpec = KernelSpec {
    name: "linear",
    source: shaders::LINEAR,
    buffers: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

/// The subgroup variant's registry entry: the same bindings as [`SPEC`].
pub const SG_SPEC: KernelSpec = KernelSpec {
    name: "linear_sg",
    source: shaders::LINEAR_SG,
    buffers: SPEC.buffers,
};

/// Weight rows per workgroup (one per invocation); keep in step with the shader.
const ROWS_PER_GROUP: usize = 64;
/// Weight rows per block of `linear_sg` (one per lane of a group of 8).
const SG_ROWS_PER_GROUP: usize = 8;
/// Batch rows per invocation; keep in step with the shader.
const BATCH_PER_INVOCATION: usize = 4;

/// One fully connected layer in plain numbers (this crate knows no graph).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearDesc {
    /// N.
    pub batch: usize,
    /// K.
    pub in_features: usize,
    /// M.
    pub out_features: usize,
    /// A bias `[M]` is added.
    pub bias: bool,
    /// `(code, p0, p1)` from `wgcnn_graph::Activation::code`.
    pub act: (u32, f32, f32),
}

/// Mirrors `Params` in `shaders/linear.wgsl`; keep both in step (48 bytes, 16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LinearParams {
    pub batch: u32,
    pub in_features: u32,
    pub out_features: u32,
    /// First row of W held by the bound weight buffer.
    pub row_offset: u32,
    /// Rows of W held by the bound weight buffer.
    pub rows: u32,
    /// `ceil(rows / 64)`.
    pub row_blocks: u32,
    pub has_bias: u32,
    pub act: u32,
    pub p0: f32,
    pub p1: f32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl LinearParams {
    /// Params of the launch over rows `rows` of W, or an error naming the shapes.
    pub fn new(desc: &LinearDesc, rows: Range<usize>) -> Result<Self, KernelError> {
        let LinearDesc {
            batch,
            in_features,
            out_features,
            ..
        } = *desc;
        if batch == 0 || in_features == 0 || out_features == 0 {
            return Err(bad(format!(
                "zero extent: x [{batch}, {in_features}], W [{out_features}, {in_features}]"
            )));
        }
        if rows.start >= rows.end || rows.end > out_features {
            return Err(bad(format!(
                "weight rows {rows:?} are not a non-empty part of 0..{out_features}"
            )));
        }
        let elements = [
            batch * in_features,
            out_features * in_features,
            batch * out_features,
        ];
        if elements.iter().any(|&e| e > u32::MAX as usize) {
            return Err(bad(format!(
                "x [{batch}, {in_features}] x W [{out_features}, {in_features}] exceeds 2^32 elements"
            )));
        }
        let u = |v: usize| v as u32;
        Ok(LinearParams {
            batch: u(batch),
            in_features: u(in_features),
            out_features: u(out_features),
            row_offset: u(rows.start),
            rows: u(rows.len()),
            row_blocks: u(rows.len().div_ceil(ROWS_PER_GROUP)),
            has_bias: desc.bias as u32,
            act: desc.act.0,
            p0: desc.act.1,
            p1: desc.act.2,
            _pad0: 0,
            _pad1: 0,
        })
    }

    /// Workgroups the launch needs (before folding onto a 2-D grid).
    pub fn workgroups(&self) -> u32 {
        self.row_blocks * (self.batch as usize).div_ceil(BATCH_PER_INVOCATION) as u32
    }
}

fn bad(detail: String) -> KernelError {
    KernelError::BadShape {
        kernel: "linear",
        detail,
    }
}

/// Splits the `out_features` rows of a `[out_features, in_features]` weight into as few row
/// ranges as keep each under `max_binding` bytes, all but the last of equal size (a multiple of
/// 64 rows where that fits, so no workgroup straddles two launches' worth of rows).
pub fn row_chunks(
    out_features: usize,
    in_features: usize,
    max_binding: u64,
) -> Result<Vec<Range<usize>>, KernelError> {
    let row_bytes = in_features as u64 * 4;
    let fit = max_binding
        .checked_div(row_bytes)
        .unwrap_or(out_features as u64);
    if fit == 0 {
        return Err(KernelError::TooLarge {
            what: format!("one row of a linear weight [{out_features}, {in_features}]"),
            needed: row_bytes,
            limit: max_binding,
        });
    }
    let fit = fit.min(out_features.max(1) as u64) as usize;
    let pieces = out_features.div_ceil(fit).max(1);
    let mut per = out_features.div_ceil(pieces);
    let rounded = per.next_multiple_of(ROWS_PER_GROUP);
    if rounded <= fit {
        per = rounded;
    }
    Ok((0..out_features)
        .step_by(per.max(1))
        .map(|s| s..(s + per).min(out_features))
        .collect())
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records one launch over the rows `p.row_offset .. p.row_offset + p.rows` of W, which
/// `weight` holds (and only those). `bias` is the full `[M]` bias (any small buffer when
/// `has_bias` is 0); `y` is the full `[N, M]` output.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &LinearParams,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let groups = grid(p.workgroups(), MAX_GROUPS);
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[x, weight, bias, y],
        groups,
    )
}

/// As [`launch`], on `linear_sg` (8 rows per group of 8 lanes: `p.row_blocks` is recomputed;
/// the device's [`crate::conv2d::subgroup_form`] sets the `GROUPS` override and the grid); the
/// device must have subgroups of at least 8 lanes and K be a multiple of 4.
pub fn launch_sg(
    ctx: &Context,
    label: &str,
    p: &LinearParams,
    x: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    let p = LinearParams {
        row_blocks: (p.rows as usize).div_ceil(SG_ROWS_PER_GROUP) as u32,
        ..*p
    };
    let form = crate::conv2d::subgroup_form(ctx);
    let groups = grid(form.workgroups(p.workgroups()), MAX_GROUPS);
    ctx.launch(
        label,
        &ctx.kernel(&SG_SPEC, &[form.constant()]),
        bytemuck::bytes_of(&p),
        &[x, weight, bias, y],
        groups,
    )
}

/// Records the launches of a layer whose weight is held in row chunks: `(rows, buffer)` pairs
/// that must tile `0..M` in order (one pair for an unsplit weight), on `linear_sg` where the
/// device allows and K is a multiple of 4, else on `linear`. Errors name the layer.
pub fn launches(
    ctx: &Context,
    label: &str,
    desc: &LinearDesc,
    x: &wgpu::Buffer,
    weight_chunks: &[(Range<usize>, &wgpu::Buffer)],
    bias: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Vec<Launch>, KernelError> {
    let sg = crate::conv2d::subgroups_usable(ctx) && desc.in_features.is_multiple_of(4);
    launches_on(ctx, label, desc, x, weight_chunks, bias, y, sg)
}

/// As [`launches`], on `linear_sg` if `subgroups` (K must then be a multiple of 4: checked),
/// else on `linear`.
#[allow(clippy::too_many_arguments)]
pub fn launches_on(
    ctx: &Context,
    label: &str,
    desc: &LinearDesc,
    x: &wgpu::Buffer,
    weight_chunks: &[(Range<usize>, &wgpu::Buffer)],
    bias: &wgpu::Buffer,
    y: &wgpu::Buffer,
    subgroups: bool,
) -> Result<Vec<Launch>, KernelError> {
    if subgroups && !desc.in_features.is_multiple_of(4) {
        return Err(bad(format!(
            "{label}: linear_sg reads weights as vec4s, K = {} is not a multiple of 4",
            desc.in_features
        )));
    }
    let mut next = 0;
    let mut out = Vec::with_capacity(weight_chunks.len());
    for (rows, buffer) in weight_chunks {
        if rows.start != next {
            return Err(bad(format!(
                "{label}: weight chunk rows {rows:?} do not continue at row {next}"
            )));
        }
        next = rows.end;
        let p = LinearParams::new(desc, rows.clone()).map_err(|e| match e {
            KernelError::BadShape { detail, .. } => bad(format!("{label}: {detail}")),
            other => other,
        })?;
        let name = if weight_chunks.len() == 1 {
            label.to_string()
        } else {
            format!("{label}[{rows:?}]")
        };
        out.push(if subgroups {
            launch_sg(ctx, &name, &p, x, buffer, bias, y)
        } else {
            launch(ctx, &name, &p, x, buffer, bias, y)
        });
    }
    if next != desc.out_features {
        return Err(bad(format!(
            "{label}: weight chunks cover rows 0..{next} of {}",
            desc.out_features
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
