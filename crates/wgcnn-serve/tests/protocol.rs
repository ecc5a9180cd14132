//! The Open Inference Protocol end to end: one server on 127.0.0.1:0 with the bundled
//! EfficientNet-Lite0 classifier and LR-ASPP (rule weights) as a segmenter, exercised over REST
//! (JSON and the binary tensor extension) and gRPC (a tonic client built from the same proto):
//! every endpoint, every bad input the issue lists (each a clear 4xx with an error message, the
//! server answering afterwards), dynamic batching and the Triton metrics.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use serde_json::json;
use wgcnn_serve::grpc::pb;
use wgcnn_serve::grpc::pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use wgcnn_serve::{ModelSpec, ServeConfig};

const MODEL: &str = "tf_efficientnet_lite0";
const MAX_BODY: usize = 4 << 20;

fn server() -> &'static Running {
    static S: OnceLock<Running> = OnceLock::new();
    S.get_or_init(|| {
        let weights = segmenter_weights("protocol-seg");
        let det = detector_weights("protocol-det");
        let running = start(ServeConfig {
            http_port: 0,
            grpc_port: 0,
            models: vec![
                ModelSpec::parse(MODEL),
                ModelSpec::parse(&format!("{SEGMENTER}={}", weights.display())),
                ModelSpec::parse(&format!("{DETECTOR}={}", det.display())),
                ModelSpec::parse("mtcnn"),
            ],
            max_batch_size: 4,
            // Long enough that concurrent requests meet in one batch even on lavapipe.
            max_queue_delay: Duration::from_millis(30),
            max_queue: 64,
            max_body_bytes: MAX_BODY,
            ..ServeConfig::default()
        });
        // Loaded (uploaded to the GPU) by now.
        let _ = std::fs::remove_file(weights);
        let _ = std::fs::remove_file(det);
        running
    })
}

fn expected() -> &'static [(usize, f32)] {
    static E: OnceLock<Vec<(usize, f32)>> = OnceLock::new();
    E.get_or_init(expected_top5)
}

fn assert_top5(got: &[(usize, f32)]) {
    let want = expected();
    let gi: Vec<usize> = got.iter().map(|g| g.0).collect();
    let wi: Vec<usize> = want.iter().map(|w| w.0).collect();
    assert_eq!(
        gi, wi,
        "top-5 indices differ from `wgcnn classify`: {got:?} vs {want:?}"
    );
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.1 - w.1).abs() < 1e-3,
            "scores differ: {got:?} vs {want:?}"
        );
    }
}

/// The server still answers a good request (after a bad one).
fn assert_still_serving() {
    let s = server();
    assert_eq!(get(s.http, "/v2/health/live").status, 200);
    let r = classify_binary(&chelsea());
    assert_eq!(r.status, 200, "{}", r.text());
}

fn classify_binary(image: &[u8]) -> Reply {
    let data = bytes_tensor(&[image]);
    post_binary(
        server().http,
        &format!("/v2/models/{MODEL}/infer"),
        &json!({
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                        "parameters": {"binary_data_size": data.len()}}],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 5, "binary_data": false}}]
        }),
        &data,
    )
}

fn error_of(r: &Reply) -> String {
    r.json()["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field: {}", r.text()))
        .to_string()
}

#[test]
fn rest_health_and_metadata_endpoints_answer_with_json() {
    let s = server();
    assert_eq!(get(s.http, "/v2/health/live").json(), json!({"live": true}));
    assert_eq!(
        get(s.http, "/v2/health/ready").json(),
        json!({"ready": true})
    );
    let meta = get(s.http, "/v2").json();
    assert_eq!(meta["name"], "wgcnn");
    assert!(
        meta["extensions"]
            .as_array()
            .unwrap()
            .contains(&json!("binary_tensor_data"))
    );
    for path in [
        format!("/v2/models/{MODEL}"),
        format!("/v2/models/{MODEL}/versions/1"),
    ] {
        let m = get(s.http, &path).json();
        assert_eq!(m["name"], MODEL);
        assert_eq!(
            m["inputs"][0],
            json!({"name": "image", "datatype": "BYTES", "shape": [-1]})
        );
        assert_eq!(m["outputs"][0]["name"], "logits");
        assert_eq!(m["outputs"][1]["name"], "probabilities");
    }
    let seg = get(s.http, &format!("/v2/models/{SEGMENTER}")).json();
    assert_eq!(
        seg["outputs"][0],
        json!({"name": "labels", "datatype": "UINT8", "shape": [-1, -1, -1]})
    );
    assert_eq!(
        get(s.http, &format!("/v2/models/{MODEL}/ready")).status,
        200
    );
    assert_eq!(
        get(s.http, &format!("/v2/models/{MODEL}/versions/1/ready")).json()["ready"],
        true
    );
    let cfg = get(s.http, &format!("/v2/models/{MODEL}/config")).json();
    assert_eq!(cfg["max_batch_size"], 4);
    assert_eq!(cfg["input"][0]["data_type"], "TYPE_STRING");
    assert_eq!(cfg["parameters"]["precision"]["string_value"], "f32");
    assert_eq!(
        cfg["dynamic_batching"]["max_queue_delay_microseconds"],
        30000
    );
}

