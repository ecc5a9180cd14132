//! `Resize` (opsets 10 to 19) and `Upsample` (opsets 7 to 9) → [`Op::Resize`], only where
//! ONNX's sampling is exactly wgcnn's (PyTorch's `F.interpolate`, see [`ResizeMode`]):
//!
//! - a 4-D NCHW input with N and C unscaled and a static output size: `floor(in * scale)` per
//!   the spec, or `sizes` (with `axes` and `keep_aspect_ratio_policy` from opset 18);
//! - `nearest`: on each of H and W, the source pixel ONNX picks for every output pixel (its
//!   `coordinate_transformation_mode` with `nearest_mode` `floor` or `round_prefer_floor`,
//!   evaluated exactly in integers) must be the one wgcnn's kernel picks (asked of the CPU
//!   interpreter). PyTorch's exports (`asymmetric` + `floor`) pass, and so do ONNX's defaults
//!   (`half_pixel` + `round_prefer_floor`) for whole upscale factors;
//! - `linear`: `half_pixel`, `pytorch_half_pixel` and `half_pixel_symmetric` are
//!   `align_corners=False`, `align_corners` is `align_corners=True`, when `in * scale` is a
//!   whole number (so that ONNX's scale is wgcnn's `out / in`).
//!
//! Everything else (`cubic`, `tf_crop_and_resize`, `antialias = 1`, `ceil` rounding, scaled N
//! or C, linear `asymmetric` sampling, ...) is refused as unsupported, naming the attribute.

use wgcnn_graph::{Op, ResizeMode, Tensor, interp};

use super::NodeError;
use super::attrs::{Attrs, norm_axis};
use super::import::{Importer, NodeInfo, Value};
use super::proto::NodeProto;

/// The largest output size along one axis.
const MAX_OUT: usize = 1 << 20;

const AXES: [&str; 4] = ["N", "C", "H", "W"];

fn unsupported(msg: impl Into<String>) -> NodeError {
    NodeError::Unsupported(msg.into())
}

fn invalid(msg: impl Into<String>) -> NodeError {
    NodeError::Invalid(msg.into())
}

/// An exact positive rational `num / den` (a scale).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ratio {
    num: i128,
    den: i128,
}

impl Ratio {
    /// The exact value of a positive finite f32 in `[2^-64, 2^40]`.
    fn from_f32(s: f32) -> Option<Ratio> {
        if !(s.is_finite() && (2f32.powi(-64)..=2f32.powi(40)).contains(&s)) {
            return None;
        }
        let bits = s.to_bits();
        let exp = ((bits >> 23) & 0xff) as i32;
        // In this range the value is normal: mantissa · 2^(exp - 150).
        let mant = i128::from((bits & 0x7f_ffff) | 0x80_0000);
        let e = exp - 150;
        Some(if e >= 0 {
            Ratio {
                num: mant << e,
                den: 1,
            }
        } else {
            Ratio {
                num: mant,
                den: 1i128 << -e,
            }
        })
    }

    fn is_one(self) -> bool {
        self.num == self.den
    }

    fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// One axis: its input size, output size, and the scale ONNX samples with.
#[derive(Clone, Copy, Debug)]
struct Axis {
    input: usize,
    output: usize,
    scale: Ratio,
}

impl Axis {
    /// `in * scale == out`, or exceeds it by at most f32 rounding (2^-22 relative): ONNX's
    /// scale is wgcnn's `out / in` (rounded to f32).
    fn near_integral(&self) -> bool {
        let exact = self.input as i128 * self.scale.num;
        (exact - self.output as i128 * self.scale.den) << 22 <= exact
    }

    fn describe(&self, k: usize) -> String {
        format!(
            "axis {k} ({}: {} → {}, scale {})",
            AXES[k],
            self.input,
            self.output,
            self.scale.to_f64()
        )
    }
}

/// `coordinate_transformation_mode`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coord {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
}

/// `nearest_mode` values that can agree with wgcnn's floor.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Round {
    Floor,
    RoundPreferFloor,
}

/// The sampling a node asks for, with the attribute text for messages.
struct Sampling {
    linear: bool,
    coord: Coord,
    round: Round,
    /// e.g. `Resize mode "nearest", coordinate_transformation_mode "half_pixel", nearest_mode
    /// "round_prefer_floor"`.
    what: String,
}

