//! Node dispatch and the element-wise, shape and layout ops. Convolution, pooling,
//! normalization and the linear layers live in `nn.rs`.

use std::sync::Arc;

use wgcnn_graph::{Activation, Op, broadcasts_to};

use super::NodeError;
use super::attrs::{Attrs, norm_axis, to_sizes};
use super::fold::{self, axes_of, perm_of, reshape_target, squeeze_shape, unsqueeze_shape};
use super::import::{Importer, NodeInfo, Value};
use super::proto::{NodeProto, data_type};
use super::{nn, resize};

/// Op types of the default domain the importer maps (some only for constant inputs).
pub(crate) const SUPPORTED_OPS: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "LRN",
    "Gemm",
    "MatMul",
    "Relu",
    "PRelu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Sum",
    "Concat",
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Resize",
    "Upsample",
    "Softmax",
    "Pad",
    "Dropout",
    "Identity",
    "Cast",
    "ReduceMean",
    "Constant",
    "Shape",
    "Gather",
    "Slice",
    "ConstantOfShape",
];

/// The IR name of a node's (first) result: the ONNX node name, else its first output.
fn ir_name(node: &NodeProto, info: &NodeInfo) -> String {
    if !node.name.is_empty() {
        node.name.clone()
    } else if let Some(o) = node.output.first().filter(|o| !o.is_empty()) {
        o.clone()
    } else {
        format!("{}{}", node.op_type, info.label)
    }
}

/// Imports one node: folds it on the host when possible, else maps it onto IR nodes.
pub(crate) fn import_node(
    imp: &mut Importer,
    node: &NodeProto,
    info: &NodeInfo,
) -> Result<(), NodeError> {
    if let Some(t) = fold::try_fold(imp, node, info)? {
        imp.set_output(node, 0, Value::Host(Arc::new(t)));
        return Ok(());
    }
    let attrs = Attrs::new(&node.attribute);
    let name = ir_name(node, info);
    let activation = match node.op_type.as_str() {
        "Relu" => Some(Activation::Relu),
        "Sigmoid" => Some(Activation::Sigmoid),
        "Tanh" => Some(Activation::Tanh),
        "HardSwish" => Some(Activation::HardSwish),
        "HardSigmoid" => Some(Activation::HardSigmoid {
            alpha: attrs.float_or("alpha", 0.2)?,
            beta: attrs.float_or("beta", 0.5)?,
        }),
        "Clip" => Some(clip(imp, node, &attrs, info)?),
        _ => None,
    };
    let out = if let Some(a) = activation {
        let x = imp.graph_input(node, 0)?;
        Value::Graph(imp.node(&name, Op::Act(a), &[x])?)
    } else {
        match node.op_type.as_str() {
            "Conv" => nn::conv(imp, node, &attrs, &name)?,
            "ConvTranspose" => nn::conv_transpose(imp, node, &attrs, &name)?,
            "MaxPool" => nn::pool(imp, node, &attrs, info, &name, true)?,
            "AveragePool" => nn::pool(imp, node, &attrs, info, &name, false)?,
            "GlobalAveragePool" => nn::global_pool(imp, node, &name, false)?,
            "GlobalMaxPool" => nn::global_pool(imp, node, &name, true)?,
            "BatchNormalization" => nn::batch_norm(imp, node, &attrs, info, &name)?,
            "LRN" => nn::lrn(imp, node, &attrs, &name)?,
            "Gemm" => nn::gemm(imp, node, &attrs, &name)?,
            "MatMul" => nn::matmul(imp, node, &name)?,
            "ReduceMean" => nn::reduce_mean(imp, node, &attrs, info, &name)?,
            "Add" | "Sub" | "Mul" | "Div" => binary(imp, node, &name)?,
            "PRelu" => prelu(imp, node, &name)?,
            "Sum" => sum(imp, node, &name)?,
            "Concat" => concat(imp, node, &attrs, &name)?,
            "Flatten" => {
                let x = imp.graph_input(node, 0)?;
                let rank = imp.b.shape(x).len();
                let axis = attrs.int_or("axis", 1)?;
                let axis = if axis == rank as i64 {
                    rank
                } else {
                    norm_axis(axis, rank)?
                };
                Value::Graph(imp.node(&name, Op::Flatten { axis }, &[x])?)
            }
            "Reshape" => {
                let spec = imp
                    .host_req(node, 1)?
                    .to_i64()
                    .map_err(NodeError::Invalid)?;
                let shape = imp.shape_of(imp.req(node, 0)?);
                let target = reshape_target(&shape, &spec, attrs.int_or("allowzero", 0)? != 0)?;
                reshape(imp, node, &name, target)?
            }
            "Squeeze" => {
                let axes = axes_of(imp, node, &attrs, info)?;
                let target = squeeze_shape(&imp.shape_of(imp.req(node, 0)?), axes.as_deref())?;
                reshape(imp, node, &name, target)?
            }
            "Unsqueeze" => {
                let axes = axes_of(imp, node, &attrs, info)?
                    .ok_or_else(|| NodeError::Invalid("Unsqueeze needs axes".into()))?;
                let target = unsqueeze_shape(&imp.shape_of(imp.req(node, 0)?), &axes)?;
                reshape(imp, node, &name, target)?
            }
            "Transpose" => transpose(imp, node, &attrs, &name)?,
            "Resize" => resize::resize(imp, node, &attrs, info, &name)?,
            "Upsample" => resize::upsample(imp, node, &attrs, info, &name)?,
            "Softmax" => softmax(imp, node, &attrs, info, &name)?,
            "Pad" => pad(imp, node, &attrs, info, &name)?,
            "Identity" => imp.req(node, 0)?.clone(),
            "Dropout" => {
                if fold::is_true(imp.input(node, 2)?) {
                    return Err(NodeError::Unsupported(
                        "Dropout with training_mode = true".into(),
                    ));
                }
                imp.req(node, 0)?.clone()
            }
            "Cast" => match attrs.int("to")?.map(|t| t as i32) {
                Some(
                    data_type::FLOAT | data_type::FLOAT16 | data_type::DOUBLE | data_type::BFLOAT16,
                ) => imp.req(node, 0)?.clone(),
                Some(t) => {
                    return Err(NodeError::Unsupported(format!(
                        "Cast of a run-time tensor to {}",
                        data_type::name(t)
                    )));
                }
                None => return Err(NodeError::Invalid("Cast needs `to`".into())),
            },
            other => {
                return Err(NodeError::Unsupported(format!(
                    "{other} of a run-time tensor (only constant inputs are folded)"
                )));
            }
        }
    };
    imp.set_output(node, 0, out);
    Ok(())
}

