//! `--precision` as a user runs it: `wgcnn classify --precision f16` ranks the sample photo as
//! f32 does, `wgcnn bench` reports the precision, and a detector at f16 is refused with a
//! message that names the node, the op and the way out.

use std::path::Path;
use std::process::{Command, Output};

fn wgcnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgcnn"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env_remove("RUST_LOG")
        .output()
        .expect("wgcnn runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Whether the default adapter has shader-f16 (`wgcnn info --json`).
fn has_f16() -> bool {
    let (out, _) = text(&wgcnn(&["info", "--json"]));
    out.contains("\"shader_f16\": true")
}

#[test]
fn classify_at_f16_ranks_the_sample_photo_like_f32() {
    let top = |precision: &str| {
        let o = wgcnn(&[
            "-q",
            "classify",
            "--precision",
            precision,
            "-k",
            "3",
            "assets/chelsea.png",
        ]);
        let (out, err) = text(&o);
        (o.status.success(), out, err)
    };
    let (ok32, full, _) = top("f32");
    assert!(ok32);
    let (ok16, half, err) = top("f16");
    if !ok16 {
        assert!(
            err.contains("shader-f16") && err.contains("--precision f32"),
            "{err}"
        );
        return;
    }
    // The same three labels in the same order (probabilities move in the last digit).
    let labels = |s: &str| -> Vec<String> {
        s.lines()
            .skip(1)
            .map(|l| l.split_once('%').map_or("", |x| x.1).trim().to_string())
            .collect()
    };
    assert_eq!(labels(&full), labels(&half), "f32:\n{full}\nf16:\n{half}");
    assert!(half.contains("tiger cat"), "{half}");
}

/// `wgcnn bench --model <model>` at f16, one iteration and no warm-up, with `more` arguments.
fn bench_f16_once(model: &str, more: &[&str]) -> Output {
    let mut args = vec![
        "-q",
        "bench",
        "--model",
        model,
        "--precision",
        "f16",
        "--iterations",
        "1",
        "--warmup",
        "0",
    ];
    args.extend(more);
    wgcnn(&args)
}

#[test]
fn bench_reports_the_precision_and_refuses_a_detector_at_f16() {
    let o = bench_f16_once("lenet5", &["--json"]);
    let (out, err) = text(&o);
    if o.status.success() {
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["precision"], "f16", "{out}");
    } else {
        assert!(err.contains("shader-f16"), "{err}");
    }
    let o = bench_f16_once("fasterrcnn_resnet50_fpn", &["--size", "64"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    println!("{err}");
    assert!(
        err.contains("fasterrcnn_resnet50_fpn") && err.contains("--precision f32"),
        "{err}"
    );
    if has_f16() {
        assert!(
            err.contains("(op proposals)") && err.contains("no f16 kernel"),
            "{err}"
        );
    }
}
