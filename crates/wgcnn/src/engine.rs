//! [`Engine`]: one GPU device shared by every model planned on it.

use std::sync::Arc;

use wgcnn_graph::Graph;
use wgcnn_kernels::{Context, ContextOptions, Variants};

use crate::Error;

/// How to open the engine. The library reads no environment variable; the CLI maps
/// `WGCNN_ADAPTER`, `WGCNN_NO_CACHE` and `WGCNN_CACHE_DIR` onto these fields.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Case-insensitive substring of the adapter name; `None` takes wgpu's choice for
    /// `power_preference`.
    pub adapter: Option<String>,
    /// Backends to consider; `None`: Vulkan, Metal and DX12.
    pub backends: Option<wgpu::Backends>,
    /// Which adapter wgpu prefers when none is named; `None`: high performance.
    pub power_preference: Option<wgpu::PowerPreference>,
    /// Neither read nor write the on-disk pipeline cache.
    pub no_cache: bool,
    /// Directory of the on-disk pipeline cache; default `wgcnn` in the user's cache directory
    /// (`~/.cache/wgcnn` on Linux).
    pub cache_dir: Option<std::path::PathBuf>,
    /// Kernel families plans may use: [`Variants::Auto`] chooses per layer and device; the
    /// others force one family (tests, and working around a driver bug).
    pub variants: Variants,
    /// Forces the subgroup kernels' lane layout (`WGCNN_SUBGROUP_GROUPS` in the CLI): 0 the
    /// 8-lane broadcast form, 1..=8 the wide form with that many groups of 8 lanes per
    /// workgroup; `None`: chosen from the adapter's subgroup sizes.
    pub subgroup_groups: Option<u32>,
}

impl EngineOptions {
    fn context_options(&self) -> ContextOptions {
        ContextOptions {
            adapter: self.adapter.clone(),
            backends: self.backends,
            power_preference: self.power_preference,
            no_cache: self.no_cache,
            cache_dir: self.cache_dir.clone(),
            variants: self.variants,
            subgroup_groups: self.subgroup_groups,
        }
    }
}

/// The GPU device and its compiled kernels.
///
/// `Send + Sync`, and cheap to clone (an `Arc` of one device context): wgpu's `Device` and
/// `Queue` are thread-safe, the kernel cache sits behind a mutex, and each
/// [`Plan`](wgcnn_exec::Plan) guards its own buffers, so any number of threads may plan and run
/// on one engine. GPU failures are errors of the call that hit them: a lost device makes every
/// later call on this engine return `KernelError::DeviceLost`; open a new `Engine` to go on
/// (`tests/robustness.rs` destroys a device to check both).
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
    /// Picks an adapter (by `options.adapter`, else wgpu's choice) and opens its device.
    pub fn new(options: &EngineOptions) -> Result<Engine, Error> {
        let ctx = Context::new(&options.context_options())?;
        Ok(Engine { ctx: Arc::new(ctx) })
    }

    /// Runs on a device the application already has (a renderer, bevy): plans, buffers and
    /// submissions share it. The device must offer [`wgcnn_kernels::required_limits`]; create
    /// it with `Features::SUBGROUP` for the fast kernels where the adapter has them.
    /// `options.adapter`, `backends` and `power_preference` do not apply.
    pub fn from_wgpu(
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: &EngineOptions,
    ) -> Result<Engine, Error> {
        let ctx = Context::from_wgpu(device, queue, &options.context_options())?;
        Ok(Engine { ctx: Arc::new(ctx) })
    }

    /// The wgpu device, for applications that share it.
    pub fn device(&self) -> &wgpu::Device {
        &self.ctx.device
    }

    /// The wgpu queue every run submits to.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.ctx.queue
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
        self.ctx.adapter_features()
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
