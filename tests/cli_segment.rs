//! `wgcnn segment` as a user runs it, on torchvision's LR-ASPP MobileNetV3-Large with the
//! fixtures' rule weights written to a safetensors file: on the fixture's input (a 16-bit PNG,
//! read at full precision, at its network size) `--mask` must reproduce `output.argmax`; on a
//! real photo `--mask`, `--output` and `--json` must write a class map at the photo's size, an
//! overlay and the class shares.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wgcnn::voc_color;
use wgcnn::wgcnn_io::{Fixture, fixtures_dir, save_safetensors};
use wgcnn::wgcnn_models::segment::{SegmentBuildOptions, find_segmenter};

const MODEL: &str = "lraspp_mobilenet_v3_large";
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Removes the files a test wrote when it ends, pass or fail.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgcnn-cli-segment-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// The fixture and its rule weights written under `tag` (tests run in parallel).
fn prepare(tag: &str) -> (Fixture, PathBuf) {
    prepare_model(MODEL, false, tag)
}

/// The rule weights of `model` (with its aux head's when `aux`) in a temporary safetensors file.
fn prepare_model(model: &str, aux: bool, tag: &str) -> (Fixture, PathBuf) {
    let fx = Fixture::open(
        fixtures_dir()
            .join("segment")
            .join(format!("{model}.safetensors")),
    )
    .expect("fixture");
    let graph = find_segmenter(model)
        .expect("registered")
        .graph(&SegmentBuildOptions {
            aux,
            ..SegmentBuildOptions::new(1, 64, 64)
        })
        .expect("graph");
    let weights = fx.weights_for(&graph);
    let tensors: Vec<_> = graph
        .params()
        .map(|id| {
            let key = graph.tensor(id).name.clone();
            let t = weights
                .tensor(&key)
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            (key, t)
        })
        .collect();
    let path = temp(&format!("{tag}-weights.safetensors"));
    save_safetensors(&path, &tensors, None).expect("weights written");
    (fx, path)
}

fn wgcnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgcnn"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("wgcnn runs")
}

/// A palette mask decoded back to class indices through the VOC colours.
fn mask_classes(path: &Path) -> (u32, u32, Vec<f32>) {
    let rgb = image::open(path).expect("mask written").to_rgb8();
    let classes = rgb
        .pixels()
        .map(|p| {
            (0..=255u8)
                .position(|c| voc_color(c) == p.0)
                .expect("a VOC colour") as f32
        })
        .collect();
    (rgb.width(), rgb.height(), classes)
}

#[test]
fn segment_cli_mask_reproduces_the_fixture_class_map() {
    let (fx, weights) = prepare("reproduce");
    let (image, mask) = (temp("input16.png"), temp("fixture-mask.png"));
    let _cleanup = Cleanup(vec![weights.clone(), image.clone(), mask.clone()]);
    // The normalized input back to [0, 1] pixels, stored to 1/65535.
    let input = fx.tensor("input").expect("input");
    let (h, w) = (input.shape[2], input.shape[3]);
    let mut pixels = vec![0u16; 3 * h * w];
    for c in 0..3 {
        for i in 0..h * w {
            let v = input.data[c * h * w + i] * STD[c] + MEAN[c];
            pixels[i * 3 + c] = (v * 65535.0).round() as u16;
        }
    }
    image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(w as u32, h as u32, pixels)
        .expect("buffer")
        .save(&image)
        .expect("png written");
    let o = wgcnn(&[
        "segment",
        "--model",
        MODEL,
        "--weights",
        weights.to_str().expect("utf-8"),
        "--size",
        "120",
        "--json",
        "--mask",
        mask.to_str().expect("utf-8"),
        image.to_str().expect("utf-8"),
    ]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["model"], MODEL);
    assert_eq!(v["size"], serde_json::json!([120, 160]));
    let (mw, mh, got) = mask_classes(&mask);
    assert_eq!((mw, mh), (160, 120));
    let want = fx.tensor("output.argmax").expect("argmax");
    let logits = fx.tensor("output").expect("logits");
    let plane = h * w;
    let (mut differ, mut ties) = (0, 0);
    for (p, (g, w)) in got.iter().zip(&want.data).enumerate() {
        let mut l: Vec<f32> = (0..21).map(|k| logits.data[k * plane + p]).collect();
        l.sort_by(|a, b| b.total_cmp(a));
        if l[0] - l[1] < 1e-3 {
            ties += 1;
        } else if g != w {
            differ += 1;
        }
    }
    // The JSON shares are the mask's.
    let total: f64 = v["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| {
            let class = c["class"].as_f64().expect("class") as f32;
            let n = got.iter().filter(|&&g| g == class).count();
            let f = c["fraction"].as_f64().expect("fraction");
            assert!((f - n as f64 / plane as f64).abs() < 1e-6, "{c}");
            f
        })
        .sum();
    assert!((total - 1.0).abs() < 1e-5, "shares sum to {total}");
    println!("wgcnn segment: {differ} of {plane} pixels differ away from {ties} near-ties");
    // The PNG holds the input to 1/65535 (about 7e-5 after /std), which can move a pixel whose
    // margin is just over the 1e-3 near-tie bound (measured on lavapipe: none does).
    assert!(differ * 1000 <= plane, "{differ} pixels differ");
}

