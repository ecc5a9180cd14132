//! Convolution, pooling, normalization and the linear layers.

use wgcnn_graph::{Activation, Conv2d, ConvTranspose2d, Lrn, Op, Pool2d, TensorId};

use super::NodeError;
use super::attrs::{Attrs, MAX_WINDOW, to_sizes};
use super::fold::axes_of;
use super::import::{Importer, NodeInfo, Value};
use super::proto::NodeProto;

fn unsupported(msg: impl Into<String>) -> NodeError {
    NodeError::Unsupported(msg.into())
}

fn invalid(msg: impl Into<String>) -> NodeError {
    NodeError::Invalid(msg.into())
}

/// Input 0 as a 4-D NCHW graph tensor with its shape.
fn nchw_input(imp: &mut Importer, node: &NodeProto) -> Result<(TensorId, [usize; 4]), NodeError> {
    let x = imp.graph_input(node, 0)?;
    let shape = imp.b.shape(x);
    let s = <[usize; 4]>::try_from(shape).map_err(|_| {
        unsupported(format!(
            "{} of a {}-D input {shape:?} (only 2-D spatial NCHW tensors)",
            node.op_type,
            shape.len()
        ))
    })?;
    Ok((x, s))
}

/// A 2-element spatial attribute (`strides`, `dilations`), `[1, 1]` when absent.
fn pair(attrs: &Attrs<'_>, name: &str, lo: i64) -> Result<[usize; 2], NodeError> {
    match attrs.ints(name)? {
        None => Ok([1, 1]),
        Some(v) if v.len() == 2 => {
            let s = to_sizes(name, v, lo)?;
            Ok([s[0], s[1]])
        }
        Some(v) => Err(unsupported(format!("{name} {v:?} (only 2 spatial axes)"))),
    }
}

/// Padding `[top, left, bottom, right]` from `pads` (ONNX's `[h_begin, w_begin, h_end, w_end]`)
/// or `auto_pad`: SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning.
fn spatial_pads(
    attrs: &Attrs<'_>,
    input: [usize; 2],
    window: [usize; 2],
    stride: [usize; 2],
) -> Result<[usize; 4], NodeError> {
    let auto = attrs.string("auto_pad")?.unwrap_or_default();
    match auto.as_str() {
        "" | "NOTSET" => match attrs.ints("pads")? {
            None => Ok([0; 4]),
            Some(p) if p.len() == 4 => {
                let p = to_sizes("pads", p, 0)?;
                Ok([p[0], p[1], p[2], p[3]])
            }
            Some(p) => Err(unsupported(format!("pads {p:?} (only 2 spatial axes)"))),
        },
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut out = [0; 4];
            for a in 0..2 {
                let o = input[a].div_ceil(stride[a]);
                let total = ((o.max(1) - 1) * stride[a] + window[a]).saturating_sub(input[a]);
                let (small, big) = (total / 2, total - total / 2);
                let (begin, end) = if auto == "SAME_UPPER" {
                    (small, big)
                } else {
                    (big, small)
                };
                out[a] = begin;
                out[a + 2] = end;
            }
            Ok(out)
        }
        other => Err(invalid(format!(
            "auto_pad {other:?} is not NOTSET, SAME_UPPER, SAME_LOWER or VALID"
        ))),
    }
}

/// What Conv and ConvTranspose read alike: the NCHW input and its spatial size, the 2-D weight
/// and its shape (checked against `kernel_shape`), `group`, `strides` and `dilations`.
struct ConvAttrs {
    x: TensorId,
    input: [usize; 2],
    weight: TensorId,
    ws: Vec<usize>,
    group: i64,
    stride: [usize; 2],
    dilation: [usize; 2],
}

fn conv_attrs(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    op: &str,
) -> Result<ConvAttrs, NodeError> {
    let (x, [_, _, h, w]) = nchw_input(imp, node)?;
    let weight = imp.graph_input(node, 1)?;
    let ws = imp.b.shape(weight).to_vec();
    if ws.len() != 4 {
        return Err(unsupported(format!(
            "{op} weight of shape {ws:?} (only 2-D kernels)"
        )));
    }
    if let Some(k) = attrs.ints("kernel_shape")?
        && (k.len() != 2 || k[0] != ws[2] as i64 || k[1] != ws[3] as i64)
    {
        return Err(invalid(format!(
            "kernel_shape {k:?} does not match the weight {ws:?}"
        )));
    }
    let group = attrs.int_or("group", 1)?;
    if !(1..=MAX_WINDOW).contains(&group) {
        return Err(invalid(format!("group {group} is not positive")));
    }
    Ok(ConvAttrs {
        x,
        input: [h, w],
        weight,
        ws,
        group,
        stride: pair(attrs, "strides", 1)?,
        dilation: pair(attrs, "dilations", 1)?,
    })
}

