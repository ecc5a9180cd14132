//! MTCNN on the GPU (lavapipe in CI): the stage checks the CPU interpreter passes
//! (`crates/wgcnn-models/tests/faces/checks.rs`: pyramid, P-Net, R-Net, O-Net from the
//! fixture's reference tensors), then `wgcnn::FaceDetector` end to end: grace_hopper's face,
//! a blank photo's none, and photos from 64x64 to 4000x3000 (the last too large for one
//! binding, so it takes the strip path).

#[allow(dead_code)]
#[path = "../crates/wgcnn-models/tests/faces/checks.rs"]
mod checks;
mod common;

use std::error::Error;

use checks::*;
use wgcnn::{FaceDetector, FaceDetectorOptions, RgbImage};
use wgcnn_graph::{Graph, Tensor};

fn run_gpu(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, Box<dyn Error>> {
    Ok(common::engine().plan(g)?.run(inputs)?)
}

fn detector() -> FaceDetector {
    FaceDetector::new(common::engine(), &FaceDetectorOptions::default()).expect("bundled MTCNN")
}

#[test]
fn mtcnn_gpu_pyramid_levels_and_pnet_maps_match_facenet_pytorch() -> TestResult {
    check_pyramid_and_pnet(&run_gpu)
}

#[test]
fn mtcnn_gpu_rnet_and_onet_match_facenet_pytorch_on_reference_crops() -> TestResult {
    check_rnet_onet(&run_gpu)
}

#[test]
fn face_detector_reproduces_grace_hopper_face_with_bundled_weights() -> TestResult {
    let fx = fixture()?;
    let hwc = fx.tensor("image")?;
    let img = RgbImage {
        height: hwc.shape[0],
        width: hwc.shape[1],
        pixels: hwc.data.iter().map(|&v| v as u8).collect(),
    };
    let (faces, t) = detector().detect_timed(&img)?;
    println!("timings: {t:?}");
    assert_eq!(
        t.rnet_crops,
        fx.tensor("rnet.count")?.data[0] as usize,
        "R-Net crops"
    );
    assert_eq!(
        t.onet_crops,
        fx.tensor("onet.count")?.data[0] as usize,
        "O-Net crops"
    );
    check_faces(&faces)
}

/// Deterministic texture: no face, but enough structure for P-Net to propose candidates.
fn noise(width: usize, height: usize) -> RgbImage {
    let mut s = 0x9e37_79b9_u32;
    let pixels = (0..width * height * 3)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        })
        .collect();
    RgbImage {
        width,
        height,
        pixels,
    }
}

#[test]
fn face_detector_finds_no_face_in_blank_or_noise_photos() -> TestResult {
    let det = detector();
    let blank = RgbImage {
        width: 320,
        height: 240,
        pixels: vec![200; 320 * 240 * 3],
    };
    assert!(det.detect(&blank)?.is_empty());
    let faces = det.detect(&noise(64, 64))?;
    assert!(faces.is_empty(), "{faces:?}");
    // Too small for one 12-pixel cell at the first scale.
    assert!(det.detect(&noise(10, 10))?.is_empty());
    Ok(())
}

/// A 4000x3000 photo is 144 MB as f32, over lavapipe's 128 MiB binding: the levels are
/// resampled on the GPU from the 8-bit photo (48 MB) and P-Net runs in row strips on the large
/// ones; it must finish without a binding error.
#[test]
fn face_detector_runs_on_a_4000x3000_photo_within_binding_limits() -> TestResult {
    let (faces, t) = detector().detect_timed(&noise(4000, 3000))?;
    println!("4000x3000 noise: {} faces, {t:?}", faces.len());
    Ok(())
}

/// Two copies of grace_hopper side by side on a 1280x720 canvas (one enlarged 1.2x, nearest):
/// the GPU detector and the interpreter's cascade find the same two faces within 1 px / 1e-3.
#[test]
fn face_detector_matches_the_interpreter_cascade_on_a_1280x720_photo_with_two_faces() -> TestResult
{
    let fx = fixture()?;
    let hwc = fx.tensor("image")?;
    let (h, w) = (hwc.shape[0], hwc.shape[1]);
    let (cw, ch) = (1280, 720);
    let mut pixels = [64u8, 96, 128].repeat(cw * ch);
    let mut put = |x: usize, y: usize, sx: usize, sy: usize| {
        for c in 0..3 {
            pixels[(y * cw + x) * 3 + c] = hwc.data[(sy * w + sx) * 3 + c] as u8;
        }
    };
    for y in 0..720 {
        for x in 0..614 {
            put(
                x + 20,
                y,
                ((x as f32 / 1.2) as usize).min(w - 1),
                ((y as f32 / 1.2) as usize).min(h - 1),
            );
        }
    }
    for y in 0..h {
        for x in 0..w {
            put(x + 700, y + 60, x, y);
        }
    }
    let img = RgbImage {
        width: cw,
        height: ch,
        pixels,
    };
    let (gpu, t) = detector().detect_timed(&img)?;
    println!("1280x720: {t:?}");
    let tensor = wgcnn_models::faces::cascade::image_tensor(&img.pixels, ch, cw);
    let st = weights()?;
    let mut cpu = wgcnn_models::faces::Interpreter { weights: &st };
    let (want, trace) = wgcnn_models::faces::detect(&mut cpu, &tensor, &Default::default())?;
    println!(
        "interpreter: {} R-Net and {} O-Net crops",
        trace.rnet_boxes.len(),
        trace.onet_boxes.len()
    );
    assert_eq!(gpu.len(), 2, "{gpu:?}");
    assert_eq!(gpu.len(), want.len(), "{gpu:?} vs {want:?}");
    for (g, c) in gpu.iter().zip(&want) {
        println!("  gpu {g:?}\n  cpu {c:?}");
        assert!((g.score - c.score).abs() <= 1e-3);
        assert!(
            g.bbox
                .iter()
                .zip(&c.bbox)
                .all(|(a, b)| (a - b).abs() <= 1.0)
        );
        for (p, q) in g.landmarks.iter().zip(&c.landmarks) {
            assert!((p[0] - q[0]).abs() <= 1.0 && (p[1] - q[1]).abs() <= 1.0);
        }
    }
    Ok(())
}

