//! PyTorch checkpoints (`torch.save`), read without Python.
//!
//! The zip format (torch ≥ 1.6): `<folder>/data.pkl` is a pickle of the saved object in which
//! every tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and every
//! storage a persistent id `('storage', torch.FloatStorage, '<key>', 'cpu', numel)` whose bytes are
//! the archive entry `<folder>/data/<key>`. The legacy format (torch < 1.6, or
//! `_use_new_zipfile_serialization=False`) is a run of pickles: a magic number, the protocol
//! version, system info, the object (persistent ids `('storage', type, key, location, numel,
//! view)`), the list of storage keys, then each storage as a little-endian u64 element count and
//! its raw bytes.
//!
//! The saved object may be a state dict, or a dict holding one under `state_dict`,
//! `model_state_dict`, `model`, `module`, `net` or `network` (training checkpoints), or under
//! `best_states` → `model` (meshrcnn's `Checkpoint`, whose released models load as
//! `torch.load(f)["best_states"]["model"]`). A `module.` prefix on every key (DataParallel,
//! DistributedDataParallel) is removed, repeatedly while every key still has one.

mod archive;
mod pickle;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use archive::{Archive, Member};
use pickle::{Id, Node, Pickle};
use wgcnn_graph::{Shape, Tensor, WeightSource};

use crate::{DType, IoError};

const FORMAT: &str = "PyTorch checkpoint";

/// The pickled magic number that opens a legacy checkpoint (`LONG1` of 0x1950a86a20f9469cfc6c).
const LEGACY_MAGIC: [u8; 14] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// Keys under which training checkpoints keep the model's state dict, in order of preference.
const NESTED_KEYS: [&str; 6] = [
    "state_dict",
    "model_state_dict",
    "model",
    "module",
    "net",
    "network",
];

/// Two-level paths to the state dict, tried after [`NESTED_KEYS`]: meshrcnn's `Checkpoint`
/// saves `{"best_states": {"model": state_dict, "optim": ..., ...}, "latest_states": ..., "t":
/// ..., ...}` and its evaluation loads `best_states.model` (`tools/train_net_shapenet.py`).
const NESTED_PATHS: [[&str; 2]; 1] = [["best_states", "model"]];

/// The prefix DataParallel wrappers add to every key.
const WRAPPER_PREFIX: &str = "module.";

/// Whether `head` (the first bytes of a file) starts like a legacy checkpoint.
pub(crate) fn looks_like_legacy(head: &[u8]) -> bool {
    let n = head.len().min(LEGACY_MAGIC.len());
    n >= 4 && head[..n] == LEGACY_MAGIC[..n]
}

/// A tensor of the checkpoint: a strided view of a storage.
#[derive(Clone, Debug)]
struct TensorRef {
    dtype: DType,
    storage: String,
    /// Element offset into the storage.
    offset: usize,
    shape: Shape,
    stride: Vec<usize>,
}

/// A PyTorch checkpoint read into memory, its tensors located and bounds-checked.
#[derive(Debug)]
pub struct PthFile {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Storage key → its bytes: a range of `bytes`, or inflated from a deflated member.
    storages: HashMap<String, Member>,
    /// State-dict keys in file order.
    keys: Vec<String>,
    tensors: HashMap<String, TensorRef>,
    legacy: bool,
}

/// A storage as the pickle names it.
struct StorageRef {
    dtype: DType,
    key: String,
    numel: usize,
    /// Legacy views: element offset into the root storage.
    view_offset: usize,
}

