//! `wgcnn segment`: the class of every pixel with a torchvision FCN / DeepLabV3 / LR-ASPP
//! checkpoint, on the GPU.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde_json::json;
use wgcnn::{Engine, RgbImage, Segmentation, Segmenter, SegmenterOptions};

use crate::progress::{self, Progress};

/// Where torchvision's COCO-with-VOC-labels checkpoints come from.
const CHECKPOINTS: &[(&str, &str)] = &[
    (
        "fcn_resnet50",
        "https://download.pytorch.org/models/fcn_resnet50_coco-1167a1af.pth",
    ),
    (
        "fcn_resnet101",
        "https://download.pytorch.org/models/fcn_resnet101_coco-7ecb50ca.pth",
    ),
    (
        "deeplabv3_resnet50",
        "https://download.pytorch.org/models/deeplabv3_resnet50_coco-cd0a2569.pth",
    ),
    (
        "deeplabv3_resnet101",
        "https://download.pytorch.org/models/deeplabv3_resnet101_coco-586e9e4e.pth",
    ),
    (
        "deeplabv3_mobilenet_v3_large",
        "https://download.pytorch.org/models/deeplabv3_mobilenet_v3_large-fc3c493d.pth",
    ),
    (
        "lraspp_mobilenet_v3_large",
        "https://download.pytorch.org/models/lraspp_mobilenet_v3_large-d234d4ea.pth",
    ),
];

#[derive(Args)]
pub struct SegmentArgs {
    /// Image files (JPEG, PNG, WebP, BMP, GIF) or directories of them.
    #[arg(required = true, value_name = "IMAGE|DIR")]
    inputs: Vec<PathBuf>,
    /// The segmenter: fcn_resnet50, fcn_resnet101, deeplabv3_resnet50, deeplabv3_resnet101,
    /// deeplabv3_mobilenet_v3_large, lraspp_mobilenet_v3_large.
    #[arg(long, short, default_value = "deeplabv3_resnet50", value_name = "NAME")]
    model: String,
    /// torchvision checkpoint (.pth as downloaded, or .safetensors); its aux_classifier keys are
    /// accepted and not run unless --aux. Run without it to see where the checkpoints come from.
    #[arg(long, short, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Write the photo with the classes painted over it and a legend (a directory when several
    /// images are given).
    #[arg(long, short, value_name = "FILE|DIR")]
    output: Option<PathBuf>,
    /// Write the class of each pixel as an 8-bit palette PNG at the photo's size (value = class
    /// index, VOC colours; a directory when several images are given).
    #[arg(long, value_name = "FILE|DIR")]
    mask: Option<PathBuf>,
    /// Resize so the shorter side is this (torchvision's 520 by default).
    #[arg(long, value_name = "N")]
    size: Option<usize>,
    /// Opacity of the class colours in --output.
    #[arg(long, default_value_t = 0.5, value_name = "A")]
    alpha: f32,
    /// One JSON object per image on stdout: {"image", "model", "size": [H, W],
    /// "classes": [{"class", "label", "fraction"}]} for the classes present, largest first
    /// (with --aux also "aux_classes", the auxiliary head's).
    #[arg(long)]
    json: bool,
    /// Also run the checkpoint's auxiliary FCN head (on layer3 / block 4; all models but
    /// LR-ASPP) and report its classes beside the main head's.
    #[arg(long)]
    aux: bool,
    /// How weights and activations are stored on the GPU: f32, or f16 (half the memory,
    /// computed in f32; needs the adapter's shader-f16, see `wgcnn info`, and is refused
    /// without it).
    #[arg(long, default_value = "f32", value_name = "f32|f16")]
    precision: wgcnn::Precision,
}

