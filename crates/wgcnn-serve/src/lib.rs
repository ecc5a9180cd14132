//! `wgcnn serve`: the Open Inference Protocol (KServe V2, as Triton speaks it) over HTTP/REST
//! (axum) and gRPC (tonic), with one GPU worker and dynamic batcher per model.
//!
//! Kept out of the `wgcnn` library so tokio and the network stack stay optional. Requests are
//! parsed on tokio, images decoded on the blocking pool (overlapping the GPU work of the batch
//! before), and the blocking wgpu calls run on each model's own thread ([`batcher`]).

pub mod batcher;
pub mod grpc;
pub mod metrics;
pub mod model;
pub mod rest;
pub mod tensor;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use model::{Model, ModelSpec, Net};
pub use tensor::{InTensor, InferRequest, OutTensor, OutputRequest};

use batcher::Batcher;

/// Server name and version reported by `GET /v2` and ServerMetadata.
pub const SERVER_NAME: &str = "wgcnn";
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The protocol extensions this server implements.
pub const EXTENSIONS: &[&str] = &[
    "binary_tensor_data",
    "classification",
    "model_configuration",
];
/// Every model has one version.
pub const VERSION: &str = "1";

/// How a request failed, mapped to HTTP and gRPC status as Triton maps them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServeError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    NotFound,
    TooLarge,
    Unavailable,
    Internal,
}

impl ServeError {
    pub fn bad(m: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadRequest,
            message: m.into(),
        }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::NotFound,
            message: m.into(),
        }
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Unavailable,
            message: m.into(),
        }
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Internal,
            message: m.into(),
        }
    }
    /// Library errors on a request's data (sizes, batch) are the client's; the rest are ours.
    pub fn from_lib(e: wgcnn::Error) -> Self {
        match e {
            wgcnn::Error::Image(_)
            | wgcnn::Error::CropMismatch { .. }
            | wgcnn::Error::BatchSize { .. }
            | wgcnn::Error::ImageTooLarge { .. }
            | wgcnn::Error::DetectorInput { .. }
            | wgcnn::Error::FloatImageTooLarge { .. }
            | wgcnn::Error::SegmenterInput { .. } => Self::bad(e.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

/// What `wgcnn serve` is told.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub host: String,
    /// 0 picks a free port.
    pub http_port: u16,
    pub grpc_port: u16,
    pub models: Vec<ModelSpec>,
    /// Most images in one GPU submission (1 turns dynamic batching off).
    pub max_batch_size: usize,
    /// How long the batcher waits for more requests once one arrived.
    pub max_queue_delay: Duration,
    /// Requests queued per model before new ones get 503.
    pub max_queue: usize,
    /// Largest request body (REST) or message (gRPC).
    pub max_body_bytes: usize,
    /// How classifiers and segmenters store weights and activations on the GPU (f16 needs the
    /// adapter's shader-f16; detectors and faces are refused at f16).
    pub precision: wgcnn::Precision,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            http_port: 8080,
            grpc_port: 8081,
            models: vec![ModelSpec::parse(wgcnn::DEFAULT_MODEL)],
            max_batch_size: 8,
            max_queue_delay: Duration::from_micros(2000),
            max_queue: 64,
            max_body_bytes: 64 << 20,
            precision: wgcnn::Precision::F32,
        }
    }
}

/// A loaded model and the way to its worker.
pub struct Entry {
    pub model: Arc<Model>,
    pub batcher: Batcher,
}

/// What the handlers share.
pub struct State {
    pub models: BTreeMap<String, Entry>,
    pub ready: AtomicBool,
    pub max_body_bytes: usize,
    pub max_queue_delay_us: u64,
}

impl State {
    pub fn entry(&self, name: &str, version: &str) -> Result<&Entry, ServeError> {
        let entry = self
            .models
            .get(name)
            .ok_or_else(|| ServeError::not_found(format!("unknown model '{name}'")))?;
        if !version.is_empty() && version != VERSION {
            return Err(ServeError::not_found(format!(
                "model '{name}' has no version '{version}'"
            )));
        }
        Ok(entry)
    }