/// Resize → [`Op::Resize`] (see the module docs).
pub(crate) fn resize(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    info: &NodeInfo,
    name: &str,
) -> Result<Value, NodeError> {
    let mode = attrs.string("mode")?.unwrap_or_else(|| "nearest".into());
    let linear = match mode.as_str() {
        "nearest" => false,
        "linear" => true,
        "cubic" => {
            return Err(unsupported(
                "Resize mode \"cubic\" (wgcnn resizes with nearest or bilinear sampling only)",
            ));
        }
        other => {
            return Err(invalid(format!(
                "mode {other:?} is not nearest, linear or cubic"
            )));
        }
    };
    if info.opset >= 18 && attrs.int_or("antialias", 0)? != 0 {
        return Err(unsupported(format!(
            "Resize antialias = 1 with mode {mode:?} (wgcnn's resize does not antialias)"
        )));
    }
    let (coord_name, round_name) = if info.opset < 11 {
        // Resize-10 samples like Upsample: asymmetric coordinates, floor rounding.
        ("asymmetric".to_string(), "floor".to_string())
    } else {
        (
            attrs
                .string("coordinate_transformation_mode")?
                .unwrap_or_else(|| "half_pixel".into()),
            attrs
                .string("nearest_mode")?
                .unwrap_or_else(|| "round_prefer_floor".into()),
        )
    };
    let coord = match coord_name.as_str() {
        "half_pixel" => Coord::HalfPixel,
        "half_pixel_symmetric" => Coord::HalfPixelSymmetric,
        "pytorch_half_pixel" => Coord::PytorchHalfPixel,
        "align_corners" => Coord::AlignCorners,
        "asymmetric" => Coord::Asymmetric,
        "tf_half_pixel_for_nn" => Coord::TfHalfPixelForNn,
        "tf_crop_and_resize" => {
            return Err(unsupported(
                "Resize coordinate_transformation_mode \"tf_crop_and_resize\" (cropping to a region of interest)",
            ));
        }
        other => {
            return Err(invalid(format!(
                "coordinate_transformation_mode {other:?} is not a known mode"
            )));
        }
    };
    let round = match round_name.as_str() {
        _ if linear => Round::Floor,
        "floor" => Round::Floor,
        "round_prefer_floor" => Round::RoundPreferFloor,
        "ceil" | "round_prefer_ceil" => {
            return Err(unsupported(format!(
                "Resize nearest_mode {round_name:?} (wgcnn's nearest resize rounds source coordinates down)"
            )));
        }
        other => {
            return Err(invalid(format!(
                "nearest_mode {other:?} is not floor, ceil, round_prefer_floor or round_prefer_ceil"
            )));
        }
    };
    let what = if linear {
        format!("Resize mode \"linear\", coordinate_transformation_mode {coord_name:?}")
    } else {
        format!(
            "Resize mode \"nearest\", coordinate_transformation_mode {coord_name:?}, nearest_mode {round_name:?}"
        )
    };
    let shape = nchw_shape(imp, node)?;

    // Scales and sizes: Resize-10 (X, scales); from 11 (X, roi, scales, sizes), one of them
    // empty or absent. `roi` only matters for tf_crop_and_resize.
    let (scales, sizes) = if info.opset < 11 {
        (Some(imp.host_req(node, 1)?.to_f32()), None)
    } else {
        let scales = imp.host(node, 2)?.filter(|t| t.len() > 0);
        let sizes = imp.host(node, 3)?.filter(|t| t.len() > 0);
        (
            scales.map(|t| t.to_f32()),
            sizes
                .map(|t| t.to_i64().map_err(|m| invalid(format!("sizes: {m}"))))
                .transpose()?,
        )
    };
    let axes = match attrs.ints("axes")? {
        Some(a) if info.opset >= 18 => Some(resize_axes(a)?),
        _ => None,
    };
    let axes_list = axes.clone().unwrap_or_else(|| (0..4).collect());
    let plan = match (scales, sizes) {
        (Some(s), None) => from_scales(&shape, &spread(&s, axes.as_deref(), 1.0, "scales")?)?,
        (None, Some(z)) => {
            let policy = if info.opset >= 18 {
                attrs
                    .string("keep_aspect_ratio_policy")?
                    .unwrap_or_else(|| "stretch".into())
            } else {
                "stretch".into()
            };
            let fill: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let full = spread_with(&z, axes.as_deref(), |k| fill[k], "sizes")?;
            from_sizes(&shape, &full, &policy, &axes_list)?
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "Resize has both scales and sizes; only one may be given",
            ));
        }
        (None, None) => return Err(invalid("Resize needs scales or sizes")),
    };
    let sampling = Sampling {
        linear,
        coord,
        round,
        what,
    };
    emit(imp, node, name, &plan, &sampling)
}

