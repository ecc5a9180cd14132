//! Robustness on the GPU: a destroyed device is a typed error of the next call (no panic, no
//! hang) and a new engine works after it; `Engine`, `Plan`, `Classifier` and `Detector` shared by
//! 8 threads give results bit-identical to one thread; the types that promise `Send + Sync`
//! keep it (checked at compile time).
//!
//! The thread tests are sized for CI on lavapipe (well under a minute each); `bench/soak` and
//! the issue 17 note cover the long runs (8 threads x 100).

mod common;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use wgcnn::wgcnn_exec::ExecError;
use wgcnn::wgcnn_graph::{Graph, Tensor};
use wgcnn::wgcnn_io::RuleWeights;
use wgcnn::wgcnn_kernels::KernelError;
use wgcnn::wgcnn_models::{self, BuildOptions};
use wgcnn::{
    Classifier, ClassifierOptions, Detection, Detector, DetectorOptions, Engine, EngineOptions,
    Plan, RgbImage,
};

const THREADS: usize = 8;

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets")
        .join(name)
}

/// LeNet-5 with the fixtures' rule weights bound, at batch 1.
fn lenet5() -> Graph {
    let mut graph = wgcnn_models::build("lenet5", &BuildOptions::square(32, 10)).expect("lenet5");
    let weights = RuleWeights::for_graph(&graph);
    graph.bind(&weights).expect("rule weights bind");
    graph
}

/// A deterministic `[1, 1, 32, 32]` input, different for each `seed`.
fn input(seed: u32) -> Tensor {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let data = (0..32 * 32)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor {
        shape: vec![1, 1, 32, 32],
        data,
    }
}

