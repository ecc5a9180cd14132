//! Tests of the MTCNN front, R-Net and O-Net stages on the GPU against the CPU cascade
//! (`wgcnn_models::faces::cascade`, the interpreter reference's own functions).

use super::*;
use crate::EngineOptions;

/// Options that would loop, divide by zero or silently find nothing are refused up front.
#[test]
fn face_detector_refuses_nonsense_options_and_is_shareable_across_threads() -> Result<(), Error> {
    fn shareable<T: Send + Sync>() {}
    shareable::<FaceDetector>();
    let engine = Engine::new(&EngineOptions::default())?;
    let bad = [
        FaceDetectorOptions {
            min_face_size: 0.0,
            ..Default::default()
        },
        FaceDetectorOptions {
            min_face_size: f32::NAN,
            ..Default::default()
        },
        FaceDetectorOptions {
            factor: 1.0,
            ..Default::default()
        },
        FaceDetectorOptions {
            factor: -0.5,
            ..Default::default()
        },
        FaceDetectorOptions {
            thresholds: [0.6, f32::NAN, 0.7],
            ..Default::default()
        },
    ];
    for o in &bad {
        let e = FaceDetector::new(&engine, o).expect_err("refused");
        assert!(e.to_string().contains("mtcnn"), "{e}");
    }
    Ok(())
}

/// grace_hopper as the fixture holds it (the pixels facenet-pytorch saw).
fn fixture_photo() -> Result<RgbImage, Box<dyn std::error::Error>> {
    let fx = wgcnn_io::Fixture::open(
        wgcnn_io::fixtures_dir().join("faces/mtcnn.grace_hopper.safetensors"),
    )?;
    let hwc = fx.tensor("image")?;
    Ok(RgbImage {
        height: hwc.shape[0],
        width: hwc.shape[1],
        pixels: hwc.data.iter().map(|&v| v as u8).collect(),
    })
}

/// Stable descending sort by score, the best `k` kept (the GPU's capacities).
fn best(mut c: Vec<faces::Candidate>, k: usize) -> Vec<faces::Candidate> {
    c.sort_by(|a, b| b.score.total_cmp(&a.score));
    c.truncate(k);
    c
}