impl PthFile {
    /// Reads `path` (zip or legacy format).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, IoError> {
        let path = path.as_ref();
        Self::from_bytes(path, crate::read_file(path)?)
    }

    /// Parses a checkpoint already in memory; `path` is only used in error messages.
    pub fn from_bytes(path: impl AsRef<Path>, bytes: Vec<u8>) -> Result<Self, IoError> {
        let path = path.as_ref().to_path_buf();
        let corrupt = |reason: String| IoError::Corrupt {
            path: path.clone(),
            format: FORMAT,
            reason,
        };
        let legacy = looks_like_legacy(&bytes);
        let (pickle, storages) = if legacy {
            read_legacy(&bytes).map_err(corrupt)?
        } else if bytes.starts_with(b"PK") {
            read_zip(&path, &bytes)?
        } else {
            return Err(corrupt("neither a zip archive nor a legacy pickle".into()));
        };
        let mut file = PthFile {
            path,
            bytes,
            storages,
            keys: Vec::new(),
            tensors: HashMap::new(),
            legacy,
        };
        file.collect_tensors(&pickle)?;
        Ok(file)
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is in the legacy (pre-1.6, non-zip) format.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// State-dict keys, in file order (`module.` prefixes removed).
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The shape of the tensor under `key`.
    pub fn shape(&self, key: &str) -> Option<&[usize]> {
        self.tensors.get(key).map(|t| t.shape.as_slice())
    }

    /// The element type of the tensor under `key`.
    pub fn dtype(&self, key: &str) -> Option<DType> {
        self.tensors.get(key).map(|t| t.dtype.clone())
    }

    /// The tensor under `key`, converted to f32 and made contiguous.
    pub fn tensor(&self, key: &str) -> Result<Tensor, IoError> {
        let t = self.tensors.get(key).ok_or_else(|| IoError::MissingKey {
            path: self.path.clone(),
            key: key.into(),
        })?;
        let bad = |reason: String| IoError::Tensor {
            path: self.path.clone(),
            key: key.into(),
            reason,
        };
        let size = t.dtype.size().ok_or_else(|| {
            bad(format!(
                "element type {} cannot be converted to f32",
                t.dtype
            ))
        })?;
        let storage = self
            .storages
            .get(&t.storage)
            .ok_or_else(|| bad(format!("storage {} is missing", t.storage)))?
            .bytes(&self.bytes)
            .ok_or_else(|| bad("storage outside the file".into()))?;
        let numel: usize = t.shape.iter().product();
        let contiguous = contiguous_strides(&t.shape) == t.stride;
        let data = if contiguous || numel <= 1 {
            let start = t.offset * size;
            let bytes = storage
                .get(start..start + numel * size)
                .ok_or_else(|| bad("data past its storage".into()))?;
            t.dtype.decode(bytes).map_err(bad)?
        } else {
            let all = t.dtype.decode(storage).map_err(bad)?;
            gather(&all, t.offset, &t.shape, &t.stride)
                .ok_or_else(|| bad("strided view past its storage".into()))?
        };
        Tensor::new(&t.shape, data).map_err(|e| bad(e.to_string()))
    }

    /// Finds the state dict in the unpickled object and records its tensors.
    fn collect_tensors(&mut self, pk: &Pickle) -> Result<(), IoError> {
        let path = self.path.clone();
        let corrupt = |reason: String| IoError::Corrupt {
            path: path.clone(),
            format: FORMAT,
            reason,
        };
        let dict = find_state_dict(pk).map_err(|reason| IoError::Unsupported {
            path: path.clone(),
            format: FORMAT,
            reason,
        })?;
        let mut entries = Vec::new();
        for &(k, v) in dict {
            let Some(key) = pk.str(k) else { continue };
            let Node::Tensor(args) = pk.node(v) else {
                continue;
            };
            let t = tensor_ref(pk, *args).map_err(|e| corrupt(format!("tensor {key:?}: {e}")))?;
            entries.push((key.to_string(), t));
        }
        if entries.is_empty() {
            return Err(IoError::Unsupported {
                path,
                format: FORMAT,
                reason: "the state dict holds no tensors".into(),
            });
        }
        // Only a prefix shared by every key is a wrapper's: a model may name a submodule
        // `module`. Wrappers nest (DataParallel around DistributedDataParallel), so repeat.
        let mut strip = 0;
        while entries
            .iter()
            .all(|(k, _)| k[strip..].starts_with(WRAPPER_PREFIX))
        {
            strip += WRAPPER_PREFIX.len();
        }
        for (key, (storage, t)) in entries {
            let key = key[strip..].to_string();
            let t = place(&self.storages, &storage, t)
                .map_err(|e| corrupt(format!("tensor {key:?}: {e}")))?;
            if self.tensors.insert(key.clone(), t).is_some() {
                return Err(corrupt(format!("key {key:?} appears twice")));
            }
            self.keys.push(key);
        }
        Ok(())
    }
}

