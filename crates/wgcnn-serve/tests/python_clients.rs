//! Clients no one here wrote: tritonclient (HTTP, gRPC) and the kserve SDK's V2 clients (REST,
//! gRPC), from the venv `bench/python-venv` makes, classify assets/chelsea.png on a server
//! started here and must get the same top-5 as `wgcnn classify`. Without the venv this fails
//! (it does not skip) and says how to make it.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use wgcnn_serve::{ModelSpec, ServeConfig};

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("WGCNN_SERVE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/serve-venv"));
    venv.join("bin/python")
}

#[test]
fn tritonclient_and_kserve_sdk_get_the_top5_of_wgcnn_classify() {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} is missing: create the Python client venv with `bench/python-venv` \
         (tritonclient[http,grpc] and kserve from bench/requirements-serve.txt; \
         WGCNN_SERVE_VENV=DIR picks another place)",
        python.display()
    );
    let server = start(ServeConfig {
        http_port: 0,
        grpc_port: 0,
        models: vec![ModelSpec::parse("tf_efficientnet_lite0")],
        max_batch_size: 4,
        max_queue_delay: Duration::from_millis(1),
        ..ServeConfig::default()
    });
    let mut stdout = String::new();
    for group in ["tritonclient", "kserve"] {
        let out = Command::new(&python)
            .arg(root().join("bench/serve_clients.py"))
            .args(["--clients", group])
            .args([
                "--http",
                &server.http.to_string(),
                "--grpc",
                &server.grpc.to_string(),
            ])
            .arg("--image")
            .arg(root().join("assets/chelsea.png"))
            .output()
            .expect("python runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{group} clients failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.push_str(&text);
    }
    let want = expected_top5();
    let mut clients = Vec::new();
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let client = v["client"].as_str().unwrap().to_string();
        let got: Vec<(usize, f32)> = v["top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t[0].as_u64().unwrap() as usize,
                    t[1].as_f64().unwrap() as f32,
                )
            })
            .collect();
        let gi: Vec<usize> = got.iter().map(|g| g.0).collect();
        let wi: Vec<usize> = want.iter().map(|w| w.0).collect();
        assert_eq!(gi, wi, "{client}: top-5 {got:?}, wgcnn classify {want:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g.1 - w.1).abs() < 1e-3, "{client}: {got:?} vs {want:?}");
        }
        clients.push(client);
    }
    assert_eq!(
        clients,
        [
            "tritonclient.http",
            "tritonclient.grpc",
            "kserve.rest",
            "kserve.grpc"
        ]
    );
    assert!(server.shutdown(), "clean shutdown");
}