/// Clip's bounds: attributes before opset 11, optional constant inputs from then on.
/// `Clip(0, +inf)` is a ReLU.
fn clip(
    imp: &Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    info: &NodeInfo,
) -> Result<Activation, NodeError> {
    let (min, max) = if info.opset < 11 {
        (
            attrs.float_or("min", f32::MIN)?,
            attrs.float_or("max", f32::MAX)?,
        )
    } else {
        let bound = |i: usize, default: f32| -> Result<f32, NodeError> {
            match imp.host(node, i)? {
                None => Ok(default),
                Some(t) => t
                    .scalar_f32()
                    .map_err(|m| NodeError::Invalid(format!("Clip bound {i}: {m}"))),
            }
        };
        (bound(1, f32::MIN)?, bound(2, f32::MAX)?)
    };
    let (min, max) = (min.max(f32::MIN), max.min(f32::MAX));
    Ok(if min == 0.0 && max == f32::MAX {
        Activation::Relu
    } else {
        Activation::Clip { min, max }
    })
}

/// Add/Mul with broadcasting either way round; Sub and Div by a constant become Add/Mul by
/// its negation/reciprocal; constant − x becomes (−1 · x) + constant.
fn binary(imp: &mut Importer, node: &NodeProto, name: &str) -> Result<Value, NodeError> {
    let (a, b) = (imp.req(node, 0)?.clone(), imp.req(node, 1)?.clone());
    let (sa, sb) = (imp.shape_of(&a), imp.shape_of(&b));
    let op = node.op_type.as_str();
    let too_wide = || {
        NodeError::Unsupported(format!(
            "{op} of shapes {sa:?} and {sb:?}: the result is larger than either input"
        ))
    };
    match (op, &a, &b) {
        ("Sub" | "Div", Value::Graph(x), Value::Host(c)) => {
            let data: Vec<f32> = c
                .to_f32()
                .iter()
                .map(|&v| if op == "Sub" { -v } else { 1.0 / v })
                .collect();
            if !broadcasts_to(&c.shape, &sa) {
                return Err(too_wide());
            }
            let c = imp.derived_const(&node.input[1], &c.shape, data)?;
            let ir = if op == "Sub" { Op::Add } else { Op::Mul };
            Ok(Value::Graph(imp.node(name, ir, &[*x, c])?))
        }
        ("Sub", Value::Host(c), Value::Graph(x)) => {
            if !broadcasts_to(&c.shape, &sb) {
                return Err(too_wide());
            }
            let minus = imp.derived_const("minus_one", &[1], vec![-1.0])?;
            let neg = imp.node(&format!("{name}/neg"), Op::Mul, &[*x, minus])?;
            let c = imp.materialize(&node.input[0], c)?;
            Ok(Value::Graph(imp.node(name, Op::Add, &[neg, c])?))
        }
        ("Sub" | "Div", _, _) => Err(NodeError::Unsupported(format!(
            "{op} with a run-time {} operand (only x - c, c - x and x / c with a constant c are supported)",
            if op == "Sub" { "second" } else { "divisor" }
        ))),
        _ => {
            let (ia, ib) = (imp.graph_input(node, 0)?, imp.graph_input(node, 1)?);
            let ir = if op == "Add" { Op::Add } else { Op::Mul };
            if broadcasts_to(&sb, &sa) {
                Ok(Value::Graph(imp.node(name, ir, &[ia, ib])?))
            } else if broadcasts_to(&sa, &sb) {
                Ok(Value::Graph(imp.node(name, ir, &[ib, ia])?))
            } else {
                Err(too_wide())
            }
        }
    }
}