/// `pnet_stage` (candidates, NMS 0.5 per level, NMS 0.7 over levels, regression,
/// squaring, empty-crop filter) on random P-Net maps with many tied scores, a level with
/// more candidates than it keeps, and boxes off the photo, against the cascade's functions
/// with the same capacities.
#[test]
fn gpu_pnet_stage_matches_the_cascade_on_random_maps_past_capacity()
-> Result<(), Box<dyn std::error::Error>> {
    use wgcnn_kernels::detect::faces::{self as kfaces, FaceLevel, MAX_LEVEL_CANDIDATES};
    use wgcnn_models::faces::cascade;
    let engine = Engine::new(&EngineOptions::default())?;
    let ctx = engine.context();
    let mut seed = 0x2545_f491_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let photo = [300, 340];
    let sizes = [
        ([70, 80], 0.6),
        ([33, 41], 0.4254),
        ([9, 11], 0.3016),
        ([1, 1], 0.2),
    ];
    let (mut probs, mut regs, mut levels) = (Vec::new(), Vec::new(), Vec::new());
    let mut want_levels = Vec::new();
    for (map, scale) in sizes {
        let plane = map[0] * map[1];
        // 40 score values: ties everywhere; about 80% at or above 0.6.
        let face: Vec<f32> = (0..plane)
            .map(|_| 0.5 + (next() % 40) as f32 / 80.0)
            .collect();
        let reg: Vec<f32> = (0..4 * plane)
            .map(|_| (next() % 1000) as f32 / 1000.0 * 0.6 - 0.3)
            .collect();
        levels.push(FaceLevel {
            map,
            scale,
            offset: probs.len(),
        });
        let mut prob = vec![0.0; plane];
        prob.extend_from_slice(&face);
        let c = cascade::pnet_candidates(&prob, &reg, map, scale, 0.6);
        want_levels.push(best(c, MAX_LEVEL_CANDIDATES));
        probs.extend(face);
        regs.extend(reg);
    }
    assert!(
        want_levels[0].len() == MAX_LEVEL_CANDIDATES,
        "level 0 over capacity"
    );
    let mut all = Vec::new();
    for level in &want_levels {
        all.extend(cascade::nms(level, 0.5).into_iter().map(|i| level[i]));
    }
    let all = best(all, kfaces::MAX_MERGED);
    let want: Vec<faces::Candidate> = cascade::nms(&all, 0.7)
        .into_iter()
        .map(|i| cascade::rerec(cascade::pnet_regress(&all[i])))
        .zip(cascade::nms(&all, 0.7).into_iter().map(|i| all[i].score))
        .filter(|(b, _)| cascade::crop_rect(*b, photo[0], photo[1]).is_some())
        .map(|(bbox, score)| faces::Candidate {
            bbox,
            score,
            reg: [0.0; 4],
        })
        .collect();

    let out = kfaces::PnetStageOutput {
        boxes: ctx.storage("boxes", (kfaces::MAX_MERGED * 5) as u64 * 4),
        count: ctx.storage("count", 4),
    };
    let desc = kfaces::PnetStageDesc {
        levels,
        thresh: 0.6,
        photo,
    };
    let (pb, rb) = (ctx.upload("probs", &probs), ctx.upload("regs", &regs));
    ctx.run(&kfaces::pnet_stage(ctx, "stage", &desc, &pb, &rb, &out)?)?;
    let count = ctx.read(&out.count, 1)?[0].to_bits() as usize;
    let rows = ctx.read(&out.boxes, kfaces::MAX_MERGED * 5)?;
    assert_eq!(count, want.len(), "R-Net boxes");
    for (i, (r, b)) in rows.chunks_exact(5).zip(&want).enumerate() {
        assert_eq!(r[4], b.score, "box {i}");
        let d = r
            .iter()
            .zip(&b.bbox)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(d <= 1e-3, "box {i}: {r:?} vs {:?}", b.bbox);
    }
    assert!(rows[count * 5..].chunks_exact(5).all(|r| r[4] == -1.0));
    Ok(())
}

/// `rnet_stage` (probability `> 0.7`, NMS 0.7 by probability with ties by row, `bbreg`,
/// squaring, empty-crop filter) on random R-Net outputs with tied probabilities and boxes
/// off the photo, from one box to the full capacity, against `cascade::refine_rnet`.
#[test]
fn gpu_rnet_stage_matches_the_cascade_refine_on_random_outputs()
-> Result<(), Box<dyn std::error::Error>> {
    use wgcnn_kernels::detect::faces::{self as kfaces, MAX_MERGED};
    use wgcnn_models::faces::cascade;
    let engine = Engine::new(&EngineOptions::default())?;
    let ctx = engine.context();
    let mut seed = 0x1234_5679_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let photo = [300, 340];
    for n in [1, 300, MAX_MERGED] {
        let mut cands = Vec::new();
        let (mut rows, mut prob, mut reg) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            let (x, y) = ((next() % 400) as f32 - 30.0, (next() % 360) as f32 - 30.0);
            let s = (next() % 90) as f32 + 2.5;
            let bbox = [x, y, x + s, y + s];
            let p = 0.6 + (next() % 40) as f32 / 100.0;
            let r: [f32; 4] = std::array::from_fn(|_| (next() % 1000) as f32 / 1000.0 * 0.6 - 0.3);
            rows.extend(bbox);
            rows.push(0.9);
            prob.extend([1.0 - p, p]);
            reg.extend(r);
            cands.push(faces::Candidate {
                bbox,
                score: 0.9,
                reg: [0.0; 4],
            });
        }
        rows.resize(MAX_MERGED * 5, 0.0);
        prob.resize(MAX_MERGED * 2, 0.0);
        reg.resize(MAX_MERGED * 4, 0.0);
        let want: Vec<faces::Candidate> = cascade::refine_rnet(&cands, &reg, &prob, 0.7)
            .into_iter()
            .filter(|b| cascade::crop_rect(b.bbox, photo[0], photo[1]).is_some())
            .collect();
        let out = kfaces::PnetStageOutput {
            boxes: ctx.storage("boxes", (MAX_MERGED * 5) as u64 * 4),
            count: ctx.storage("count", 4),
        };
        let (rb, pb, gb) = (
            ctx.upload("rows", &rows),
            ctx.upload("prob", &prob),
            ctx.upload("reg", &reg),
        );
        let buffers = kfaces::RnetStageBuffers {
            rnet_boxes: &rb,
            reg: &gb,
            prob: &pb,
            out: &out,
        };
        ctx.run(&kfaces::rnet_stage(ctx, "stage", 0.7, photo, buffers)?)?;
        let count = ctx.read(&out.count, 1)?[0].to_bits() as usize;
        let got = ctx.read(&out.boxes, MAX_MERGED * 5)?;
        assert_eq!(count, want.len(), "{n} rows: O-Net boxes");
        assert!(n < 300 || count > 10, "{n} rows keep only {count}");
        for (i, (r, b)) in got.chunks_exact(5).zip(&want).enumerate() {
            assert_eq!(r[4], b.score, "{n} rows, box {i}");
            let d = r
                .iter()
                .zip(&b.bbox)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(d <= 1e-3, "{n} rows, box {i}: {r:?} vs {:?}", b.bbox);
        }
    }
    Ok(())
}

