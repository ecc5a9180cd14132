//! Constant folding: nodes whose inputs are all known at import time (and `Shape`, whose input
//! shape is static) are evaluated on the host, so shape arithmetic such as
//! `Shape → Gather → Unsqueeze → Concat → Reshape` turns into a constant target shape.

use super::NodeError;
use super::attrs::{Attrs, norm_axis};
use super::import::{Importer, NodeInfo, Value};
use super::proto::{NodeProto, data_type};
use super::tensor::{HostData, HostTensor, checked_numel, decode_tensor};

/// Op types evaluated here when all their inputs are host tensors.
const FOLDABLE: &[&str] = &[
    "Identity",
    "Dropout",
    "Cast",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Reshape",
    "Flatten",
    "Slice",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Transpose",
    "ConstantOfShape",
];

/// The most elements a folded value may have when it is not bounded by its inputs' sizes
/// (broadcasts, gathers, ConstantOfShape): corrupt shapes must not exhaust memory.
const FOLD_LIMIT: usize = 1 << 26;

fn bad(msg: impl Into<String>) -> NodeError {
    NodeError::Invalid(msg.into())
}

fn within_limit(shape: &[usize]) -> Result<(), NodeError> {
    match checked_numel(shape) {
        Some(n) if n <= FOLD_LIMIT => Ok(()),
        _ => Err(bad(format!(
            "a constant of shape {shape:?} is too large to fold"
        ))),
    }
}

/// Evaluates `node` on the host when it can; `Ok(None)` when an input is computed at run time.
pub(crate) fn try_fold(
    imp: &Importer,
    node: &NodeProto,
    info: &NodeInfo,
) -> Result<Option<HostTensor>, NodeError> {
    let attrs = Attrs::new(&node.attribute);
    let op = node.op_type.as_str();
    match op {
        "Constant" => return constant(imp, &attrs).map(Some),
        "Shape" => {
            let shape = imp.shape_of(imp.req(node, 0)?);
            let r = shape.len() as i64;
            let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let start = clamp(attrs.int_or("start", 0)?);
            let end = clamp(attrs.int_or("end", r)?);
            let dims: Vec<i64> = shape
                .get(start..end.max(start))
                .unwrap_or(&[])
                .iter()
                .map(|&d| d as i64)
                .collect();
            return Ok(Some(HostTensor::i64(vec![dims.len()], dims)));
        }
        _ => {}
    }
    if !FOLDABLE.contains(&op) || !imp.all_host(node)? {
        return Ok(None);
    }
    let x = imp.host_req(node, 0)?;
    let out = match op {
        "Identity" | "Dropout" => (*x).clone(),
        "Cast" => cast(&x, &attrs)?,
        "Gather" => gather(
            &x,
            imp.host_req(node, 1)?.as_ref(),
            attrs.int_or("axis", 0)?,
        )?,
        "Unsqueeze" => {
            let axes =
                axes_of(imp, node, &attrs, info)?.ok_or_else(|| bad("Unsqueeze needs axes"))?;
            x.reshaped(unsqueeze_shape(&x.shape, &axes)?)
        }
        "Squeeze" => x.reshaped(squeeze_shape(
            &x.shape,
            axes_of(imp, node, &attrs, info)?.as_deref(),
        )?),
        "Concat" => {
            let parts: Vec<_> = (0..node.input.len())
                .map(|i| imp.host(node, i))
                .collect::<Result<Vec<_>, _>>()?;
            let parts: Vec<&HostTensor> = parts.iter().flatten().map(|t| t.as_ref()).collect();
            let axis = attrs
                .int("axis")?
                .ok_or_else(|| bad("Concat needs an axis"))?;
            concat(&parts, axis)?
        }
        "Reshape" => {
            let spec = imp.host_req(node, 1)?.to_i64().map_err(bad)?;
            x.reshaped(reshape_target(
                &x.shape,
                &spec,
                attrs.int_or("allowzero", 0)? != 0,
            )?)
        }
        "Flatten" => x.reshaped(flatten_shape(&x.shape, attrs.int_or("axis", 1)?)?),
        "Slice" => slice(imp, node, &attrs, info, &x)?,
        "Add" | "Sub" | "Mul" | "Div" => binary(op, &x, imp.host_req(node, 1)?.as_ref())?,
        "Transpose" => transpose(&x, &perm_of(&attrs, x.shape.len())?),
        "ConstantOfShape" => constant_of_shape(imp, &x, &attrs)?,
        _ => return Ok(None),
    };
    Ok(Some(out))
}