/// PRelu with constant slopes, one per channel (axis 1; PyTorch exports them `[C, 1, 1]`) or
/// one for all, onto [`Op::PRelu`] with the slopes flattened to `[C]` / `[1]`.
fn prelu(imp: &mut Importer, node: &NodeProto, name: &str) -> Result<Value, NodeError> {
    let x = imp.graph_input(node, 0)?;
    let sx = imp.b.shape(x).to_vec();
    let slope = imp.host(node, 1)?.ok_or_else(|| {
        NodeError::Unsupported("PRelu with run-time slopes (only constant slopes)".into())
    })?;
    let n: usize = slope.shape.iter().product();
    // Numpy-aligned to x, the slopes may only vary along axis 1.
    let lead = sx.len().checked_sub(slope.shape.len());
    let per_channel = lead.is_some_and(|lead| {
        sx.len() >= 2
            && slope
                .shape
                .iter()
                .enumerate()
                .all(|(i, &d)| d == 1 || (lead + i == 1 && d == sx[1]))
    });
    if n != 1 && !per_channel {
        return Err(NodeError::Unsupported(format!(
            "PRelu slopes {:?} on {sx:?}: only one slope per channel (axis 1) or a single slope",
            slope.shape
        )));
    }
    let s = imp.derived_const(&node.input[1], &[n], slope.to_f32())?;
    Ok(Value::Graph(imp.node(name, Op::PRelu, &[x, s])?))
}

/// Sum of any number of inputs as a chain of Adds.
fn sum(imp: &mut Importer, node: &NodeProto, name: &str) -> Result<Value, NodeError> {
    let n = node.input.len();
    if n == 0 {
        return Err(NodeError::Invalid("Sum of no inputs".into()));
    }
    if n == 1 {
        return Ok(imp.req(node, 0)?.clone());
    }
    let mut acc = imp.graph_input(node, 0)?;
    for i in 1..n {
        let x = imp.graph_input(node, i)?;
        let (sa, sx) = (imp.b.shape(acc).to_vec(), imp.b.shape(x).to_vec());
        let inputs = if broadcasts_to(&sx, &sa) {
            [acc, x]
        } else if broadcasts_to(&sa, &sx) {
            [x, acc]
        } else {
            return Err(NodeError::Unsupported(format!(
                "Sum of shapes {sa:?} and {sx:?}: the result is larger than either input"
            )));
        };
        let step = if i + 1 == n {
            name.to_string()
        } else {
            format!("{name}/{i}")
        };
        acc = imp.node(&step, Op::Add, &inputs)?;
    }
    Ok(Value::Graph(acc))
}

