//! The REST half of the protocol (axum): health, metadata, Triton's model configuration,
//! infer (JSON and the binary tensor extension) and Prometheus metrics.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::tensor::{parse_rest_request, rest_response};
use crate::{ErrorKind, SERVER_NAME, SERVER_VERSION, ServeError, State, VERSION};

type Shared = Extract<Arc<State>>;

/// Serves REST on `listener` until `stop` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(stop)
        .await
}

pub fn router(state: Arc<State>) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{model}", get(model_metadata))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(model_metadata_v),
        )
        .route("/v2/models/{model}/ready", get(model_ready))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(model_ready_v),
        )
        .route("/v2/models/{model}/config", get(model_config))
        .route(
            "/v2/models/{model}/versions/{version}/config",
            get(model_config_v),
        )
        .route("/v2/models/{model}/infer", post(infer))
        .route("/v2/models/{model}/versions/{version}/infer", post(infer_v))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(&ServeError::not_found("no such endpoint")) })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON body (axum's `json` feature would pull in serde's derive for this one line).
fn json_body(code: StatusCode, v: Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&v).unwrap_or_default(),
    )
        .into_response()
}

fn error(e: &ServeError) -> Response {
    json_body(status(e.kind), json!({"error": e.message}))
}

fn ok(v: Value) -> Response {
    json_body(StatusCode::OK, v)
}

async fn live() -> Response {
    ok(json!({"live": true}))
}

async fn ready(Extract(s): Shared) -> Response {
    let r = s.ready.load(Relaxed);
    let code = if r {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_body(code, json!({"ready": r}))
}

async fn server_metadata() -> Response {
    ok(json!({"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": crate::EXTENSIONS}))
}

fn metadata_json(s: &State, model: &str, version: &str) -> Result<Value, ServeError> {
    let m = &s.entry(model, version)?.model;
    let t = |v: Vec<crate::model::TensorMeta>| -> Vec<Value> {
        v.into_iter()
            .map(|t| json!({"name": t.name, "datatype": t.datatype, "shape": t.shape}))
            .collect()
    };
    Ok(json!({
        "name": m.name, "versions": [VERSION], "platform": m.platform(),
        "inputs": t(m.inputs()), "outputs": t(m.outputs()),
    }))
}

async fn model_metadata(Extract(s): Shared, Path(m): Path<String>) -> Response {
    metadata_json(&s, &m, "").map_or_else(|e| error(&e), ok)
}

async fn model_metadata_v(Extract(s): Shared, Path((m, v)): Path<(String, String)>) -> Response {
    metadata_json(&s, &m, &v).map_or_else(|e| error(&e), ok)
}

fn ready_json(s: &State, m: &str, v: &str) -> Response {
    match s.entry(m, v) {
        Ok(_) if s.ready.load(Relaxed) => ok(json!({"name": m, "ready": true})),
        Ok(_) => json_body(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"name": m, "ready": false}),
        ),
        Err(e) => error(&e),
    }
}

async fn model_ready(Extract(s): Shared, Path(m): Path<String>) -> Response {
    ready_json(&s, &m, "")
}

async fn model_ready_v(Extract(s): Shared, Path((m, v)): Path<(String, String)>) -> Response {
    ready_json(&s, &m, &v)
}

/// Triton's model configuration (what perf_analyzer and tritonclient's `get_model_config`
/// read). With `max_batch_size` > 0 the dims leave out the batch dimension.
fn config_json(s: &State, m: &str, v: &str) -> Result<Value, ServeError> {
    let model = &s.entry(m, v)?.model;
    let ty = |d: &str| match d {
        "BYTES" => "TYPE_STRING".to_string(),
        "FP32" => "TYPE_FP32".into(),
        other => format!("TYPE_{other}"),
    };
    let t = |v: Vec<crate::model::TensorMeta>| -> Vec<Value> {
        v.into_iter()
            .map(|t| {
                let dims: Vec<i64> = if t.shape.len() > 1 {
                    t.shape[1..].to_vec()
                } else {
                    vec![1]
                };
                json!({"name": t.name, "data_type": ty(t.datatype), "dims": dims})
            })
            .collect()
    };
    let delay = s.max_queue_delay_us;
    Ok(json!({
        "name": model.name, "platform": model.platform(), "backend": "wgcnn",
        "max_batch_size": model.max_batch,
        "input": t(model.inputs()), "output": t(model.outputs()),
        "dynamic_batching": {"max_queue_delay_microseconds": delay},
        "parameters": {"precision": {"string_value": model.precision.name()}},
    }))
}

async fn model_config(Extract(s): Shared, Path(m): Path<String>) -> Response {
    config_json(&s, &m, "").map_or_else(|e| error(&e), ok)
}

async fn model_config_v(Extract(s): Shared, Path((m, v)): Path<(String, String)>) -> Response {
    config_json(&s, &m, &v).map_or_else(|e| error(&e), ok)
}

async fn infer(
    Extract(s): Shared,
    Path(m): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_any(&s, &m, "", &headers, body).await
}

async fn infer_v(
    Extract(s): Shared,
    Path((m, v)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_any(&s, &m, &v, &headers, body).await
}

async fn infer_any(
    s: &State,
    model: &str,
    version: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // The body is read as bytes whatever its Content-Type (clients differ).
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(&ServeError {
                kind: ErrorKind::TooLarge,
                message: format!("the request body is larger than {} bytes", s.max_body_bytes),
            });
        }
        Err(r) => return error(&ServeError::bad(format!("cannot read the body: {r}"))),
    };
    let header_len = match headers.get("inference-header-content-length") {
        Some(v) => match v.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()) {
            Some(n) => Some(n),
            None => {
                return error(&ServeError::bad(
                    "Inference-Header-Content-Length is not a number",
                ));
            }
        },
        None => None,
    };
    let req = match parse_rest_request(&body, header_len) {
        Ok(r) => r,
        Err(e) => {
            // Count malformed requests against a model that exists, as Triton does.
            if let Ok(entry) = s.entry(model, version) {
                entry.batcher.metrics.failure.fetch_add(1, Relaxed);
            }
            return error(&e);
        }
    };
    let id = req.id.clone();
    match s.infer(model, version, req).await {
        Ok(outputs) => {
            let (body, header_len) = rest_response(model, VERSION, &id, &outputs);
            let mut resp = Response::new(Body::from(body));
            let h = resp.headers_mut();
            match header_len {
                Some(n) => {
                    h.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    h.insert("inference-header-content-length", HeaderValue::from(n));
                }
                None => {
                    h.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
            }
            resp
        }
        Err(e) => error(&e),
    }
}

async fn metrics(Extract(s): Shared) -> Response {
    let text = crate::metrics::render(
        s.models
            .iter()
            .map(|(name, e)| (name.as_str(), &*e.batcher.metrics)),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
