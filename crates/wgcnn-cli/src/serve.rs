//! `wgcnn serve`: the Open Inference Protocol (KServe V2) over HTTP and gRPC; see the
//! `wgcnn-serve` crate.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use wgcnn::Engine;
use wgcnn_serve::{ModelSpec, ServeConfig, Server};

#[derive(Args)]
pub struct ServeArgs {
    /// A model to serve (repeatable): a registered name (`wgcnn models`), NAME=weights.pth or
    /// NAME=weights.safetensors (detectors and segmenters need one), or an .onnx file.
    /// Default: tf_efficientnet_lite0 with its bundled weights.
    #[arg(long = "model", short, value_name = "SPEC")]
    models: Vec<String>,
    /// Serve every model file found here: *.onnx, and NAME.pth / NAME.safetensors for a
    /// registered NAME (KServe mounts the storage URI at /mnt/models).
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// Address to listen on (0.0.0.0 in a container).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// REST port; $PORT (set by KServe/Knative) when given.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    http_port: u16,
    /// gRPC port.
    #[arg(long, default_value_t = 8081)]
    grpc_port: u16,
    /// Most images per GPU submission formed by the dynamic batcher (1: no batching).
    #[arg(long, default_value_t = 8, value_name = "N")]
    max_batch_size: usize,
    /// How long the batcher waits for more requests once one arrived, in microseconds.
    #[arg(long, default_value_t = 2000, value_name = "D")]
    max_queue_delay_us: u64,
    /// Requests queued per model before new ones are refused with 503.
    #[arg(long, default_value_t = 64, value_name = "Q")]
    max_queue: usize,
    /// Largest request body (REST) or message (gRPC), in MiB; larger ones get 413.
    #[arg(long, default_value_t = 64, value_name = "M")]
    max_body_mb: usize,
    /// How classifiers and segmenters store weights and activations on the GPU: f32, or f16
    /// (half the memory and traffic, computed in f32; needs the adapter's shader-f16). Detectors
    /// and mtcnn run at f32 only and are refused with f16.
    #[arg(long, default_value = "f32", value_name = "f32|f16")]
    precision: wgcnn::Precision,
}

pub fn run(args: &ServeArgs, adapter: Option<&str>) -> Result<()> {
    let mut models: Vec<ModelSpec> = args.models.iter().map(|s| ModelSpec::parse(s)).collect();
    if let Some(dir) = &args.models_dir {
        let found = ModelSpec::scan_dir(dir)?;
        if found.is_empty() && models.is_empty() {
            bail!(
                "no model files (.onnx, .pth, .safetensors) in {}",
                dir.display()
            );
        }
        models.extend(found);
    }
    if models.is_empty() {
        models.push(ModelSpec::parse(wgcnn::DEFAULT_MODEL));
    }
    let config = ServeConfig {
        host: args.host.clone(),
        http_port: args.http_port,
        grpc_port: args.grpc_port,
        models,
        max_batch_size: args.max_batch_size.max(1),
        max_queue_delay: Duration::from_micros(args.max_queue_delay_us),
        max_queue: args.max_queue.max(1),
        max_body_bytes: args.max_body_mb.max(1) << 20,
        precision: args.precision,
    };
    let engine = Engine::new(&crate::engine_options(adapter))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = Server::start(config, engine).await?;
        // Orchestrators and scripts read where the server listens from this line.
        crate::progress::note(&format!(
            "serving on http://{} (REST) and {} (gRPC)",
            server.http_addr, server.grpc_addr
        ));
        wgcnn_serve::shutdown_signal().await;
        crate::progress::note("shutting down: finishing in-flight requests");
        server.shutdown().await?;
        Ok(())
    })
}