/// `onet_stage` (probability `> 0.7`, landmarks, `bbreg`, 'Min' NMS 0.7) on random O-Net
/// outputs with tied probabilities and nested boxes, against `cascade::finish_onet`.
#[test]
fn gpu_onet_stage_matches_the_cascade_finish_on_random_outputs()
-> Result<(), Box<dyn std::error::Error>> {
    use wgcnn_kernels::detect::faces::{self as kfaces, FACE_ROW, MAX_MERGED};
    use wgcnn_models::faces::cascade;
    let engine = Engine::new(&EngineOptions::default())?;
    let ctx = engine.context();
    let mut seed = 0x0bad_5eed_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut unit = move || (next() % 1000) as f32 / 1000.0;
    for n in [1, 57, 700] {
        let mut cands = Vec::new();
        let (mut rows, mut prob, mut reg, mut lm) = (Vec::new(), vec![], vec![], vec![]);
        for _ in 0..n {
            let (x, y) = (unit() * 300.0, unit() * 200.0);
            let s = unit() * 120.0 + 12.0;
            let bbox = [x, y, x + s, y + s];
            let p = 0.65 + (unit() * 30.0).floor() / 100.0;
            rows.extend(bbox);
            rows.push(0.9);
            prob.extend([1.0 - p, p]);
            reg.extend((0..4).map(|_| unit() * 0.4 - 0.2));
            lm.extend((0..10).map(|_| unit()));
            cands.push(faces::Candidate {
                bbox,
                score: 0.9,
                reg: [0.0; 4],
            });
        }
        rows.resize(MAX_MERGED * 5, 0.0);
        prob.resize(MAX_MERGED * 2, 0.0);
        reg.resize(MAX_MERGED * 4, 0.0);
        lm.resize(MAX_MERGED * 10, 0.0);
        let want = cascade::finish_onet(&cands, &reg, &lm, &prob, 0.7);
        let faces_buf = ctx.storage("faces", (MAX_MERGED * FACE_ROW) as u64 * 4);
        let count_buf = ctx.storage("count", 4);
        let (rb, pb, gb, lb) = (
            ctx.upload("rows", &rows),
            ctx.upload("prob", &prob),
            ctx.upload("reg", &reg),
            ctx.upload("landmarks", &lm),
        );
        let buffers = kfaces::OnetStageBuffers {
            onet_boxes: &rb,
            reg: &gb,
            landmarks: &lb,
            prob: &pb,
            faces: &faces_buf,
            count: &count_buf,
        };
        ctx.run(&kfaces::onet_stage(ctx, "stage", 0.7, buffers)?)?;
        let count = ctx.read(&count_buf, 1)?[0].to_bits() as usize;
        let got = ctx.read(&faces_buf, MAX_MERGED * FACE_ROW)?;
        assert_eq!(count, want.len(), "{n} rows: faces");
        assert!(n < 50 || count > 3, "{n} rows keep only {count}");
        for (i, (r, f)) in got.chunks_exact(FACE_ROW).zip(&want).enumerate() {
            assert_eq!(r[0], f.score, "{n} rows, face {i}");
            let marks = f.landmarks.iter().flatten();
            let d = r[1..]
                .iter()
                .zip(f.bbox.iter().chain(marks))
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(d <= 1e-3, "{n} rows, face {i}: {r:?} vs {f:?}");
        }
        assert!(
            got[count * FACE_ROW..]
                .chunks_exact(FACE_ROW)
                .all(|r| r[0] == -1.0)
        );
    }
    Ok(())
}