#[test]
fn rest_unknown_model_version_and_path_are_404_with_an_error() {
    let s = server();
    for path in [
        "/v2/models/nope",
        "/v2/models/nope/ready",
        &format!("/v2/models/{MODEL}/versions/7"),
    ] {
        let r = get(s.http, path);
        assert_eq!(r.status, 404, "{path}");
        assert!(
            error_of(&r).contains("nope") || error_of(&r).contains('7'),
            "{}",
            r.text()
        );
    }
    let r = post_json(s.http, "/v2/models/nope/infer", &json!({"inputs": []}));
    assert_eq!(r.status, 404);
    assert_eq!(get(s.http, "/v3/whatever").status, 404);
}

#[test]
fn rest_binary_request_classifies_chelsea_like_wgcnn_classify() {
    let r = classify_binary(&chelsea());
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["model_name"], MODEL);
    let out = &body["outputs"][0];
    assert_eq!(out["datatype"], "BYTES");
    assert_eq!(out["shape"], json!([1, 5]));
    let items: Vec<String> = out["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_top5(&parse_classes(&items));
    assert!(
        items[0].split(':').nth(2).is_some_and(|l| !l.is_empty()),
        "label in {items:?}"
    );
}

#[test]
fn rest_binary_outputs_carry_logits_and_probabilities_after_the_json_header() {
    let s = server();
    let data = bytes_tensor(&[&chelsea()]);
    let r = post_binary(
        s.http,
        &format!("/v2/models/{MODEL}/infer"),
        &json!({
            "id": "req-7",
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": data.len()}}],
            "parameters": {"binary_data_output": true}
        }),
        &data,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let n: usize = r
        .header("inference-header-content-length")
        .expect("header length")
        .parse()
        .unwrap();
    let head: serde_json::Value = serde_json::from_slice(&r.body[..n]).unwrap();
    assert_eq!(head["id"], "req-7");
    // Every output, in the metadata's order, each followed by its bytes: logits, probabilities.
    let floats = |from: usize| -> Vec<f32> {
        r.body[from..from + 4000]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    for (i, name) in ["logits", "probabilities"].iter().enumerate() {
        let out = &head["outputs"][i];
        assert_eq!(out["name"], *name);
        assert_eq!(out["shape"], json!([1, 1000]));
        assert_eq!(out["parameters"]["binary_data_size"], 4000);
    }
    assert_eq!(r.body.len(), n + 8000);
    let (logits, probs) = (floats(n), floats(n + 4000));
    let best = |v: &[f32]| {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    assert_eq!(best(&probs), expected()[0].0);
    assert_eq!(best(&logits), expected()[0].0);
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-3);
    // The GPU's softmax of the logits is the probabilities.
    let max = logits[best(&logits)];
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    for (l, p) in logits.iter().zip(&probs) {
        assert!(((l - max).exp() / sum - p).abs() < 1e-5, "{l} -> {p}");
    }
}

#[test]
fn rest_json_request_with_base64_image_and_uint8_pixels() {
    let s = server();
    // Plain JSON: BYTES as a (base64) string; an id echoed; unknown parameters ignored.
    let b64 = base64(&chelsea());
    let r = post_json(
        s.http,
        &format!("/v2/models/{MODEL}/infer"),
        &json!({"id": "abc", "parameters": {"something_else": 1},
                "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [b64]}],
                "outputs": [{"name": "probabilities", "parameters": {"classification": 5}}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["id"], "abc");
    let items: Vec<String> = body["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().into())
        .collect();
    assert_top5(&parse_classes(&items));
    // Decoded pixels as UINT8 [N, H, W, 3], nested JSON: two images in one request.
    let img = image::load_from_memory(&chelsea()).unwrap().to_rgb8();
    let small = image::imageops::resize(&img, 40, 30, image::imageops::FilterType::Triangle);
    let px: Vec<u8> = small.into_raw();
    let nested: Vec<Vec<Vec<[u8; 3]>>> = vec![
        (0..30)
            .map(|y| (0..40)
                .map(|x| {
                    let i = (y * 40 + x) * 3;
                    [px[i], px[i + 1], px[i + 2]]
                })
                .collect())
            .collect();
        2
    ];
    let r = post_json(
        s.http,
        &format!("/v2/models/{MODEL}/infer"),
        &json!({"inputs": [{"name": "input", "datatype": "UINT8", "shape": [2, 30, 40, 3], "data": nested}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["outputs"][0]["shape"], json!([2, 1000]));
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn rest_bad_inputs_get_a_clear_4xx_and_the_server_keeps_serving() {
    let s = server();
    let path = format!("/v2/models/{MODEL}/infer");
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        (
            "malformed JSON",
            http(s.http, "POST", &path, &[], b"{\"inputs\": [}"),
            400,
            "malformed JSON",
        ),
        (
            "wrong datatype",
            post_json(
                s.http,
                &path,
                &json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [1.0]}]}),
            ),
            400,
            "datatype",
        ),
        (
            "wrong shape",
            post_json(
                s.http,
                &path,
                &json!({"inputs": [{"name": "input", "datatype": "UINT8", "shape": [2, 2], "data": [1, 2, 3, 4]}]}),
            ),
            400,
            "dimensions",
        ),
        (
            "data not matching shape",
            post_json(
                s.http,
                &path,
                &json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 2, 2], "data": [1.0]}]}),
            ),
            400,
            "bytes",
        ),
        (
            "truncated binary body",
            post_binary(
                s.http,
                &path,
                &json!({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 1000}}]}),
                &[0u8; 10],
            ),
            400,
            "truncated",
        ),
        (
            "truncated BYTES element",
            post_binary(
                s.http,
                &path,
                &json!({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 8}}]}),
                &[100, 0, 0, 0, 1, 2, 3, 4],
            ),
            400,
            "truncated",
        ),
        (
            "undecodable image",
            classify_binary(b"this is not an image"),
            400,
            "image",
        ),
        (
            "unknown input",
            post_json(
                s.http,
                &path,
                &json!({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1], "data": [1.0]}]}),
            ),
            400,
            "no input",
        ),
        (
            "unknown output",
            post_json(
                s.http,
                &path,
                &json!({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["x"]}],
                                             "outputs": [{"name": "logits2"}]}),
            ),
            400,
            "no output",
        ),
        (
            "batch over max_batch_size",
            post_binary(
                s.http,
                &path,
                &json!({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [5], "parameters": {"binary_data_size": 20}}]}),
                &[0u8; 20],
            ),
            400,
            "batch-size",
        ),
        (
            "oversized body",
            http(s.http, "POST", &path, &[], &vec![b' '; MAX_BODY + 1]),
            413,
            "larger than",
        ),
    ];
    for (what, r, code, needle) in cases {
        assert_eq!(r.status, code, "{what}: {}", r.text());
        let e = error_of(&r);
        assert!(e.contains(needle), "{what}: error {e:?} lacks {needle:?}");
    }
    assert_still_serving();
}