fn concat(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    name: &str,
) -> Result<Value, NodeError> {
    let axis = attrs
        .int("axis")?
        .ok_or_else(|| NodeError::Invalid("Concat needs an axis".into()))?;
    let mut ids = Vec::new();
    for i in 0..node.input.len() {
        if imp.input(node, i)?.is_some() {
            ids.push(imp.graph_input(node, i)?);
        }
    }
    let first = ids
        .first()
        .ok_or_else(|| NodeError::Invalid("Concat of no inputs".into()))?;
    let axis = norm_axis(axis, imp.b.shape(*first).len())?;
    Ok(Value::Graph(imp.node(name, Op::Concat { axis }, &ids)?))
}

/// Input 0 reshaped to `target`, or the input itself when the shape does not change.
fn reshape(
    imp: &mut Importer,
    node: &NodeProto,
    name: &str,
    target: Vec<usize>,
) -> Result<Value, NodeError> {
    let x = imp.graph_input(node, 0)?;
    if imp.b.shape(x) == target.as_slice() {
        return Ok(Value::Graph(x));
    }
    Ok(Value::Graph(imp.node(
        name,
        Op::Reshape { shape: target },
        &[x],
    )?))
}

/// The most axes wgcnn's GPU permute kernel handles.
const MAX_PERMUTE_RANK: usize = 6;

/// A transpose that keeps the order of every axis larger than 1 is a reshape; others are
/// [`Op::Permute`]s. Above [`MAX_PERMUTE_RANK`] axes, size-1 axes are dropped and axes that
/// stay neighbours are merged: Reshape → Permute → Reshape.
fn transpose(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    name: &str,
) -> Result<Value, NodeError> {
    let shape = imp.shape_of(imp.req(node, 0)?);
    let perm = perm_of(attrs, shape.len())?;
    let target: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let moved: Vec<usize> = perm.iter().copied().filter(|&p| shape[p] != 1).collect();
    if moved.windows(2).all(|w| w[0] < w[1]) {
        return reshape(imp, node, name, target);
    }
    let x = imp.graph_input(node, 0)?;
    if perm.len() <= MAX_PERMUTE_RANK {
        return Ok(Value::Graph(imp.node(name, Op::Permute { perm }, &[x])?));
    }
    let (merged_shape, merged_perm) = merge_axes(&shape, &perm);
    if merged_perm.len() > MAX_PERMUTE_RANK {
        return Err(NodeError::Unsupported(format!(
            "Transpose {perm:?} of shape {shape:?} moves {} groups of axes (at most {MAX_PERMUTE_RANK})",
            merged_perm.len()
        )));
    }
    let flat = imp.node(
        &format!("{name}/merge"),
        Op::Reshape {
            shape: merged_shape,
        },
        &[x],
    )?;
    let moved = imp.node(
        &format!("{name}/permute"),
        Op::Permute { perm: merged_perm },
        &[flat],
    )?;
    Ok(Value::Graph(imp.node(
        name,
        Op::Reshape { shape: target },
        &[moved],
    )?))
}

/// The same data movement on fewer axes: size-1 axes dropped, and input axes that follow each
/// other in the output too merged into one. Returns the merged input shape and permutation.
fn merge_axes(shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let kept: Vec<usize> = perm.iter().copied().filter(|&p| shape[p] != 1).collect();
    let mut order = kept.clone();
    order.sort_unstable();
    // Rank of each kept input axis among the kept ones.
    let rank_of = |a: usize| order.iter().position(|&o| o == a).unwrap_or(0);
    // Groups in output order, each a run of consecutive input axes.
    let mut groups: Vec<(usize, usize)> = Vec::new(); // (first input rank, size)
    let mut last = None;
    for &a in &kept {
        let r = rank_of(a);
        match (groups.last_mut(), last) {
            (Some(g), Some(prev)) if r == prev + 1 => g.1 *= shape[a],
            _ => groups.push((r, shape[a])),
        }
        last = Some(r);
    }
    let mut by_input: Vec<usize> = (0..groups.len()).collect();
    by_input.sort_unstable_by_key(|&g| groups[g].0);
    let merged_shape = by_input.iter().map(|&g| groups[g].1).collect();
    let merged_perm = (0..groups.len())
        .map(|g| by_input.iter().position(|&h| h == g).unwrap_or(0))
        .collect();
    (merged_shape, merged_perm)
}

