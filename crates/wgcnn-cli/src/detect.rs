//! `wgcnn detect`: objects (and Mask R-CNN's instance masks) in images with a torchvision
//! Faster or Mask R-CNN checkpoint, on the GPU; faces with the bundled MTCNN (the default;
//! `faces.rs`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde_json::json;
use wgcnn::{Detection, Detector, DetectorOptions, Engine, RgbImage};

use crate::progress::{self, Progress};

/// Where torchvision's COCO checkpoints come from.
const CHECKPOINTS: &[(&str, &str)] = &[
    (
        "fasterrcnn_resnet50_fpn",
        "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
    ),
    (
        "fasterrcnn_resnet50_fpn_v2",
        "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",
    ),
    (
        "fasterrcnn_mobilenet_v3_large_fpn",
        "https://download.pytorch.org/models/fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
    ),
    (
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "https://download.pytorch.org/models/fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth",
    ),
    (
        "maskrcnn_resnet50_fpn",
        "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
    ),
    (
        "maskrcnn_resnet50_fpn_v2",
        "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
    ),
    (
        "keypointrcnn_resnet50_fpn",
        "https://download.pytorch.org/models/keypointrcnn_resnet50_fpn_coco-fc266e95.pth",
    ),
];

#[derive(Args)]
pub struct DetectArgs {
    /// Image files (JPEG, PNG, WebP, BMP, GIF) or directories of them.
    #[arg(required = true, value_name = "IMAGE|DIR")]
    inputs: Vec<PathBuf>,
    /// The detector: mtcnn (faces with five landmarks; bundled, the default),
    /// fasterrcnn_resnet50_fpn, fasterrcnn_resnet50_fpn_v2,
    /// fasterrcnn_mobilenet_v3_large_fpn, fasterrcnn_mobilenet_v3_large_320_fpn,
    /// maskrcnn_resnet50_fpn, maskrcnn_resnet50_fpn_v2 (instance masks too),
    /// keypointrcnn_resnet50_fpn (people with 17 COCO keypoints).
    #[arg(long, short, default_value = wgcnn::FACE_MODEL, value_name = "NAME")]
    model: String,
    /// torchvision checkpoint (.pth as downloaded, or .safetensors). Run without it to see where
    /// the COCO checkpoints come from. mtcnn: optional, another file with `pnet.*`, `rnet.*`,
    /// `onet.*` keys instead of the bundled weights.
    #[arg(long, short, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Keep detections scoring at least this (default 0.5; mtcnn: above 0.7, its O-Net
    /// threshold).
    #[arg(long, value_name = "T")]
    score_threshold: Option<f32>,
    /// mtcnn: the smallest face side in pixels (facenet-pytorch's min_face_size).
    #[arg(long, default_value_t = 20.0, value_name = "PX")]
    min_face_size: f32,
    /// mtcnn: write each face cropped and resized to --crop-size pixels (facenet-pytorch's
    /// extract_face) into this directory, as NAME.faceK.png.
    #[arg(long, value_name = "DIR")]
    crops: Option<PathBuf>,
    /// mtcnn: side of the --crops images (160, FaceNet's input).
    #[arg(long, default_value_t = 160, value_name = "PX")]
    crop_size: usize,
    /// mtcnn: margin around each --crops face, in pixels of the crop (extract_face's margin).
    #[arg(long, default_value_t = 0.0, value_name = "PX")]
    margin: f32,
    /// Write the image with boxes and labels (and instance masks) drawn (a directory when
    /// several images are given).
    #[arg(long, short, value_name = "FILE|DIR")]
    output: Option<PathBuf>,
    /// Resize so the shorter side is this (torchvision's `min_size`; default: the model's own,
    /// 800, or 320 for the 320 variant).
    #[arg(long, value_name = "N")]
    min_size: Option<usize>,
    /// Cap the longer side at this (torchvision's `max_size`; default: the model's own).
    #[arg(long, value_name = "N")]
    max_size: Option<usize>,
    /// One JSON object per image on stdout:
    /// {"image", "model", "detections": [{"label", "class", "score", "box": [x1, y1, x2, y2]}]};
    /// mtcnn: {"label": "face", "score", "box", "landmarks": [[x, y] x 5]} (eyes, nose, mouth
    /// corners);
    /// Mask R-CNN models add "mask": {"size": [H, W], "counts": COCO RLE} and "area";
    /// Keypoint R-CNN adds "keypoints": [[x, y, score] x 17] in COCO's order (nose, left_eye,
    /// ..., right_ankle; score: the heatmap logit).
    #[arg(long)]
    json: bool,
}