fn bits(t: &[Tensor]) -> Vec<Vec<u32>> {
    t.iter()
        .map(|t| t.data.iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// Runs `work(thread, run)` for `runs` runs on each of [`THREADS`] threads at once and checks
/// every result equals `want(thread, run)` (computed on one thread beforehand) exactly.
fn hammer<T: PartialEq + std::fmt::Debug>(
    runs: usize,
    work: impl Fn(usize, usize) -> T + Sync,
    want: impl Fn(usize, usize) -> T + Sync,
) {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (work, want) = (&work, &want);
                scope.spawn(move || {
                    for run in 0..runs {
                        let got = work(thread, run);
                        assert!(
                            got == want(thread, run),
                            "thread {thread}, run {run}: {got:?}"
                        );
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a worker thread panicked");
        }
    });
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn engine_plan_classifier_detector_segmenter_and_errors_are_send_and_sync() {
    assert_send_sync::<Engine>();
    assert_send_sync::<Plan>();
    assert_send_sync::<Classifier>();
    assert_send_sync::<Detector>();
    assert_send_sync::<wgcnn::Segmenter>();
    assert_send_sync::<RgbImage>();
    // Errors cross threads (and into anyhow) too.
    assert_send_sync::<wgcnn::Error>();
}

#[test]
fn plan_run_from_8_threads_is_bit_identical_to_one_thread() {
    const RUNS: usize = 50;
    const INPUTS: u32 = 4;
    let plan = common::engine().plan(&lenet5()).expect("plan");
    let want: Vec<_> = (0..INPUTS)
        .map(|i| bits(&plan.run(&[input(i)]).expect("run")))
        .collect();
    // A different input per thread and run: a run that read another thread's input would show.
    let which = |thread: usize, run: usize| (thread + run) as u32 % INPUTS;
    hammer(
        RUNS,
        |thread, run| bits(&plan.run(&[input(which(thread, run))]).expect("run")),
        |thread, run| want[which(thread, run) as usize].clone(),
    );
}

#[test]
fn classifier_from_8_threads_is_bit_identical_to_one_thread() {
    const RUNS: usize = 4;
    let classifier =
        Classifier::new(common::engine(), &ClassifierOptions::default()).expect("classifier");
    let images: Vec<RgbImage> = ["chelsea.png", "coffee.png"]
        .iter()
        .map(|n| RgbImage::open(asset(n)).expect("asset image"))
        .collect();
    let top = |image: &RgbImage| -> Vec<(usize, u32)> {
        let (mut out, _) = classifier
            .classify_batch(std::slice::from_ref(image), 5)
            .expect("classify");
        out.remove(0)
            .into_iter()
            .map(|p| (p.index, p.probability.to_bits()))
            .collect()
    };
    let want: Vec<_> = images.iter().map(top).collect();
    let which = |thread: usize, run: usize| (thread + run) % images.len();
    hammer(
        RUNS,
        |thread, run| top(&images[which(thread, run)]),
        |thread, run| want[which(thread, run)].clone(),
    );
}

/// A small Faster R-CNN (MobileNetV3 320) with the fixtures' weights, written to a temporary
/// safetensors file for `Detector::new`.
fn small_detector(engine: &Engine) -> Detector {
    const MODEL: &str = "fasterrcnn_mobilenet_v3_large_320_fpn";
    let path = common::detector_weights_file(MODEL, "robustness");
    let detector = Detector::new(
        engine,
        &DetectorOptions {
            model: MODEL.into(),
            weights: path.clone(),
            score_threshold: 0.0,
            config: None,
            labels: None,
        },
    );
    let _ = std::fs::remove_file(&path);
    detector.expect("detector")
}

fn pattern(width: usize, height: usize, seed: usize) -> RgbImage {
    RgbImage {
        width,
        height,
        pixels: (0..width * height * 3)
            .map(|v| ((v * 37 + seed * 101) % 251) as u8)
            .collect(),
    }
}

fn detection_bits(d: &[Detection]) -> Vec<(usize, u32, [u32; 4])> {
    d.iter()
        .map(|d| (d.class, d.score.to_bits(), d.bbox.map(f32::to_bits)))
        .collect()
}

#[test]
fn detector_from_8_threads_is_bit_identical_to_one_thread() {
    const RUNS: usize = 2;
    let detector = small_detector(common::engine());
    // Two photo sizes: threads share fronts and network plans and race for the same ones.
    let images = [pattern(160, 120, 1), pattern(120, 160, 2)];
    let detect = |image: &RgbImage| detection_bits(&detector.detect(image).expect("detect"));
    let want: Vec<_> = images.iter().map(detect).collect();
    assert!(!want[0].is_empty(), "score threshold 0 keeps detections");
    let which = |thread: usize, run: usize| (thread + run) % images.len();
    hammer(
        RUNS,
        |thread, run| detect(&images[which(thread, run)]),
        |thread, run| want[which(thread, run)].clone(),
    );
}

#[test]
fn destroyed_device_is_a_typed_error_not_a_panic_or_hang_and_a_new_engine_works() {
    let graph = lenet5();
    let engine = Engine::new(&EngineOptions::default()).expect("engine");
    let plan = engine.plan(&graph).expect("plan");
    let want = bits(&plan.run(&[input(0)]).expect("run before the loss"));
    engine.device().destroy();
    // Run on another thread so a hang fails the test instead of stalling CI.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = plan.run(&[input(0)]);
        let _ = tx.send(result.map(|t| bits(&t)));
    });
    let result = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a run on a destroyed device returns within 60 s (and does not panic)");
    let err = result.expect_err("a run on a destroyed device is an error");
    println!("run after destroy: {err}");
    assert!(
        matches!(
            err,
            ExecError::Kernel(
                KernelError::DeviceLost(_) | KernelError::Gpu(_) | KernelError::Map(_)
            )
        ),
        "a typed GPU error, got {err:?}"
    );
    // Planning on the dead engine is an error too, not a panic.
    let again = engine
        .plan(&graph)
        .map(|_| ())
        .expect_err("plan on a destroyed device");
    println!("plan after destroy: {again}");
    // A new engine is independent of the lost device.
    let fresh = Engine::new(&EngineOptions::default()).expect("a new engine after the loss");
    let plan = fresh.plan(&graph).expect("plan on the new engine");
    assert_eq!(
        bits(&plan.run(&[input(0)]).expect("run on the new engine")),
        want
    );
}
