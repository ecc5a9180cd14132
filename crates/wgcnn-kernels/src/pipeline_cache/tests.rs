//! The on-disk pipeline cache against a temporary directory (never the user's cache), and the
//! plan-time compilation that fills it.

use std::path::{Path, PathBuf};

use super::*;
use crate::unary::{self, UnaryParams};
use crate::{Context, ContextOptions};
use wgcnn_graph::Activation;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "wgcnn-pipeline-cache-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_in(dir: &Path, no_cache: bool) -> Context {
    Context::new(&ContextOptions {
        no_cache,
        cache_dir: Some(dir.to_path_buf()),
        ..Default::default()
    })
    .expect("a GPU adapter (lavapipe in CI)")
}

/// Whether this machine can have an on-disk cache at all (a Vulkan adapter).
fn cache_expected(ctx: &Context) -> bool {
    let status = ctx.pipeline_cache_status();
    println!(
        "adapter {} ({:?}): pipeline cache {status}",
        ctx.info.name, ctx.info.backend
    );
    if !ctx.features.contains(wgpu::Features::PIPELINE_CACHE) {
        assert!(matches!(status, CacheStatus::Unsupported(_)), "{status}");
        return false;
    }
    true
}

/// Runs ReLU over `[-2, -1, 0, 1, 2, 3]` through the `unary` pipeline and checks the result.
fn relu_runs(ctx: &Context) {
    let x = [-2.0f32, -1.0, 0.0, 1.0, 2.0, 3.0];
    let (xb, yb, dummy) = (
        ctx.upload("x", &x),
        ctx.storage("y", 24),
        ctx.upload("d", &[0.0]),
    );
    let p = UnaryParams::new(&[1, 1, 1, 6], false, Activation::Relu.code());
    ctx.run(&[unary::launch(ctx, "relu", &p, &xb, &dummy, &yb)])
        .expect("run");
    let y = ctx.read(&yb, 6).expect("read");
    println!("relu {x:?} -> {y:?}");
    assert_eq!(y, [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
}

#[test]
fn envelope_round_trips_and_refuses_truncated_flipped_or_foreign_bytes() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sealed = seal_envelope(&data);
    assert_eq!(
        open_envelope(&sealed).expect("sealed data opens"),
        &data[..]
    );
    assert_eq!(
        open_envelope(&seal_envelope(&[])).expect("empty data opens"),
        &[] as &[u8]
    );
    let mut flipped = sealed.clone();
    flipped[ENVELOPE_LEN + 500] ^= 0x10;
    let mut foreign = sealed.clone();
    foreign[0] = b'X';
    for (what, bytes) in [
        ("truncated", &sealed[..sealed.len() - 1]),
        ("extended", &[&sealed[..], &[0u8][..]].concat()[..]),
        ("bit flip", &flipped[..]),
        ("foreign magic", &foreign[..]),
        ("shorter than the header", &sealed[..10]),
        ("empty file", &[][..]),
    ] {
        let err = open_envelope(bytes).expect_err(what);
        println!("{what}: {err}");
    }
}

#[test]
fn cache_dir_prefers_explicit_then_user_dir_and_ignores_the_environment() {
    let explicit = Path::new("/tmp/explicit-wgcnn-cache");
    assert_eq!(cache_dir(Some(explicit)).as_deref(), Some(explicit));
    let chosen = cache_dir(None);
    println!(
        "default cache dir: {chosen:?}, user cache dir: {:?}",
        user_cache_dir()
    );
    // The library reads no environment variable: WGCNN_CACHE_DIR is the CLI's business.
    assert_eq!(chosen, user_cache_dir().map(|d| d.join("wgcnn")));
}

#[test]
fn cache_file_round_trips_into_a_new_context() {
    let dir = TempDir::new("round-trip");
    let first = open_in(&dir.0, false);
    if !cache_expected(&first) {
        relu_runs(&first);
        return;
    }
    assert!(
        matches!(first.pipeline_cache_status(), CacheStatus::Missing { .. }),
        "{}",
        first.pipeline_cache_status()
    );
    relu_runs(&first);
    let written = first
        .save_pipeline_cache()
        .expect("save")
        .expect("new pipelines to save");
    let path = first
        .pipeline_cache_status()
        .path()
        .expect("a cache file")
        .to_path_buf();
    let on_disk = std::fs::metadata(&path).expect("cache file written").len();
    println!("saved {written} bytes to {}", path.display());
    assert_eq!(on_disk, written as u64);
    assert_eq!(
        first.save_pipeline_cache().expect("second save"),
        None,
        "unchanged data is not rewritten"
    );
    drop(first);

    let second = open_in(&dir.0, false);
    match second.pipeline_cache_status() {
        CacheStatus::Loaded {
            path: p,
            bytes,
            kept,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*bytes + ENVELOPE_LEN, written);
            assert!(
                kept >= bytes,
                "the driver kept the data: {kept} of {bytes} bytes"
            );
        }
        other => panic!("expected the saved cache to load, got: {other}"),
    }
    assert!(second.pipeline_cache_status().is_hit());
    relu_runs(&second);
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    println!("cache dir holds {leftovers:?}");
    assert_eq!(
        leftovers.len(),
        1,
        "only the cache file, no temporary files"
    );
}