pub fn run(args: &DetectArgs, adapter: Option<&str>) -> Result<()> {
    if args.model == wgcnn::FACE_MODEL {
        let faces = crate::faces::FaceArgs {
            inputs: &args.inputs,
            weights: args.weights.as_deref(),
            score_threshold: args.score_threshold,
            min_face_size: args.min_face_size,
            output: args.output.as_deref(),
            crops: args.crops.as_deref(),
            crop_size: args.crop_size,
            margin: args.margin,
            json: args.json,
        };
        return crate::faces::run(&faces, adapter);
    }
    let weights = args
        .weights
        .clone()
        .ok_or_else(|| crate::inputs::no_weights("detect", "COCO", &args.model, CHECKPOINTS))?;
    let files = crate::inputs::collect(&args.inputs)?;
    if files.is_empty() {
        bail!("no images to detect on");
    }
    let load_started = Instant::now();
    let engine = Engine::new(&crate::engine_options(adapter))?;
    let info = wgcnn::wgcnn_models::detect::find_detector(&args.model)?;
    let config = (args.min_size.is_some() || args.max_size.is_some()).then(|| {
        info.config.with_sizes(
            args.min_size.unwrap_or(info.config.min_size),
            args.max_size.unwrap_or(info.config.max_size),
        )
    });
    let options = DetectorOptions {
        model: args.model.clone(),
        weights,
        score_threshold: args.score_threshold.unwrap_or(0.5),
        config,
        labels: None,
    };
    let detector = Detector::new(&engine, &options)?;
    let load_time = load_started.elapsed();
    tracing::info!(
        model = detector.name(),
        load_ms = crate::logging::ms(load_time),
        "detector ready"
    );
    // A directory writes into a directory even when it holds a single image.
    let many = files.len() > 1 || args.inputs.iter().any(|p| p.is_dir());
    if let (Some(out), true) = (&args.output, many) {
        std::fs::create_dir_all(out)
            .with_context(|| format!("creating output directory {}", out.display()))?;
    }
    let mut failed = 0;
    let mut found = 0;
    let run_started = Instant::now();
    let mut bar = Progress::new("detect", "images", files.len() as u64, 2);
    for path in &files {
        let started = Instant::now();
        // 16-bit and float images run at full precision; 8-bit ones through the pixel upload.
        let result = RgbImage::open_precise(path)
            .map_err(anyhow::Error::from)
            .and_then(|(img, precise)| {
                let decoded = started.elapsed();
                let dets = match &precise {
                    Some(t) if detector.runs_at_full_size(img.width, img.height) => {
                        detector.detect_tensor(t)?
                    }
                    _ => {
                        let (dets, t) = detector.detect_timed(&img)?;
                        tracing::debug!(
                            plan_ms = crate::logging::ms(t.plan),
                            upload_ms = crate::logging::ms(t.upload),
                            gpu_ms = crate::logging::ms(t.gpu),
                            "detector stages (plan: only for a new image size)"
                        );
                        dets
                    }
                };
                tracing::debug!(
                    image = %path.display(),
                    decode_ms = crate::logging::ms(decoded),
                    detect_ms = crate::logging::ms(started.elapsed() - decoded),
                    "detected (detect: upload, preprocess, network, readback)"
                );
                Ok((img, dets))
            });
        let (img, dets) = match result {
            Ok(v) => v,
            Err(e) => {
                failed += 1;
                progress::error(&format!("error: {e:#}"));
                bar.inc(1, None);
                continue;
            }
        };
        found += dets.len();
        progress::suspend(|| print_detections(path, detector.name(), &dets, args.json));
        if !args.json {
            progress::note(&format!(
                "  ({} detections in {:.0} ms)",
                dets.len(),
                started.elapsed().as_secs_f64() * 1e3
            ));
        }
        if let Some(out) = &args.output {
            let target = if many {
                out.join(annotated_name(path))
            } else {
                out.clone()
            };
            let mut canvas = img;
            draw_masks(&mut canvas, &dets)?;
            wgcnn::draw::draw_detections(&mut canvas, &dets);
            draw_skeletons(&mut canvas, &dets);
            canvas.save(&target)?;
            if !args.json {
                progress::note(&format!("  wrote {}", target.display()));
            }
        }
        bar.inc(1, None);
    }
    drop(bar);
    if files.len() > 1 {
        let secs = run_started.elapsed().as_secs_f64();
        let ok = files.len() - failed;
        progress::note(&format!(
            "{ok} of {} images: {found} detections in {secs:.2} s ({:.2} images/s); model load {:.2} s",
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

/// Each detection's mask as a translucent fill in its class colour with an outline, lowest
/// score first, so the boxes and labels drawn after stay on top.
fn draw_masks(canvas: &mut RgbImage, dets: &[Detection]) -> Result<()> {
    let style = wgcnn::draw::Style::for_image(canvas.width, canvas.height);
    let mut order: Vec<&Detection> = dets.iter().collect();
    order.sort_by(|a, b| a.score.total_cmp(&b.score));
    for d in order {
        if let Some(mask) = &d.mask {
            let pixels = mask.pixels()?;
            let color = wgcnn::class_color(d.class);
            wgcnn::draw::blend_mask(canvas, &pixels, color, 0.45, &style)?;
        }
    }
    Ok(())
}

/// Each detection's keypoints with a positive score (heatmap logit) as dots joined by COCO's
/// skeleton, in its class colour.
fn draw_skeletons(canvas: &mut RgbImage, dets: &[Detection]) {
    let style = wgcnn::draw::Style::for_image(canvas.width, canvas.height);
    for d in dets {
        if let Some(k) = &d.keypoints {
            let points: Vec<Option<[f32; 2]>> = k
                .iter()
                .map(|&[x, y, s]| (s > 0.0).then_some([x, y]))
                .collect();
            let color = wgcnn::class_color(d.class);
            let edges = &wgcnn::COCO_PERSON_SKELETON;
            wgcnn::draw::draw_keypoints(canvas, &points, edges, color, &style);
        }
    }
}

fn annotated_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    format!("{stem}.detections.png")
}

fn print_detections(path: &Path, model: &str, dets: &[Detection], as_json: bool) {
    if as_json {
        let list: Vec<_> = dets
            .iter()
            .map(|d| {
                let mut v =
                    json!({"label": d.label, "class": d.class, "score": d.score, "box": d.bbox});
                // COCO's result format: compressed RLE (pycocotools reads it) and its area.
                if let Some(m) = &d.mask {
                    v["mask"] = json!({"size": m.rle.size, "counts": m.rle.counts});
                    v["area"] = json!(m.area);
                }
                if let Some(k) = &d.keypoints {
                    v["keypoints"] = json!(k);
                }
                v
            })
            .collect();
        println!(
            "{}",
            json!({"image": path.display().to_string(), "model": model, "detections": list})
        );
    } else {
        println!("{}", path.display());
        if dets.is_empty() {
            println!("  no detections");
        }
        for d in dets {
            let [x1, y1, x2, y2] = d.bbox;
            println!(
                "  {:5.1}%  {:<16} [{x1:.1}, {y1:.1}, {x2:.1}, {y2:.1}]",
                d.score * 100.0,
                d.label
            );
            if let Some(k) = &d.keypoints {
                let scored = k.iter().filter(|p| p[2] > 0.0).count();
                println!(
                    "         {} keypoints, {scored} with a positive score",
                    k.len()
                );
            }
        }
    }
}
