//! [`Engine`]: one GPU device shared by every model planned on it.

use std::sync::Arc;

use wgcnn_graph::Graph;
use wgcnn_kernels::{Context, ContextOptions};

use crate::Error;

/// How to open the engine.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Case-insensitive substring of the adapter name; else `WGCNN_ADAPTER`; else wgpu's
    /// high-performance choice.
    pub adapter: Option<String>,
    /// Neither read nor write the on-disk pipeline cache (`--no-cache`; `WGCNN_NO_CACHE=1`
    /// does the same).
    pub no_cache: bool,
    /// Directory of the on-disk pipeline cache; default `$WGCNN_CACHE_DIR`, then `wgcnn` in the
    /// user's cache directory (`~/.cache/wgcnn` on Linux).
    pub cache_dir: Option<std::path::PathBuf>,
}

/// The GPU device and its compiled kernels.
#[derive(Clone, Debug)]
pub struct Engine {
    ctx: Arc<Context>,
}

/// One adapter as `wgcnn info` shows it.
#[derive(Clone, Debug)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
}

impl From<&wgpu::AdapterInfo> for AdapterReport {
    fn from(i: &wgpu::AdapterInfo) -> Self {
        AdapterReport {
            name: i.name.clone(),
            backend: format!("{:?}", i.backend),
            device_type: format!("{:?}", i.device_type),
            driver: i.driver.clone(),
            driver_info: i.driver_info.clone(),
        }
    }
}

/// Every adapter wgpu sees on this machine.
pub fn adapters() -> Vec<AdapterReport> {
    wgcnn_kernels::enumerate_adapters()
        .iter()
        .map(AdapterReport::from)
        .collect()
}

impl Engine {
    pub fn new(options: &EngineOptions) -> Result<Engine, Error> {
        let ctx = Context::new(&ContextOptions {
            adapter: options.adapter.clone(),
            no_cache: options.no_cache,
            cache_dir: options.cache_dir.clone(),
        })?;
        Ok(Engine { ctx: Arc::new(ctx) })
    }

    /// The chosen adapter.
    pub fn adapter_info(&self) -> AdapterReport {
        AdapterReport::from(&self.ctx.info)
    }

    /// The device limits the engine uses.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.ctx.limits
    }

    /// The optional features the engine enabled (timestamp queries).
    pub fn features(&self) -> wgpu::Features {
        self.ctx.features
    }

    /// Feature support of the adapter beyond what the engine enabled.
    pub fn adapter_features(&self) -> wgpu::Features {
        self.ctx.adapter.features()
    }

    /// What happened to the on-disk pipeline cache when the engine opened (loaded, missing,
    /// rejected, disabled, unsupported), with its file.
    pub fn pipeline_cache_status(&self) -> &wgcnn_kernels::CacheStatus {
        self.ctx.pipeline_cache_status()
    }

    /// Writes new compiled pipelines to the on-disk cache now; plans save after compiling and
    /// the engine saves when its last clone drops. Returns the bytes written, if any.
    pub fn save_pipeline_cache(&self) -> Result<Option<usize>, Error> {
        Ok(self.ctx.save_pipeline_cache()?)
    }

    /// The GPU context, for lower-level use.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Lowers a bound graph onto the device.
    pub fn plan(&self, graph: &Graph) -> Result<wgcnn_exec::Plan, Error> {
        Ok(wgcnn_exec::Plan::new(self.ctx.clone(), graph)?)
    }
}