#[test]
fn corrupt_or_foreign_cache_files_are_ignored_and_replaced() {
    let dir = TempDir::new("corrupt");
    let probe = open_in(&dir.0, false);
    if !cache_expected(&probe) {
        relu_runs(&probe);
        return;
    }
    // Real cache data to damage in ways our envelope cannot see.
    relu_runs(&probe);
    let real = probe
        .disk_cache
        .as_ref()
        .and_then(|c| c.cache.get_data())
        .expect("cache data");
    let path = cache_file(&dir.0, &probe.info).expect("Vulkan has a cache key");
    drop(probe);
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let mut other_adapter = real.clone();
    other_adapter[20] ^= 0xff; // wgpu's header: vendor id inside the adapter key.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // What each bad file must produce: refused by our envelope, by wgpu's validation, or
    // loaded but not kept (wgpu's silent fallback on a header it cannot read).
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "random bytes",
            garbage.clone(),
            "not a wgcnn pipeline cache",
        ),
        (
            "truncated file",
            seal_envelope(&real)[..40].to_vec(),
            "damaged",
        ),
        ("sealed garbage", seal_envelope(&garbage), "not kept"),
        (
            "another adapter's cache",
            seal_envelope(&other_adapter),
            "wgpu refused it",
        ),
    ];
    for (what, bytes, expected) in cases {
        std::fs::write(&path, &bytes).expect("write cache file");
        let ctx = open_in(&dir.0, false);
        let status = ctx.pipeline_cache_status().clone();
        println!("{what}: {status}");
        assert!(!status.is_hit(), "{what}: {status}");
        match &status {
            CacheStatus::Rejected { reason, .. } => {
                assert!(reason.starts_with(expected), "{what}: {reason}")
            }
            CacheStatus::Loaded { bytes, kept, .. } => {
                assert_eq!(expected, "not kept", "{what}: {status}");
                assert!(kept < bytes, "{what}: {status}");
            }
            other => panic!("{what}: expected the file to be rejected, got: {other}"),
        }
        relu_runs(&ctx);
        drop(ctx);
        let replaced = std::fs::read(&path).expect("cache file");
        assert!(
            open_envelope(&replaced).is_ok(),
            "{what}: the bad file is replaced by a valid one on drop"
        );
        assert!(
            open_in(&dir.0, false).pipeline_cache_status().is_hit(),
            "{what}: the replacement loads"
        );
    }
}

#[test]
fn no_cache_reads_and_writes_nothing() {
    let dir = TempDir::new("no-cache");
    let ctx = open_in(&dir.0, true);
    println!("pipeline cache: {}", ctx.pipeline_cache_status());
    assert_eq!(*ctx.pipeline_cache_status(), CacheStatus::Disabled);
    relu_runs(&ctx);
    assert_eq!(ctx.save_pipeline_cache().expect("save"), None);
    drop(ctx);
    assert!(!dir.0.exists(), "no-cache created {}", dir.0.display());
}

#[test]
fn compile_pipelines_counts_distinct_pipelines_and_runs_no_work() {
    let dir = TempDir::new("compile");
    let ctx = open_in(&dir.0, true);
    let x = [-1.0f32, 2.0, -3.0, 4.0];
    let (xb, dummy) = (ctx.upload("x", &x), ctx.upload("d", &[0.0]));
    let yb = ctx.upload("y", &[9.0; 4]);
    let p = UnaryParams::new(&[1, 1, 1, 4], false, Activation::Relu.code());
    let launches = [
        unary::launch(&ctx, "a", &p, &xb, &dummy, &yb),
        unary::launch(&ctx, "b", &p, &xb, &dummy, &yb),
    ];
    let pipelines = ctx.compile_pipelines(&launches).expect("compile");
    let untouched = ctx.read(&yb, 4).expect("read");
    println!(
        "{} launches, {pipelines} pipeline(s); output after warm-up {untouched:?}",
        launches.len()
    );
    assert_eq!(pipelines, 1);
    assert_eq!(
        untouched, [9.0; 4],
        "the warm-up dispatch must not run the kernel"
    );
    assert_eq!(ctx.compile_pipelines(&[]).expect("nothing to compile"), 0);
    ctx.run(&launches).expect("run");
    assert_eq!(ctx.read(&yb, 4).expect("read"), [0.0, 2.0, 0.0, 4.0]);
}