/// Softmax along one axis (opset ≥ 13), or over the flattened axes `[axis..]` (before 13):
/// mapped directly when only one of those axes is larger than 1, else as
/// Flatten → Softmax(1) → Reshape.
fn softmax(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    info: &NodeInfo,
    name: &str,
) -> Result<Value, NodeError> {
    let x = imp.graph_input(node, 0)?;
    let shape = imp.b.shape(x).to_vec();
    let rank = shape.len();
    if info.opset >= 13 {
        let axis = norm_axis(attrs.int_or("axis", -1)?, rank)?;
        return Ok(Value::Graph(imp.node(name, Op::Softmax { axis }, &[x])?));
    }
    let axis = norm_axis(attrs.int_or("axis", 1)?, rank)?;
    let big: Vec<usize> = (axis..rank).filter(|&k| shape[k] != 1).collect();
    if big.len() <= 1 {
        let axis = big.first().copied().unwrap_or(axis);
        return Ok(Value::Graph(imp.node(name, Op::Softmax { axis }, &[x])?));
    }
    let flat = imp.node(&format!("{name}/flatten"), Op::Flatten { axis }, &[x])?;
    let soft = imp.node(&format!("{name}/softmax"), Op::Softmax { axis: 1 }, &[flat])?;
    Ok(Value::Graph(imp.node(
        name,
        Op::Reshape { shape },
        &[soft],
    )?))
}

/// Constant-mode Pad of the two spatial axes of an NCHW tensor. Pads come from attributes
/// before opset 11 and from inputs after (with `axes` from opset 18).
fn pad(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    info: &NodeInfo,
    name: &str,
) -> Result<Value, NodeError> {
    let mode = attrs.string("mode")?.unwrap_or_else(|| "constant".into());
    if mode != "constant" {
        return Err(NodeError::Unsupported(format!(
            "Pad mode {mode:?} (only \"constant\")"
        )));
    }
    let shape = imp.shape_of(imp.req(node, 0)?);
    let rank = shape.len();
    let (pads, value, axes) = if info.opset < 11 {
        let pads = attrs
            .ints("pads")?
            .ok_or_else(|| NodeError::Invalid("Pad needs pads".into()))?
            .to_vec();
        (pads, attrs.float_or("value", 0.0)?, None)
    } else {
        let pads = imp
            .host_req(node, 1)?
            .to_i64()
            .map_err(NodeError::Invalid)?;
        let value = match imp.host(node, 2)? {
            Some(t) if t.len() > 0 => t.scalar_f32().map_err(NodeError::Invalid)?,
            _ => 0.0,
        };
        let axes = imp
            .host(node, 3)?
            .map(|t| t.to_i64().map_err(NodeError::Invalid))
            .transpose()?;
        (pads, value, axes)
    };
    let axes: Vec<usize> = match axes {
        None => (0..rank).collect(),
        Some(a) => a
            .iter()
            .map(|&x| norm_axis(x, rank))
            .collect::<Result<_, _>>()?,
    };
    if pads.len() != 2 * axes.len() {
        return Err(NodeError::Invalid(format!(
            "pads {pads:?} do not fit {} axes",
            axes.len()
        )));
    }
    let (mut begin, mut end) = (vec![0i64; rank], vec![0i64; rank]);
    for (k, &a) in axes.iter().enumerate() {
        begin[a] = pads[k];
        end[a] = pads[k + axes.len()];
    }
    if rank != 4 || begin[..2].iter().chain(&end[..2]).any(|&p| p != 0) {
        return Err(NodeError::Unsupported(format!(
            "Pad {pads:?} of shape {shape:?} (only the H and W axes of NCHW tensors)"
        )));
    }
    if begin.iter().chain(&end).any(|&p| p < 0) {
        return Err(NodeError::Unsupported(format!(
            "negative pads {pads:?} (cropping)"
        )));
    }
    let p = to_sizes("pads", &[begin[2], begin[3], end[2], end[3]], 0)?;
    let x = imp.graph_input(node, 0)?;
    if p.iter().all(|&v| v == 0) {
        return Ok(Value::Graph(x));
    }
    Ok(Value::Graph(imp.node(
        name,
        Op::Pad {
            padding: [p[0], p[1], p[2], p[3]],
            value,
        },
        &[x],
    )?))
}
