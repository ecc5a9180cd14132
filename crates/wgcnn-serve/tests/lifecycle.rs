//! Serving limits and lifecycle: a full queue answers 503 at once (memory stays bounded), and
//! shutdown answers the requests already in flight before the ports close.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use wgcnn_serve::{ModelSpec, ServeConfig};

#[test]
fn full_queue_refuses_with_503_and_shutdown_drains_in_flight_requests() {
    let server = start(ServeConfig {
        http_port: 0,
        grpc_port: 0,
        models: vec![ModelSpec::parse("tf_efficientnet_lite0")],
        max_batch_size: 1,
        max_queue_delay: Duration::ZERO,
        max_queue: 1,
        ..ServeConfig::default()
    });
    let http = server.http;
    let image = chelsea();
    let data = bytes_tensor(&[&image]);
    let header = json!({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                     "parameters": {"binary_data_size": data.len()}}]});
    let send = move || {
        post_binary(
            http,
            "/v2/models/tf_efficientnet_lite0/infer",
            &header,
            &data,
        )
    };
    let burst: Vec<_> = (0..12)
        .map(|_| {
            let s = send.clone();
            std::thread::spawn(s)
        })
        .collect();
    let replies: Vec<Reply> = burst.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    assert_eq!(
        ok + refused.len(),
        12,
        "only 200 or 503: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        ok >= 1 && !refused.is_empty(),
        "{ok} ok, {} refused",
        refused.len()
    );
    assert!(
        refused[0].json()["error"]
            .as_str()
            .unwrap()
            .contains("queue is full")
    );
    // Shutdown while requests are in flight: they are answered, then the port closes.
    let in_flight: Vec<_> = (0..2)
        .map(|i| {
            let s = send.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(i * 5));
                s()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    assert!(server.shutdown(), "clean shutdown");
    for t in in_flight {
        let r = t.join().unwrap();
        assert!(
            r.status == 200 || r.status == 503,
            "in-flight request got {}",
            r.status
        );
    }
    assert!(
        std::net::TcpStream::connect(http).is_err(),
        "still listening after shutdown"
    );
}