#[test]
fn rest_segmenter_returns_a_label_map_at_the_image_size() {
    let s = server();
    let img = image::RgbImage::from_fn(48, 32, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 7) as u8, 90])
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let data = bytes_tensor(&[&png]);
    let r = post_binary(
        s.http,
        &format!("/v2/models/{SEGMENTER}/infer"),
        &json!({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": data.len()}}],
                "outputs": [{"name": "labels", "parameters": {"binary_data": true}}]}),
        &data,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let n: usize = r
        .header("inference-header-content-length")
        .unwrap()
        .parse()
        .unwrap();
    let head: serde_json::Value = serde_json::from_slice(&r.body[..n]).unwrap();
    assert_eq!(head["outputs"][0]["shape"], json!([1, 32, 48]));
    assert_eq!(r.body.len() - n, 32 * 48);
    assert!(r.body[n..].iter().all(|&c| c < 21), "VOC classes are 0..21");
}

#[test]
fn rest_detector_returns_padded_boxes_scores_classes_and_counts() {
    let s = server();
    let meta = get(s.http, &format!("/v2/models/{DETECTOR}")).json();
    let names: Vec<&str> = meta["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["boxes", "scores", "classes", "num_detections"]);
    let data = bytes_tensor(&[&chelsea(), &chelsea()]);
    let r = post_binary(
        s.http,
        &format!("/v2/models/{DETECTOR}/infer"),
        &json!({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": data.len()}}]}),
        &data,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let out = |name: &str| {
        body["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap()
            .clone()
    };
    let counts: Vec<i64> = out("num_detections")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(counts.len(), 2);
    assert_eq!(counts[0], counts[1], "the same image twice");
    let k = out("scores")["shape"][1].as_i64().unwrap();
    assert_eq!(k, counts[0], "K is the most detections of any image");
    assert_eq!(out("boxes")["shape"], json!([2, k, 4]));
    assert_eq!(out("classes")["datatype"], "INT32");
}

#[test]
fn rest_face_detector_returns_grace_hoppers_face_with_five_landmarks() {
    let s = server();
    let meta = get(s.http, "/v2/models/mtcnn").json();
    assert_eq!(meta["platform"], "wgcnn_face_detector");
    let landmarks_meta = meta["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "landmarks")
        .cloned();
    assert_eq!(
        landmarks_meta,
        Some(json!({"name": "landmarks", "datatype": "FP32", "shape": [-1, -1, 5, 2]}))
    );
    assert_eq!(
        meta["inputs"][1],
        json!({"name": "input", "datatype": "UINT8", "shape": [-1, -1, -1, 3]})
    );
    let photo =
        std::fs::read(wgcnn::wgcnn_io::fixtures_dir().join("../images/grace_hopper.jpg")).unwrap();
    let data = bytes_tensor(&[&photo]);
    let r = post_binary(
        s.http,
        "/v2/models/mtcnn/infer",
        &json!({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": data.len()}}]}),
        &data,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let out = |name: &str| {
        body["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("no output {name}: {body}"))
            .clone()
    };
    assert_eq!(out("num_detections")["data"], json!([1]));
    assert_eq!(out("landmarks")["shape"], json!([1, 1, 5, 2]));
    let floats = |name: &str| -> Vec<f64> {
        out(name)["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    // The face `wgcnn detect` prints for her (fixture: facenet-pytorch's box within 1 px).
    let b = floats("boxes");
    let want = [174.3, 119.5, 355.5, 340.4];
    assert!(
        b.iter().zip(want).all(|(g, w)| (g - w).abs() < 1.5),
        "{b:?}"
    );
    assert!(floats("scores")[0] > 0.99);
    // Every landmark (eyes, nose, mouth corners) inside the face's box.
    for p in floats("landmarks").chunks(2) {
        assert!(
            p[0] > b[0] && p[0] < b[2] && p[1] > b[1] && p[1] < b[3],
            "{p:?} in {b:?}"
        );
    }
    // A preprocessed float tensor is refused with a message naming what the model takes.
    let r = post_json(
        s.http,
        "/v2/models/mtcnn/infer",
        &json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 2, 2], "data": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(error_of(&r).contains("UINT8"), "{}", r.text());
    assert_still_serving();
}

#[test]
fn concurrent_requests_are_batched_and_counted_in_triton_metrics() {
    let s = server();
    let before = get(s.http, "/metrics").text();
    let threads: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(|| classify_binary(&chelsea()).status))
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    let text = get(s.http, "/metrics").text();
    let value = |text: &str, name: &str| -> f64 {
        let key = format!("{name}{{model=\"{MODEL}\",version=\"1\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .unwrap_or_else(|| panic!("{key} missing in\n{text}"))
            .parse()
            .unwrap()
    };
    for name in [
        "nv_inference_request_failure",
        "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_pending_request_count",
    ] {
        value(&text, name);
    }
    let requests = value(&text, "nv_inference_request_success")
        - value(&before, "nv_inference_request_success");
    let execs = value(&text, "nv_inference_exec_count") - value(&before, "nv_inference_exec_count");
    let count = value(&text, "nv_inference_count") - value(&before, "nv_inference_count");
    assert!(
        requests >= 8.0 && count >= 8.0,
        "{requests} requests, {count} images"
    );
    // Other tests run alongside, so only bound it: 8 one-image requests in at most 4-image
    // batches with a 30 ms window must have shared GPU submissions.
    assert!(
        execs < requests,
        "no batching: {execs} executions for {requests} requests"
    );
    assert!(text.contains(
        "wgcnn_inference_batch_size_bucket{model=\"tf_efficientnet_lite0\",version=\"1\",le=\"4\"}"
    ));
}

fn grpc<T>(f: impl AsyncFnOnce(GrpcInferenceServiceClient<tonic::transport::Channel>) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server().grpc))
            .unwrap()
            .connect()
            .await
            .expect("gRPC connects");
        let client = GrpcInferenceServiceClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        f(client).await
    })
}

fn infer_request(image: &[u8], k: i64) -> pb::ModelInferRequest {
    let mut params = std::collections::HashMap::new();
    params.insert(
        "classification".to_string(),
        pb::InferParameter {
            parameter_choice: Some(pb::infer_parameter::ParameterChoice::Int64Param(k)),
        },
    );
    pb::ModelInferRequest {
        model_name: MODEL.into(),
        id: "g1".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "image".into(),
            datatype: "BYTES".into(),
            shape: vec![1],
            ..Default::default()
        }],
        outputs: vec![pb::model_infer_request::InferRequestedOutputTensor {
            name: "probabilities".into(),
            parameters: params,
        }],
        raw_input_contents: vec![bytes_tensor(&[image])],
        ..Default::default()
    }
}

#[test]
fn grpc_health_metadata_and_infer_match_rest() {
    grpc(async |mut c| {
        assert!(
            c.server_live(pb::ServerLiveRequest {})
                .await
                .unwrap()
                .into_inner()
                .live
        );
        assert!(
            c.server_ready(pb::ServerReadyRequest {})
                .await
                .unwrap()
                .into_inner()
                .ready
        );
        let meta = c
            .server_metadata(pb::ServerMetadataRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(meta.name, "wgcnn");
        let ready = c
            .model_ready(pb::ModelReadyRequest {
                name: MODEL.into(),
                version: String::new(),
            })
            .await
            .unwrap();
        assert!(ready.into_inner().ready);
        let m = c
            .model_metadata(pb::ModelMetadataRequest {
                name: MODEL.into(),
                version: "1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m.inputs[0].name, "image");
        assert_eq!(m.outputs[0].shape, vec![-1, -1]);
        let r = c
            .model_infer(infer_request(&chelsea(), 5))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.id, "g1");
        assert_eq!(r.outputs[0].datatype, "BYTES");
        assert_eq!(r.outputs[0].shape, vec![1, 5]);
        let items: Vec<String> = split(&r.raw_output_contents[0]);
        assert_top5(&parse_classes(&items));
    });
}

fn split(mut raw: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while raw.len() >= 4 {
        let n = u32::from_le_bytes(raw[..4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&raw[4..4 + n]).into_owned());
        raw = &raw[4 + n..];
    }
    out
}

#[test]
fn grpc_bad_inputs_get_invalid_argument_or_not_found() {
    grpc(async |mut c| {
        let e = c
            .model_ready(pb::ModelReadyRequest {
                name: "nope".into(),
                version: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        let mut req = infer_request(b"garbage", 5);
        req.model_name = "nope".into();
        assert_eq!(
            c.model_infer(req).await.unwrap_err().code(),
            tonic::Code::NotFound
        );
        let e = c
            .model_infer(infer_request(b"garbage", 5))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        let mut req = infer_request(&chelsea(), 5);
        req.inputs[0].datatype = "FP32".into();
        assert_eq!(
            c.model_infer(req).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let mut req = infer_request(&chelsea(), 5);
        req.raw_input_contents[0].truncate(100);
        assert_eq!(
            c.model_infer(req).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let mut req = infer_request(&chelsea(), 5);
        req.raw_input_contents.push(vec![1]);
        assert_eq!(
            c.model_infer(req).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let mut req = infer_request(&chelsea(), 5);
        req.raw_input_contents[0] = vec![0; MAX_BODY + 16];
        assert_eq!(
            c.model_infer(req).await.unwrap_err().code(),
            tonic::Code::OutOfRange
        );
        // Still serving.
        let r = c
            .model_infer(infer_request(&chelsea(), 1))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.outputs[0].shape, vec![1, 1]);
    });
}
