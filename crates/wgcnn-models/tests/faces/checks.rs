//! MTCNN stage checks against `fixtures/faces/mtcnn.grace_hopper.safetensors`, shared by the
//! CPU interpreter's tests (this folder's `main.rs`) and the GPU's (`tests/faces_gpu.rs` at the
//! workspace root). Each net is fed the fixture's reference input and compared within the
//! classification tolerance (`1e-3 * max|want| + 1e-5`); the caller's `run` evaluates a bound
//! graph on its backend.

use std::error::Error;
use std::path::PathBuf;

use wgcnn_graph::{Graph, Tensor};
use wgcnn_io::{Fixture, SafetensorsFile, fixture_path};
use wgcnn_models::faces::{self, nets};

pub type TestResult = Result<(), Box<dyn Error>>;
/// Evaluates a bound graph on the backend under test: its outputs, in order.
pub type Run<'a> = &'a dyn Fn(&Graph, &[Tensor]) -> Result<Vec<Tensor>, Box<dyn Error>>;

pub fn fixture() -> Result<Fixture, Box<dyn Error>> {
    Ok(Fixture::open(fixture_path(
        "faces/mtcnn.grace_hopper.safetensors",
    ))?)
}

/// The real weights the library bundles (`assets/mtcnn.safetensors`).
pub fn weights() -> Result<SafetensorsFile, Box<dyn Error>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/mtcnn.safetensors");
    Ok(SafetensorsFile::open(path)?)
}

/// `max|got - want| <= 1e-3 * max|want| + 1e-5` over the first `want.numel()` values.
pub fn check_net(what: &str, got: &Tensor, want: &Tensor) -> TestResult {
    if got.numel() < want.numel() {
        return Err(format!(
            "{what}: {:?} is smaller than the reference {:?}",
            got.shape, want.shape
        )
        .into());
    }
    let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got
        .data
        .iter()
        .zip(&want.data)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    println!("  {what}: max abs error {err:.2e} (max |want| {scale:.2e})");
    if err.is_nan() || err > 1e-3 * scale + 1e-5 {
        return Err(format!(
            "{what}: max abs error {err:e} over {:e}",
            1e-3 * scale + 1e-5
        )
        .into());
    }
    Ok(())
}

/// The first `rows` rows of a row-major tensor.
pub fn rows(t: &Tensor, rows: usize) -> Tensor {
    let row: usize = t.shape[1..].iter().product();
    let mut shape = t.shape.clone();
    shape[0] = rows;
    Tensor {
        shape,
        data: t.data[..rows * row].to_vec(),
    }
}

/// The image as the cascade takes it, from the fixture's u8 HWC `image`.
pub fn image(fx: &Fixture) -> Result<Tensor, Box<dyn Error>> {
    let hwc = fx.tensor("image")?;
    let (h, w) = (hwc.shape[0], hwc.shape[1]);
    let rgb: Vec<u8> = hwc.data.iter().map(|&v| v as u8).collect();
    Ok(faces::cascade::image_tensor(&rgb, h, w))
}

