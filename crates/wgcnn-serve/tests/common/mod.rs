//! Test helpers: a server on 127.0.0.1:0 running on its own thread and runtime (so every test,
//! whatever its runtime, can reach it), and a small blocking HTTP/1.1 client.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wgcnn::wgcnn_io::{Fixture, fixtures_dir, save_safetensors};
use wgcnn::wgcnn_models::detect::{DetectBuildOptions, find_detector};
use wgcnn::wgcnn_models::segment::{SegmentBuildOptions, find_segmenter};
use wgcnn_serve::{ServeConfig, Server};

pub const SEGMENTER: &str = "lraspp_mobilenet_v3_large";
pub const DETECTOR: &str = "fasterrcnn_mobilenet_v3_large_320_fpn";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn engine() -> wgcnn::Engine {
    wgcnn::Engine::new(&wgcnn::EngineOptions::default()).expect("a GPU adapter (lavapipe in CI)")
}

/// The segmentation fixture's rule weights in a temporary safetensors file.
pub fn segmenter_weights(tag: &str) -> PathBuf {
    let graph = find_segmenter(SEGMENTER)
        .expect("registered")
        .graph(&SegmentBuildOptions::new(1, 64, 64))
        .expect("graph");
    rule_weights(&format!("segment/{SEGMENTER}.safetensors"), &graph, tag)
}

/// The detection fixture's rule weights in a temporary safetensors file.
pub fn detector_weights(tag: &str) -> PathBuf {
    let graph = find_detector(DETECTOR)
        .expect("registered")
        .graph(&DetectBuildOptions {
            batch: 1,
            height: 120,
            width: 160,
        })
        .expect("graph");
    rule_weights(&format!("detect/{DETECTOR}.safetensors"), &graph, tag)
}

/// Writes the fixture rule's weights (with its stored BatchNorm statistics) of every parameter
/// of `graph` (see /work/shared/fixtures/README.md).
fn rule_weights(fixture: &str, graph: &wgcnn::Graph, tag: &str) -> PathBuf {
    let fx = Fixture::open(fixtures_dir().join(fixture)).expect("fixture");
    let weights = fx.weights_for(graph);
    let tensors: Vec<_> = graph
        .params()
        .map(|id| {
            let key = graph.tensor(id).name.clone();
            let t = weights.tensor(&key).expect("rule weight");
            (key, t)
        })
        .collect();
    let path = std::env::temp_dir().join(format!(
        "wgcnn-serve-{tag}-{}.safetensors",
        std::process::id()
    ));
    save_safetensors(&path, &tensors, None).expect("weights written");
    path
}

/// A server started on a background thread; its runtime lives as long as the test process.
pub struct Running {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    /// Stops it (drains, ends the workers) and says whether that went cleanly.
    pub stop: std::sync::Mutex<Option<std::sync::mpsc::Sender<std::sync::mpsc::Sender<bool>>>>,
}

impl Running {
    pub fn shutdown(&self) -> bool {
        let tx = self.stop.lock().unwrap().take().expect("not stopped yet");
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        tx.send(done_tx).expect("server thread alive");
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("shutdown finished")
    }
}

pub fn start(config: ServeConfig) -> Running {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let server = Server::start(config, engine())
                .await
                .expect("server starts");
            let (stop_tx, stop_rx) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<bool>>();
            tx.send((server.http_addr, server.grpc_addr, stop_tx))
                .unwrap();
            let done = tokio::task::spawn_blocking(move || stop_rx.recv().ok())
                .await
                .ok()
                .flatten();
            let clean = server.shutdown().await.is_ok();
            if let Some(done) = done {
                let _ = done.send(clean);
            }
        });
    });
    let (http, grpc, stop) = rx
        .recv_timeout(Duration::from_secs(600))
        .expect("server started");
    Running {
        http,
        grpc,
        stop: std::sync::Mutex::new(Some(stop)),
    }
}

/// An HTTP response as the tests read it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection (`Connection: close`), body written on another thread so
/// that a server refusing an oversized body early is still read.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    let mut writer = stream.try_clone().unwrap();
    let body = body.to_vec();
    let w = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if !raw.is_empty() => {
                let _ = e;
                break;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    let _ = w.join();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&raw[..eol]).trim().to_string();
        let n = usize::from_str_radix(&size, 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + n]);
        raw = &raw[eol + 2 + n + 2..];
    }
    out
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, &[], b"")
}

pub fn post_json(addr: SocketAddr, path: &str, v: &serde_json::Value) -> Reply {
    http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json".into())],
        v.to_string().as_bytes(),
    )
}

/// A POST with the binary tensor extension: JSON header, then `binary`.
pub fn post_binary(
    addr: SocketAddr,
    path: &str,
    header: &serde_json::Value,
    binary: &[u8],
) -> Reply {
    let head = header.to_string().into_bytes();
    let mut body = head.clone();
    body.extend_from_slice(binary);
    http(
        addr,
        "POST",
        path,
        &[
            ("Content-Type", "application/octet-stream".into()),
            ("Inference-Header-Content-Length", head.len().to_string()),
        ],
        &body,
    )
}

/// Length-prefixed BYTES elements.
pub fn bytes_tensor(items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in items {
        out.extend_from_slice(&(i.len() as u32).to_le_bytes());
        out.extend_from_slice(i);
    }
    out
}

pub fn chelsea() -> Vec<u8> {
    std::fs::read(root().join("assets/chelsea.png")).expect("assets/chelsea.png")
}

/// Top-5 (index, probability) of chelsea.png as `wgcnn classify` computes them (same library
/// call, same preprocessing).
pub fn expected_top5() -> Vec<(usize, f32)> {
    let c = wgcnn::Classifier::new(&engine(), &wgcnn::ClassifierOptions::default())
        .expect("classifier");
    c.classify_file(root().join("assets/chelsea.png"), 5)
        .expect("classify")
        .into_iter()
        .map(|p| (p.index, p.probability))
        .collect()
}

/// Parses Triton classification strings `"score:index:label"`.
pub fn parse_classes(items: &[String]) -> Vec<(usize, f32)> {
    items
        .iter()
        .map(|s| {
            let mut parts = s.splitn(3, ':');
            let score: f32 = parts.next().unwrap().parse().unwrap();
            let index: usize = parts.next().unwrap().parse().unwrap();
            (index, score)
        })
        .collect()
}
