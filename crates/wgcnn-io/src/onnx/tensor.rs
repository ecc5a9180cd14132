//! Tensors known at import time: initializers, `Constant` outputs and constant-folded values,
//! decoded from `TensorProto` (inline `raw_data`, typed fields, or external files).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use super::proto::{TensorProto, data_location, data_type};

/// The largest tensor (in elements) the importer will materialize: guards against absurd
/// dims in corrupt files before any allocation.
pub(crate) const MAX_ELEMENTS: usize = 1 << 31;

/// Values of a host tensor: floats (FLOAT, FLOAT16, BFLOAT16, DOUBLE) or integers (every
/// integer type and BOOL).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum HostData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A dense row-major tensor evaluated on the host at import time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HostTensor {
    pub shape: Vec<usize>,
    pub data: HostData,
}

impl HostTensor {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> HostTensor {
        HostTensor {
            shape,
            data: HostData::F32(data),
        }
    }

    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> HostTensor {
        HostTensor {
            shape,
            data: HostData::I64(data),
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            HostData::F32(v) => v.len(),
            HostData::I64(v) => v.len(),
        }
    }

    pub fn is_float(&self) -> bool {
        matches!(self.data, HostData::F32(_))
    }

    /// The values as f32 (integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            HostData::F32(v) => v.clone(),
            HostData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as integers; floats must be integral.
    pub fn to_i64(&self) -> Result<Vec<i64>, String> {
        match &self.data {
            HostData::I64(v) => Ok(v.clone()),
            HostData::F32(v) => v
                .iter()
                .map(|&x| {
                    if x.fract() == 0.0 && x.abs() < 9.0e15 {
                        Ok(x as i64)
                    } else {
                        Err(format!("expected integer values, found {x}"))
                    }
                })
                .collect(),
        }
    }

    /// The single value of a one-element tensor as f32.
    pub fn scalar_f32(&self) -> Result<f32, String> {
        if self.len() != 1 {
            return Err(format!(
                "expected a single value, got shape {:?}",
                self.shape
            ));
        }
        Ok(self.to_f32()[0])
    }

    /// The same data with a new shape (element counts must agree; checked by callers).
    pub fn reshaped(&self, shape: Vec<usize>) -> HostTensor {
        HostTensor {
            shape,
            data: self.data.clone(),
        }
    }

    /// Picks elements by flat index into a new tensor of `shape`.
    pub fn gather_flat(&self, shape: Vec<usize>, indices: &[usize]) -> HostTensor {
        match &self.data {
            HostData::F32(v) => HostTensor::f32(shape, indices.iter().map(|&i| v[i]).collect()),
            HostData::I64(v) => HostTensor::i64(shape, indices.iter().map(|&i| v[i]).collect()),
        }
    }
}

/// Element count of `dims`, refusing negative dims and overflowing or absurd totals.
pub(crate) fn checked_numel(dims: &[usize]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
}

/// Converts ONNX dims (int64) to a shape, refusing negative or absurd values.
pub(crate) fn dims_to_shape(dims: &[i64]) -> Result<Vec<usize>, String> {
    let shape: Vec<usize> = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d} in {dims:?}")))
        .collect::<Result<_, _>>()?;
    checked_numel(&shape).ok_or_else(|| format!("dims {dims:?} are too large"))?;
    Ok(shape)
}

/// IEEE 754 half precision bits to f32.
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) & 1) as u32;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let frac = (bits & 0x3ff) as u32;
    let out = match (exp, frac) {
        (0, 0) => sign << 31,
        (0, _) => {
            // Subnormal: value = frac * 2^-24.
            let v = frac as f32 * (1.0 / 16_777_216.0);
            return if sign == 1 { -v } else { v };
        }
        (0x1f, 0) => (sign << 31) | 0x7f80_0000,
        (0x1f, _) => (sign << 31) | 0x7fc0_0000 | (frac << 13),
        _ => (sign << 31) | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(out)
}

/// bfloat16 bits to f32.
pub(crate) fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// Byte width of one element in `raw_data` for the types the importer reads.
fn elem_size(dt: i32) -> Option<usize> {
    use data_type::*;
    Some(match dt {
        FLOAT | INT32 | UINT32 => 4,
        DOUBLE | INT64 | UINT64 => 8,
        FLOAT16 | BFLOAT16 | INT16 | UINT16 => 2,
        INT8 | UINT8 | BOOL => 1,
        _ => return None,
    })
}