/// grace_hopper as the fixture holds it (the pixels facenet-pytorch saw).
fn grace_hopper() -> Result<RgbImage, Box<dyn Error>> {
    let hwc = fixture()?.tensor("image")?;
    Ok(RgbImage {
        height: hwc.shape[0],
        width: hwc.shape[1],
        pixels: hwc.data.iter().map(|&v| v as u8).collect(),
    })
}

/// `detect_batch_timed` gives, photo for photo and in input order, exactly what one
/// `detect_timed` call per photo gives: the faces and the R-Net/O-Net crop counts.
fn assert_batch_matches_single_calls(det: &FaceDetector, photos: &[RgbImage]) -> TestResult {
    let batch = det.detect_batch_timed(photos)?;
    assert_eq!(batch.len(), photos.len());
    for (k, (photo, (faces, t))) in photos.iter().zip(&batch).enumerate() {
        let (want, single) = det.detect_timed(photo)?;
        assert_eq!(faces, &want, "photo {k} ({}x{})", photo.width, photo.height);
        assert_eq!(
            [t.rnet_crops, t.onet_crops],
            [single.rnet_crops, single.onet_crops],
            "photo {k}: R-Net and O-Net crops"
        );
    }
    Ok(())
}

/// Three photos of one size in one submission (the second and third copied into the photo's
/// bindings between the chains): grace_hopper twice and a blank photo give her face, her face
/// again and nothing — the same as three single calls.
#[test]
fn detect_batch_of_three_same_size_photos_equals_three_single_detect_calls() -> TestResult {
    let det = detector();
    let grace = grace_hopper()?;
    let blank = RgbImage {
        pixels: vec![200; grace.pixels.len()],
        ..grace.clone()
    };
    let photos = [grace.clone(), grace, blank];
    let found = det.detect_batch(&photos)?;
    check_faces(&found[0])?;
    check_faces(&found[1])?;
    assert!(found[2].is_empty(), "{:?}", found[2]);
    assert_batch_matches_single_calls(&det, &photos)
}

/// Photos of three sizes interleaved (and one too small for any pyramid level): each size is
/// its own submission, and the results come back in input order. Photos of one size differ,
/// so a photo answered from another's slot shows.
#[test]
fn detect_batch_groups_mixed_sizes_and_keeps_input_order() -> TestResult {
    let det = detector();
    let grace = grace_hopper()?;
    let blank = RgbImage {
        pixels: vec![90; grace.pixels.len()],
        ..grace.clone()
    };
    let reversed = |mut image: RgbImage| {
        image.pixels.reverse();
        image
    };
    let photos = [
        noise(64, 64),
        blank,
        noise(96, 80),
        noise(10, 10),
        grace,
        reversed(noise(64, 64)),
        reversed(noise(96, 80)),
    ];
    let found = det.detect_batch(&photos)?;
    assert_eq!(found.len(), photos.len());
    assert!(found[1].is_empty(), "{:?}", found[1]);
    assert!(found[3].is_empty());
    check_faces(&found[4])?;
    assert_batch_matches_single_calls(&det, &photos)
}

/// One photo past `MAX_BATCH_PHOTOS` of one size takes a second submission; every photo
/// still gets its own result. The photos differ (a shifted texture) so a mixed-up slot shows.
#[test]
fn detect_batch_past_max_batch_photos_splits_and_matches_single_calls() -> TestResult {
    let det = detector();
    let base = noise(48, 40 + FaceDetector::MAX_BATCH_PHOTOS + 1);
    let photos: Vec<RgbImage> = (0..=FaceDetector::MAX_BATCH_PHOTOS)
        .map(|k| RgbImage {
            width: 48,
            height: 40,
            pixels: base.pixels[k * 48 * 3..(k + 40) * 48 * 3].to_vec(),
        })
        .collect();
    assert_batch_matches_single_calls(&det, &photos)
}