/// Upsample (opsets 7 to 9; deprecated from 10) → [`Op::Resize`]: asymmetric coordinates
/// `x / scale`, nearest rounds down.
pub(crate) fn upsample(
    imp: &mut Importer,
    node: &NodeProto,
    attrs: &Attrs<'_>,
    info: &NodeInfo,
    name: &str,
) -> Result<Value, NodeError> {
    let mode = attrs.string("mode")?.unwrap_or_else(|| "nearest".into());
    let linear = match mode.as_str() {
        "nearest" => false,
        "linear" | "bilinear" => true,
        other => {
            return Err(invalid(format!("mode {other:?} is not nearest or linear")));
        }
    };
    let shape = nchw_shape(imp, node)?;
    let scales = if info.opset < 9 {
        attrs
            .floats("scales")?
            .ok_or_else(|| invalid("Upsample needs the scales attribute"))?
            .to_vec()
    } else {
        imp.host_req(node, 1)?.to_f32()
    };
    let plan = from_scales(&shape, &spread(&scales, None, 1.0, "scales")?)?;
    let sampling = Sampling {
        linear,
        coord: Coord::Asymmetric,
        round: Round::Floor,
        what: format!("Upsample mode {mode:?} (asymmetric coordinates x / scale)"),
    };
    emit(imp, node, name, &plan, &sampling)
}

/// The static shape of input 0, which must be NCHW.
fn nchw_shape(imp: &Importer, node: &NodeProto) -> Result<[usize; 4], NodeError> {
    let shape = imp.shape_of(imp.req(node, 0)?);
    <[usize; 4]>::try_from(shape.as_slice()).map_err(|_| {
        unsupported(format!(
            "{} of a {}-D input {shape:?} (only 4-D NCHW tensors)",
            node.op_type,
            shape.len()
        ))
    })
}

/// Resize's `axes` attribute (opset 18), normalized and checked for repeats.
fn resize_axes(axes: &[i64]) -> Result<Vec<usize>, NodeError> {
    let out: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, 4))
        .collect::<Result<_, _>>()?;
    let mut sorted = out.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid(format!("axes {axes:?} repeat an axis")));
    }
    Ok(out)
}

/// Values given for `axes` (all four when `None`) spread over the 4 axes, others `fill(k)`.
fn spread_with<T: Copy + std::fmt::Debug>(
    values: &[T],
    axes: Option<&[usize]>,
    fill: impl Fn(usize) -> T,
    what: &str,
) -> Result<[T; 4], NodeError> {
    let axes: Vec<usize> = axes.map_or_else(|| (0..4).collect(), <[usize]>::to_vec);
    if values.len() != axes.len() {
        return Err(invalid(format!(
            "{what} {values:?} has {} values for {} axes",
            values.len(),
            axes.len()
        )));
    }
    let mut out = [fill(0), fill(1), fill(2), fill(3)];
    for (&a, &v) in axes.iter().zip(values) {
        out[a] = v;
    }
    Ok(out)
}

fn spread(
    values: &[f32],
    axes: Option<&[usize]>,
    fill: f32,
    what: &str,
) -> Result<[f32; 4], NodeError> {
    spread_with(values, axes, |_| fill, what)
}