/// Checks that the view `t` lies inside its storage (as stored in the file) and applies a
/// legacy view's offset.
fn place(
    storages: &HashMap<String, Member>,
    storage: &StorageRef,
    mut t: TensorRef,
) -> Result<TensorRef, String> {
    let member = storages
        .get(&storage.key)
        .ok_or_else(|| format!("storage {} not in the file", storage.key))?;
    let have = member.len() / t.dtype.size().unwrap_or(1);
    let limit = storage
        .numel
        .checked_add(storage.view_offset)
        .ok_or("storage size overflow")?;
    if limit > have {
        return Err(format!(
            "storage {} holds {have} elements, {} expected",
            storage.key, storage.numel
        ));
    }
    t.offset = t
        .offset
        .checked_add(storage.view_offset)
        .ok_or("offset overflow")?;
    // Views that repeat storage elements (stride 0) are legal, but a view more than 64 times
    // larger than its storage is a corrupt size, not a checkpoint: refuse it before allocating.
    let numel = t
        .shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n));
    if numel.is_none_or(|n| n > have.saturating_mul(64).max(64)) {
        return Err(format!(
            "view size {:?} is implausibly large for a storage of {have} elements",
            t.shape
        ));
    }
    match extent(t.offset, &t.shape, &t.stride) {
        Some(end) if end <= limit => Ok(t),
        _ => Err(format!(
            "view offset {} size {:?} stride {:?} exceeds its storage of {} elements",
            t.offset, t.shape, t.stride, storage.numel
        )),
    }
}

impl WeightSource for PthFile {
    fn keys(&self) -> Vec<String> {
        self.keys.clone()
    }

    fn shape(&self, key: &str) -> Option<Shape> {
        PthFile::shape(self, key).map(<[usize]>::to_vec)
    }

    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        self.tensor(key).map(|t| t.data).map_err(|e| e.to_string())
    }
}

