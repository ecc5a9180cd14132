//! `permute`: `x.permute(perm)` with the data moved, for ranks up to 6.
//! Shader: `shaders/permute.wgsl`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::{Access, Context, Kernel, KernelError, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

pub const SPEC: KernelSpec = KernelSpec {
    name: "permute",
    source: shaders::PERMUTE,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// The largest rank the kernel handles.
pub const MAX_RANK: usize = 6;

/// Mirrors `Params` in `shaders/permute.wgsl`; keep both in step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PermuteParams {
    pub total: u32,
    /// Output extents of the right-aligned axes 1..=5 (axis 0 is implied).
    pub dims: [u32; 5],
    /// Input stride of each right-aligned output axis 0..=5.
    pub strides: [u32; 6],
}

impl PermuteParams {
    /// Output axis `i` is input axis `perm[i]` of `shape`; `perm` must be a permutation.
    pub fn new(shape: &[usize], perm: &[usize]) -> Result<Self, KernelError> {
        let rank = shape.len();
        let mut seen = [false; MAX_RANK];
        if rank > MAX_RANK
            || perm.len() != rank
            || perm
                .iter()
                .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
        {
            return Err(KernelError::BadShape {
                kernel: "permute",
                detail: format!(
                    "{perm:?} is not a permutation of the axes of {shape:?} (rank <= {MAX_RANK})"
                ),
            });
        }
        let mut in_strides = vec![1usize; rank];
        for i in (0..rank.saturating_sub(1)).rev() {
            in_strides[i] = in_strides[i + 1] * shape[i + 1];
        }
        // Right-align into six axes: leading axes of extent 1 and stride 0.
        let mut dims = [1u32; MAX_RANK];
        let mut strides = [0u32; MAX_RANK];
        for (i, &p) in perm.iter().enumerate() {
            dims[MAX_RANK - rank + i] = shape[p] as u32;
            strides[MAX_RANK - rank + i] = in_strides[p] as u32;
        }
        let total = shape.iter().product::<usize>() as u32;
        Ok(PermuteParams {
            total,
            dims: [dims[1], dims[2], dims[3], dims[4], dims[5]],
            strides,
        })
    }
}

/// The compiled kernel.
pub fn kernel(ctx: &Context) -> Arc<Kernel> {
    ctx.kernel(&SPEC, &[])
}

/// Records the permutation of `x` into `y`.
pub fn launch(
    ctx: &Context,
    label: &str,
    p: &PermuteParams,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Launch {
    ctx.launch(
        label,
        &kernel(ctx),
        bytemuck::bytes_of(p),
        &[x, y],
        grid(p.total.div_ceil(256), MAX_GROUPS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, assert_close, ctx};
    use wgcnn_graph::{Op, Tensor, interp};

    #[test]
    fn permute_rpn_head_layouts_and_random_perms_match_interpreter() {
        let ctx = ctx();
        let mut rng = Rng::new(9);
        let cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
            (vec![1, 3, 40, 56], vec![0, 2, 3, 1]),
            (vec![1, 3, 4, 5, 7], vec![0, 3, 4, 1, 2]),
            (vec![2, 15, 4, 5, 3], vec![0, 3, 4, 1, 2]),
            (vec![6, 5], vec![1, 0]),
            (vec![7], vec![0]),
            (vec![2, 3, 1, 4, 2, 3], vec![5, 3, 1, 0, 4, 2]),
            (vec![3, 1, 4], vec![2, 0, 1]),
        ];
        for (shape, perm) in cases {
            let x = rng.tensor(&shape, 1.0);
            let want = interp::eval_op(&Op::Permute { perm: perm.clone() }, &[&x]).expect("interp");
            let p = PermuteParams::new(&shape, &perm).expect("params");
            let (xb, yb) = (
                ctx.upload("x", &x.data),
                ctx.storage("y", x.numel() as u64 * 4),
            );
            ctx.run(&[launch(ctx, "t", &p, &xb, &yb)]).expect("run");
            let got =
                Tensor::new(&want.shape, ctx.read(&yb, x.numel()).expect("read")).expect("shape");
            assert_close(&format!("permute {shape:?} by {perm:?}"), &got, &want, 0.0);
        }
    }

    #[test]
    fn permute_rejects_a_non_permutation() {
        let err = PermuteParams::new(&[2, 3, 4], &[0, 0, 1]).expect_err("repeated axis");
        println!("{err}");
        assert!(err.to_string().contains("[0, 0, 1]"));
        assert!(PermuteParams::new(&[1; 7], &[0, 1, 2, 3, 4, 5, 6]).is_err());
    }
}
