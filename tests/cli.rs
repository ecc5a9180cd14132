//! The `wgcnn` binary as a user runs it: exit codes, what it prints, and errors on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wgcnn(args: &[&str]) -> Output {
    wgcnn_with_env(args, &[])
}

/// Runs with `RUST_LOG` cleared (a developer's setting would change what stderr holds) unless
/// `env` sets it.
fn wgcnn_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgcnn"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("wgcnn runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgcnn-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("temp file");
    p
}

#[test]
fn info_names_the_chosen_adapter() {
    let o = wgcnn(&["info", "--json"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("info --json prints JSON");
    let name = v["chosen"]["name"].as_str().expect("a chosen adapter");
    println!("chosen adapter: {name} ({})", v["chosen"]["driver_info"]);
    assert!(
        v["limits"]["max_storage_buffer_binding_size"]
            .as_u64()
            .is_some_and(|b| b > 0)
    );
}

#[test]
fn info_with_unknown_adapter_fails_listing_the_adapters() {
    let o = wgcnn(&["info", "--adapter", "no-such-gpu-xyz"]);
    let (out, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("no-such-gpu-xyz") && out.contains("adapters"),
        "{out}\n{err}"
    );
}

#[test]
fn classify_default_model_puts_a_cat_first_for_chelsea() {
    let o = wgcnn(&["classify", "assets/chelsea.png"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let first = out.lines().nth(1).expect("a first class line");
    println!("{out}");
    assert!(
        ["cat", "tabby", "lynx"].iter().any(|c| first.contains(c)),
        "first class is not a cat: {first}"
    );
}

#[test]
fn classify_json_prints_one_object_per_image() {
    let o = wgcnn(&[
        "classify",
        "--json",
        "--top",
        "3",
        "--batch",
        "2",
        "assets/chelsea.png",
        "assets/coffee.png",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["model"], "tf_efficientnet_lite0");
    assert_eq!(lines[1]["top"][0]["label"], "espresso");
    assert_eq!(lines[1]["top"].as_array().map(Vec::len), Some(3));
    assert!(err.contains("images/s"), "a summary on stderr: {err}");
}

#[test]
fn classify_skips_a_corrupt_image_and_exits_nonzero() {
    let bad = temp("broken.png", b"\x89PNG\r\n\x1a\nthis is not really a png");
    let o = wgcnn(&[
        "classify",
        "--json",
        bad.to_str().expect("utf-8"),
        "assets/coffee.png",
    ]);
    let (out, err) = text(&o);
    assert!(
        !o.status.success(),
        "a failed image makes the exit status non-zero"
    );
    assert!(
        err.contains("broken.png"),
        "the error names the file: {err}"
    );
    assert_eq!(
        out.lines().count(),
        1,
        "the good image is still classified: {out}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn classify_with_truncated_weights_names_the_file() {
    let bytes =
        std::fs::read(root().join("assets/tf_efficientnet_lite0.safetensors")).expect("asset");
    let cut = temp("cut.safetensors", &bytes[..bytes.len() / 3]);
    let o = wgcnn(&[
        "classify",
        "--weights",
        cut.to_str().expect("utf-8"),
        "assets/chelsea.png",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("cut.safetensors") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn classify_with_mismatched_weights_lists_the_keys() {
    let o = wgcnn(&[
        "classify",
        "--model",
        "resnet18",
        "--weights",
        "assets/tf_efficientnet_lite0.safetensors",
        "assets/chelsea.png",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("missing") && err.contains("conv1.weight") && err.contains("unexpected"),
        "{err}"
    );
}

#[test]
fn classify_registered_model_without_weights_explains() {
    let o = wgcnn(&["classify", "--model", "resnet50", "assets/chelsea.png"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("--weights"), "{err}");
}

#[test]
fn classify_unknown_model_lists_known_ones() {
    let o = wgcnn(&["classify", "--model", "resnet9000", "assets/chelsea.png"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("resnet9000") && err.contains("resnet50"),
        "{err}"
    );
}

#[test]
fn classify_onnx_model_prints_top5_json() {
    let onnx = root().join("../shared/fixtures/onnx/mobilenet_v2.onnx");
    let o = wgcnn(&[
        "classify",
        "--model",
        onnx.to_str().expect("utf-8"),
        "--json",
        "assets/chelsea.png",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(v["top"].as_array().map(Vec::len), Some(5));
    assert_eq!(v["model"], "mobilenet_v2");
}

#[test]
fn classify_pth_checkpoint_runs() {
    let pth = root().join("../shared/fixtures/pth/squeezenet1_1.pth");
    let o = wgcnn(&[
        "classify",
        "--model",
        "squeezenet1_1",
        "--weights",
        pth.to_str().expect("utf-8"),
        "assets/coffee.png",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.lines().count(), 6, "{out}");
}

#[test]
fn models_lists_networks_with_params_and_key_naming() {
    let o = wgcnn(&["models"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let resnet50 = out
        .lines()
        .find(|l| l.starts_with("resnet50 "))
        .expect("resnet50 listed");
    assert!(
        resnet50.contains("25,557,032") && resnet50.contains("torchvision"),
        "{resnet50}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("tf_efficientnet_lite0") && l.contains("timm"))
    );
}

#[test]
fn inspect_reports_onnx_ops() {
    let onnx = root().join("../shared/fixtures/onnx/squeezenet1_1.onnx");
    let o = wgcnn(&["inspect", onnx.to_str().expect("utf-8")]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("Conv") && out.contains("Concat"), "{out}");
}

#[test]
fn inspect_corrupt_onnx_is_an_error_not_a_panic() {
    let bad = temp("bad.onnx", b"\x08\x07\x12\xff\xff\xff\xff\x0fgarbage");
    let o = wgcnn(&["inspect", bad.to_str().expect("utf-8")]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("bad.onnx") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn quiet_classify_prints_results_and_nothing_on_stderr() {
    let o = wgcnn(&["-q", "classify", "assets/chelsea.png", "assets/coffee.png"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(err, "", "-q leaves stderr empty on success");
    assert!(
        out.contains("chelsea.png") && out.contains("espresso"),
        "{out}"
    );
}

#[test]
fn very_verbose_logs_plan_build_to_stderr_and_keeps_stdout_json() {
    // -vv after the subcommand: the flag is global.
    let o = wgcnn(&[
        "classify",
        "--json",
        "-vv",
        "assets/chelsea.png",
        "assets/coffee.png",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for event in [
        "wgcnn_exec::plan",
        "plan built",
        "launches=",
        "activation buffers allotted",
        "weights bound",
        "batch classified",
    ] {
        assert!(err.contains(event), "no {event:?} on stderr:\n{err}");
    }
    assert!(!err.contains('\x1b'), "no colors off a terminal:\n{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout holds only JSON lines"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
}

#[test]
fn rust_log_wins_over_the_quiet_flag_for_logs() {
    let o = wgcnn_with_env(
        &["-q", "classify", "assets/chelsea.png"],
        &[("RUST_LOG", "wgcnn_exec=info")],
    );
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("plan built"), "{err}");
    assert!(
        !err.contains("wgcnn_graph"),
        "only the crate RUST_LOG names: {err}"
    );
}

#[test]
fn directory_progress_off_a_terminal_is_plain_lines() {
    let dir = std::env::temp_dir().join(format!("wgcnn-cli-{}-progress", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let png = std::fs::read(root().join("assets/chelsea.png")).expect("asset");
    for i in 0..3 {
        std::fs::write(dir.join(format!("cat{i}.png")), &png).expect("temp image");
    }
    let o = wgcnn(&["classify", dir.to_str().expect("utf-8")]);
    let (out, err) = text(&o);
    std::fs::remove_dir_all(&dir).ok();
    assert!(o.status.success(), "{err}");
    assert_eq!(out.matches(".png").count(), 3, "{out}");
    assert!(
        err.contains("classify: 1/3 images (") && err.contains("ETA"),
        "a progress line after the first image: {err:?}"
    );
    assert!(
        err.contains("3 of 3 images classified"),
        "the summary: {err:?}"
    );
    assert!(
        !err.contains(['\r', '\x1b']),
        "no carriage returns or escape codes when stderr is a pipe: {err:?}"
    );
}

#[test]
fn help_documents_verbosity_and_quiet() {
    let o = wgcnn(&["--help"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for want in ["-v, --verbose", "-q, --quiet", "-vv", "RUST_LOG", "stderr"] {
        assert!(out.contains(want), "no {want:?} in --help:\n{out}");
    }
}
