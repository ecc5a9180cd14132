//! Soak: many classifications, then many detections, in one process, sampling resident memory
//! (`VmRSS` of /proc/self/status) and wgpu's allocation report to show nothing grows after
//! warm-up. Run through `bench/soak`; not a test (it takes minutes to hours on lavapipe).
//!
//! `soak [CLASSIFICATIONS] [DETECTIONS] [SAMPLES]`: default 10 000, 1 000 and 20 samples per
//! phase. Detection uses `fasterrcnn_mobilenet_v3_large_320_fpn` with the golden fixture's
//! weights (`../shared/fixtures`, or `WGCNN_FIXTURES`), on photos of two sizes; it is skipped
//! when the fixture is missing. Prints one CSV line per sample and the growth after warm-up
//! (from the sample at 10% of the phase to its last sample).

use std::path::PathBuf;
use std::time::Instant;

use wgcnn::wgcnn_io::{Fixture, save_safetensors};
use wgcnn::wgcnn_models;
use wgcnn::{Classifier, ClassifierOptions, Detector, DetectorOptions, Engine, EngineOptions};
use wgcnn::{Error, RgbImage};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// `(allocated, reserved)` bytes from wgpu's allocator, where the backend reports them.
fn gpu_bytes(engine: &Engine) -> Option<(u64, u64)> {
    engine
        .device()
        .generate_allocator_report()
        .map(|r| (r.total_allocated_bytes, r.total_reserved_bytes))
}

/// One sample: run index, resident KiB, and GPU (allocated, reserved) bytes where reported.
type Sample = (usize, u64, Option<(u64, u64)>);

struct Phase {
    name: &'static str,
    samples: Vec<Sample>,
}

impl Phase {
    fn sample(&mut self, engine: &Engine, i: usize, start: Instant) {
        let (rss, gpu) = (rss_kib(), gpu_bytes(engine));
        let (alloc, reserved) = gpu.map_or((String::new(), String::new()), |(a, r)| {
            (a.to_string(), r.to_string())
        });
        println!(
            "{},{i},{rss},{alloc},{reserved},{:.1}",
            self.name,
            start.elapsed().as_secs_f64()
        );
        self.samples.push((i, rss, gpu));
    }

    fn summary(&self, runs: usize) {
        let warm = self
            .samples
            .iter()
            .find(|s| s.0 >= runs / 10)
            .or(self.samples.first());
        let (Some(warm), Some(last)) = (warm, self.samples.last()) else {
            return;
        };
        let pct = |a: u64, b: u64| (b as f64 - a as f64) / a.max(1) as f64 * 100.0;
        println!(
            "# {}: {runs} runs; RSS {} KiB after {} runs -> {} KiB after {}: {:+.2}%",
            self.name,
            warm.1,
            warm.0,
            last.1,
            last.0,
            pct(warm.1, last.1)
        );
        match (warm.2, last.2) {
            (Some(a), Some(b)) => println!(
                "# {}: GPU allocated {} -> {} bytes ({:+.2}%), reserved {} -> {} bytes",
                self.name,
                a.0,
                b.0,
                pct(a.0, b.0),
                a.1,
                b.1
            ),
            _ => println!(
                "# {}: wgpu gives no allocator report on this backend \
                 (generate_allocator_report() returned None)",
                self.name
            ),
        }
    }
}

fn detector(engine: &Engine) -> Result<Option<Detector>, Error> {
    const MODEL: &str = "fasterrcnn_mobilenet_v3_large_320_fpn";
    let fixtures = std::env::var_os("WGCNN_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    let Ok(fx) = Fixture::open(fixtures.join(format!("detect/{MODEL}.safetensors"))) else {
        eprintln!(
            "# no detector fixture under {}: detections skipped",
            fixtures.display()
        );
        return Ok(None);
    };
    let info = wgcnn_models::detect::find_detector(MODEL)?;
    let graph = info.graph(&wgcnn_models::detect::DetectBuildOptions {
        batch: 1,
        height: 120,
        width: 160,
    })?;
    let weights = fx.weights_for(&graph);
    let mut tensors = Vec::new();
    for id in graph.params() {
        let key = graph.tensor(id).name.clone();
        let t = weights
            .tensor(&key)
            .map_err(|_| Error::Internal("fixture weight"))?;
        tensors.push((key, t));
    }
    let path = std::env::temp_dir().join(format!("wgcnn-soak-{}.safetensors", std::process::id()));
    save_safetensors(&path, &tensors, None)?;
    let d = Detector::new(
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
    d.map(Some)
}

fn main() -> Result<(), Error> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (classifications, detections, samples) = (arg(1, 10_000), arg(2, 1_000), arg(3, 20));
    let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets");
    let photos = [
        RgbImage::open(assets.join("chelsea.png"))?,
        RgbImage::open(assets.join("coffee.png"))?,
    ];
    let engine = Engine::new(&EngineOptions::default())?;
    println!("# adapter: {}", engine.adapter_info().name);
    println!("phase,run,rss_kib,gpu_allocated,gpu_reserved,seconds");
    let start = Instant::now();
    let classifier = Classifier::new(&engine, &ClassifierOptions::default())?;
    let every = |runs: usize| (runs / samples.max(1)).max(1);
    let mut phase = Phase {
        name: "classify",
        samples: Vec::new(),
    };
    phase.sample(&engine, 0, start);
    for i in 1..=classifications {
        classifier.classify_batch(std::slice::from_ref(&photos[i % 2]), 5)?;
        if i % every(classifications) == 0 || i == classifications {
            phase.sample(&engine, i, start);
        }
    }
    phase.summary(classifications);
    drop(classifier);
    if detections > 0 {
        if let Some(detector) = detector(&engine)? {
            let mut phase = Phase {
                name: "detect",
                samples: Vec::new(),
            };
            phase.sample(&engine, 0, start);
            for i in 1..=detections {
                detector.detect(&photos[i % 2])?;
                if i % every(detections) == 0 || i == detections {
                    phase.sample(&engine, i, start);
                }
            }
            phase.summary(detections);
        }
    }
    Ok(())
}