/// Output sizes `floor(in * scale)` (exactly, in integers). A product just below a whole
/// number (within f32 rounding) is refused: the spec's floor and float implementations
/// (onnxruntime, PyTorch) disagree on its size.
fn from_scales(shape: &[usize; 4], scales: &[f32; 4]) -> Result<[Axis; 4], NodeError> {
    let mut plan = [Axis {
        input: 0,
        output: 0,
        scale: Ratio { num: 1, den: 1 },
    }; 4];
    for k in 0..4 {
        let (input, s) = (shape[k], scales[k]);
        if !(s.is_finite() && s > 0.0) {
            return Err(invalid(format!(
                "scales {scales:?}: each scale must be positive and finite"
            )));
        }
        let product = input as f64 * f64::from(s);
        if product > MAX_OUT as f64 {
            return Err(unsupported(format!(
                "scale {s} on axis {k} of size {input} gives an output of {product} (at most {MAX_OUT})"
            )));
        }
        if product < 1.0 {
            return Err(unsupported(format!(
                "scale {s} on axis {k} of size {input} gives an empty output (wgcnn tensors are never empty)"
            )));
        }
        let scale =
            Ratio::from_f32(s).ok_or_else(|| invalid(format!("scale {s} is out of range")))?;
        let exact = input as i128 * scale.num;
        let output = (exact / scale.den) as usize;
        let next = (output + 1) as i128 * scale.den;
        if (next - exact) << 22 <= exact {
            return Err(unsupported(format!(
                "scale {s} on axis {k} of size {input}: in × scale = {product:.7} is a float rounding below {}; \
                 the spec's floor gives {output}, float implementations {}",
                output + 1,
                output + 1
            )));
        }
        plan[k] = Axis {
            input,
            output,
            scale,
        };
    }
    Ok(plan)
}

/// Output sizes from `sizes`: scale `out / in` (`stretch`), or one scale for the listed axes,
/// the smallest (`not_larger`) or largest (`not_smaller`) of theirs, with sizes
/// `round(in * scale)` (halves up).
fn from_sizes(
    shape: &[usize; 4],
    sizes: &[i64; 4],
    policy: &str,
    axes: &[usize],
) -> Result<[Axis; 4], NodeError> {
    let mut plan = [Axis {
        input: 0,
        output: 0,
        scale: Ratio { num: 1, den: 1 },
    }; 4];
    for k in 0..4 {
        let out = sizes[k];
        if out < 0 {
            return Err(invalid(format!(
                "sizes {sizes:?}: size {out} on axis {k} is negative"
            )));
        }
        if out == 0 {
            return Err(unsupported(format!(
                "sizes {sizes:?}: an empty output on axis {k} (wgcnn tensors are never empty)"
            )));
        }
        if out as u64 > MAX_OUT as u64 {
            return Err(unsupported(format!(
                "sizes {sizes:?}: size {out} on axis {k} is more than {MAX_OUT}"
            )));
        }
        plan[k] = Axis {
            input: shape[k],
            output: out as usize,
            scale: Ratio {
                num: out as i128,
                den: shape[k] as i128,
            },
        };
    }
    let pick_larger = match policy {
        "stretch" => return Ok(plan),
        "not_larger" => false,
        "not_smaller" => true,
        other => {
            return Err(invalid(format!(
                "keep_aspect_ratio_policy {other:?} is not stretch, not_larger or not_smaller"
            )));
        }
    };
    let mut scale: Option<Ratio> = None;
    for &k in axes {
        let r = plan[k].scale;
        // r > s ⇔ r.num · s.den > s.num · r.den.
        let better = |s: Ratio| {
            let greater = r.num * s.den > s.num * r.den;
            greater == pick_larger && r.num * s.den != s.num * r.den
        };
        if scale.is_none_or(better) {
            scale = Some(r);
        }
    }
    let Some(scale) = scale else {
        return Ok(plan);
    };
    for &k in axes {
        let input = shape[k] as i128;
        let output = (2 * input * scale.num + scale.den) / (2 * scale.den);
        if output < 1 {
            return Err(unsupported(format!(
                "keep_aspect_ratio_policy {policy:?} gives an empty output on axis {k}"
            )));
        }
        plan[k] = Axis {
            input: shape[k],
            output: output as usize,
            scale,
        };
    }
    Ok(plan)
}

