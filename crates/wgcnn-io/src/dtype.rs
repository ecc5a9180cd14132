//! Element types of stored tensors and their conversion to f32 (little-endian bytes).

use std::fmt;

/// The element type of a stored tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
    /// A type this crate cannot convert (FP8 variants, complex numbers, ...), by its name.
    Other(String),
}

impl DType {
    /// Bytes per element, or `None` for [`DType::Other`].
    pub fn size(&self) -> Option<usize> {
        Some(match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::Other(_) => return None,
        })
    }

    /// Whether the type holds floating-point values (the ones the weight rule covers).
    pub fn is_float(&self) -> bool {
        matches!(self, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
    }

    /// Converts little-endian elements to f32 (integers exactly up to 2^24, f64 rounded once).
    /// Errors when the type is unsupported or the byte count is not a whole number of elements.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Vec<f32>, String> {
        let Some(size) = self.size() else {
            return Err(format!("element type {self} cannot be converted to f32"));
        };
        if !bytes.len().is_multiple_of(size) {
            return Err(format!(
                "{} bytes is not a whole number of {self} elements",
                bytes.len()
            ));
        }
        let chunks = bytes.chunks_exact(size);
        Ok(match self {
            DType::F32 => chunks
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F64 => chunks.map(|c| f64::from_le_bytes(le8(c)) as f32).collect(),
            DType::F16 => chunks
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            DType::BF16 => chunks
                .map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            DType::I64 => chunks.map(|c| i64::from_le_bytes(le8(c)) as f32).collect(),
            DType::I32 => chunks
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            DType::I16 => chunks
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
                .collect(),
            DType::I8 => chunks.map(|c| c[0] as i8 as f32).collect(),
            DType::U8 => chunks.map(|c| c[0] as f32).collect(),
            DType::Bool => chunks.map(|c| if c[0] != 0 { 1.0 } else { 0.0 }).collect(),
            DType::Other(_) => Vec::new(), // returned above: `size()` is None
        })
    }
}

fn le8(c: &[u8]) -> [u8; 8] {
    [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            DType::F64 => "f64",
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I16 => "i16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::Bool => "bool",
            DType::Other(name) => name,
        };
        f.write_str(name)
    }
}

/// IEEE binary16 to f32, exactly (every f16 value is an f32 value).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = match exp {
        // Zero or subnormal: mant * 2^-24, exact in f32.
        0 => {
            let magnitude = mant as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -magnitude } else { magnitude };
        }
        // Infinity or NaN (payload kept).
        0x1f => sign | 0x7f80_0000 | (mant << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

/// bfloat16 to f32: the upper half of an f32.
pub(crate) fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_covers_normal_subnormal_and_special_values() {
        let cases: [(u16, f32); 9] = [
            (0x0000, 0.0),
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x7bff, 65504.0),
            (0x0001, 5.960_464_5e-8),
            (0x8001, -5.960_464_5e-8),
            (0x03ff, 1023.0 / 16_777_216.0),
            (0x7c00, f32::INFINITY),
        ];
        for (bits, want) in cases {
            let got = f16_to_f32(bits);
            println!("f16 {bits:#06x} -> {got:e} (want {want:e})");
            assert_eq!(got, want, "f16 {bits:#06x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
        assert!(f16_to_f32(0x8000).is_sign_negative() && f16_to_f32(0x8000) == 0.0);
    }

    #[test]
    fn bf16_and_integer_decoding() {
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
        let bytes: Vec<u8> = [-5i64, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(DType::I64.decode(&bytes), Ok(vec![-5.0, 7.0]));
        assert_eq!(DType::U8.decode(&[0, 255]), Ok(vec![0.0, 255.0]));
        assert!(
            DType::F32.decode(&[0, 0, 0]).is_err(),
            "3 bytes are not an f32"
        );
        assert!(DType::Other("F8_E4M3".into()).decode(&[0]).is_err());
    }
}