#[test]
fn segment_cli_writes_mask_overlay_and_json_for_a_photo() {
    let (_, weights) = prepare("photo");
    let (mask, overlay) = (temp("chelsea-mask.png"), temp("chelsea-overlay.png"));
    let _cleanup = Cleanup(vec![weights.clone(), mask.clone(), overlay.clone()]);
    let o = wgcnn(&[
        "segment",
        "--model",
        MODEL,
        "--weights",
        weights.to_str().expect("utf-8"),
        "--json",
        "--mask",
        mask.to_str().expect("utf-8"),
        "--output",
        overlay.to_str().expect("utf-8"),
        "assets/chelsea.png",
    ]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["size"], serde_json::json!([300, 451]));
    let classes = v["classes"].as_array().expect("classes");
    assert!(!classes.is_empty());
    for c in classes {
        assert!(c["label"].is_string() && c["fraction"].as_f64().is_some_and(|f| f > 0.0));
    }
    let (mw, mh, got) = mask_classes(&mask);
    assert_eq!((mw, mh), (451, 300), "mask at the photo's size");
    assert!(got.iter().all(|&c| c < 21.0));
    let drawn = image::open(&overlay).expect("overlay written");
    assert_eq!((drawn.width(), drawn.height()), (451, 300));
}

#[test]
fn segment_cli_aux_runs_the_auxiliary_head_only_when_asked() {
    let (_, weights) = prepare_model("deeplabv3_mobilenet_v3_large", true, "aux");
    let (_, lraspp) = prepare("aux-lraspp");
    let _cleanup = Cleanup(vec![weights.clone(), lraspp.clone()]);
    let run = |model: &str, w: &Path, aux: bool| {
        let mut args = vec!["segment", "--model", model, "--size", "64", "--json"];
        args.extend(["--weights", w.to_str().expect("utf-8")]);
        if aux {
            args.push("--aux");
        }
        args.push("assets/chelsea.png");
        wgcnn(&args)
    };
    let json = |o: &Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).expect("one JSON object")
    };
    let with = json(&run("deeplabv3_mobilenet_v3_large", &weights, true));
    let without = json(&run("deeplabv3_mobilenet_v3_large", &weights, false));
    let aux = with["aux_classes"]
        .as_array()
        .expect("aux_classes with --aux");
    let total: f64 = aux
        .iter()
        .map(|c| c["fraction"].as_f64().expect("fraction"))
        .sum();
    assert!((total - 1.0).abs() < 1e-3, "aux fractions sum to {total}");
    assert_eq!(
        with["classes"], without["classes"],
        "--aux leaves the main head alone"
    );
    assert!(without.get("aux_classes").is_none());
    let o = run(MODEL, &lraspp, true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("auxiliary"), "{err}");
}

#[test]
fn segment_cli_without_weights_lists_the_checkpoints() {
    let o = wgcnn(&["segment", "assets/chelsea.png"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--weights"), "{err}");
    assert!(err.contains("deeplabv3_resnet50_coco"), "{err}");
}