/// Checks the plan against wgcnn's resize and adds the node (or passes the input through
/// when nothing is resized).
fn emit(
    imp: &mut Importer,
    node: &NodeProto,
    name: &str,
    plan: &[Axis; 4],
    s: &Sampling,
) -> Result<Value, NodeError> {
    for (k, a) in plan.iter().enumerate().take(2) {
        if !(a.scale.is_one() && a.output == a.input) {
            return Err(unsupported(format!(
                "{} scales {} (only H and W, axes 2 and 3, may be resized)",
                node.op_type,
                a.describe(k)
            )));
        }
    }
    let mode = if s.linear {
        linear_mode(plan, s)?
    } else {
        for (k, a) in plan.iter().enumerate().skip(2) {
            check_nearest(k, a, s)?;
        }
        ResizeMode::Nearest
    };
    if plan[2..].iter().all(|a| a.scale.is_one()) {
        return Ok(imp.req(node, 0)?.clone());
    }
    let x = imp.graph_input(node, 0)?;
    let size = [plan[2].output, plan[3].output];
    Ok(Value::Graph(imp.node(
        name,
        Op::Resize { size, mode },
        &[x],
    )?))
}

/// The bilinear mode whose source coordinates are ONNX's, for every resized axis.
fn linear_mode(plan: &[Axis; 4], s: &Sampling) -> Result<ResizeMode, NodeError> {
    let align_corners = match s.coord {
        Coord::HalfPixel | Coord::HalfPixelSymmetric | Coord::PytorchHalfPixel => false,
        Coord::AlignCorners => true,
        Coord::Asymmetric | Coord::TfHalfPixelForNn => {
            if plan[2..].iter().all(|a| a.scale.is_one()) {
                return Ok(ResizeMode::Bilinear {
                    align_corners: false,
                });
            }
            return Err(unsupported(format!(
                "{} (wgcnn's bilinear resize samples at half_pixel or align_corners coordinates)",
                s.what
            )));
        }
    };
    for (k, a) in plan.iter().enumerate().skip(2) {
        if a.scale.is_one() {
            continue;
        }
        if !a.near_integral() {
            return Err(unsupported(format!(
                "{} on {}: in × scale is not a whole number, so ONNX samples with the scale \
                 while wgcnn samples with in / out = {} / {}",
                s.what,
                a.describe(k),
                a.input,
                a.output
            )));
        }
        if s.coord == Coord::PytorchHalfPixel && a.output == 1 {
            return Err(unsupported(format!(
                "{} on {}: pytorch_half_pixel samples an output of size 1 at 0, wgcnn at the centre (in - 1) / 2",
                s.what,
                a.describe(k)
            )));
        }
    }
    Ok(ResizeMode::Bilinear { align_corners })
}

/// Checks that ONNX's nearest source pixel is wgcnn's for every output pixel of axis `k`.
fn check_nearest(k: usize, a: &Axis, s: &Sampling) -> Result<(), NodeError> {
    let needs_integral = matches!(s.coord, Coord::AlignCorners | Coord::HalfPixelSymmetric);
    if needs_integral && !a.near_integral() {
        return Err(unsupported(format!(
            "{} on {}: in × scale is not a whole number (these coordinates then depend on the fractional output size)",
            s.what,
            a.describe(k)
        )));
    }
    let ours = wgcnn_nearest(a.input, a.output)?;
    for (dst, &got) in ours.iter().enumerate() {
        let Some(want) = onnx_nearest(dst, a, s) else {
            return Err(unsupported(format!(
                "{} on {}: the scale is not exactly out / in, and ONNX's source coordinate of \
                 output pixel {dst} lies within float rounding of a pixel boundary, where \
                 implementations round either way",
                s.what,
                a.describe(k)
            )));
        };
        if want != got {
            return Err(unsupported(format!(
                "{} on {}: ONNX takes source pixel {want} for output pixel {dst} where wgcnn's \
                 nearest resize (PyTorch's floor(dst · in / out)) takes {got}",
                s.what,
                a.describe(k)
            )));
        }
    }
    Ok(())
}