/// The pyramid's first three levels (area resampling + normalization) from the image, and
/// P-Net's maps from them, through one pyramid graph cut at the normalized inputs.
pub fn check_pyramid_and_pnet(run: Run<'_>) -> TestResult {
    let fx = fixture()?;
    let st = weights()?;
    let img = image(&fx)?;
    let (h, w) = (img.shape[2], img.shape[3]);
    let scales = faces::cascade::pyramid_scales(h, w, 20.0, 0.709);
    let want = fx.tensor("pyramid.scales")?;
    assert_eq!(scales.len(), want.numel(), "pyramid levels");
    for (s, t) in scales.iter().zip(&want.data) {
        assert!((*s as f32 - t).abs() <= 1e-6 * t.abs(), "scale {s} vs {t}");
    }
    let levels: Vec<[usize; 2]> = scales[..3]
        .iter()
        .map(|&s| faces::cascade::level_size(h, w, s))
        .collect();
    let mut g = nets::pyramid(h, w, &levels)?;
    faces::bind(&mut g, &st, "pnet")?;
    // Outputs: the three normalized inputs, then each level's (reg, prob).
    let mut outs: Vec<_> = (0..3)
        .map(|i| {
            g.find(&format!("level{i}.normalize"))
                .ok_or("no normalize node")
        })
        .collect::<Result<_, _>>()?;
    outs.extend(g.outputs.iter().copied());
    let inputs = g.inputs.clone();
    let cut = g.cut(&inputs, &outs)?;
    let got = run(&cut, &[img])?;
    println!("pyramid + P-Net from the image:");
    for i in 0..3 {
        check_net(
            &format!("pnet.input.{i}"),
            &got[i],
            &fx.tensor(&format!("pnet.input.{i}"))?,
        )?;
        check_net(
            &format!("pnet.reg.{i} (from the image)"),
            &got[3 + 2 * i],
            &fx.tensor(&format!("pnet.reg.{i}"))?,
        )?;
        check_net(
            &format!("pnet.prob.{i} (from the image)"),
            &got[4 + 2 * i],
            &fx.tensor(&format!("pnet.prob.{i}"))?,
        )?;
    }
    println!("P-Net from the reference inputs:");
    for i in 0..3 {
        let x = fx.tensor(&format!("pnet.input.{i}"))?;
        let mut g = nets::pnet(1, x.shape[2], x.shape[3])?;
        faces::bind(&mut g, &st, "pnet")?;
        let got = run(&g, &[x])?;
        check_net(
            &format!("pnet.reg.{i}"),
            &got[0],
            &fx.tensor(&format!("pnet.reg.{i}"))?,
        )?;
        check_net(
            &format!("pnet.prob.{i}"),
            &got[1],
            &fx.tensor(&format!("pnet.prob.{i}"))?,
        )?;
    }
    Ok(())
}

/// R-Net on the first 16 reference crops, O-Net on all 13.
pub fn check_rnet_onet(run: Run<'_>) -> TestResult {
    let fx = fixture()?;
    let st = weights()?;
    let x = fx.tensor("rnet.input.first16")?;
    let mut g = nets::rnet(x.shape[0])?;
    faces::bind(&mut g, &st, "rnet")?;
    let got = run(&g, &[x])?;
    println!("R-Net from the reference crops:");
    check_net("rnet.reg", &got[0], &rows(&fx.tensor("rnet.reg")?, 16))?;
    check_net("rnet.prob", &got[1], &rows(&fx.tensor("rnet.prob")?, 16))?;
    let x = fx.tensor("onet.input.first16")?;
    let mut g = nets::onet(x.shape[0])?;
    faces::bind(&mut g, &st, "onet")?;
    let got = run(&g, &[x])?;
    println!("O-Net from the reference crops:");
    check_net("onet.reg", &got[0], &fx.tensor("onet.reg")?)?;
    check_net("onet.landmarks", &got[1], &fx.tensor("onet.landmarks")?)?;
    check_net("onet.prob", &got[2], &fx.tensor("onet.prob")?)?;
    Ok(())
}

/// The final faces against the fixture's: the same count, boxes and landmarks within 1 px,
/// probabilities within 1e-3.
pub fn check_faces(got: &[faces::Face]) -> TestResult {
    let fx = fixture()?;
    let boxes = fx.tensor("output.boxes")?;
    let probs = fx.tensor("output.probs")?;
    let marks = fx.tensor("output.landmarks")?;
    assert_eq!(got.len(), probs.numel(), "faces: {got:?}");
    for (k, f) in got.iter().enumerate() {
        println!("  face {k}: {f:?}");
        assert!(
            (f.score - probs.data[k]).abs() <= 1e-3,
            "face {k} prob {} vs {}",
            f.score,
            probs.data[k]
        );
        for i in 0..4 {
            let want = boxes.data[4 * k + i];
            assert!(
                (f.bbox[i] - want).abs() <= 1.0,
                "face {k} box {:?} vs {:?}",
                f.bbox,
                &boxes.data[4 * k..4 * k + 4]
            );
        }
        for j in 0..5 {
            for c in 0..2 {
                let want = marks.data[10 * k + 2 * j + c];
                assert!(
                    (f.landmarks[j][c] - want).abs() <= 1.0,
                    "face {k} landmark {j}: {:?} vs {want}",
                    f.landmarks[j]
                );
            }
        }
    }
    Ok(())
}