/// Conv → [`Op::Conv2d`] (any padding form, groups, dilations, optional bias).
pub(crate) fn conv(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    name: &str,
) -> Result<Value, NodeError> {
    let ConvAttrs {
        x,
        input: [h, w],
        weight: wid,
        ws,
        group,
        stride,
        dilation,
    } = conv_attrs(imp, node, attrs, "Conv")?;
    let window = [
        dilation[0] * (ws[2].max(1) - 1) + 1,
        dilation[1] * (ws[3].max(1) - 1) + 1,
    ];
    let padding = spatial_pads(attrs, [h, w], window, stride)?;
    let mut inputs = vec![x, wid];
    let bias = imp.input(node, 2)?.is_some();
    if bias {
        inputs.push(imp.graph_input(node, 2)?);
    }
    let op = Conv2d {
        stride,
        padding,
        dilation,
        groups: group as usize,
        bias,
        residual: false,
        act: Activation::Identity,
    };
    Ok(Value::Graph(imp.node(name, Op::Conv2d(op), &inputs)?))
}

/// ConvTranspose → [`Op::ConvTranspose2d`] (groups, dilations, output padding, optional bias;
/// `pads`, `auto_pad` or `output_shape`). The spec's padding rules: with `output_shape`, or
/// with SAME_UPPER/SAME_LOWER (output `input * stride`), the total padding is the full scatter
/// extent minus the output, split `total / 2` at the start for SAME_UPPER and at the end
/// otherwise (onnx's reference implementation; `pads` are then ignored).
pub(crate) fn conv_transpose(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    name: &str,
) -> Result<Value, NodeError> {
    let ConvAttrs {
        x,
        input: [h, w],
        weight: wid,
        ws,
        group,
        stride,
        dilation,
    } = conv_attrs(imp, node, attrs, "ConvTranspose")?;
    let output_padding = match attrs.ints("output_padding")? {
        None => [0, 0],
        Some(v) if v.len() == 2 => {
            let s = to_sizes("output_padding", v, 0)?;
            [s[0], s[1]]
        }
        Some(v) => {
            return Err(unsupported(format!(
                "output_padding {v:?} (only 2 spatial axes)"
            )));
        }
    };
    let input = [h, w];
    let full: [usize; 2] = std::array::from_fn(|a| {
        (input[a].max(1) - 1) * stride[a]
            + dilation[a] * (ws[2 + a].max(1) - 1)
            + 1
            + output_padding[a]
    });
    let auto = attrs.string("auto_pad")?.unwrap_or_default();
    let target = match attrs.ints("output_shape")? {
        Some(v) if v.len() == 2 || v.len() == 4 => {
            let s = to_sizes("output_shape", &v[v.len() - 2..], 1)?;
            Some([s[0], s[1]])
        }
        Some(v) => {
            return Err(unsupported(format!(
                "output_shape {v:?} (only 2 spatial axes)"
            )));
        }
        None if auto == "SAME_UPPER" || auto == "SAME_LOWER" => {
            Some([input[0] * stride[0], input[1] * stride[1]])
        }
        None => None,
    };
    let padding = match (target, auto.as_str()) {
        (Some(out), "" | "NOTSET" | "VALID" | "SAME_UPPER" | "SAME_LOWER") => {
            let mut p = [0; 4];
            for a in 0..2 {
                let total = full[a].checked_sub(out[a]).ok_or_else(|| {
                    unsupported(format!(
                        "output_shape {out:?} beyond the full transposed extent {full:?}"
                    ))
                })?;
                let (half, rest) = (total / 2, total - total / 2);
                (p[a], p[a + 2]) = if auto == "SAME_UPPER" {
                    (half, rest)
                } else {
                    (rest, half)
                };
            }
            p
        }
        (None, "" | "NOTSET") => match attrs.ints("pads")? {
            None => [0; 4],
            Some(p) if p.len() == 4 => {
                let p = to_sizes("pads", p, 0)?;
                [p[0], p[1], p[2], p[3]]
            }
            Some(p) => return Err(unsupported(format!("pads {p:?} (only 2 spatial axes)"))),
        },
        (None, "VALID") => [0; 4],
        (_, other) => {
            return Err(invalid(format!(
                "auto_pad {other:?} is not NOTSET, SAME_UPPER, SAME_LOWER or VALID"
            )));
        }
    };
    let mut inputs = vec![x, wid];
    let bias = imp.input(node, 2)?.is_some();
    if bias {
        inputs.push(imp.graph_input(node, 2)?);
    }
    let op = ConvTranspose2d {
        stride,
        padding,
        output_padding,
        dilation,
        groups: group as usize,
        bias,
        act: Activation::Identity,
    };
    Ok(Value::Graph(imp.node(
        name,
        Op::ConvTranspose2d(op),
        &inputs,
    )?))
}