/// The source index ONNX's nearest mode picks for output pixel `dst`, exactly: the source
/// coordinate as a fraction, rounded, clamped to the input.
///
/// When the scale is `out / in`, or that rounded to f32 (which float implementations then
/// evaluate as `out / in`), `out / in` is used. Otherwise the f32 scale is taken as it is, and
/// `None` is returned when the coordinate lies within float rounding (2^-20 relative) of a
/// rounding boundary without being on it: implementations then round either way (e.g.
/// `0.5 / 0.33333334 - 0.5` is just below 1 exactly, but 1 in f32).
fn onnx_nearest(dst: usize, a: &Axis, s: &Sampling) -> Option<i128> {
    let (d, input, output) = (dst as i128, a.input as i128, a.output as i128);
    let literal = !a.near_integral();
    let (sn, sd) = if literal {
        (a.scale.num, a.scale.den)
    } else {
        (output, input)
    };
    // x = xn / xd with xd > 0.
    let (xn, xd) = match s.coord {
        Coord::Asymmetric => (d * sd, sn),
        Coord::HalfPixel | Coord::HalfPixelSymmetric => ((2 * d + 1) * sd - sn, 2 * sn),
        Coord::PytorchHalfPixel if output > 1 => ((2 * d + 1) * sd - sn, 2 * sn),
        Coord::PytorchHalfPixel => (0, 1),
        Coord::AlignCorners if output > 1 => (d * (input - 1), output - 1),
        Coord::AlignCorners => (0, 1),
        Coord::TfHalfPixelForNn => ((2 * d + 1) * sd, 2 * sn),
    };
    // The index is floor(y) with y = x, or ceil(y) with y = x - 1/2 (halves go down).
    let (yn, yd) = match s.round {
        Round::Floor => (xn, xd),
        Round::RoundPreferFloor => (2 * xn - xd, 2 * xd),
    };
    let below = yn.div_euclid(yd);
    let frac = yn.rem_euclid(yd);
    let idx = match s.round {
        Round::Floor => below,
        Round::RoundPreferFloor => below + i128::from(frac != 0),
    };
    if literal && frac != 0 {
        // The boundary nearest y, and whether rounding across it changes the clamped index.
        let (boundary, dist) = if 2 * frac <= yd {
            (below, frac)
        } else {
            (below + 1, yd - frac)
        };
        let matters = match s.round {
            Round::Floor => (1..input).contains(&boundary),
            Round::RoundPreferFloor => (0..input - 1).contains(&boundary),
        };
        if matters && dist << 20 <= yn.abs() + yd {
            return None;
        }
    }
    Some(idx.clamp(0, input - 1))
}