/// `face_crops` against the cascade's CPU crops (`crop_rect` + `crop_resample`, the
/// interpreter's adaptive average pooling) at R-Net's and O-Net's sizes: grace_hopper's
/// R-Net boxes, boxes hanging off every side, a NaN corner, one-pixel boxes and an empty
/// one (zeros), padding rows past the box count (zeros), from the first box and from the
/// sixth; the photo in two bindings split at row 250.
#[test]
fn gpu_crops_match_the_cascade_crops_of_the_photo() -> Result<(), Box<dyn std::error::Error>> {
    use wgcnn_kernels::detect::faces as kfaces;
    use wgcnn_models::faces::cascade;
    let engine = Engine::new(&EngineOptions::default())?;
    let mut det = FaceDetector::new(&engine, &FaceDetectorOptions::default())?;
    let img = fixture_photo()?;
    let (h, w) = (img.height, img.width);
    // The photo in two bindings from row 250: crops straddle the split.
    det.band_bytes = (250 * w * 4) as u64;
    let mut boxes: Vec<[f32; 4]> = det
        .rnet_boxes(&img)?
        .iter()
        .take(40)
        .map(|c| c.bbox)
        .collect();
    let (wf, hf) = (w as f32, h as f32);
    boxes.extend([
        [-30.7, -12.2, 40.9, 51.5],
        [wf - 20.5, hf - 7.1, wf + 90.0, hf + 3.0],
        [f32::NAN, 10.0, 30.0, 44.0],
        [5.0, 5.0, 5.0, 5.0],
        [wf - 0.5, 3.0, wf + 10.0, 9.0],
        [100.0, 100.0, 90.0, 140.0],
        [0.0, 0.0, wf, hf],
    ]);
    let pipeline = det.pipeline(&img)?.ok_or("no levels")?;
    let tensor = cascade::image_tensor(&img.pixels, h, w);
    let ctx = engine.context();
    let rows: Vec<f32> = boxes
        .iter()
        .flat_map(|b| [b[0], b[1], b[2], b[3], 1.0])
        .collect();
    let rows = ctx.upload("boxes", &rows);
    let count = ctx.device_buffer_u32(&[boxes.len() as u32]);
    for (size, first) in [(24, 0), (48, 0), (24, 5)] {
        let n = boxes.len() - first + 3;
        let plane = 3 * size * size;
        let y = ctx.storage("crops", (n * plane) as u64 * 4);
        let launch = kfaces::crops_launch(
            ctx,
            "crops",
            &pipeline.photo_buffers(),
            size,
            n,
            first,
            &rows,
            &count,
            &y,
        );
        ctx.run(&[launch])?;
        let got = ctx.read(&y, n * plane)?;
        for (i, row) in got.chunks(plane).enumerate() {
            let want = boxes
                .get(first + i)
                .and_then(|&b| cascade::crop_rect(b, h, w))
                .map_or(vec![0.0; plane], |(r, c)| {
                    cascade::crop_resample(&tensor, r, c, size)
                });
            let d = row
                .iter()
                .zip(&want)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(d <= 1e-6, "size {size}, row {i} ({:?}): {d}", boxes.get(i));
        }
    }
    Ok(())
}

