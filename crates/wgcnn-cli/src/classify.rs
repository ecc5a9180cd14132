//! `wgcnn classify`: top-k ImageNet (or custom) labels for images, batched on the GPU.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::progress::{self, Progress};
use clap::{Args, ValueEnum};
use serde_json::json;
use wgcnn::{Classifier, ClassifierOptions, Engine, Filter, RgbImage, Transform};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Interp {
    Bilinear,
    Bicubic,
}

#[derive(Args)]
pub struct ClassifyArgs {
    /// Image files (JPEG, PNG, WebP, BMP, GIF) or directories of them.
    #[arg(required = true, value_name = "IMAGE|DIR")]
    inputs: Vec<PathBuf>,
    /// A registered model (`wgcnn models`) or an ONNX file. Default: tf_efficientnet_lite0 with
    /// its bundled ImageNet weights.
    #[arg(long, short, value_name = "NAME|FILE.onnx")]
    model: Option<String>,
    /// Checkpoint for a registered model: .safetensors or PyTorch .pth (torchvision/timm keys).
    #[arg(long, short, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// How many classes to print per image.
    #[arg(long, short = 'k', default_value_t = 5, value_name = "K")]
    top: usize,
    /// One JSON object per image on stdout: {"image", "model", "top": [{"index", "label", "probability"}]}.
    #[arg(long)]
    json: bool,
    /// Images per GPU submission.
    #[arg(long, default_value_t = 1, value_name = "N")]
    batch: usize,
    /// Network input size (center crop side). Default: the model's own.
    #[arg(long, value_name = "N")]
    size: Option<usize>,
    /// Shorter side after resizing, before the crop. Default: the model's own, or size * 256 / 224.
    #[arg(long, value_name = "N")]
    resize: Option<usize>,
    /// Per-channel mean subtracted after scaling, e.g. 0.485,0.456,0.406.
    #[arg(long, value_name = "R,G,B", value_parser = parse_triple)]
    mean: Option<[f32; 3]>,
    /// Per-channel divisor after the mean, e.g. 0.229,0.224,0.225.
    #[arg(long, value_name = "R,G,B", value_parser = parse_triple)]
    std: Option<[f32; 3]>,
    /// Pixel scale applied before mean/std (default 1/255, i.e. pixels in [0, 1]; 1 keeps [0, 255]).
    #[arg(long, value_name = "F")]
    scale: Option<f32>,
    /// Resampling filter of the resize.
    #[arg(long, value_enum)]
    interpolation: Option<Interp>,
    /// Class names, one per line (default: ImageNet's for 1000-class models).
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// How weights and activations are stored on the GPU: f32, or f16 (half the memory and
    /// traffic, computed in f32; probabilities move by about 1e-3). f16 needs the adapter's
    /// shader-f16 (`wgcnn info`) and is refused where it is missing.
    #[arg(long, default_value = "f32", value_name = "f32|f16")]
    precision: wgcnn::Precision,
}

fn parse_triple(s: &str) -> Result<[f32; 3], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().map_err(|e| format!("{p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match v.as_slice() {
        [x] => Ok([*x; 3]),
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(format!(
            "expected one or three comma-separated numbers, got {s:?}"
        )),
    }
}

fn build(args: &ClassifyArgs, engine: &Engine) -> Result<Classifier> {
    let labels = match &args.labels {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading labels {}", f.display()))?
                .lines()
                .map(str::to_string)
                .collect(),
        ),
        None => None,
    };
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| wgcnn::DEFAULT_MODEL.to_string());
    let is_onnx = model.to_ascii_lowercase().ends_with(".onnx");
    let mut options = ClassifierOptions {
        model: model.clone(),
        weights: args.weights.clone(),
        batch: args.batch.max(1),
        transform: None,
        labels,
        precision: args.precision,
    };
    // Start from the model's own preprocessing and apply the flags on top.
    let base = if is_onnx {
        if args.weights.is_some() {
            bail!("--weights applies to registered models; an ONNX file carries its own weights");
        }
        let probe = wgcnn::wgcnn_io::onnx::load_onnx(
            &model,
            &wgcnn::wgcnn_io::onnx::OnnxOptions { batch: 1 },
        )?;
        let shape = probe
            .graph
            .inputs
            .first()
            .map(|&i| probe.graph.shape(i).to_vec())
            .unwrap_or_default();
        let (c, s) = match shape.as_slice() {
            [_, c, h, _] => (*c, *h),
            _ => bail!("{model}: input {shape:?} is not an NCHW image"),
        };
        wgcnn::onnx_default_transform(c, args.size.unwrap_or(s))
    } else {
        wgcnn::model_transform(wgcnn::wgcnn_models::find(&model)?)
    };
    let any = args.size.is_some()
        || args.resize.is_some()
        || args.mean.is_some()
        || args.std.is_some()
        || args.scale.is_some()
        || args.interpolation.is_some();
    if any {
        options.transform = Some(override_transform(base, args));
    } else if is_onnx {
        options.transform = Some(base);
    }
    let classifier = if is_onnx {
        Classifier::from_onnx(engine, &model, &options)?
    } else {
        Classifier::new(engine, &options)?
    };
    Ok(classifier)
}

