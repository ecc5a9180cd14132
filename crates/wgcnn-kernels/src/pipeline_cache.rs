//! The on-disk pipeline cache: wgpu's [`wgpu::PipelineCache`] (Vulkan only in wgpu 30), loaded
//! when the [`crate::Context`] opens and written back after plans compile their pipelines and
//! when the context drops.
//!
//! The file is `<cache dir>/pipelines-<wgpu adapter key>-<driver hash>.bin`, where the cache dir
//! is [`ContextOptions::cache_dir`](crate::ContextOptions::cache_dir), else `wgcnn` in the user's
//! cache directory ([`user_cache_dir`]). Its bytes are wgpu's
//! `get_data()` inside a small envelope of ours (magic, length, FNV-1a hash), so a truncated or
//! damaged file is refused before the driver sees it; wgpu then checks its own header (adapter,
//! driver's cache UUID, length) and a foreign or stale cache is dropped as well. Files are
//! replaced atomically (temporary file + rename), so concurrent processes never read half a file.
//! `no_cache` neither reads nor writes anything. The library reads no environment variable; the
//! CLI maps `WGCNN_NO_CACHE` and `WGCNN_CACHE_DIR` onto the options ([`no_cache_from_env`],
//! [`cache_dir_from_env`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::KernelError;

/// Environment variable that disables the on-disk cache when set to anything but `0`/`false`.
pub const NO_CACHE_ENV: &str = "WGCNN_NO_CACHE";
/// Environment variable naming the cache directory (overrides the user's cache directory).
pub const CACHE_DIR_ENV: &str = "WGCNN_CACHE_DIR";

/// Start of every cache file we write.
const MAGIC: [u8; 8] = *b"WGCNNPC1";
/// Magic, data length (u64 LE), FNV-1a 64 hash of the data (u64 LE).
const ENVELOPE_LEN: usize = 24;

/// What the context did with the on-disk pipeline cache when it opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// Switched off: `no_cache`, `--no-cache` or `WGCNN_NO_CACHE`.
    Disabled,
    /// Not available here (the adapter lacks `PIPELINE_CACHE`, or no cache directory is known).
    Unsupported(String),
    /// No file yet: pipelines compile from scratch and are saved to `path`.
    Missing { path: PathBuf },
    /// A file was there but unusable (damaged, foreign adapter, other driver version); it is
    /// ignored and overwritten at the next save.
    Rejected { path: PathBuf, reason: String },
    /// `bytes` of cache data from `path` were handed to wgpu, whose cache then held `kept`
    /// bytes. wgpu silently drops data from another wgpu or driver version (`kept` is then the
    /// size of an empty cache); drivers may re-serialize what they keep.
    Loaded {
        path: PathBuf,
        bytes: usize,
        kept: usize,
    },
}

impl CacheStatus {
    /// Whether data from disk was loaded and the cache kept (at least as much as) it.
    pub fn is_hit(&self) -> bool {
        matches!(self, CacheStatus::Loaded { bytes, kept, .. } if kept >= bytes)
    }

    /// The cache file, when there is one to read or write.
    pub fn path(&self) -> Option<&Path> {
        match self {
            CacheStatus::Missing { path }
            | CacheStatus::Rejected { path, .. }
            | CacheStatus::Loaded { path, .. } => Some(path),
            CacheStatus::Disabled | CacheStatus::Unsupported(_) => None,
        }
    }
}

impl std::fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheStatus::Disabled => write!(f, "disabled"),
            CacheStatus::Unsupported(why) => write!(f, "unsupported ({why})"),
            CacheStatus::Missing { path } => {
                write!(f, "no file yet, will write {}", path.display())
            }
            CacheStatus::Rejected { path, reason } => {
                write!(f, "ignored {} ({reason})", path.display())
            }
            CacheStatus::Loaded { path, bytes, kept } => {
                write!(f, "loaded {bytes} bytes from {}", path.display())?;
                if kept < bytes {
                    write!(
                        f,
                        ", of which the driver kept {kept} (stale or foreign data)"
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// The user's cache directory: `$XDG_CACHE_HOME` or `~/.cache` on Linux and other Unixes,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows.
pub fn user_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(windows) {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| h.join("Library").join("Caches"))
    } else {
        var("XDG_CACHE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| var("HOME").map(|h| h.join(".cache")))
    }
}

/// Whether `WGCNN_NO_CACHE` asks to skip the cache (for programs that honour the variable, as
/// the CLI does; the library itself reads no environment).
pub fn no_cache_from_env() -> bool {
    std::env::var(NO_CACHE_ENV).is_ok_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        )
    })
}

/// `$WGCNN_CACHE_DIR` when set and not empty (for programs that honour it, as the CLI does).
pub fn cache_dir_from_env() -> Option<PathBuf> {
    std::env::var_os(CACHE_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The cache directory: `explicit`, else `<user cache dir>/wgcnn`.
pub(crate) fn cache_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| user_cache_dir().map(|d| d.join("wgcnn")))
}

/// The cache file for `info` in `dir`, or `None` where wgpu has no cache for the backend.
pub fn cache_file(dir: &Path, info: &wgpu::AdapterInfo) -> Option<PathBuf> {
    let key = wgpu::util::pipeline_cache_key(info)?;
    let driver =
        fnv1a64(format!("{}\n{}\n{}", info.name, info.driver, info.driver_info).as_bytes());
    Some(dir.join(format!("pipelines-{key}-{:08x}.bin", driver as u32)))
}

