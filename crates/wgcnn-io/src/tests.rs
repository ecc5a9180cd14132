//! Helpers shared by the crate's unit tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh path in the system temp dir, unique per process and call: `wgcnn-io-<pid>-<n>-<name>`.
pub(crate) fn temp_path(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("wgcnn-io-{}-{n}-{name}", std::process::id()))
}