/// Unpickles `<folder>/data.pkl` and locates (or inflates) every `<folder>/data/<key>` storage.
fn read_zip(path: &Path, bytes: &[u8]) -> Result<(Pickle, HashMap<String, Member>), IoError> {
    let corrupt = |reason: String| IoError::Corrupt {
        path: path.to_path_buf(),
        format: FORMAT,
        reason,
    };
    let mut archive = Archive::parse(bytes).map_err(|e| corrupt(format!("zip: {e}")))?;
    let names: Vec<String> = archive.names().map(str::to_string).collect();
    let pkl = names
        .iter()
        .find(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .ok_or_else(|| corrupt("the zip holds no data.pkl: not a torch.save archive".into()))?;
    let folder = &pkl[..pkl.len() - "data.pkl".len()];
    let order = format!("{folder}byteorder");
    if names.contains(&order) {
        let member = archive.member(&order).map_err(corrupt)?;
        if member.bytes(bytes) == Some(b"big") {
            return Err(IoError::Unsupported {
                path: path.to_path_buf(),
                format: FORMAT,
                reason: "big-endian storages (saved on a big-endian machine)".into(),
            });
        }
    }
    let member = archive.member(pkl).map_err(corrupt)?;
    let pickle_bytes = member
        .bytes(bytes)
        .ok_or_else(|| corrupt(format!("member {pkl} lies outside the file")))?;
    let pickle = pickle::unpickle(pickle_bytes, 0).map_err(|e| corrupt(format!("{pkl}: {e}")))?;
    let data_dir = format!("{folder}data/");
    let mut storages = HashMap::new();
    for name in &names {
        if let Some(key) = name.strip_prefix(&data_dir) {
            let member = archive.member(name).map_err(corrupt)?;
            storages.insert(key.to_string(), member);
        }
    }
    Ok((pickle, storages))
}

/// Runs the legacy format's five pickles and locates the storages that follow them.
fn read_legacy(bytes: &[u8]) -> Result<(Pickle, HashMap<String, Member>), String> {
    let magic = pickle::unpickle(bytes, 0)?;
    let version = pickle::unpickle(bytes, magic.end)?;
    if version.int(version.root) != Some(1001) {
        return Err(format!(
            "legacy protocol version {} (expected 1001)",
            version.describe(version.root)
        ));
    }
    let info = pickle::unpickle(bytes, version.end)?;
    if let Node::Dict(items) = info.node(info.root) {
        let little = items
            .iter()
            .find(|&&(k, _)| info.str(k) == Some("little_endian"));
        if let Some(&(_, v)) = little {
            if info.node(v) == &Node::Bool(false) {
                return Err("big-endian legacy checkpoint".into());
            }
        }
    }
    let object = pickle::unpickle(bytes, info.end)?;
    let keys = pickle::unpickle(bytes, object.end)?;
    let key_ids = keys
        .items(keys.root)
        .ok_or("legacy storage key list missing")?;
    // Element sizes come from the storage types named in the object pickle.
    let mut sizes: HashMap<String, usize> = HashMap::new();
    for id in 0..object.nodes.len() {
        if let Node::Persistent(pid) = object.node(id) {
            let s = storage_ref(&object, *pid)?;
            sizes.insert(s.key, s.dtype.size().unwrap_or(1));
        }
    }
    let mut storages = HashMap::new();
    let mut at = keys.end;
    for &k in key_ids {
        let key = keys.str(k).ok_or("legacy storage key is not a string")?;
        let head = bytes
            .get(at..at + 8)
            .ok_or_else(|| format!("storage {key}: truncated"))?;
        let numel = u64::from_le_bytes([
            head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
        ]);
        let size = *sizes
            .get(key)
            .ok_or_else(|| format!("storage {key} is not used by any tensor"))?;
        let len = usize::try_from(numel)
            .ok()
            .and_then(|n| n.checked_mul(size))
            .ok_or("storage size overflow")?;
        let start = at + 8;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| format!("storage {key}: truncated"))?;
        storages.insert(key.to_string(), Member::Stored(start..end));
        at = end;
    }
    Ok((object, storages))
}

/// The dict of tensors: the root, or a dict nested under one of [`NESTED_KEYS`].
fn find_state_dict(pk: &Pickle) -> Result<&[(Id, Id)], String> {
    let has_tensors = |items: &[(Id, Id)]| {
        items
            .iter()
            .any(|&(_, v)| matches!(pk.node(v), Node::Tensor(_)))
    };
    match pk.node(pk.root) {
        Node::Dict(items) if has_tensors(items) => Ok(items),
        Node::Dict(items) => {
            let paths = NESTED_KEYS.iter().map(std::slice::from_ref);
            for path in paths.chain(NESTED_PATHS.iter().map(|p| &p[..])) {
                if let Some(inner) = dict_at(pk, items, path).filter(|d| has_tensors(d)) {
                    return Ok(inner);
                }
            }
            let keys: Vec<String> = items
                .iter()
                .take(20)
                .map(|&(k, _)| {
                    pk.str(k)
                        .map_or_else(|| pk.describe(k), |s| format!("{s:?}"))
                })
                .collect();
            let nested: Vec<String> = NESTED_PATHS.iter().map(|p| p.join(".")).collect();
            Err(format!(
                "no state dict found: the saved dict has keys [{}] and none of {}, {} holds a dict of tensors",
                keys.join(", "),
                NESTED_KEYS.join(", "),
                nested.join(", ")
            ))
        }
        Node::Object { .. } => Err(format!(
            "the file holds a pickled {}, not a state dict; save `model.state_dict()` instead of the model",
            pk.describe(pk.root)
        )),
        _ => Err(format!(
            "the saved object is a {}, not a state dict",
            pk.describe(pk.root)
        )),
    }
}

