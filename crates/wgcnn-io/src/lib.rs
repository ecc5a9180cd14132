//! Weight loading for wgcnn: checkpoints in, f32 tensors by PyTorch key out.
//!
//! - [`SafetensorsFile`]: a `.safetensors` file (timm, Hugging Face, or converted), any float or
//!   integer dtype converted to f32.
//! - [`PthFile`]: a PyTorch checkpoint written by `torch.save` (the zip format of torch ≥ 1.6,
//!   and the legacy format before it), read without Python by a small pickle machine; plain
//!   state dicts and ones nested under `state_dict` / `model` / `model_state_dict` (training
//!   checkpoints), with DataParallel's `module.` prefix removed.
//! - [`open_weights`]: either of the two, chosen by the file's content.
//! - [`rule`]: the golden fixtures' deterministic weight rule (`../shared/fixtures/README.md`).
//! - [`Fixture`], [`RuleWeights`], [`fixtures_dir`]: access to the golden fixtures and the weights
//!   that produced them.
//!
//! Every source implements [`wgcnn_graph::WeightSource`], so `graph.bind(&source)` checks keys and
//! shapes and fills the parameters. Nothing here panics on a bad file: every failure is an
//! [`IoError`] naming the file and, where there is one, the key. This crate never touches the GPU.

mod dtype;
mod fixture;
pub mod onnx;
mod pth;
pub mod rule;
mod safetensors;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use dtype::DType;
pub use fixture::{Fixture, RuleWeights, fixture_path, fixtures_dir};
pub use pth::PthFile;
pub use rule::{rule_input, rule_tensor};
pub use safetensors::{SafetensorsFile, save_safetensors};
use wgcnn_graph::WeightSource;

/// Everything that can go wrong reading weights. Each variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The file could not be read at all.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid instance of its format (truncated, corrupted, malformed header).
    #[error("{}: not a valid {format} file: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    /// The file holds no tensor under this key.
    #[error("{}: no tensor named {key:?}", path.display())]
    MissingKey { path: PathBuf, key: String },
    /// The tensor exists but cannot be turned into f32 values.
    #[error("{}: tensor {key:?}: {reason}", path.display())]
    Tensor {
        path: PathBuf,
        key: String,
        reason: String,
    },
    /// Valid in its format, but using a feature this reader does not support.
    #[error("{}: unsupported {format} content: {reason}", path.display())]
    Unsupported {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    /// Neither a safetensors file nor a PyTorch checkpoint.
    #[error("{}: unknown weight format (expected .safetensors or a PyTorch .pth); first bytes {head:02x?}", path.display())]
    UnknownFormat { path: PathBuf, head: Vec<u8> },
    /// An ONNX model could not be imported (see [`onnx::OnnxError`]).
    #[error(transparent)]
    Onnx(#[from] onnx::OnnxError),
}

/// Reads the whole of `path`, or [`IoError::Read`] naming it.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, IoError> {
    fs::read(path).map_err(|source| IoError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Opens a weight file, telling the format from its content rather than its extension:
/// a zip (`PK\x03\x04`) or a pickle opening with torch's legacy magic number is a PyTorch
/// checkpoint ([`PthFile`]), a little-endian header length followed by `{` is safetensors
/// ([`SafetensorsFile`]). Anything else is [`IoError::UnknownFormat`].
pub fn open_weights(
    path: impl AsRef<Path>,
) -> Result<Box<dyn WeightSource + Send + Sync>, IoError> {
    let path = path.as_ref();
    let read_err = |source| IoError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(9);
    fs::File::open(path)
        .map_err(read_err)?
        .take(9)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    if head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || pth::looks_like_legacy(&head)
    {
        return Ok(Box::new(PthFile::open(path)?));
    }
    if head.len() == 9 && head[8] == b'{' {
        return Ok(Box::new(SafetensorsFile::open(path)?));
    }
    Err(IoError::UnknownFormat {
        path: path.to_path_buf(),
        head,
    })
}

#[cfg(test)]
mod tests;
