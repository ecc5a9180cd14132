//! `wgcnn bench` as a user runs it: the JSON fields, the text report, and errors on bad input.
//! No timed assertions: only that the figures exist and are consistent.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bench_lenet5_json_has_latency_statistics_and_a_profile() {
    let o = wgcnn(&[
        "bench",
        "--model",
        "lenet5",
        "--iterations",
        "3",
        "--warmup",
        "1",
        "--json",
        "--profile",
        "--profile-runs",
        "2",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&out).expect("bench --json prints one JSON object");
    let f = |k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("{k} is a number in {v}"))
    };
    println!(
        "lenet5: median {:.3} ms, min {:.3} ms, p90 {:.3} ms, plan {:.1} ms, first run {:.1} ms, {} launches",
        f("median_ms"),
        f("min_ms"),
        f("p90_ms"),
        f("plan_ms"),
        f("first_run_ms"),
        v["launches"]
    );
    assert_eq!(v["model"], "lenet5");
    assert_eq!(v["input_shape"], serde_json::json!([1, 1, 32, 32]));
    assert_eq!(v["samples_ms"].as_array().map(Vec::len), Some(3));
    assert!(
        f("min_ms") <= f("median_ms")
            && f("median_ms") <= f("p90_ms")
            && f("p90_ms") <= f("max_ms")
    );
    assert!(f("images_per_s") > 0.0 && f("gflop_per_s") > 0.0 && f("plan_ms") >= 0.0);
    assert!(v["adapter"]["name"].as_str().is_some_and(|s| !s.is_empty()));
    let launches = v["launches"].as_u64().expect("launches");
    let p = &v["profile"];
    let layers = p["layers"].as_array().expect("profile.layers");
    let launched: u64 = layers.iter().filter_map(|l| l["launches"].as_u64()).sum();
    assert_eq!(launched, launches, "every launch lands in one layer");
    assert!(
        layers
            .iter()
            .any(|l| l["name"] == "conv1" && l["flops"].as_u64().is_some_and(|f| f > 0))
    );
    let share: f64 = p["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .filter_map(|c| c["share"].as_f64())
        .sum();
    assert!(
        (share - 1.0).abs() < 1e-6 || share == 0.0,
        "shares sum to {share}"
    );
}

#[test]
fn bench_text_report_lists_layers_and_categories() {
    let o = wgcnn(&[
        "bench",
        "--model",
        "squeezenet1_1",
        "--size",
        "64",
        "--iterations",
        "2",
        "--profile",
        "--top",
        "5",
    ]);
    let (out, err) = text(&o);
    println!("{out}");
    assert!(o.status.success(), "{err}");
    for want in [
        "median",
        "images/s",
        "GFLOP/s",
        "first run",
        "launches per run",
        "time by category:",
        "conv",
        "... ",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(err.contains("timed runs"), "progress goes to stderr: {err}");
}

#[test]
fn bench_rejects_a_zero_size_and_an_unknown_model() {
    let o = wgcnn(&["bench", "--model", "lenet5", "--size", "0x32"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("positive"), "{err}");
    let o = wgcnn(&["bench", "--model", "no_such_net"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("resnet50"), "lists the known models: {err}");
}
