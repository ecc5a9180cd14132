//! `wgcnn detect` with no `--model`: the bundled MTCNN, as a user runs it on a fresh checkout.
//! The JSON must carry grace_hopper.jpg's face as facenet-pytorch finds it (the fixture's
//! `output.*`: box and landmarks within 1 px, probability within 1e-3), `--output` an annotated
//! image and `--crops` one 160x160 crop per face; a photo with no face gives an empty list; a
//! directory's consecutive same-size photos share a submission, each answered in file order.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wgcnn::wgcnn_io::{Fixture, fixtures_dir};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wgcnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgcnn"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("wgcnn runs")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgcnn-cli-faces-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn detect_cli_without_model_finds_grace_hoppers_face_with_landmarks() {
    let fx = Fixture::open(fixtures_dir().join("faces/mtcnn.grace_hopper.safetensors"))
        .expect("fixture");
    let photo = fixtures_dir().join("../images/grace_hopper.jpg");
    let dir = temp_dir("grace");
    let (annotated, crops) = (dir.join("annotated.png"), dir.join("crops"));
    let o = wgcnn(&[
        "detect",
        "--json",
        "--output",
        annotated.to_str().expect("utf-8"),
        "--crops",
        crops.to_str().expect("utf-8"),
        photo.to_str().expect("utf-8"),
    ]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["model"], "mtcnn");
    let dets = v["detections"].as_array().expect("detections");
    let (boxes, probs, marks) = (
        fx.tensor("output.boxes").expect("boxes"),
        fx.tensor("output.probs").expect("probs"),
        fx.tensor("output.landmarks").expect("landmarks"),
    );
    assert_eq!(dets.len(), probs.numel(), "{out}");
    for (k, d) in dets.iter().enumerate() {
        assert_eq!(d["label"], "face");
        let score = d["score"].as_f64().expect("score") as f32;
        assert!(
            (score - probs.data[k]).abs() <= 1e-3,
            "{score} vs {}",
            probs.data[k]
        );
        let bbox: Vec<f32> = d["box"]
            .as_array()
            .expect("box")
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect();
        for i in 0..4 {
            assert!(
                (bbox[i] - boxes.data[4 * k + i]).abs() <= 1.0,
                "box {bbox:?}"
            );
        }
        let lm = d["landmarks"].as_array().expect("landmarks");
        assert_eq!(lm.len(), 5);
        for (j, p) in lm.iter().enumerate() {
            for c in 0..2 {
                let got = p[c].as_f64().expect("number") as f32;
                assert!(
                    (got - marks.data[10 * k + 2 * j + c]).abs() <= 1.0,
                    "landmark {j}: {p}"
                );
            }
        }
    }
    let drawn = image::open(&annotated).expect("annotated image written");
    assert_eq!((drawn.width(), drawn.height()), (512, 600));
    let crop = image::open(crops.join("grace_hopper.face0.png")).expect("face crop written");
    assert_eq!((crop.width(), crop.height()), (160, 160));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn detect_cli_on_a_photo_without_faces_prints_an_empty_list() {
    let dir = temp_dir("blank");
    let blank = dir.join("blank.png");
    image::RgbImage::from_pixel(96, 64, image::Rgb([90, 140, 200]))
        .save(&blank)
        .expect("png");
    let o = wgcnn(&[
        "detect",
        "--model",
        "mtcnn",
        "--min-face-size",
        "24",
        "--json",
        blank.to_str().expect("utf-8"),
    ]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["detections"].as_array().map(Vec::len), Some(0), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory: consecutive photos of one size are detected in one submission, yet every
/// photo gets its own result, in file order, around an unreadable file (which fails alone)
/// and a photo of another size; the summary counts "1 face" / "3 faces".
#[test]
fn detect_cli_on_a_directory_batches_same_size_photos_and_keeps_file_order() {
    let photo = fixtures_dir().join("../images/grace_hopper.jpg");
    let grace = image::open(&photo).expect("grace_hopper.jpg").to_rgb8();
    let (w, h) = grace.dimensions();
    let dir = temp_dir("batch");
    grace.save(dir.join("a1.png")).expect("png");
    image::RgbImage::from_pixel(w, h, image::Rgb([90, 140, 200]))
        .save(dir.join("a2.png"))
        .expect("png");
    grace.save(dir.join("a3.png")).expect("png");
    std::fs::write(dir.join("b.png"), b"not a png").expect("write");
    grace.save(dir.join("c1.png")).expect("png");
    image::RgbImage::from_pixel(96, 64, image::Rgb([90, 140, 200]))
        .save(dir.join("d.png"))
        .expect("png");
    let o = wgcnn(&["detect", "--json", dir.to_str().expect("utf-8")]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(!o.status.success(), "b.png must fail: {err}");
    assert!(err.contains("1 of 6 images failed"), "{err}");
    assert!(err.contains("5 of 6 images: 3 faces in"), "{err}");
    let found: Vec<(String, usize)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            let name = Path::new(v["image"].as_str().expect("image"))
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, v["detections"].as_array().expect("detections").len())
        })
        .collect();
    let want = [
        ("a1.png", 1),
        ("a2.png", 0),
        ("a3.png", 1),
        ("c1.png", 1),
        ("d.png", 0),
    ];
    assert_eq!(
        found,
        want.map(|(n, k)| (n.to_string(), k)).to_vec(),
        "{out}"
    );
    let text = temp_dir("text");
    grace.save(text.join("a1.png")).expect("png");
    image::RgbImage::from_pixel(w, h, image::Rgb([90, 140, 200]))
        .save(text.join("a2.png"))
        .expect("png");
    image::RgbImage::from_pixel(96, 64, image::Rgb([90, 140, 200]))
        .save(text.join("b.png"))
        .expect("png");
    let o = wgcnn(&["detect", text.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("(1 face; 2 photos in one submission, "),
        "{err}"
    );
    assert!(
        err.contains("(0 faces; 2 photos in one submission, "),
        "{err}"
    );
    assert!(err.contains("(0 faces in "), "{err}");
    assert!(err.contains("3 of 3 images: 1 face in "), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&text);
}