fn constant(imp: &Importer, attrs: &Attrs<'_>) -> Result<HostTensor, NodeError> {
    if let Some(t) = attrs.tensor("value")? {
        return decode_tensor(t, imp.model_dir()).map_err(|m| bad(format!("value: {m}")));
    }
    if let Some(v) = attrs.float("value_float")? {
        return Ok(HostTensor::f32(vec![], vec![v]));
    }
    if let Some(v) = attrs.floats("value_floats")? {
        return Ok(HostTensor::f32(vec![v.len()], v.to_vec()));
    }
    if let Some(v) = attrs.int("value_int")? {
        return Ok(HostTensor::i64(vec![], vec![v]));
    }
    if let Some(v) = attrs.ints("value_ints")? {
        return Ok(HostTensor::i64(vec![v.len()], v.to_vec()));
    }
    let names: Vec<&str> = attrs.names().collect();
    Err(NodeError::Unsupported(format!(
        "a Constant with attributes {names:?} (only numeric tensors are supported)"
    )))
}

fn cast(x: &HostTensor, attrs: &Attrs<'_>) -> Result<HostTensor, NodeError> {
    use data_type::*;
    let to = attrs.int("to")?.ok_or_else(|| bad("Cast needs `to`"))? as i32;
    Ok(match to {
        FLOAT | FLOAT16 | DOUBLE | BFLOAT16 => HostTensor::f32(x.shape.clone(), x.to_f32()),
        BOOL => HostTensor::i64(
            x.shape.clone(),
            x.to_f32().iter().map(|&v| (v != 0.0) as i64).collect(),
        ),
        INT8 | INT16 | INT32 | INT64 | UINT8 | UINT16 | UINT32 | UINT64 => match &x.data {
            HostData::I64(v) => HostTensor::i64(x.shape.clone(), v.clone()),
            HostData::F32(v) => HostTensor::i64(
                x.shape.clone(),
                v.iter().map(|&f| f.trunc() as i64).collect(),
            ),
        },
        other => {
            return Err(NodeError::Unsupported(format!(
                "Cast to {}",
                data_type::name(other)
            )));
        }
    })
}

/// Axes of Squeeze/Unsqueeze/ReduceMean: the `axes` attribute before `attr_until`, the second
/// input from then on (Squeeze/Unsqueeze opset 13, ReduceMean opset 18).
pub(crate) fn axes_of(
    imp: &Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    info: &NodeInfo,
) -> Result<Option<Vec<i64>>, NodeError> {
    let attr_until = if node.op_type == "ReduceMean" { 18 } else { 13 };
    if info.opset < attr_until {
        return Ok(attrs.ints("axes")?.map(<[i64]>::to_vec));
    }
    match imp.host(node, 1)? {
        Some(t) => Ok(Some(t.to_i64().map_err(bad)?)),
        None => Ok(None),
    }
}

pub(crate) fn unsqueeze_shape(shape: &[usize], axes: &[i64]) -> Result<Vec<usize>, NodeError> {
    let rank = shape.len() + axes.len();
    let mut at: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect::<Result<_, _>>()?;
    at.sort_unstable();
    if at.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad(format!("repeated axes {axes:?}")));
    }
    let mut src = shape.iter();
    Ok((0..rank)
        .map(|i| {
            if at.contains(&i) {
                1
            } else {
                src.next().copied().unwrap_or(1)
            }
        })
        .collect())
}