    /// Runs one request through a model: decode on the blocking pool, batch on the GPU worker,
    /// then pick the requested outputs (with the classification extension). Counts it in the
    /// model's metrics either way.
    pub async fn infer(
        &self,
        name: &str,
        version: &str,
        req: InferRequest,
    ) -> Result<Vec<(OutTensor, bool)>, ServeError> {
        let entry = self.entry(name, version)?;
        let metrics = &entry.batcher.metrics;
        let started = Instant::now();
        metrics.pending.fetch_add(1, Relaxed);
        let result = self.infer_inner(entry, req).await;
        metrics.pending.fetch_sub(1, Relaxed);
        metrics
            .request_duration_us
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        match &result {
            Ok(_) => metrics.success.fetch_add(1, Relaxed),
            Err(_) => metrics.failure.fetch_add(1, Relaxed),
        };
        if let Err(e) = &result {
            tracing::debug!(model = name, error = %e, "request failed");
        } else {
            tracing::debug!(
                model = name,
                us = started.elapsed().as_micros() as u64,
                "request done"
            );
        }
        result
    }

    async fn infer_inner(
        &self,
        entry: &Entry,
        req: InferRequest,
    ) -> Result<Vec<(OutTensor, bool)>, ServeError> {
        let known = entry.model.outputs();
        for o in &req.outputs {
            if !known.iter().any(|k| k.name == o.name) {
                return Err(ServeError::bad(format!(
                    "model {} has no output '{}'",
                    entry.model.name, o.name
                )));
            }
        }
        let model = entry.model.clone();
        let (items, req) = tokio::task::spawn_blocking(move || (model.prepare(&req), req))
            .await
            .map_err(|e| ServeError::internal(format!("decoding failed: {e}")))?;
        let outputs = entry.batcher.infer(items?).await?;
        select_outputs(&entry.model, &req, outputs)
    }
}

fn select_outputs(
    model: &Model,
    req: &InferRequest,
    outputs: Vec<OutTensor>,
) -> Result<Vec<(OutTensor, bool)>, ServeError> {
    if req.outputs.is_empty() {
        return Ok(outputs
            .into_iter()
            .map(|t| (t, req.binary_output))
            .collect());
    }
    req.outputs
        .iter()
        .map(|o| {
            let t = outputs
                .iter()
                .find(|t| t.name == o.name)
                .ok_or_else(|| ServeError::bad(format!("no output '{}'", o.name)))?;
            let t = match o.classification {
                Some(k) => classify_output(model, t, k)?,
                None => t.clone(),
            };
            Ok((t, o.binary.unwrap_or(req.binary_output)))
        })
        .collect()
}

/// Triton's classification extension: the top `k` of each row as `"score:index:label"`.
fn classify_output(model: &Model, t: &OutTensor, k: usize) -> Result<OutTensor, ServeError> {
    if t.datatype != "FP32" || t.shape.len() != 2 {
        return Err(ServeError::bad(format!(
            "output '{}' ({} {:?}) cannot be classified",
            t.name, t.datatype, t.shape
        )));
    }
    let (n, c) = (t.shape[0] as usize, t.shape[1] as usize);
    let values: Vec<f32> = t
        .raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let k = k.min(c);
    let labels = model.labels();
    let mut items = Vec::with_capacity(n * k);
    for row in values.chunks_exact(c.max(1)) {
        let mut idx: Vec<usize> = (0..row.len()).collect();
        idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        for &i in idx.iter().take(k) {
            let label = labels
                .and_then(|l| l.get(i))
                .map(String::as_str)
                .unwrap_or("");
            let s = if label.is_empty() {
                format!("{:.6}:{i}", row[i])
            } else {
                format!("{:.6}:{i}:{label}", row[i])
            };
            items.push(s.into_bytes());
        }
    }
    Ok(OutTensor::bytes(&t.name, vec![n as i64, k as i64], &items))
}

