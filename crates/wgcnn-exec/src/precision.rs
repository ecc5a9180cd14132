//! What a plan checks before lowering a graph at [`Precision::F16`]: the device's
//! `shader-f16`, and that every op is one whose kernels keep only real numbers in their float
//! buffers. Detection ops (box decoding, NMS, top-k, masks bit-packed, row gating) store
//! indices, counts and bit patterns in f32 buffers, which f16 would corrupt: a graph holding
//! one is refused with the node and op named.

use wgcnn_graph::{Graph, Op};
use wgcnn_kernels::{Context, KernelError, Precision};

use crate::ExecError;

/// Whether `op` has kernels that are right at f16 storage (all in
/// [`wgcnn_kernels::precision::F16_KERNELS`]).
pub(crate) fn f16_safe(op: &Op) -> bool {
    match op {
        Op::Conv2d(_)
        | Op::ConvTranspose2d(_)
        | Op::MaxPool2d(_)
        | Op::AvgPool2d(_)
        | Op::AdaptiveAvgPool2d { .. }
        | Op::Linear { .. }
        | Op::BatchNorm { .. }
        | Op::Act(_)
        | Op::Add
        | Op::Mul
        | Op::PRelu
        | Op::Concat { .. }
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Lrn(_)
        | Op::Softmax { .. }
        | Op::Pad { .. }
        | Op::Resize { .. }
        | Op::Permute { .. }
        // Class indices up to 2048 are exact in f16 (`check` refuses more classes).
        | Op::ArgMax2d { .. } => true,
        _ => false,
    }
}

/// Refuses what `precision` cannot run on `ctx` for `graph`.
pub(crate) fn check(ctx: &Context, graph: &Graph, precision: Precision) -> Result<(), ExecError> {
    if precision == Precision::F32 {
        return Ok(());
    }
    if !ctx.features.contains(wgpu::Features::SHADER_F16) {
        return Err(ExecError::Kernel(KernelError::NoF16 {
            adapter: ctx.info.name.clone(),
        }));
    }
    // f16 holds every integer up to 2048 exactly: an argmax over more classes would round
    // its class indices.
    let too_many_classes = |n: &wgcnn_graph::Node| {
        matches!(n.op, Op::ArgMax2d { .. })
            && n.inputs
                .first()
                .is_some_and(|&x| graph.shape(x).get(1).is_some_and(|&c| c > 2048))
    };
    let refusal = |n: &wgcnn_graph::Node| {
        if !f16_safe(&n.op) {
            Some("it has no f16 kernel (its buffers hold integers or bits)")
        } else if too_many_classes(n) {
            Some("over 2048 classes, whose indices f16 cannot hold exactly")
        } else {
            None
        }
    };
    match graph.nodes.iter().find_map(|n| Some((n, refusal(n)?))) {
        Some((node, why)) => Err(ExecError::NoF16 {
            node: node.name.clone(),
            op: node.op.kind(),
            why,
        }),
        None => Ok(()),
    }
}