/// The source index wgcnn's nearest resize takes for each output pixel along an axis of
/// `input` → `output`, asked of the CPU interpreter on a ramp.
fn wgcnn_nearest(input: usize, output: usize) -> Result<Vec<i128>, NodeError> {
    let ramp = Tensor {
        shape: vec![1, 1, input, 1],
        data: (0..input).map(|i| i as f32).collect(),
    };
    let op = Op::Resize {
        size: [output, 1],
        mode: ResizeMode::Nearest,
    };
    let out = interp::eval_op(&op, &[&ramp])?;
    Ok(out.data.iter().map(|&v| v as i128).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(input: usize, s: f32) -> Axis {
        let shape = [1, 1, input, 1];
        from_scales(&shape, &[1.0, 1.0, s, 1.0])
            .map(|p| p[2])
            .unwrap_or_else(|e| {
                panic!("scale {s} on {input}: {}", e.message());
            })
    }

    fn sampling(coord: Coord, round: Round) -> Sampling {
        Sampling {
            linear: false,
            coord,
            round,
            what: String::new(),
        }
    }

    fn table(a: &Axis, s: &Sampling) -> Vec<i128> {
        (0..a.output)
            .map(|d| onnx_nearest(d, a, s).unwrap_or(-1))
            .collect()
    }

    #[test]
    fn ratio_of_f32_is_exact() {
        assert_eq!(
            Ratio::from_f32(2.0),
            Some(Ratio {
                num: 1 << 23,
                den: 1 << 22
            })
        );
        let third = Ratio::from_f32(1.0 / 3.0).map(|r| (r.num, r.den));
        assert_eq!(third, Some((11_184_811, 1 << 25)));
        assert_eq!(Ratio::from_f32(1.5).map(Ratio::to_f64), Some(1.5));
        assert_eq!(Ratio::from_f32(0.0), None);
        assert_eq!(Ratio::from_f32(f32::NAN), None);
    }

    #[test]
    fn onnx_nearest_tables_by_hand() {
        let a = axis(2, 3.0);
        let floor = |c| table(&a, &sampling(c, Round::Floor));
        let round = |c| table(&a, &sampling(c, Round::RoundPreferFloor));
        // asymmetric x = dst / 3: floor repeats, round_prefer_floor rounds 2/3 up.
        assert_eq!(floor(Coord::Asymmetric), [0, 0, 0, 1, 1, 1]);
        assert_eq!(round(Coord::Asymmetric), [0, 0, 1, 1, 1, 1]);
        // half_pixel x = (dst + 0.5) / 3 - 0.5 = -1/3, 0, 1/3, 2/3, 1, 4/3.
        assert_eq!(floor(Coord::HalfPixel), [0, 0, 0, 0, 1, 1]);
        assert_eq!(round(Coord::HalfPixel), [0, 0, 0, 1, 1, 1]);
        // align_corners x = dst / 5.
        assert_eq!(floor(Coord::AlignCorners), [0, 0, 0, 0, 0, 1]);
        // tf_half_pixel_for_nn x = (dst + 0.5) / 3.
        assert_eq!(round(Coord::TfHalfPixelForNn), [0, 0, 1, 1, 1, 1]);
        // Non-integral scale: 5 × 1.5 → 7, asymmetric x = dst / 1.5.
        let b = axis(5, 1.5);
        assert_eq!(b.output, 7);
        assert_eq!(
            table(&b, &sampling(Coord::Asymmetric, Round::Floor)),
            [0, 0, 1, 2, 2, 3, 4]
        );
    }

    #[test]
    fn output_sizes_floor_and_refuse_float_rounding_below_a_whole_number() {
        assert_eq!(axis(5, 1.5).output, 7);
        assert_eq!(axis(9, 1.0 / 3.0).output, 3);
        let e = from_scales(&[1, 1, 30, 1], &[1.0, 1.0, 0.7, 1.0]).err();
        let msg = e.as_ref().map(NodeError::message).unwrap_or_default();
        println!("{msg}");
        assert!(msg.contains("float rounding below 21"));
    }

    #[test]
    fn nearest_refused_where_wgcnns_float_index_differs_from_the_exact_one() {
        // 2 → 82 (scale 41): wgcnn (PyTorch) computes 41 · f32(2 / 82) < 1 and takes pixel
        // 0 for output 41; ONNX's x = 41 / 41 = 1 takes pixel 1.
        let a = axis(2, 41.0);
        let s = sampling(Coord::Asymmetric, Round::Floor);
        let msg = check_nearest(2, &a, &s)
            .err()
            .map(|e| e.message().to_string())
            .unwrap_or_default();
        println!("{msg}");
        assert!(msg.contains("ONNX takes source pixel 1 for output pixel 41"));
        // Whole factors that f32 represents well pass.
        for (input, scale) in [(7, 2.0), (5, 3.0), (4, 4.0), (3, 8.0), (10, 0.5)] {
            assert!(
                check_nearest(2, &axis(input, scale), &s).is_ok(),
                "{input} × {scale}"
            );
        }
    }

    #[test]
    fn nearest_refused_where_an_inexact_scale_lands_within_rounding_of_a_boundary() {
        // 4 × f32(1/3) → 1: half_pixel x = 0.5 / 0.33333334 - 0.5 is just below 1 exactly,
        // 1 in onnxruntime's f32: refused rather than guessed.
        let a = axis(4, 1.0 / 3.0);
        assert_eq!(a.output, 1);
        let msg = check_nearest(2, &a, &sampling(Coord::HalfPixel, Round::Floor))
            .err()
            .map(|e| e.message().to_string())
            .unwrap_or_default();
        println!("{msg}");
        assert!(msg.contains("output pixel 0 lies within float rounding of a pixel boundary"));
        // 9 × f32(1/3) → 3 is out / in rounded to f32, evaluated as 3 / 9: accepted.
        let b = axis(9, 1.0 / 3.0);
        assert!(check_nearest(2, &b, &sampling(Coord::Asymmetric, Round::Floor)).is_ok());
    }
}