/// The GPU front on grace_hopper: P-Net in row strips (about 7 map rows each on the large
/// levels, the last strip short) and the photo in two bindings give the maps and boxes of
/// whole levels and one binding; the maps match
/// the interpreter's pyramid graph (area resampling from f32 + P-Net), and the R-Net boxes
/// (candidates, both NMS, regression, squaring, empty-crop filter on the GPU) are the CPU
/// cascade's from the same maps.
#[test]
fn gpu_front_strips_match_whole_levels_the_interpreter_and_the_cascade_boxes()
-> Result<(), Box<dyn std::error::Error>> {
    use wgcnn_models::faces::cascade;
    let engine = Engine::new(&EngineOptions::default())?;
    let det = FaceDetector::new(&engine, &FaceDetectorOptions::default())?;
    let mut strips = FaceDetector::new(&engine, &FaceDetectorOptions::default())?;
    let img = fixture_photo()?;
    let (h, w) = (img.height, img.width);
    strips.strip_bytes = (2 * 7 + 10) * 10 * 4 * w as u64;
    // And the photo in two bindings, split a third of the way down.
    strips.band_bytes = (h / 3 * w * 4) as u64;
    let (scales, levels) = gpu::levels(h, w, &det.config);
    let boxes = det.rnet_boxes(&img)?;
    let maps = det
        .pipeline(&img)?
        .ok_or("no levels")?
        .maps(&det, &levels)?;
    let strip_boxes = strips.rnet_boxes(&img)?;
    let strip_maps = strips
        .pipeline(&img)?
        .ok_or("no levels")?
        .maps(&strips, &levels)?;
    for (g, (a, b)) in maps.iter().zip(&strip_maps).enumerate() {
        assert!(a.0.max_abs_diff(&b.0) <= 1e-5, "level {g} reg");
        assert!(a.1.max_abs_diff(&b.1) <= 1e-5, "level {g} prob");
    }
    assert_eq!(boxes, strip_boxes);

    let tensor = cascade::image_tensor(&img.pixels, h, w);
    let mut g = nets::pyramid(h, w, &levels)?;
    faces::bind(&mut g, det.weights.as_ref(), "pnet")?;
    let want = wgcnn_graph::interp::run(&g, std::slice::from_ref(&tensor))?;
    for (l, ((reg, prob), pair)) in maps.iter().zip(want.chunks(2)).enumerate() {
        assert!(
            reg.max_abs_diff(&pair[0]) <= 1e-4,
            "level {l} reg vs interpreter"
        );
        let plane = reg.shape[2] * reg.shape[3];
        let face = &pair[1].data[plane..];
        let d = face
            .iter()
            .zip(&prob.data[plane..])
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d <= 1e-4, "level {l} prob vs interpreter: {d}");
    }

    let cands: Vec<Vec<faces::Candidate>> = maps
        .iter()
        .zip(&scales)
        .map(|((reg, prob), &s)| {
            let size = [reg.shape[2], reg.shape[3]];
            cascade::pnet_candidates(&prob.data, &reg.data, size, s, det.config.thresholds[0])
        })
        .collect();
    let want: Vec<faces::Candidate> = cascade::merge_pnet(&cands)
        .into_iter()
        .filter(|b| cascade::crop_rect(b.bbox, h, w).is_some())
        .collect();
    assert_eq!(boxes.len(), want.len(), "R-Net boxes");
    assert!(!boxes.is_empty());
    for (i, (a, b)) in boxes.iter().zip(&want).enumerate() {
        assert_eq!(a.score, b.score, "box {i}");
        let d = a
            .bbox
            .iter()
            .zip(&b.bbox)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(d <= 1e-3, "box {i}: {:?} vs {:?}", a.bbox, b.bbox);
    }
    Ok(())
}