/// MaxPool / AveragePool → [`Op::MaxPool2d`] / [`Op::AvgPool2d`].
pub(crate) fn pool(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    info: &NodeInfo,
    name: &str,
    max: bool,
) -> Result<Value, NodeError> {
    if node.output.get(1).is_some_and(|o| !o.is_empty()) {
        return Err(unsupported("MaxPool's Indices output"));
    }
    let (x, [_, _, h, w]) = nchw_input(imp, node)?;
    let k = attrs
        .ints("kernel_shape")?
        .ok_or_else(|| invalid("kernel_shape is required"))?;
    if k.len() != 2 {
        return Err(unsupported(format!(
            "kernel_shape {k:?} (only 2 spatial axes)"
        )));
    }
    let k = to_sizes("kernel_shape", k, 1)?;
    let kernel = [k[0], k[1]];
    let dilations = attrs.ints("dilations")?.unwrap_or(&[]);
    if dilations.iter().any(|&d| d != 1) {
        return Err(unsupported(format!(
            "dilations {dilations:?} (only 1 is supported for pooling)"
        )));
    }
    let stride = pair(attrs, "strides", 1)?;
    let padding = spatial_pads(attrs, [h, w], kernel, stride)?;
    if padding[0] * 2 > kernel[0]
        || padding[1] * 2 > kernel[1]
        || padding[2] * 2 > kernel[0]
        || padding[3] * 2 > kernel[1]
    {
        return Err(unsupported(format!(
            "pads {padding:?} larger than half the kernel {kernel:?}"
        )));
    }
    let ceil_mode = info.opset >= 10 && attrs.int_or("ceil_mode", 0)? != 0;
    let count_include_pad = attrs.int_or("count_include_pad", 0)? != 0;
    let p = Pool2d {
        kernel,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
    };
    let op = if max {
        Op::MaxPool2d(p)
    } else {
        Op::AvgPool2d(p)
    };
    Ok(Value::Graph(imp.node(name, op, &[x])?))
}

/// GlobalAveragePool → adaptive average pooling to 1×1; GlobalMaxPool → a max pool whose
/// window is the whole image.
pub(crate) fn global_pool(
    imp: &mut Importer,
    node: &NodeProto,
    name: &str,
    max: bool,
) -> Result<Value, NodeError> {
    let (x, [_, _, h, w]) = nchw_input(imp, node)?;
    let op = if max {
        Op::MaxPool2d(Pool2d {
            kernel: [h, w],
            stride: [1, 1],
            padding: [0; 4],
            ceil_mode: false,
            count_include_pad: true,
        })
    } else {
        Op::AdaptiveAvgPool2d { output: [1, 1] }
    };
    Ok(Value::Graph(imp.node(name, op, &[x])?))
}

