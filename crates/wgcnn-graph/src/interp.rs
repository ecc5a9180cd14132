//! The CPU reference interpreter: every [`Op`] in plain f32 loops, following PyTorch's
//! semantics exactly. GPU kernels and whole networks are tested against it.
//!
//! - [`eval_op`]: one op on CPU tensors.
//! - [`run`]: a whole graph, freeing each intermediate after its last reader.
//! - [`run_all`]: a whole graph, keeping every tensor (for locating a mismatch).
//! - [`infer_roi_scale`]: torchvision's spatial scale of a feature level for [`crate::RoiAlign`].
//! - [`PasteBox`]: the integer box `paste_masks_in_image` pastes a mask into.
//! - [`RoiMap`], [`cubic_taps`]: the resized map and bicubic taps of `heatmaps_to_keypoints`.

mod conv;
mod conv_transpose;
mod detect;
mod elementwise;
mod keypoint_decode;
mod nms;
mod paste_masks;
mod pool;
mod resize;
mod roi_align;
#[cfg(test)]
pub(crate) mod tests;

pub use keypoint_decode::{CubicTaps, RoiMap, cubic_taps};
pub use paste_masks::PasteBox;
pub use roi_align::infer_roi_scale;

use crate::{Graph, GraphError, Op, Tensor, TensorId, TensorKind};

/// Evaluates one op on CPU tensors. Input count and shapes are checked with [`Op::infer`];
/// a mismatch is a [`GraphError::Shape`], never a panic.
pub fn eval_op(op: &Op, inputs: &[&Tensor]) -> Result<Tensor, GraphError> {
    eval_named("(single op)", op, inputs)
}

/// [`eval_op`] with the node name used in error messages.
fn eval_named(node: &str, op: &Op, inputs: &[&Tensor]) -> Result<Tensor, GraphError> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let fail = |message: String| GraphError::Shape {
        node: node.to_string(),
        op: op.kind(),
        inputs: shapes.iter().map(|s| s.to_vec()).collect(),
        message,
    };
    if let Some((i, t)) = inputs
        .iter()
        .enumerate()
        .find(|(_, t)| t.data.len() != t.shape.iter().product::<usize>())
    {
        return Err(fail(format!(
            "input {i} holds {} values for shape {:?}",
            t.data.len(),
            t.shape
        )));
    }
    let out_shape = op.infer(&shapes).map_err(fail)?;
    let x = inputs[0];
    let out = match op {
        Op::Conv2d(c) => {
            let bias = c.bias.then(|| inputs[2]);
            let residual = c.residual.then(|| inputs[inputs.len() - 1]);
            conv::conv2d(c, x, inputs[1], bias, residual, &out_shape)
        }
        Op::ConvTranspose2d(c) => {
            conv_transpose::conv_transpose2d(c, x, inputs[1], c.bias.then(|| inputs[2]), &out_shape)
        }
        Op::Linear { bias, act } => conv::linear(x, inputs[1], bias.then(|| inputs[2]), *act),
        Op::MaxPool2d(p) => pool::max_pool(p, x, &out_shape),
        Op::AvgPool2d(p) => pool::avg_pool(p, x, &out_shape),
        Op::AdaptiveAvgPool2d { .. } => pool::adaptive_avg_pool(x, &out_shape),
        Op::BatchNorm { eps } => {
            elementwise::batch_norm(x, [inputs[1], inputs[2], inputs[3], inputs[4]], *eps)
        }
        Op::Act(a) => Tensor {
            shape: out_shape,
            data: x.data.iter().map(|&v| a.apply(v)).collect(),
        },
        Op::Add => elementwise::broadcast(x, inputs[1], |a, b| a + b),
        Op::Mul => elementwise::broadcast(x, inputs[1], |a, b| a * b),
        Op::PRelu => elementwise::prelu(x, inputs[1]),
        Op::Concat { axis } => elementwise::concat(inputs, *axis, &out_shape),
        Op::Flatten { .. } | Op::Reshape { .. } => Tensor {
            shape: out_shape,
            data: x.data.clone(),
        },
        Op::Lrn(l) => elementwise::lrn(l, x),
        Op::Softmax { axis } => elementwise::softmax(x, *axis),
        Op::Pad { padding, value } => elementwise::pad(x, *padding, *value, &out_shape),
        Op::Resize { mode, .. } => resize::resize(x, *mode, &out_shape),
        Op::Permute { perm } => resize::permute(x, perm, &out_shape),
        Op::ArgMax2d { .. } => resize::argmax2d(x, &out_shape),
        Op::Proposals(p) => detect::proposals(p, x, inputs[1], inputs[2], &out_shape),
        Op::RoiAlign(r) => roi_align::roi_align(r, x, &inputs[1..], &out_shape),
        Op::BoxPostprocess(p) => detect::box_postprocess(p, x, inputs[1], inputs[2], &out_shape),
        Op::ScaleBoxes { scale } => detect::scale_boxes(x, *scale),
        Op::PasteMasks { padding, .. } => {
            paste_masks::paste_masks(x, inputs[1], *padding, &out_shape)
        }
        Op::MaskBits { threshold } => paste_masks::mask_bits(x, *threshold, &out_shape),
        Op::KeypointDecode { scale } => {
            keypoint_decode::keypoint_decode(x, inputs[1], *scale, &out_shape)
        }
    };
    Ok(out)
}

