//! `.safetensors` files: an 8-byte header length, a JSON header (dtype, shape, byte range per
//! tensor, optional `__metadata__` strings), then the raw little-endian data.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use safetensors::tensor::{Metadata, SafeTensors};
use wgcnn_graph::{Shape, Tensor, WeightSource};

use crate::{DType, IoError};

const FORMAT: &str = "safetensors";

/// A safetensors file read into memory, its header parsed and validated (offsets inside the
/// data, sizes matching shapes and dtypes).
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Offset of the data section in `bytes`.
    data_start: usize,
    header: Metadata,
    metadata: HashMap<String, String>,
    /// Keys in storage order.
    keys: Vec<String>,
}

impl SafetensorsFile {
    /// Reads and validates `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, IoError> {
        let path = path.as_ref();
        Self::from_bytes(path, crate::read_file(path)?)
    }

    /// Parses a safetensors file already in memory; `path` is only used in error messages.
    pub fn from_bytes(path: impl AsRef<Path>, bytes: Vec<u8>) -> Result<Self, IoError> {
        let path = path.as_ref().to_path_buf();
        let (header_len, header) =
            SafeTensors::read_metadata(&bytes).map_err(|e| IoError::Corrupt {
                path: path.clone(),
                format: FORMAT,
                reason: e.to_string(),
            })?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let keys = header.offset_keys();
        Ok(SafetensorsFile {
            path,
            bytes,
            data_start: 8 + header_len,
            header,
            metadata,
            keys,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor key, in storage order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Whether a tensor is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.header.info(key).is_some()
    }

    /// The shape stored under `key`.
    pub fn shape(&self, key: &str) -> Option<&[usize]> {
        self.header.info(key).map(|info| info.shape.as_slice())
    }

    /// The element type stored under `key`.
    pub fn dtype(&self, key: &str) -> Option<DType> {
        self.header.info(key).map(|info| convert_dtype(info.dtype))
    }

    /// The `__metadata__` strings of the header (empty when absent).
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The tensor under `key`, converted to f32.
    pub fn tensor(&self, key: &str) -> Result<Tensor, IoError> {
        let info = self.header.info(key).ok_or_else(|| IoError::MissingKey {
            path: self.path.clone(),
            key: key.to_string(),
        })?;
        let bad = |reason: String| IoError::Tensor {
            path: self.path.clone(),
            key: key.to_string(),
            reason,
        };
        let (start, end) = info.data_offsets;
        let bytes = start
            .checked_add(self.data_start)
            .zip(end.checked_add(self.data_start))
            .and_then(|(s, e)| self.bytes.get(s..e))
            .ok_or_else(|| {
                bad(format!(
                    "byte range {start}..{end} lies outside the data section"
                ))
            })?;
        let data = convert_dtype(info.dtype).decode(bytes).map_err(bad)?;
        Tensor::new(&info.shape, data).map_err(|e| bad(e.to_string()))
    }
}

fn convert_dtype(dtype: Dtype) -> DType {
    match dtype {
        Dtype::F64 => DType::F64,
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        other => DType::Other(format!("{other:?}")),
    }
}

impl WeightSource for SafetensorsFile {
    fn keys(&self) -> Vec<String> {
        self.keys.clone()
    }

    fn shape(&self, key: &str) -> Option<Shape> {
        SafetensorsFile::shape(self, key).map(<[usize]>::to_vec)
    }

    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        self.tensor(key).map(|t| t.data).map_err(|e| e.to_string())
    }
}

