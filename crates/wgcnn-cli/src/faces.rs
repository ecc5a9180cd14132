//! `wgcnn detect` with the bundled MTCNN (`--model mtcnn`, the default): faces with five
//! landmarks, optional annotated images and 160x160 face crops (facenet-pytorch's
//! `extract_face`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use wgcnn::{Engine, FACE_MODEL, Face, FaceDetector, FaceDetectorOptions, RgbImage};

use crate::progress::{self, Progress};

/// The face-detection options of `wgcnn detect` (see `DetectArgs`).
pub struct FaceArgs<'a> {
    pub inputs: &'a [PathBuf],
    pub weights: Option<&'a Path>,
    pub score_threshold: Option<f32>,
    pub min_face_size: f32,
    pub output: Option<&'a Path>,
    pub crops: Option<&'a Path>,
    pub crop_size: usize,
    pub margin: f32,
    pub json: bool,
}

pub fn run(args: &FaceArgs<'_>, adapter: Option<&str>) -> Result<()> {
    let files = crate::inputs::collect(args.inputs)?;
    if files.is_empty() {
        bail!("no images to detect on");
    }
    if !(args.min_face_size.is_finite() && args.min_face_size >= 1.0) {
        bail!(
            "--min-face-size must be at least 1 pixel, got {}",
            args.min_face_size
        );
    }
    let load_started = Instant::now();
    let engine = Engine::new(&crate::engine_options(adapter))?;
    let mut options = FaceDetectorOptions {
        weights: args.weights.map(Path::to_path_buf),
        min_face_size: args.min_face_size,
        ..FaceDetectorOptions::default()
    };
    if let Some(t) = args.score_threshold {
        options.thresholds[2] = t;
    }
    let detector = FaceDetector::new(&engine, &options)?;
    let load_time = load_started.elapsed();
    tracing::info!(
        load_ms = crate::logging::ms(load_time),
        "face detector ready"
    );
    let many = files.len() > 1 || args.inputs.iter().any(|p| p.is_dir());
    if let (Some(out), true) = (args.output, many) {
        std::fs::create_dir_all(out)
            .with_context(|| format!("creating output directory {}", out.display()))?;
    }
    if let Some(dir) = args.crops {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating crops directory {}", dir.display()))?;
    }
    let mut tally = Tally::default();
    let run_started = Instant::now();
    let mut bar = Progress::new("detect", "images", files.len() as u64, 2);
    // Consecutive photos of one size are decoded ahead and detected in one submission; a
    // photo of another size, a full batch or a decode error sends the pending ones first, so
    // the output keeps the files' order.
    let mut pending: Vec<(&Path, RgbImage)> = Vec::new();
    for path in &files {
        let decoded = RgbImage::open(path);
        let fits = |img: &RgbImage| {
            pending.first().is_none_or(|(_, p)| {
                let bytes = (img.width * img.height) as u64 * 4 * (pending.len() as u64 + 1);
                (p.width, p.height) == (img.width, img.height)
                    && pending.len() < FaceDetector::MAX_BATCH_PHOTOS
                    && bytes <= FaceDetector::BATCH_UPLOAD_BYTES
            })
        };
        if !decoded.as_ref().is_ok_and(fits) {
            detect_pending(&detector, args, many, &mut pending, &mut tally, &mut bar)?;
        }
        match decoded {
            Ok(img) => pending.push((path, img)),
            Err(e) => {
                tally.failed += 1;
                progress::error(&format!("error: {:#}", anyhow::Error::from(e)));
                bar.inc(1, None);
            }
        }
    }
    detect_pending(&detector, args, many, &mut pending, &mut tally, &mut bar)?;
    drop(bar);
    let Tally { failed, found } = tally;
    if files.len() > 1 {
        let secs = run_started.elapsed().as_secs_f64();
        let ok = files.len() - failed;
        progress::note(&format!(
            "{ok} of {} images: {} in {secs:.2} s ({:.2} images/s, {:.2} faces/s); model load {:.2} s",
            files.len(),
            faces_count(found),
            ok as f64 / secs.max(1e-9),
            found as f64 / secs.max(1e-9),
            load_time.as_secs_f64()
        ));
    }
    if failed > 0 {
        bail!("{failed} of {} images failed", files.len());
    }
    Ok(())
}

/// Photos that failed and faces found so far.
#[derive(Default)]
struct Tally {
    failed: usize,
    found: usize,
}