pub(crate) fn squeeze_shape(
    shape: &[usize],
    axes: Option<&[i64]>,
) -> Result<Vec<usize>, NodeError> {
    match axes {
        None => Ok(shape.iter().copied().filter(|&d| d != 1).collect()),
        Some(axes) => {
            let at: Vec<usize> = axes
                .iter()
                .map(|&a| norm_axis(a, shape.len()))
                .collect::<Result<_, _>>()?;
            if let Some(&a) = at.iter().find(|&&a| shape[a] != 1) {
                return Err(bad(format!(
                    "cannot squeeze axis {a} of size {} in {shape:?}",
                    shape[a]
                )));
            }
            Ok(shape
                .iter()
                .enumerate()
                .filter(|(i, _)| !at.contains(i))
                .map(|(_, &d)| d)
                .collect())
        }
    }
}

/// ONNX Reshape's target: `0` copies the input's dim (unless `allowzero`), `-1` is inferred.
pub(crate) fn reshape_target(
    input: &[usize],
    spec: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, NodeError> {
    let total = checked_numel(input).ok_or_else(|| bad("input too large"))?;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or_else(|| {
                bad(format!(
                    "shape {spec:?}: 0 at axis {i} but the input {input:?} has no such axis"
                ))
            })?),
            d if d >= 0 => out
                .push(usize::try_from(d).map_err(|_| bad(format!("shape {spec:?} is too large")))?),
            _ => return Err(bad(format!("shape {spec:?}: invalid dimension {d}"))),
        }
    }
    let known = checked_numel(&out).ok_or_else(|| bad(format!("shape {spec:?} is too large")))?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(bad(format!("cannot reshape {input:?} to {spec:?}")));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(bad(format!(
            "cannot reshape {input:?} ({total} elements) to {spec:?}"
        )));
    }
    Ok(out)
}

pub(crate) fn flatten_shape(shape: &[usize], axis: i64) -> Result<Vec<usize>, NodeError> {
    let r = shape.len();
    let a = if axis == r as i64 {
        r
    } else {
        norm_axis(axis, r)?
    };
    Ok(vec![
        shape[..a].iter().product(),
        shape[a..].iter().product(),
    ])
}

/// Transpose's permutation (default: reversed axes), checked to be one.
pub(crate) fn perm_of(attrs: &Attrs<'_>, rank: usize) -> Result<Vec<usize>, NodeError> {
    let perm: Vec<usize> = match attrs.ints("perm")? {
        None => (0..rank).rev().collect(),
        Some(p) => p
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<Result<_, _>>()?,
    };
    let mut seen = perm.clone();
    seen.sort_unstable();
    if seen != (0..rank).collect::<Vec<_>>() {
        return Err(bad(format!(
            "perm {perm:?} is not a permutation of {rank} axes"
        )));
    }
    Ok(perm)
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Flat indices of the input for each output element, where output axis `k` at position `i`
/// reads input offset `base + i * step[k]`.
fn strided_indices(out_shape: &[usize], base: usize, step: &[isize]) -> Vec<usize> {
    let n: usize = out_shape.iter().product();
    let mut idx = vec![0usize; out_shape.len()];
    let mut result = Vec::with_capacity(n);
    for _ in 0..n {
        let off = idx
            .iter()
            .zip(step)
            .fold(base as isize, |acc, (&i, &s)| acc + i as isize * s);
        result.push(off as usize);
        for k in (0..idx.len()).rev() {
            idx[k] += 1;
            if idx[k] < out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    result
}

pub(crate) fn transpose(x: &HostTensor, perm: &[usize]) -> HostTensor {
    let st = strides(&x.shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let step: Vec<isize> = perm.iter().map(|&p| st[p] as isize).collect();
    x.gather_flat(out_shape.clone(), &strided_indices(&out_shape, 0, &step))
}

fn gather(data: &HostTensor, indices: &HostTensor, axis: i64) -> Result<HostTensor, NodeError> {
    let a = norm_axis(axis, data.shape.len())?;
    let dim = data.shape[a];
    let idx: Vec<usize> = indices
        .to_i64()
        .map_err(bad)?
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim as i64 } else { i };
            if (0..dim as i64).contains(&j) {
                Ok(j as usize)
            } else {
                Err(bad(format!("Gather index {i} out of range for size {dim}")))
            }
        })
        .collect::<Result<_, _>>()?;
    let mut shape = data.shape[..a].to_vec();
    shape.extend(&indices.shape);
    shape.extend(&data.shape[a + 1..]);
    within_limit(&shape)?;
    let outer: usize = data.shape[..a].iter().product();
    let inner: usize = data.shape[a + 1..].iter().product();
    let mut flat = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in &idx {
            flat.extend((0..inner).map(|j| (o * dim + i) * inner + j));
        }
    }
    Ok(data.gather_flat(shape, &flat))
}