fn override_transform(mut t: Transform, args: &ClassifyArgs) -> Transform {
    if let Some(s) = args.size {
        t.crop = s;
        t.resize = args.resize.unwrap_or(s * 256 / 224);
    }
    if let Some(r) = args.resize {
        t.resize = r;
    }
    if let Some(m) = args.mean {
        t.mean = m;
    }
    if let Some(s) = args.std {
        t.std = s;
    }
    // The kernel computes (v / 255 - mean) / std; a scale s means (v * s - mean) / std.
    if let Some(s) = args.scale {
        let k = 255.0 * s;
        t.mean = t.mean.map(|m| m / k);
        t.std = t.std.map(|d| d / k);
    }
    match args.interpolation {
        Some(Interp::Bilinear) => t.filter = Filter::Bilinear,
        Some(Interp::Bicubic) => t.filter = Filter::Bicubic,
        None => {}
    }
    t
}

pub fn run(args: &ClassifyArgs, adapter: Option<&str>) -> Result<()> {
    let files = crate::inputs::collect(&args.inputs)?;
    if files.is_empty() {
        bail!("no images to classify");
    }
    let started = Instant::now();
    let engine = Engine::new(&crate::engine_options(adapter))?;
    let classifier = build(args, &engine)?;
    let load_time = started.elapsed();
    tracing::info!(
        model = classifier.name(),
        batch = classifier.batch(),
        load_ms = crate::logging::ms(load_time),
        "classifier ready"
    );
    let mut bar = Progress::new("classify", "images", files.len() as u64, 2);
    let (mut failed, mut done) = (0usize, 0usize);
    let (mut decode, mut upload, mut gpu) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let run_started = Instant::now();
    let stdout = std::io::stdout();
    for chunk in files.chunks(classifier.batch()) {
        let t = Instant::now();
        let mut images = Vec::with_capacity(chunk.len());
        let mut paths = Vec::with_capacity(chunk.len());
        for path in chunk {
            match RgbImage::open(path) {
                Ok(img) => {
                    images.push(img);
                    paths.push(path);
                }
                Err(e) => {
                    failed += 1;
                    progress::error(&format!("error: {e}"));
                }
            }
        }
        let decoded = t.elapsed();
        decode += decoded;
        if !images.is_empty() {
            let (results, timings) = classifier.classify_batch(&images, args.top)?;
            tracing::debug!(
                images = images.len(),
                decode_ms = crate::logging::ms(decoded),
                upload_ms = crate::logging::ms(timings.upload),
                gpu_ms = crate::logging::ms(timings.gpu),
                "batch classified (gpu: preprocess, network, softmax, readback)"
            );
            upload += timings.upload;
            gpu += timings.gpu;
            // Results print above the bar: on a terminal stdout and stderr share the screen.
            progress::suspend(|| -> Result<()> {
                let mut out = stdout.lock();
                for (path, top) in paths.iter().zip(results) {
                    print_result(&mut out, path, classifier.name(), &top, args.json)?;
                }
                out.flush()?;
                Ok(())
            })?;
        }
        done += chunk.len();
        bar.inc(chunk.len() as u64, None);
    }
    drop(bar);
    let ok = done - failed;
    if files.len() > 1 {
        let secs = run_started.elapsed().as_secs_f64();
        let per = |d: Duration| {
            if ok == 0 {
                0.0
            } else {
                d.as_secs_f64() * 1e3 / ok as f64
            }
        };
        progress::note(&format!(
            "{ok} of {} images classified in {secs:.2} s ({:.1} images/s, batch {}); per image: decode {:.1} ms, upload {:.1} ms, GPU {:.1} ms; model load {:.2} s",
            files.len(),
            ok as f64 / secs.max(1e-9),
            classifier.batch(),
            per(decode),
            per(upload),
            per(gpu),
            load_time.as_secs_f64()
        ));
    }
    if failed > 0 {
        bail!("{failed} of {} images could not be read", files.len());
    }
    Ok(())
}

fn print_result(
    out: &mut impl Write,
    path: &Path,
    model: &str,
    top: &[wgcnn::Prediction],
    as_json: bool,
) -> Result<()> {
    if as_json {
        let top: Vec<_> = top
            .iter()
            .map(|p| json!({"index": p.index, "label": p.label, "probability": p.probability}))
            .collect();
        writeln!(
            out,
            "{}",
            json!({"image": path.display().to_string(), "model": model, "top": top})
        )?;
    } else {
        writeln!(out, "{}", path.display())?;
        for p in top {
            writeln!(
                out,
                "  {:6.2}%  {} ({})",
                p.probability * 100.0,
                p.label,
                p.index
            )?;
        }
    }
    Ok(())
}