/// "1 face", "2 faces".
fn faces_count(n: usize) -> String {
    format!("{n} face{}", if n == 1 { "" } else { "s" })
}

/// Detects the `pending` photos (one size) in one submission, then writes each one's faces,
/// crops and annotated image and advances the bar once per photo; empties `pending`. A failed
/// detection fails every photo of the batch; failing to write a file stops the run.
fn detect_pending(
    detector: &FaceDetector,
    args: &FaceArgs<'_>,
    many: bool,
    pending: &mut Vec<(&Path, RgbImage)>,
    tally: &mut Tally,
    bar: &mut Progress,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let (paths, images): (Vec<&Path>, Vec<RgbImage>) = std::mem::take(pending).into_iter().unzip();
    let started = Instant::now();
    let results = match detector.detect_batch_timed(&images) {
        Ok(r) => r,
        Err(e) => {
            for path in &paths {
                progress::error(&format!("error: {}: {e:#}", path.display()));
                bar.inc(1, None);
            }
            tally.failed += paths.len();
            return Ok(());
        }
    };
    let gpu = started.elapsed();
    let n = paths.len();
    for ((path, img), (faces, t)) in paths.into_iter().zip(images).zip(results) {
        tracing::debug!(
            image = %path.display(),
            batch = n,
            gpu_ms = crate::logging::ms(t.total),
            rnet_crops = t.rnet_crops,
            onet_crops = t.onet_crops,
            "faces (one submission for the batch; plans made for a new photo size included)"
        );
        tally.found += faces.len();
        progress::suspend(|| print_faces(path, &faces, args.json));
        if !args.json {
            let ms = gpu.as_secs_f64() * 1e3;
            let found = faces_count(faces.len());
            progress::note(&if n == 1 {
                format!("  ({found} in {ms:.0} ms)")
            } else {
                format!("  ({found}; {n} photos in one submission, {ms:.0} ms)")
            });
        }
        if let Some(dir) = args.crops {
            for (k, f) in faces.iter().enumerate() {
                let crop = wgcnn::extract_face(&img, f.bbox, args.crop_size, args.margin);
                let target = dir.join(format!("{}.face{k}.png", stem(path)));
                crop.save(&target)?;
            }
        }
        if let Some(out) = args.output {
            let target = if many {
                out.join(format!("{}.faces.png", stem(path)))
            } else {
                out.to_path_buf()
            };
            let mut canvas = img;
            draw_faces(&mut canvas, &faces);
            canvas.save(&target)?;
            if !args.json {
                progress::note(&format!("  wrote {}", target.display()));
            }
        }
        bar.inc(1, None);
    }
    Ok(())
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

/// Boxes with their probability, then the five landmark dots on top.
fn draw_faces(canvas: &mut RgbImage, faces: &[Face]) {
    let style = wgcnn::draw::Style::for_image(canvas.width, canvas.height);
    let color = [0, 200, 255];
    for f in faces {
        wgcnn::draw::draw_box(canvas, f.bbox, color, style.line_width);
        let text = format!("face {:.0}%", f.score * 100.0);
        wgcnn::draw::draw_label(canvas, f.bbox, &text, color, &style);
    }
    for f in faces {
        wgcnn::draw::draw_landmarks(canvas, &f.landmarks, &style);
    }
}

fn print_faces(path: &Path, faces: &[Face], as_json: bool) {
    if as_json {
        let list: Vec<_> = faces
            .iter()
            .map(|f| json!({"label": "face", "score": f.score, "box": f.bbox, "landmarks": f.landmarks}))
            .collect();
        println!(
            "{}",
            json!({"image": path.display().to_string(), "model": FACE_MODEL, "detections": list})
        );
    } else {
        println!("{}", path.display());
        if faces.is_empty() {
            println!("  no faces");
        }
        for f in faces {
            let [x1, y1, x2, y2] = f.bbox;
            println!(
                "  {:5.1}%  face [{x1:.1}, {y1:.1}, {x2:.1}, {y2:.1}]",
                f.score * 100.0
            );
            let marks: Vec<String> = wgcnn::FACE_LANDMARKS
                .iter()
                .zip(&f.landmarks)
                .map(|(name, [x, y])| format!("{name} ({x:.1}, {y:.1})"))
                .collect();
            println!("          {}", marks.join(", "));
        }
    }
}