/// ReduceMean over the two spatial axes of an NCHW tensor → global average pooling.
pub(crate) fn reduce_mean(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    info: &NodeInfo,
    name: &str,
) -> Result<Value, NodeError> {
    let axes = axes_of(imp, node, attrs, info)?.unwrap_or_default();
    let keep = attrs.int_or("keepdims", 1)? != 0;
    let shape = imp.shape_of(imp.req(node, 0)?);
    let mut norm: Vec<i64> = axes
        .iter()
        .map(|&a| if a < 0 { a + shape.len() as i64 } else { a })
        .collect();
    norm.sort_unstable();
    if shape.len() != 4 || norm != [2, 3] {
        return Err(unsupported(format!(
            "ReduceMean over axes {axes:?} of shape {shape:?} (only the H and W axes of NCHW)"
        )));
    }
    let (x, [n, c, _, _]) = nchw_input(imp, node)?;
    if keep {
        return Ok(Value::Graph(imp.node(
            name,
            Op::AdaptiveAvgPool2d { output: [1, 1] },
            &[x],
        )?));
    }
    let pooled = imp.node(
        &format!("{name}/pool"),
        Op::AdaptiveAvgPool2d { output: [1, 1] },
        &[x],
    )?;
    Ok(Value::Graph(imp.node(
        name,
        Op::Reshape { shape: vec![n, c] },
        &[pooled],
    )?))
}

/// BatchNormalization (inference) → [`Op::BatchNorm`] with inputs scale, B, mean, var.
pub(crate) fn batch_norm(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    info: &NodeInfo,
    name: &str,
) -> Result<Value, NodeError> {
    if info.opset < 9 && attrs.int_or("spatial", 1)? == 0 {
        return Err(unsupported("BatchNormalization with spatial = 0"));
    }
    if attrs.int_or("training_mode", 0)? != 0 {
        return Err(unsupported("BatchNormalization with training_mode = 1"));
    }
    let eps = attrs.float_or("epsilon", 1e-5)?;
    let mut inputs = Vec::with_capacity(5);
    for i in 0..5 {
        inputs.push(imp.graph_input(node, i)?);
    }
    Ok(Value::Graph(imp.node(
        name,
        Op::BatchNorm { eps },
        &inputs,
    )?))
}

/// LRN → [`Op::Lrn`]; only odd sizes, where ONNX's and PyTorch's windows agree.
pub(crate) fn lrn(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    name: &str,
) -> Result<Value, NodeError> {
    let size = attrs
        .int("size")?
        .ok_or_else(|| invalid("LRN needs size"))?;
    if !(1..=MAX_WINDOW).contains(&size) {
        return Err(invalid(format!("size {size} is not positive")));
    }
    if size % 2 == 0 {
        return Err(unsupported(format!(
            "LRN size {size} is even: ONNX sums channels [c - {}, c + {}] while wgcnn (PyTorch) sums [c - {}, c + {}]; \
             only odd sizes, where they agree, are supported",
            (size - 1) / 2,
            size / 2,
            size / 2,
            (size - 1) / 2
        )));
    }
    let l = Lrn {
        size: size as usize,
        alpha: attrs.float_or("alpha", 1e-4)?,
        beta: attrs.float_or("beta", 0.75)?,
        k: attrs.float_or("bias", 1.0)?,
    };
    let x = imp.graph_input(node, 0)?;
    Ok(Value::Graph(imp.node(name, Op::Lrn(l), &[x])?))
}