/// Runs `graph` on `inputs` (in [`Graph::inputs`] order) and returns the tensors of
/// [`Graph::outputs`], in order. Each intermediate is dropped after its last reader.
pub fn run(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, GraphError> {
    let mut values = seed(graph, inputs)?;
    let mut remaining = graph.use_counts();
    for node in &graph.nodes {
        let out = eval_node(graph, node, &mut values)?;
        values[node.output.0] = Some(out);
        for &i in &node.inputs {
            remaining[i.0] = remaining[i.0].saturating_sub(1);
            if remaining[i.0] == 0 {
                values[i.0] = None;
            }
        }
    }
    graph
        .outputs
        .iter()
        .map(|&o| {
            values[o.0].clone().ok_or_else(|| {
                GraphError::Invalid(format!(
                    "output {} ({}) was never computed",
                    o.0,
                    graph.tensor(o).name
                ))
            })
        })
        .collect()
}

/// Runs `graph` and returns the value of every tensor, indexed by [`TensorId::0`]: inputs,
/// parameters, constants and every node's output (`None` only for tensors nothing defines).
pub fn run_all(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>, GraphError> {
    let mut values = seed(graph, inputs)?;
    for (i, t) in graph.tensors.iter().enumerate() {
        if values[i].is_none() && matches!(t.kind, TensorKind::Param | TensorKind::Const) {
            values[i] = Some(load(graph, TensorId(i))?);
        }
    }
    for node in &graph.nodes {
        let out = eval_node(graph, node, &mut values)?;
        values[node.output.0] = Some(out);
    }
    Ok(values)
}

/// The value table with the graph inputs filled in, after checking their count and shapes.
fn seed(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>, GraphError> {
    if inputs.len() != graph.inputs.len() {
        return Err(GraphError::Invalid(format!(
            "graph takes {} inputs, got {}",
            graph.inputs.len(),
            inputs.len()
        )));
    }
    let mut values: Vec<Option<Tensor>> = vec![None; graph.tensors.len()];
    for (&id, t) in graph.inputs.iter().zip(inputs) {
        let info = graph
            .tensors
            .get(id.0)
            .ok_or_else(|| GraphError::Invalid(format!("graph input id {} out of range", id.0)))?;
        if t.shape != info.shape || t.data.len() != info.numel() {
            return Err(GraphError::Invalid(format!(
                "input {} expects shape {:?}, got {:?} with {} values",
                info.name,
                info.shape,
                t.shape,
                t.data.len()
            )));
        }
        values[id.0] = Some(t.clone());
    }
    Ok(values)
}

/// A parameter's or constant's bound values as a tensor.
fn load(graph: &Graph, id: TensorId) -> Result<Tensor, GraphError> {
    let t = graph.tensor(id);
    let data = t.data.as_ref().ok_or_else(|| {
        GraphError::Invalid(format!(
            "tensor {} ({:?} {:?}) has no values: bind weights first",
            t.name, t.kind, t.shape
        ))
    })?;
    Tensor::new(&t.shape, data.to_vec()).map_err(|_| {
        GraphError::Invalid(format!(
            "tensor {}: {} values for shape {:?}",
            t.name,
            data.len(),
            t.shape
        ))
    })
}

/// Evaluates one node, loading any parameter or constant it reads that is not loaded yet.
fn eval_node(
    graph: &Graph,
    node: &crate::Node,
    values: &mut [Option<Tensor>],
) -> Result<Tensor, GraphError> {
    for &i in &node.inputs {
        let info = graph.tensors.get(i.0).ok_or_else(|| {
            GraphError::Invalid(format!(
                "node {}: input tensor id {} out of range",
                node.name, i.0
            ))
        })?;
        if values[i.0].is_none() {
            match info.kind {
                TensorKind::Param | TensorKind::Const => values[i.0] = Some(load(graph, i)?),
                _ => {
                    return Err(GraphError::Invalid(format!(
                        "node {} reads {} before it is computed (nodes out of order?)",
                        node.name, info.name
                    )));
                }
            }
        }
    }
    if node.output.0 >= values.len() {
        return Err(GraphError::Invalid(format!(
            "node {}: output id {} out of range",
            node.name, node.output.0
        )));
    }
    let ins: Vec<&Tensor> = node
        .inputs
        .iter()
        .filter_map(|i| values[i.0].as_ref())
        .collect();
    eval_named(&node.name, &node.op, &ins)
}