/// Writes `tensors` (key → f32 tensor) as a safetensors file with `metadata`: how tests and
/// tools hand a checkpoint made in Rust (e.g. the fixtures' rule weights) to the loaders.
pub fn save_safetensors(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let bytes: Vec<(&str, Vec<u8>, &[usize])> = tensors
        .iter()
        .map(|(k, t)| {
            (
                k.as_str(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.as_slice(),
            )
        })
        .collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (k, data, shape) in &bytes {
        let view =
            ::safetensors::tensor::TensorView::new(::safetensors::Dtype::F32, shape.to_vec(), data)
                .map_err(|e| IoError::Tensor {
                    path: path.to_path_buf(),
                    key: (*k).to_string(),
                    reason: e.to_string(),
                })?;
        views.push((*k, view));
    }
    let encoded =
        ::safetensors::tensor::serialize(views, metadata).map_err(|e| IoError::Corrupt {
            path: path.to_path_buf(),
            format: "safetensors",
            reason: e.to_string(),
        })?;
    fs::write(path, encoded).map_err(|source| IoError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::temp_path;

    /// A small valid file: f32 `a` [2,3], f16 `b` [2], i64 `c` [1], bf16 `d` [2], f64 `e` [1].
    fn sample_bytes() -> Vec<u8> {
        let mut data: Vec<u8> = Vec::new();
        let mut header = String::from("{\"__metadata__\":{\"model\":\"sample\"}");
        let mut add = |name: &str, dtype: &str, shape: &str, bytes: Vec<u8>| {
            let start = data.len();
            data.extend_from_slice(&bytes);
            header.push_str(&format!(
                ",\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{start},{}]}}",
                data.len()
            ));
        };
        let a: Vec<u8> = [1.0f32, -2.0, 3.5, 0.25, 1e-3, -7.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        add("a", "F32", "[2,3]", a);
        add(
            "b",
            "F16",
            "[2]",
            [0x3c00u16, 0xc000]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        );
        add("c", "I64", "[1]", (-3i64).to_le_bytes().to_vec());
        add(
            "d",
            "BF16",
            "[2]",
            [0x3f80u16, 0x4040]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        );
        add("e", "F64", "[1]", 0.1f64.to_le_bytes().to_vec());
        header.push('}');
        while header.len() % 8 != 0 {
            header.push(' ');
        }
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn safetensors_reads_f32_f16_bf16_f64_i64_and_metadata() {
        let path = temp_path("sample.safetensors");
        fs::write(&path, sample_bytes()).unwrap();
        let file = SafetensorsFile::open(&path).unwrap();
        let _ = fs::remove_file(&path);
        assert_eq!(file.keys(), ["a", "b", "c", "d", "e"]);
        assert_eq!(file.shape("a"), Some(&[2usize, 3][..]));
        assert_eq!(file.dtype("b"), Some(DType::F16));
        assert_eq!(
            file.metadata().get("model").map(String::as_str),
            Some("sample")
        );
        let a = file.tensor("a").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1.0, -2.0, 3.5, 0.25, 1e-3, -7.0]);
        assert_eq!(file.tensor("b").unwrap().data, vec![1.0, -2.0]);
        assert_eq!(file.tensor("c").unwrap().data, vec![-3.0]);
        assert_eq!(file.tensor("d").unwrap().data, vec![1.0, 3.0]);
        assert_eq!(file.tensor("e").unwrap().data, vec![0.1f32]);
        let missing = file.tensor("zz").unwrap_err().to_string();
        println!("missing key error: {missing}");
        assert!(
            missing.contains("zz") && missing.contains("sample.safetensors"),
            "{missing}"
        );
        assert_eq!(WeightSource::load(&file, "a").unwrap().len(), 6);
    }

    #[test]
    fn safetensors_truncated_flipped_empty_and_garbage_files_error_without_panic() {
        let good = sample_bytes();
        let path = temp_path("corrupt.safetensors");
        let mut errors = 0;
        let mut oks = 0;
        let mut check = |bytes: Vec<u8>, what: &str| {
            fs::write(&path, &bytes).unwrap();
            match SafetensorsFile::open(&path) {
                Err(e) => {
                    errors += 1;
                    assert!(e.to_string().contains("corrupt.safetensors"), "{what}: {e}");
                }
                Ok(file) => {
                    // A flip inside the data or in a string may leave a valid file: every tensor
                    // must still load or fail cleanly.
                    oks += 1;
                    for key in file.keys() {
                        let _ = file.tensor(key);
                    }
                }
            }
        };
        check(Vec::new(), "empty");
        check(b"hello world, not a tensor file".to_vec(), "garbage");
        check(vec![0xff; 64], "all ones");
        for len in 0..good.len() {
            check(good[..len].to_vec(), "truncated");
        }
        for i in 0..good.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                check(bad, "flipped");
            }
        }
        let _ = fs::remove_file(&path);
        println!("corrupted variants: {errors} rejected, {oks} still valid");
        assert!(errors > good.len(), "every truncation must be rejected");
    }

    #[test]
    fn safetensors_missing_file_names_the_path() {
        let err = SafetensorsFile::open("/nonexistent/dir/w.safetensors")
            .unwrap_err()
            .to_string();
        println!("{err}");
        assert!(err.contains("/nonexistent/dir/w.safetensors"));
    }
}