/// The dict reached from `items` by following the string keys of `path`.
fn dict_at<'p>(pk: &'p Pickle, mut items: &'p [(Id, Id)], path: &[&str]) -> Option<&'p [(Id, Id)]> {
    for want in path {
        let &(_, v) = items.iter().find(|&&(k, _)| pk.str(k) == Some(want))?;
        match pk.node(v) {
            Node::Dict(inner) => items = inner,
            _ => return None,
        }
    }
    Some(items)
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
fn tensor_ref(pk: &Pickle, args: Id) -> Result<(StorageRef, TensorRef), String> {
    let a = pk.items(args).ok_or("tensor arguments are not a tuple")?;
    if a.len() < 4 {
        return Err(format!("_rebuild_tensor with {} arguments", a.len()));
    }
    let Node::Persistent(pid) = pk.node(a[0]) else {
        return Err(format!("tensor storage is a {}", pk.describe(a[0])));
    };
    let storage = storage_ref(pk, *pid)?;
    let offset = to_usize(pk.int(a[1]), "storage offset")?;
    let ints = |id: Id, what: &str| -> Result<Vec<usize>, String> {
        let items = pk
            .items(id)
            .ok_or_else(|| format!("{what} is a {}", pk.describe(id)))?;
        items.iter().map(|&i| to_usize(pk.int(i), what)).collect()
    };
    let shape = ints(a[2], "size")?;
    let stride = ints(a[3], "stride")?;
    if shape.len() != stride.len() {
        return Err(format!(
            "size {shape:?} and stride {stride:?} differ in rank"
        ));
    }
    let t = TensorRef {
        dtype: storage.dtype.clone(),
        storage: storage.key.clone(),
        offset,
        shape,
        stride,
    };
    Ok((storage, t))
}

/// `('storage', torch.FloatStorage, key, location, numel[, view])`.
fn storage_ref(pk: &Pickle, pid: Id) -> Result<StorageRef, String> {
    let t = pk
        .items(pid)
        .ok_or_else(|| format!("persistent id is a {}", pk.describe(pid)))?;
    if t.len() < 5 || pk.str(t[0]) != Some("storage") {
        return Err("persistent id is not a ('storage', type, key, location, numel) tuple".into());
    }
    let (_, type_name) = pk.global(t[1]).ok_or("storage type is not a class")?;
    let dtype = storage_dtype(type_name);
    let key = pk
        .str(t[2])
        .ok_or("storage key is not a string")?
        .to_string();
    let mut numel = to_usize(pk.int(t[4]), "storage size")?;
    let mut view_offset = 0;
    // Legacy views: (view_key, offset, view_size) into the root storage.
    if let Some(view) = t.get(5).and_then(|&v| pk.items(v)) {
        if view.len() == 3 {
            view_offset = to_usize(pk.int(view[1]), "view offset")?;
            numel = to_usize(pk.int(view[2]), "view size")?;
        }
    }
    Ok(StorageRef {
        dtype,
        key,
        numel,
        view_offset,
    })
}

fn storage_dtype(type_name: &str) -> DType {
    match type_name {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "IntStorage" => DType::I32,
        "ShortStorage" => DType::I16,
        "CharStorage" => DType::I8,
        "ByteStorage" | "UntypedStorage" => DType::U8,
        "BoolStorage" => DType::Bool,
        other => DType::Other(other.to_string()),
    }
}

fn to_usize(v: Option<i64>, what: &str) -> Result<usize, String> {
    v.and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("{what} is not a non-negative integer"))
}

fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// One past the largest element index a view touches (`offset` for an empty view); `None` on
/// overflow.
fn extent(offset: usize, shape: &[usize], stride: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(offset);
    }
    let mut last = offset;
    for (&n, &s) in shape.iter().zip(stride) {
        last = last.checked_add((n - 1).checked_mul(s)?)?;
    }
    // Also guard the element count itself.
    shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))?;
    last.checked_add(1)
}

/// Row-major copy of a strided view; `None` when an index falls outside `src`.
fn gather(src: &[f32], offset: usize, shape: &[usize], stride: &[usize]) -> Option<Vec<f32>> {
    let numel: usize = shape.iter().product();
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..numel {
        let at = offset + index.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>();
        out.push(*src.get(at)?);
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod torch_writer;