/// wgpu's cache plus the file it persists to.
pub(crate) struct DiskCache {
    pub(crate) cache: wgpu::PipelineCache,
    path: PathBuf,
    /// Hash of the data last read from or written to `path`: unchanged data is not rewritten.
    persisted: Mutex<Option<u64>>,
}

impl std::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCache")
            .field("path", &self.path)
            .finish()
    }
}

/// Opens the pipeline cache for a device that has `PIPELINE_CACHE` enabled: loads `dir`'s
/// file when it is there and valid, else starts empty. Never fails: a cache is an optimization.
pub(crate) fn open(
    device: &wgpu::Device,
    info: &wgpu::AdapterInfo,
    dir: &Path,
) -> (Option<DiskCache>, CacheStatus) {
    let Some(path) = cache_file(dir, info) else {
        return (
            None,
            CacheStatus::Unsupported(format!(
                "wgpu keeps no pipeline cache for {:?}",
                info.backend
            )),
        );
    };
    let (data, mut status) = match std::fs::read(&path) {
        Ok(bytes) => match open_envelope(&bytes) {
            Ok(data) => (
                Some(data.to_vec()),
                CacheStatus::Loaded {
                    path: path.clone(),
                    bytes: data.len(),
                    kept: 0,
                },
            ),
            Err(reason) => (
                None,
                CacheStatus::Rejected {
                    path: path.clone(),
                    reason,
                },
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (None, CacheStatus::Missing { path: path.clone() })
        }
        Err(e) => (
            None,
            CacheStatus::Rejected {
                path: path.clone(),
                reason: format!("cannot read it: {e}"),
            },
        ),
    };
    // wgpu reports a cache for another adapter as a validation error even with `fallback`:
    // catch it and start empty instead.
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let mut cache = create(device, data.as_deref());
    if let Some(error) = pollster::block_on(scope.pop()) {
        status = CacheStatus::Rejected {
            path: path.clone(),
            reason: format!("wgpu refused it: {}", root_cause(&error.to_string())),
        };
        cache = create(device, None);
    }
    // What the cache holds now: the loaded data when wgpu and the driver kept it. Data that
    // did not survive is not marked as persisted, so the next save replaces the file.
    let held = cache.get_data().unwrap_or_default();
    let mut persisted = None;
    if let (CacheStatus::Loaded { kept, .. }, Some(d)) = (&mut status, &data) {
        *kept = held.len();
        if held == *d {
            persisted = Some(fnv1a64(d));
        }
    }
    tracing::debug!(%status, "pipeline cache");
    (
        Some(DiskCache {
            cache,
            path,
            persisted: Mutex::new(persisted),
        }),
        status,
    )
}

/// Creates wgpu's cache, seeded with `data` when given.
#[allow(unsafe_code)]
fn create(device: &wgpu::Device, data: Option<&[u8]>) -> wgpu::PipelineCache {
    let desc = wgpu::PipelineCacheDescriptor {
        label: Some("wgcnn pipeline cache"),
        data,
        fallback: true,
    };
    // SAFETY: wgpu asks that `data` come from an earlier `PipelineCache::get_data`. It is either
    // `None` or the payload of a file that `DiskCache::save` wrote from `get_data` output, whose
    // length and hash our envelope checked; wgpu then checks its own header (backend, adapter,
    // the driver's cache UUID, data length) and `fallback` discards data that fails it.
    unsafe { device.create_pipeline_cache(&desc) }
}

impl DiskCache {
    /// Writes the cache's current data to its file if it changed since it was loaded or last
    /// saved. Returns the bytes written, `None` when nothing needed writing.
    pub(crate) fn save(&self) -> Result<Option<usize>, KernelError> {
        let Some(data) = self.cache.get_data() else {
            return Ok(None);
        };
        let hash = fnv1a64(&data);
        let mut persisted = self.persisted.lock().unwrap_or_else(|p| p.into_inner());
        if *persisted == Some(hash) {
            return Ok(None);
        }
        let bytes = seal_envelope(&data);
        write_atomic(&self.path, &bytes).map_err(|source| KernelError::PipelineCache {
            path: self.path.clone(),
            source,
        })?;
        *persisted = Some(hash);
        tracing::debug!(path = %self.path.display(), bytes = bytes.len(), "saved pipeline cache");
        Ok(Some(bytes.len()))
    }
}

/// Wraps `data` in our envelope.
fn seal_envelope(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_LEN + data.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a64(data).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// The payload of an envelope, or why it is not one.
fn open_envelope(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() < ENVELOPE_LEN || bytes[..8] != MAGIC {
        return Err(format!(
            "not a wgcnn pipeline cache ({} bytes, no {:?} header)",
            bytes.len(),
            "WGCNNPC1"
        ));
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let (len, hash) = (word(8), word(16));
    let data = &bytes[ENVELOPE_LEN..];
    if data.len() as u64 != len {
        return Err(format!(
            "damaged: header says {len} bytes of data, the file holds {}",
            data.len()
        ));
    }
    if fnv1a64(data) != hash {
        return Err("damaged: the data does not match its hash".to_string());
    }
    Ok(data)
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The innermost cause in wgpu's multi-line error report (its last line).
fn root_cause(report: &str) -> &str {
    report
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or(report)
}

/// 64-bit FNV-1a: a checksum against damaged files, not a defense against tampering.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