/// `photo` resized to `width` x `height` (nearest): grace_hopper at 1280x720 gives about 500
/// R-Net boxes.
fn scaled(photo: &RgbImage, width: usize, height: usize) -> RgbImage {
    let mut pixels = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for x in 0..width {
            let (sx, sy) = (x * photo.width / width, y * photo.height / height);
            pixels.extend_from_slice(&photo.pixels[(sy * photo.width + sx) * 3..][..3]);
        }
    }
    RgbImage {
        width,
        height,
        pixels,
    }
}

/// The one-submission cascade (counts on the GPU, R-Net and O-Net dispatched indirectly over
/// chunks of 256 boxes and several batch capacities) gives exactly what the stages submitted
/// one by one give (counts read between them): grace_hopper, and grace_hopper at 1280x720
/// with more than 256 R-Net boxes (several chunks).
#[test]
fn one_submission_matches_the_stages_submitted_one_by_one() -> Result<(), Box<dyn std::error::Error>>
{
    let engine = Engine::new(&EngineOptions::default())?;
    let det = FaceDetector::new(&engine, &FaceDetectorOptions::default())?;
    let photo = fixture_photo()?;
    let wide = scaled(&photo, 1280, 720);
    for img in [&photo, &wide] {
        let (one, t1) = det.detect_timed(img)?;
        let (staged, t3) = det.detect_staged(img)?;
        println!("{}x{}: {t1:?}\n  staged {t3:?}", img.width, img.height);
        assert_eq!(
            (t1.rnet_crops, t1.onet_crops),
            (t3.rnet_crops, t3.onet_crops)
        );
        assert_eq!(one, staged);
        // Run again: stale rows of the first run must not leak into the second.
        assert_eq!(det.detect(img)?, one);
        assert!(!one.is_empty());
    }
    let (_, t) = det.detect_timed(&wide)?;
    assert!(t.rnet_crops > 256, "only {} R-Net boxes", t.rnet_crops);
    Ok(())
}

/// Submissions of `detect_batch`: one per size in order of first appearance, split past
/// `MAX_BATCH_PHOTOS` photos or `BATCH_UPLOAD_BYTES` of packed pixels (never below one photo).
#[test]
fn batch_groups_split_by_size_photo_count_and_upload_bytes() {
    let (a, b) = ([480, 640], [720, 1280]);
    assert_eq!(
        batch_groups(&[a, b, a, a, b]),
        vec![vec![0, 2, 3], vec![1, 4]]
    );
    assert!(batch_groups(&[]).is_empty());
    let many = vec![a; FaceDetector::MAX_BATCH_PHOTOS + 1];
    let groups = batch_groups(&many);
    assert_eq!(
        groups.iter().map(Vec::len).collect::<Vec<_>>(),
        [FaceDetector::MAX_BATCH_PHOTOS, 1]
    );
    // 48 MB a 4000x3000 photo: five fit 256 MiB.
    let big = [3000, 4000];
    let groups = batch_groups(&[big; 7]);
    assert_eq!(groups, vec![vec![0, 1, 2, 3, 4], vec![5, 6]]);
    // A photo over the byte bound alone still gets a submission.
    let huge = [20000, 20000];
    assert_eq!(batch_groups(&[huge, huge]), vec![vec![0], vec![1]]);
    // Mixed sizes, with a split group, keep every index exactly once.
    let mixed: Vec<[usize; 2]> = (0..40).map(|i| if i % 3 == 0 { b } else { a }).collect();
    let mut all: Vec<usize> = batch_groups(&mixed).concat();
    all.sort_unstable();
    assert_eq!(all, (0..40).collect::<Vec<_>>());
}