fn concat(parts: &[&HostTensor], axis: i64) -> Result<HostTensor, NodeError> {
    let first = parts.first().ok_or_else(|| bad("Concat of nothing"))?;
    let a = norm_axis(axis, first.shape.len())?;
    let mut shape = first.shape.clone();
    shape[a] = 0;
    for p in parts {
        let fits = p.shape.len() == first.shape.len()
            && p.shape
                .iter()
                .zip(&first.shape)
                .enumerate()
                .all(|(i, (x, y))| i == a || x == y);
        if !fits {
            return Err(bad(format!(
                "cannot concatenate {:?} with {:?} along axis {a}",
                p.shape, first.shape
            )));
        }
        shape[a] += p.shape[a];
    }
    let outer: usize = shape[..a].iter().product();
    let inner: usize = shape[a + 1..].iter().product();
    let any_float = parts.iter().any(|p| p.is_float());
    let chunk = |p: &HostTensor, o: usize| o * p.shape[a] * inner..(o + 1) * p.shape[a] * inner;
    if any_float {
        let vals: Vec<Vec<f32>> = parts.iter().map(|p| p.to_f32()).collect();
        let data = (0..outer)
            .flat_map(|o| {
                parts
                    .iter()
                    .zip(&vals)
                    .flat_map(move |(p, v)| v[chunk(p, o)].to_vec())
            })
            .collect();
        Ok(HostTensor::f32(shape, data))
    } else {
        let vals: Vec<Vec<i64>> = parts
            .iter()
            .map(|p| p.to_i64())
            .collect::<Result<_, _>>()
            .map_err(bad)?;
        let data = (0..outer)
            .flat_map(|o| {
                parts
                    .iter()
                    .zip(&vals)
                    .flat_map(move |(p, v)| v[chunk(p, o)].to_vec())
            })
            .collect();
        Ok(HostTensor::i64(shape, data))
    }
}

fn slice(
    imp: &Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    info: &NodeInfo,
    x: &HostTensor,
) -> Result<HostTensor, NodeError> {
    let rank = x.shape.len();
    let get = |i: usize, attr: &str| -> Result<Option<Vec<i64>>, NodeError> {
        if info.opset < 10 {
            Ok(attrs.ints(attr)?.map(<[i64]>::to_vec))
        } else {
            imp.host(node, i)?
                .map(|t| t.to_i64().map_err(bad))
                .transpose()
        }
    };
    let starts = get(1, "starts")?.ok_or_else(|| bad("Slice needs starts"))?;
    let ends = get(2, "ends")?.ok_or_else(|| bad("Slice needs ends"))?;
    let axes = get(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = if info.opset < 10 {
        vec![1; starts.len()]
    } else {
        get(4, "steps")?.unwrap_or_else(|| vec![1; starts.len()])
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(bad(format!(
            "starts {starts:?}, ends {ends:?}, axes {axes:?}, steps {steps:?} differ in length"
        )));
    }
    let mut begin = vec![0i64; rank];
    let mut step = vec![1i64; rank];
    let mut out_shape = x.shape.clone();
    for k in 0..starts.len() {
        let a = norm_axis(axes[k], rank)?;
        let d = x.shape[a] as i64;
        let s = steps[k];
        if s == 0 || s.unsigned_abs() > 1 << 40 {
            return Err(bad(format!("Slice step {s}")));
        }
        if d == 0 {
            continue;
        }
        let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (b, e) = if s > 0 {
            (fix(starts[k]).clamp(0, d), fix(ends[k]).clamp(0, d))
        } else {
            (
                fix(starts[k]).clamp(0, d - 1),
                fix(ends[k]).clamp(-1, d - 1),
            )
        };
        let n = if s > 0 {
            (e - b).max(0).div_euclid(s) + ((e - b).max(0) % s != 0) as i64
        } else {
            (b - e).max(0).div_euclid(-s) + ((b - e).max(0) % -s != 0) as i64
        };
        begin[a] = b;
        step[a] = s;
        out_shape[a] = n as usize;
    }
    let st = strides(&x.shape);
    let base: i64 = begin
        .iter()
        .zip(&st)
        .map(|(&b, &s)| b.max(0) * s as i64)
        .sum();
    let steps_flat: Vec<isize> = step
        .iter()
        .zip(&st)
        .map(|(&s, &t)| (s * t as i64) as isize)
        .collect();
    Ok(x.gather_flat(
        out_shape.clone(),
        &strided_indices(&out_shape, base as usize, &steps_flat),
    ))
}

/// Numpy broadcasting of two shapes.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r {
                a[i + a.len() - r]
            } else {
                1
            };
            let db = if i + b.len() >= r {
                b[i + b.len() - r]
            } else {
                1
            };
            match (da, db) {
                (x, y) if x == y => Some(x),
                (1, y) => Some(y),
                (x, 1) => Some(x),
                _ => None,
            }
        })
        .collect()
}