/// A running server: its bound addresses and the way to stop it.
pub struct Server {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub state: Arc<State>,
    stop: watch::Sender<bool>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    grpc: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Loads every model (on the blocking pool: plans compile for seconds), binds both ports
    /// and starts serving. Call from within a tokio runtime.
    pub async fn start(config: ServeConfig, engine: wgcnn::Engine) -> Result<Server, ServeError> {
        let specs = config.models.clone();
        let max_batch = config.max_batch_size;
        let precision = config.precision;
        let loaded = tokio::task::spawn_blocking(move || {
            specs
                .iter()
                .map(|s| {
                    let t = Instant::now();
                    let m = Model::load(&engine, s, max_batch, precision)?;
                    tracing::info!(model = %m.name, kind = m.platform(), precision = %m.precision, load_ms = t.elapsed().as_millis() as u64, "model ready");
                    Ok(m)
                })
                .collect::<Result<Vec<_>, ServeError>>()
        })
        .await
        .map_err(|e| ServeError::internal(format!("loading models: {e}")))??;
        let mut models = BTreeMap::new();
        let mut workers = Vec::new();
        for m in loaded {
            let model = Arc::new(m);
            let (batcher, handle) =
                Batcher::spawn(model.clone(), config.max_queue, config.max_queue_delay)
                    .map_err(|e| ServeError::internal(format!("worker thread: {e}")))?;
            workers.push(handle);
            models.insert(model.name.clone(), Entry { model, batcher });
        }
        let state = Arc::new(State {
            models,
            ready: AtomicBool::new(true),
            max_body_bytes: config.max_body_bytes,
            max_queue_delay_us: config.max_queue_delay.as_micros() as u64,
        });
        let bind = |port: u16| {
            let addr = format!("{}:{port}", config.host);
            async move {
                TcpListener::bind(&addr)
                    .await
                    .map_err(|e| ServeError::internal(format!("binding {addr}: {e}")))
            }
        };
        let http_listener = bind(config.http_port).await?;
        let grpc_listener = bind(config.grpc_port).await?;
        let addr = |l: &TcpListener| {
            l.local_addr()
                .map_err(|e| ServeError::internal(e.to_string()))
        };
        let (http_addr, grpc_addr) = (addr(&http_listener)?, addr(&grpc_listener)?);
        let (stop, stopped) = watch::channel(false);
        let wait = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let http = tokio::spawn(rest::serve(
            http_listener,
            state.clone(),
            wait(stopped.clone()),
        ));
        let grpc = tokio::spawn(grpc::serve(grpc_listener, state.clone(), wait(stopped)));
        tracing::info!(%http_addr, %grpc_addr, "serving the Open Inference Protocol");
        Ok(Server {
            http_addr,
            grpc_addr,
            state,
            stop,
            http,
            grpc,
            workers,
        })
    }

    /// Stops accepting, lets in-flight requests finish, then ends the model workers.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.state.ready.store(false, Relaxed);
        let _ = self.stop.send(true);
        let http = self.http.await;
        let grpc = self.grpc.await;
        // The handlers are gone: dropping the last batchers ends each worker after its queue.
        // (Only when no one else holds the state; otherwise the workers end with it.)
        if let Ok(state) = Arc::try_unwrap(self.state) {
            drop(state);
            for w in self.workers {
                let _ = tokio::task::spawn_blocking(move || w.join()).await;
            }
        }
        match (http, grpc) {
            (Ok(Ok(())), Ok(Ok(()))) => Ok(()),
            (h, g) => Err(ServeError::internal(format!(
                "server ended badly: http {h:?}, grpc {g:?}"
            ))),
        }
    }
}

/// Resolves when the process gets SIGINT or SIGTERM (Ctrl-C elsewhere).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