/// Transposes a row-major `[rows, cols]` matrix.
fn transpose2(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// Gemm `alpha · A·op(B) + beta · C` with constant B → [`Op::Linear`]: the weight is `B`
/// (transB = 1) or `Bᵀ`, scaled by alpha; C becomes the bias when it is a vector over the
/// outputs (or a scalar); a run-time C with beta = 1 is added after.
pub(crate) fn gemm(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    name: &str,
) -> Result<Value, NodeError> {
    let alpha = attrs.float_or("alpha", 1.0)?;
    let beta = attrs.float_or("beta", 1.0)?;
    let (trans_a, trans_b) = (
        attrs.int_or("transA", 0)? != 0,
        attrs.int_or("transB", 0)? != 0,
    );
    let a_shape = imp.shape_of(imp.req(node, 0)?);
    if a_shape.len() != 2 {
        return Err(invalid(format!("A must be 2-D, got {a_shape:?}")));
    }
    if trans_a {
        return Err(unsupported("Gemm with transA = 1 on a run-time A"));
    }
    let b = match imp.req(node, 1)? {
        Value::Host(t) => t.clone(),
        Value::Graph(_) => {
            return Err(unsupported(
                "Gemm with a run-time B (only constant weights)",
            ));
        }
    };
    if b.shape.len() != 2 {
        return Err(invalid(format!("B must be 2-D, got {:?}", b.shape)));
    }
    let (out_n, k) = if trans_b {
        (b.shape[0], b.shape[1])
    } else {
        (b.shape[1], b.shape[0])
    };
    if k != a_shape[1] {
        return Err(invalid(format!(
            "A {a_shape:?} and B {:?} (transB = {}) do not fit",
            b.shape, trans_b as u8
        )));
    }
    let x = imp.graph_input(node, 0)?;
    let weight = if trans_b && alpha == 1.0 {
        imp.graph_input(node, 1)?
    } else {
        let mut data = if trans_b {
            b.to_f32()
        } else {
            transpose2(&b.to_f32(), b.shape[0], b.shape[1])
        };
        if alpha != 1.0 {
            data.iter_mut().for_each(|v| *v *= alpha);
        }
        imp.derived_const(&node.input[1], &[out_n, k], data)?
    };
    let m = a_shape[0];
    let c = imp.input(node, 2)?.cloned();
    let (bias, add_after) = match c {
        None => (None, None),
        Some(_) if beta == 0.0 => (None, None),
        Some(Value::Host(c)) => {
            let vals = c.to_f32();
            let per_out = match c.shape.as_slice() {
                [] | [1] | [1, 1] => Some(vec![vals[0]; out_n]),
                [n] | [1, n] if *n == out_n => Some(vals.clone()),
                _ => None,
            };
            let Some(mut per_out) = per_out else {
                return Err(unsupported(format!(
                    "Gemm with C of shape {:?} for an output [{m}, {out_n}] (only a bias over the outputs)",
                    c.shape
                )));
            };
            let as_is = beta == 1.0 && c.shape == [out_n];
            let id = if as_is {
                imp.graph_input(node, 2)?
            } else {
                per_out.iter_mut().for_each(|v| *v *= beta);
                imp.derived_const(&node.input[2], &[out_n], per_out)?
            };
            (Some(id), None)
        }
        Some(Value::Graph(id)) if beta == 1.0 => (None, Some(id)),
        Some(Value::Graph(_)) => return Err(unsupported("Gemm with a run-time C and beta ≠ 1")),
    };
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    let op = Op::Linear {
        bias: bias.is_some(),
        act: Activation::Identity,
    };
    match add_after {
        None => Ok(Value::Graph(imp.node(name, op, &inputs)?)),
        Some(c) => {
            let y = imp.node(&format!("{name}/linear"), op, &inputs)?;
            if !wgcnn_graph::broadcasts_to(imp.b.shape(c), imp.b.shape(y)) {
                return Err(unsupported(format!(
                    "Gemm with a run-time C of shape {:?}",
                    imp.b.shape(c)
                )));
            }
            Ok(Value::Graph(imp.node(name, Op::Add, &[y, c])?))
        }
    }
}

/// MatMul of a run-time `[M, K]` by a constant `[K, N]` → [`Op::Linear`] without bias.
pub(crate) fn matmul(imp: &mut Importer, node: &NodeProto, name: &str) -> Result<Value, NodeError> {
    let a_shape = imp.shape_of(imp.req(node, 0)?);
    let b = match imp.req(node, 1)? {
        Value::Host(t) => t.clone(),
        Value::Graph(_) => {
            return Err(unsupported(
                "MatMul with a run-time right side (only constant weights)",
            ));
        }
    };
    if a_shape.len() != 2 || b.shape.len() != 2 {
        return Err(unsupported(format!(
            "MatMul of {a_shape:?} by {:?} (only rank-2 operands)",
            b.shape
        )));
    }
    if a_shape[1] != b.shape[0] {
        return Err(invalid(format!(
            "MatMul of {a_shape:?} by {:?}: inner sizes differ",
            b.shape
        )));
    }
    let x = imp.graph_input(node, 0)?;
    let (k, n) = (b.shape[0], b.shape[1]);
    let w = imp.derived_const(&node.input[1], &[n, k], transpose2(&b.to_f32(), k, n))?;
    Ok(Value::Graph(imp.node(
        name,
        Op::Linear {
            bias: false,
            act: Activation::Identity,
        },
        &[x, w],
    )?))
}