/// Decodes little-endian fixed-width bytes of type `dt`.
fn decode_raw(dt: i32, bytes: &[u8], shape: Vec<usize>) -> HostTensor {
    use data_type::*;
    let w = |n: usize| bytes.chunks_exact(n);
    match dt {
        FLOAT => HostTensor::f32(
            shape,
            w(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        DOUBLE => HostTensor::f32(
            shape,
            w(8).map(|c| {
                f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            })
            .collect(),
        ),
        FLOAT16 => HostTensor::f32(
            shape,
            w(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        BFLOAT16 => HostTensor::f32(
            shape,
            w(2).map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        INT64 => HostTensor::i64(
            shape,
            w(8).map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        UINT64 => HostTensor::i64(
            shape,
            w(8).map(|c| {
                u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as i64
            })
            .collect(),
        ),
        INT32 => HostTensor::i64(
            shape,
            w(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
        ),
        UINT32 => HostTensor::i64(
            shape,
            w(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
        ),
        INT16 => HostTensor::i64(
            shape,
            w(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
        ),
        UINT16 => HostTensor::i64(
            shape,
            w(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
        ),
        INT8 => HostTensor::i64(shape, bytes.iter().map(|&b| b as i8 as i64).collect()),
        _ => HostTensor::i64(shape, bytes.iter().map(|&b| b as i64).collect()),
    }
}

/// Decodes a `TensorProto` into a host tensor. `model_dir` resolves external data.
/// Errors are plain messages; the caller adds the tensor's name and the file.
pub(crate) fn decode_tensor(t: &TensorProto, model_dir: &Path) -> Result<HostTensor, String> {
    use data_type::*;
    let shape = dims_to_shape(&t.dims)?;
    let n = checked_numel(&shape).ok_or_else(|| format!("dims {:?} are too large", t.dims))?;
    let dt = t.data_type;
    let size = elem_size(dt)
        .ok_or_else(|| format!("element type {} is not supported", data_type::name(dt)))?;
    let want_bytes = n
        .checked_mul(size)
        .ok_or_else(|| format!("dims {:?} are too large", t.dims))?;
    if t.data_location == data_location::EXTERNAL {
        let bytes = read_external(t, model_dir, want_bytes)?;
        return Ok(decode_raw(dt, &bytes, shape));
    }
    if !t.raw_data.is_empty() || n == 0 {
        if t.raw_data.len() != want_bytes {
            return Err(format!(
                "raw_data holds {} bytes, {} of {} need {want_bytes}",
                t.raw_data.len(),
                shape_str(&shape),
                data_type::name(dt)
            ));
        }
        return Ok(decode_raw(dt, &t.raw_data, shape));
    }
    let count_err = |field: &str, got: usize| {
        format!("{field} holds {got} values for shape {}", shape_str(&shape))
    };
    match dt {
        FLOAT if t.float_data.len() == n => Ok(HostTensor::f32(shape, t.float_data.clone())),
        FLOAT => Err(count_err("float_data", t.float_data.len())),
        DOUBLE if t.double_data.len() == n => Ok(HostTensor::f32(
            shape,
            t.double_data.iter().map(|&v| v as f32).collect(),
        )),
        DOUBLE => Err(count_err("double_data", t.double_data.len())),
        INT64 if t.int64_data.len() == n => Ok(HostTensor::i64(shape, t.int64_data.clone())),
        INT64 => Err(count_err("int64_data", t.int64_data.len())),
        UINT32 | UINT64 if t.uint64_data.len() == n => Ok(HostTensor::i64(
            shape,
            t.uint64_data.iter().map(|&v| v as i64).collect(),
        )),
        UINT32 | UINT64 => Err(count_err("uint64_data", t.uint64_data.len())),
        _ if t.int32_data.len() != n => Err(count_err("int32_data", t.int32_data.len())),
        FLOAT16 => Ok(HostTensor::f32(
            shape,
            t.int32_data.iter().map(|&v| f16_to_f32(v as u16)).collect(),
        )),
        BFLOAT16 => Ok(HostTensor::f32(
            shape,
            t.int32_data
                .iter()
                .map(|&v| bf16_to_f32(v as u16))
                .collect(),
        )),
        _ => Ok(HostTensor::i64(
            shape,
            t.int32_data.iter().map(|&v| v as i64).collect(),
        )),
    }
}

fn shape_str(shape: &[usize]) -> String {
    format!("{shape:?}")
}

/// Reads `want` bytes of an external tensor: `location` relative to the model's folder (no
/// absolute paths, no `..`), from `offset`, checking `length` when given.
fn read_external(t: &TensorProto, model_dir: &Path, want: usize) -> Result<Vec<u8>, String> {
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for kv in &t.external_data {
        let parse = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("external data {}: {v:?} is not a byte count", kv.key))
        };
        match kv.key.as_str() {
            "location" => location = Some(kv.value.as_str()),
            "offset" => offset = parse(&kv.value)?,
            "length" => length = Some(parse(&kv.value)?),
            _ => {}
        }
    }
    let location = location.ok_or("external data without a location")?;
    let rel = Path::new(location);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "external data location {location:?} must be a relative path inside the model's folder"
        ));
    }
    if let Some(len) = length
        && len != want as u64
    {
        return Err(format!(
            "external data length {len} bytes, the tensor needs {want}"
        ));
    }
    let path = model_dir.join(rel);
    let mut file =
        File::open(&path).map_err(|e| format!("external data {}: {e}", path.display()))?;
    let file_len = file
        .metadata()
        .map_err(|e| format!("external data {}: {e}", path.display()))?
        .len();
    if offset
        .checked_add(want as u64)
        .is_none_or(|end| end > file_len)
    {
        return Err(format!(
            "external data {}: {want} bytes at offset {offset} run past the file's end ({file_len} bytes)",
            path.display()
        ));
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("external data {}: {e}", path.display()))?;
    let mut bytes = vec![0u8; want];
    file.read_exact(&mut bytes)
        .map_err(|e| format!("external data {}: {e}", path.display()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_covers_normal_subnormal_and_special_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
    }
}