/// For each element of `out`, the flat index of the broadcast input of shape `inp`.
fn broadcast_indices(out: &[usize], inp: &[usize]) -> Vec<usize> {
    let st = strides(inp);
    let off = out.len() - inp.len();
    let step: Vec<isize> = (0..out.len())
        .map(|k| {
            if k < off || inp[k - off] == 1 {
                0
            } else {
                st[k - off] as isize
            }
        })
        .collect();
    strided_indices(out, 0, &step)
}

fn binary(op: &str, a: &HostTensor, b: &HostTensor) -> Result<HostTensor, NodeError> {
    let shape = broadcast_shape(&a.shape, &b.shape).ok_or_else(|| {
        bad(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape, b.shape
        ))
    })?;
    within_limit(&shape)?;
    let (ia, ib) = (
        broadcast_indices(&shape, &a.shape),
        broadcast_indices(&shape, &b.shape),
    );
    if let (HostData::I64(x), HostData::I64(y)) = (&a.data, &b.data) {
        let mut out = Vec::with_capacity(ia.len());
        for (&i, &j) in ia.iter().zip(&ib) {
            let (p, q) = (x[i], y[j]);
            out.push(match op {
                "Add" => p.wrapping_add(q),
                "Sub" => p.wrapping_sub(q),
                "Mul" => p.wrapping_mul(q),
                _ => p
                    .checked_div(q)
                    .ok_or_else(|| bad(format!("integer division {p} / {q}")))?,
            });
        }
        return Ok(HostTensor::i64(shape, out));
    }
    let (x, y) = (a.to_f32(), b.to_f32());
    let f = |p: f32, q: f32| match op {
        "Add" => p + q,
        "Sub" => p - q,
        "Mul" => p * q,
        _ => p / q,
    };
    Ok(HostTensor::f32(
        shape,
        ia.iter().zip(&ib).map(|(&i, &j)| f(x[i], y[j])).collect(),
    ))
}

fn constant_of_shape(
    imp: &Importer,
    shape: &HostTensor,
    attrs: &Attrs<'_>,
) -> Result<HostTensor, NodeError> {
    let dims = shape.to_i64().map_err(bad)?;
    let shape = super::tensor::dims_to_shape(&dims).map_err(bad)?;
    within_limit(&shape)?;
    let n: usize = shape.iter().product();
    match attrs.tensor("value")? {
        None => Ok(HostTensor::f32(shape, vec![0.0; n])),
        Some(t) => {
            let v = decode_tensor(t, imp.model_dir()).map_err(|m| bad(format!("value: {m}")))?;
            if v.len() != 1 {
                return Err(bad(format!(
                    "value must hold one element, has shape {:?}",
                    v.shape
                )));
            }
            Ok(match v.data {
                HostData::F32(x) => HostTensor::f32(shape, vec![x[0]; n]),
                HostData::I64(x) => HostTensor::i64(shape, vec![x[0]; n]),
            })
        }
    }
}

/// Whether a host value is present (used by Dropout's `training_mode`).
pub(crate) fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Host(t)) => t.to_f32().first().is_some_and(|&x| x != 0.0),
        _ => false,
    }
}