pub fn run(args: &SegmentArgs, adapter: Option<&str>) -> Result<()> {
    let weights = args.weights.clone().ok_or_else(|| {
        crate::inputs::no_weights("segment", "COCO-with-VOC-labels", &args.model, CHECKPOINTS)
    })?;
    let files = crate::inputs::collect(&args.inputs)?;
    if files.is_empty() {
        bail!("no images to segment");
    }
    let load_started = Instant::now();
    let engine = Engine::new(&crate::engine_options(adapter))?;
    let options = SegmenterOptions {
        resize: args.size,
        aux: args.aux,
        precision: args.precision,
        ..SegmenterOptions::new(&args.model, weights)
    };
    let segmenter = Segmenter::new(&engine, &options)?;
    let load_time = load_started.elapsed();
    tracing::info!(
        model = segmenter.name(),
        load_ms = crate::logging::ms(load_time),
        "segmenter ready"
    );
    // A directory writes into a directory even when it holds a single image.
    let many = files.len() > 1 || args.inputs.iter().any(|p| p.is_dir());
    for dir in [&args.output, &args.mask].into_iter().flatten() {
        if many {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating output directory {}", dir.display()))?;
        }
    }
    let target = |dir: &Path, path: &Path, suffix: &str| {
        if many {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            dir.join(format!("{stem}.{suffix}.png"))
        } else {
            dir.to_path_buf()
        }
    };
    let mut failed = 0;
    let run_started = Instant::now();
    let mut bar = Progress::new("segment", "images", files.len() as u64, 2);
    for path in &files {
        let started = Instant::now();
        let result = segment_one(&segmenter, path).and_then(|(img, seg)| {
            progress::suspend(|| print_classes(path, &segmenter, &seg, args.json));
            if let Some(mask) = &args.mask {
                let to = target(mask, path, "mask");
                std::fs::write(&to, seg.palette_png()?)
                    .with_context(|| format!("writing {}", to.display()))?;
                if !args.json {
                    progress::note(&format!("  wrote {}", to.display()));
                }
            }
            if let Some(out) = &args.output {
                let to = target(out, path, "segment");
                let mut canvas = img;
                wgcnn::draw_segmentation(&mut canvas, &seg, segmenter.labels(), args.alpha)?;
                canvas.save(&to)?;
                if !args.json {
                    progress::note(&format!("  wrote {}", to.display()));
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            failed += 1;
            progress::error(&format!("error: {}: {e:#}", path.display()));
        } else if !args.json {
            progress::note(&format!(
                "  ({:.0} ms)",
                started.elapsed().as_secs_f64() * 1e3
            ));
        }
        bar.inc(1, None);
    }
    drop(bar);
    if files.len() > 1 {
        let secs = run_started.elapsed().as_secs_f64();
        let ok = files.len() - failed;
        progress::note(&format!(
            "{ok} of {} images in {secs:.2} s ({:.2} images/s); model load {:.2} s",
            files.len(),
            ok as f64 / secs.max(1e-9),
            load_time.as_secs_f64()
        ));
    }
    if failed > 0 {
        bail!("{failed} of {} images failed", files.len());
    }
    Ok(())
}

/// Decodes and segments one image: 16-bit and float images at their network size at full
/// precision, everything else through the 8-bit upload.
fn segment_one(segmenter: &Segmenter, path: &Path) -> Result<(RgbImage, Segmentation)> {
    let started = Instant::now();
    let (img, precise) = RgbImage::open_precise(path)?;
    let decoded = started.elapsed();
    let seg = match &precise {
        Some(t) if segmenter.runs_at_full_size(img.width, img.height) => {
            segmenter.segment_tensor(t)?
        }
        _ => {
            let (seg, t) = segmenter.segment_timed(&img)?;
            tracing::debug!(
                plan_ms = crate::logging::ms(t.plan),
                upload_ms = crate::logging::ms(t.upload),
                gpu_ms = crate::logging::ms(t.gpu),
                "segmenter stages (plan: only for a new image size)"
            );
            seg
        }
    };
    tracing::debug!(
        image = %path.display(),
        network = ?seg.network_size,
        decode_ms = crate::logging::ms(decoded),
        segment_ms = crate::logging::ms(started.elapsed() - decoded),
        "segmented (upload, preprocess, network, class map, readback)"
    );
    Ok((img, seg))
}

fn print_classes(path: &Path, segmenter: &Segmenter, seg: &Segmentation, as_json: bool) {
    let present = seg.present(segmenter.labels());
    let aux = seg.aux_present(segmenter.labels());
    if as_json {
        let list = |shares: &[wgcnn::ClassShare]| -> Vec<serde_json::Value> {
            shares
                .iter()
                .map(|c| json!({"class": c.class, "label": c.label, "fraction": c.fraction}))
                .collect()
        };
        let mut v = json!({"image": path.display().to_string(), "model": segmenter.name(),
                           "size": [seg.height, seg.width], "classes": list(&present)});
        if let Some(aux) = &aux {
            v["aux_classes"] = list(aux).into();
        }
        println!("{v}");
    } else {
        println!("{}", path.display());
        for c in &present {
            println!("  {:5.1}%  {}", c.fraction * 100.0, c.label);
        }
        if let Some(aux) = &aux {
            println!("  auxiliary head:");
            for c in aux {
                println!("  {:5.1}%  {}", c.fraction * 100.0, c.label);
            }
        }
    }
}
