//! The GPU context: adapter choice, device with the adapter's own limits, compiled kernels
//! (one pipeline per kernel name and override set, shared by every layer), and buffer helpers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::KernelError;
use crate::pipeline_cache::{self, CacheStatus, DiskCache};
use crate::precision::Precision;

/// How to pick the adapter and where to keep compiled pipelines. The library reads no
/// environment variable: the CLI maps `WGCNN_ADAPTER`, `WGCNN_NO_CACHE` and `WGCNN_CACHE_DIR`
/// onto these fields.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Case-insensitive substring of the adapter name (`llvmpipe`, `nvidia`); `None` takes
    /// wgpu's choice for [`ContextOptions::power_preference`].
    pub adapter: Option<String>,
    /// Backends to look at; `None`: Vulkan, Metal and DX12 (`wgpu::Backends::PRIMARY`).
    pub backends: Option<wgpu::Backends>,
    /// Which adapter wgpu prefers when none is named; `None`: high performance.
    pub power_preference: Option<wgpu::PowerPreference>,
    /// Neither read nor write the on-disk pipeline cache (see [`crate::pipeline_cache`]).
    pub no_cache: bool,
    /// Directory of the on-disk pipeline cache; default `wgcnn` in the user's cache directory.
    pub cache_dir: Option<PathBuf>,
    /// Which kernel variants plans may choose ([`Variants::Auto`]: per layer and device).
    pub variants: Variants,
    /// Forces the subgroup kernels' lane layout: 0 the 8-lane broadcast form, 1..=8 the wide
    /// form with this many groups of 8 lanes per workgroup (more is taken as 8); `None`: chosen
    /// from the adapter's subgroup sizes ([`crate::conv2d::subgroup_form`]). For tests and
    /// measurements.
    pub subgroup_groups: Option<u32>,
}

/// The kernel families plans choose from. `Auto` picks per layer and device from measurements;
/// the others force one family wherever it applies, so every path can be tested on any device
/// that has the features it needs (the network tests run under each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Variants {
    /// Per layer and device (subgroup kernels where subgroups of >= 8 lanes exist, Winograd
    /// where it pays, cooperative reductions on discrete GPUs).
    #[default]
    Auto,
    /// Only the portable kernels: no subgroup operations, no Winograd, no cooperative
    /// reductions. What a device without subgroups runs.
    Portable,
    /// Subgroup kernels wherever a layer fits one; no Winograd.
    Subgroup,
    /// Winograd F(2x2, 3x3) for every 3x3 stride-1 convolution (needs subgroups).
    Winograd,
    /// Winograd F(4x4, 3x3) for every 3x3 stride-1 convolution (needs subgroups), even where
    /// its error or its speed would not have it chosen (`conv2d::winograd::tile_for`).
    Winograd4,
    /// Cooperative (one workgroup per row) softmax and pooling reductions wherever they apply;
    /// convolutions as `Auto`.
    Cooperative,
}

impl Variants {
    /// Every forced set, for tests.
    pub const FORCED: [Variants; 5] = [
        Variants::Portable,
        Variants::Subgroup,
        Variants::Winograd,
        Variants::Winograd4,
        Variants::Cooperative,
    ];

    /// The name `--kernels` takes.
    pub fn name(self) -> &'static str {
        match self {
            Variants::Auto => "auto",
            Variants::Portable => "portable",
            Variants::Subgroup => "subgroup",
            Variants::Winograd => "winograd",
            Variants::Winograd4 => "winograd4",
            Variants::Cooperative => "cooperative",
        }
    }
}

impl std::str::FromStr for Variants {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Variants::Auto]
            .into_iter()
            .chain(Variants::FORCED)
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown kernel set {s:?}: auto, portable, subgroup, winograd, winograd4 or \
                     cooperative"
                )
            })
    }
}

/// What one binding of a kernel is. Binding 0 is always the params uniform; the storage
/// buffers follow at 1, 2, ... in the order listed in [`KernelSpec::buffers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// A kernel as the registry knows it: its WGSL source and its storage bindings.
#[derive(Clone, Copy, Debug)]
pub struct KernelSpec {
    /// File stem = entry point = pipeline label.
    pub name: &'static str,
    pub source: &'static str,
    pub buffers: &'static [Access],
}

/// A compiled kernel: pipeline plus its explicit bind group layout.
#[derive(Debug)]
pub struct Kernel {
    pub name: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub spec: KernelSpec,
    /// How its float storage bindings hold values.
    pub precision: Precision,
}

/// One recorded kernel launch: everything needed to encode it, made once at plan time.
#[derive(Debug)]
pub struct Launch {
    /// The layer it computes (`layer1.0.conv1`), for profiles.
    pub label: String,
    pub kernel: Arc<Kernel>,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
    /// Kept alive with the bind group.
    pub params: wgpu::Buffer,
    /// Where set, the launch is dispatched with `dispatch_workgroups_indirect` from this buffer
    /// (`INDIRECT` usage) at this byte offset, whose three u32 an earlier launch of the same
    /// submission wrote from counts on the GPU (kept detections, boxes); `workgroups` is then
    /// the grid's capacity, used only by the pipeline warm-up's zero-size dispatch.
    pub indirect: Option<(wgpu::Buffer, u64)>,
    /// The storage buffers bound at 1.. (handles), so [`Context::rebound`] can bind the same
    /// launch to other ranges of them.
    pub buffers: Vec<wgpu::Buffer>,
}

/// Adapter, device, queue and the kernel cache.
pub struct Context {
    /// The instance and adapter the context opened; `None` when it was handed a device
    /// ([`Context::from_wgpu`]).
    pub instance: Option<wgpu::Instance>,
    pub adapter: Option<wgpu::Adapter>,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// The kernel families plans may choose from.
    pub variants: Variants,
    /// [`ContextOptions::subgroup_groups`].
    pub subgroup_groups: Option<u32>,
    kernels: Mutex<HashMap<String, Arc<Kernel>>>,
    /// The first kernel [`Context::kernel`] could not make for f16 storage, returned by the
    /// next [`Context::take_error`] (the plan being built fails with it).
    refused: Mutex<Option<KernelError>>,
    /// wgpu's pipeline cache and its file, where enabled and supported.
    pub(crate) disk_cache: Option<DiskCache>,
    cache_status: CacheStatus,
    /// Validation and out-of-memory errors wgpu raised outside an error scope, kept until the
    /// next [`Context::take_error`] instead of wgpu's default of panicking.
    errors: Arc<Mutex<Vec<String>>>,
    /// Set by wgpu when the device is lost.
    lost: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("adapter", &self.info.name)
            .field("backend", &self.info.backend)
            .finish()
    }
}

/// Features we use when present (timestamp queries for the profiler, the pipeline cache).
const WANTED_FEATURES: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
    .union(wgpu::Features::PIPELINE_CACHE)
    .union(wgpu::Features::SUBGROUP)
    .union(wgpu::Features::SHADER_F16);

/// The largest storage binding a plan uses, whatever the device allows: kernels index f32
/// elements with u32 and some compute byte offsets, so 2 GiB keeps every index in range.
pub const MAX_BINDING_CAP: u64 = 1 << 31;

/// Limits every kernel fits in (WebGPU's defaults for compute): a device handed to
/// [`Context::from_wgpu`] must offer at least these. Workgroup memory stays within 16 KiB and
/// workgroups within 256 invocations (a CPU-only test checks every shader).
pub fn required_limits() -> wgpu::Limits {
    let d = wgpu::Limits::default();
    wgpu::Limits {
        max_compute_workgroup_storage_size: 16_384,
        max_compute_invocations_per_workgroup: 256,
        max_compute_workgroup_size_x: 256,
        max_compute_workgroup_size_y: 256,
        max_compute_workgroup_size_z: 64,
        max_compute_workgroups_per_dimension: 65_535,
        max_storage_buffers_per_shader_stage: 8,
        max_storage_buffer_binding_size: d.max_storage_buffer_binding_size,
        max_uniform_buffer_binding_size: d.max_uniform_buffer_binding_size,
        ..wgpu::Limits::downlevel_defaults()
    }
}

fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu can see, for `wgcnn info`.
pub fn enumerate_adapters() -> Vec<wgpu::AdapterInfo> {
    let instance = new_instance(wgpu::Backends::PRIMARY);
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
        .iter()
        .map(|a| a.get_info())
        .collect()
}

/// The fields of `have` below `need`, as `name: have < need`.
fn missing_limits(have: &wgpu::Limits, need: &wgpu::Limits) -> Vec<String> {
    let mut out = Vec::new();
    need.check_limits_with_fail_fn(have, false, |name, need, have| {
        out.push(format!("{name}: the device has {have}, wgcnn needs {need}"));
    });
    out
}

impl Context {
    /// Picks an adapter and opens a device with the adapter's full limits.
    pub fn new(options: &ContextOptions) -> Result<Self, KernelError> {
        let backends = options.backends.unwrap_or(wgpu::Backends::PRIMARY);
        let instance = new_instance(backends);
        let wanted = options.adapter.clone().filter(|s| !s.is_empty());
        let adapter = match &wanted {
            Some(name) => {
                let all = pollster::block_on(instance.enumerate_adapters(backends));
                let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
                let needle = name.to_lowercase();
                all.into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&needle))
                    .ok_or(KernelError::NoAdapter {
                        requested: Some(name.clone()),
                        available: names,
                    })?
            }
            None => pollster::block_on(
                instance.request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: options
                        .power_preference
                        .unwrap_or(wgpu::PowerPreference::HighPerformance),
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    apply_limit_buckets: false,
                }),
            )
            .map_err(|_| KernelError::NoAdapter {
                requested: None,
                available: Vec::new(),
            })?,
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let missing = missing_limits(&limits, &required_limits());
        if !missing.is_empty() {
            return Err(KernelError::Limits {
                adapter: info.name.clone(),
                missing,
            });
        }
        let features = adapter.features() & WANTED_FEATURES;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgcnn"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| KernelError::Device(e.to_string()))?;
        tracing::info!(adapter = %info.name, backend = ?info.backend, driver = %info.driver_info, "opened device");
        Ok(Self::assemble(
            Some(instance),
            Some(adapter),
            device,
            queue,
            options,
        ))
    }

    /// Runs on a device the application already has (a renderer's, bevy's): its features and
    /// limits are used as they are. The device must offer [`required_limits`]; subgroup kernels
    /// are used only if it was created with `Features::SUBGROUP`, the profiler's timestamps only
    /// with `TIMESTAMP_QUERY`. The engine installs no uncaptured-error handler on a device it
    /// did not create: wgpu errors there reach the application's handler.
    pub fn from_wgpu(
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: &ContextOptions,
    ) -> Result<Self, KernelError> {
        let info = device.adapter_info();
        let missing = missing_limits(&device.limits(), &required_limits());
        if !missing.is_empty() {
            return Err(KernelError::Limits {
                adapter: info.name,
                missing,
            });
        }
        Ok(Self::assemble(None, None, device, queue, options))
    }

    fn assemble(
        instance: Option<wgpu::Instance>,
        adapter: Option<wgpu::Adapter>,
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: &ContextOptions,
    ) -> Self {
        let info = device.adapter_info();
        let limits = device.limits();
        let features = device.features();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let lost = Arc::new(Mutex::new(None));
        if adapter.is_some() {
            // Our own device: keep wgpu's errors as typed errors of the call that caused them
            // instead of wgpu's default handler, which panics.
            let sink = errors.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let mut v = sink.lock().unwrap_or_else(|p| p.into_inner());
                if v.len() < 16 {
                    v.push(e.to_string());
                }
            }));
            let sink = lost.clone();
            device.set_device_lost_callback(move |reason, message| {
                *sink.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(format!("{reason:?}: {message}"));
            });
        }
        let (disk_cache, cache_status) = if options.no_cache {
            (None, CacheStatus::Disabled)
        } else if !features.contains(wgpu::Features::PIPELINE_CACHE) {
            (
                None,
                CacheStatus::Unsupported(format!(
                    "the device has no PIPELINE_CACHE feature ({:?})",
                    info.backend
                )),
            )
        } else {
            match pipeline_cache::cache_dir(options.cache_dir.as_deref()) {
                Some(dir) => pipeline_cache::open(&device, &info, &dir),
                None => (
                    None,
                    CacheStatus::Unsupported(
                        "no cache directory: set one in the options (--cache-dir) or HOME".into(),
                    ),
                ),
            }
        };
        Context {
            instance,
            adapter,
            device,
            queue,
            info,
            limits,
            features,
            variants: options.variants,
            subgroup_groups: options.subgroup_groups,
            kernels: Mutex::new(HashMap::new()),
            refused: Mutex::new(None),
            disk_cache,
            cache_status,
            errors,
            lost,
        }
    }

    /// The first wgpu error raised since the last call (validation, out of memory), or a lost
    /// device, as a typed error; `Ok` when there was none. Plans call it after building and
    /// after every run, so a GPU failure surfaces as an error of that call, not a panic.
    pub fn take_error(&self) -> Result<(), KernelError> {
        if let Some(e) = self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(e);
        }
        if let Some(reason) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(KernelError::DeviceLost(reason));
        }
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.is_empty() {
            Ok(())
        } else {
            let first = errors.remove(0);
            errors.clear();
            Err(KernelError::Gpu(first))
        }
    }

    /// The adapter's feature support (the device's where the context was handed one).
    pub fn adapter_features(&self) -> wgpu::Features {
        self.adapter
            .as_ref()
            .map(|a| a.features())
            .unwrap_or(self.features)
    }

    /// What happened to the on-disk pipeline cache when the context opened.
    pub fn pipeline_cache_status(&self) -> &CacheStatus {
        &self.cache_status
    }

    /// Writes the pipeline cache to disk if it holds anything new since it was loaded or last
    /// saved; returns the bytes written (`None`: nothing to write, or the cache is off). Plans
    /// save after compiling ([`Context::compile_pipelines`]) and the context saves when dropped.
    pub fn save_pipeline_cache(&self) -> Result<Option<usize>, KernelError> {
        match &self.disk_cache {
            Some(cache) => cache.save(),
            None => Ok(None),
        }
    }

    /// Makes the driver compile every pipeline `launches` use, now rather than at their first
    /// real dispatch (lavapipe compiles with LLVM only then): one submission holding, per
    /// distinct pipeline, its first launch dispatched over zero workgroups, which runs nothing.
    /// Then saves the pipeline cache. Returns the number of distinct pipelines.
    pub fn compile_pipelines(&self, launches: &[Launch]) -> Result<usize, KernelError> {
        let mut seen = std::collections::HashSet::new();
        let firsts: Vec<&Launch> = launches
            .iter()
            .filter(|l| seen.insert(Arc::as_ptr(&l.kernel)))
            .collect();
        if !firsts.is_empty() {
            let started = std::time::Instant::now();
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("wgcnn pipeline warm-up"),
                });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("wgcnn pipeline warm-up"),
                    timestamp_writes: None,
                });
                for l in &firsts {
                    pass.set_pipeline(&l.kernel.pipeline);
                    pass.set_bind_group(0, &l.bind_group, &[]);
                    pass.dispatch_workgroups(0, 0, 0);
                }
            }
            self.queue.submit([encoder.finish()]);
            self.wait()?;
            tracing::debug!(
                pipelines = firsts.len(),
                ms = started.elapsed().as_secs_f64() * 1e3,
                "compiled pipelines"
            );
        }
        if let Err(e) = self.save_pipeline_cache() {
            tracing::warn!("{e}");
        }
        Ok(firsts.len())
    }

    /// The largest storage binding in bytes (128 MiB on lavapipe).
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            .min(MAX_BINDING_CAP)
    }

    /// The compiled kernel for `spec` with WGSL `override` constants, made once and shared, for
    /// the storage precision of the calling thread ([`crate::precision::scope`]; f32 outside
    /// one). A kernel that cannot be made for f16 comes back compiled for f32 (unusable) and
    /// the reason from the next [`Context::take_error`], which every plan build checks.
    pub fn kernel(&self, spec: &KernelSpec, constants: &[(&str, f64)]) -> Arc<Kernel> {
        let precision = crate::precision::current();
        match self.kernel_with(spec, constants, precision) {
            Ok(k) => k,
            Err(e) => {
                self.refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
                self.kernel_with(spec, constants, Precision::F32)
                    .expect("f32 kernels are never refused")
            }
        }
    }

    /// [`Context::kernel`] for an explicit storage precision. f16 needs the device's
    /// `SHADER_F16` and a kernel in [`crate::precision::F16_KERNELS`]; its WGSL is
    /// [`crate::precision::to_f16`] of the kernel's, its labels end in `:f16`.
    pub fn kernel_with(
        &self,
        spec: &KernelSpec,
        constants: &[(&str, f64)],
        precision: Precision,
    ) -> Result<Arc<Kernel>, KernelError> {
        let key = format!("{}{constants:?}{precision}", spec.name);
        let mut cache = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cache.get(&key) {
            return Ok(k.clone());
        }
        let (source, label) = match precision {
            Precision::F32 => (
                std::borrow::Cow::Borrowed(spec.source),
                spec.name.to_string(),
            ),
            Precision::F16 => {
                if !self.features.contains(wgpu::Features::SHADER_F16) {
                    return Err(KernelError::NoF16 {
                        adapter: self.info.name.clone(),
                    });
                }
                if !crate::precision::F16_KERNELS.contains(&spec.name) {
                    return Err(KernelError::F16 {
                        kernel: spec.name.to_string(),
                        binding: "*".into(),
                        detail: "the kernel is not in precision::F16_KERNELS (its f32 buffers \
                                 may hold integers or bits)"
                            .into(),
                    });
                }
                let src = crate::precision::to_f16(spec.name, spec.source)?;
                (std::borrow::Cow::Owned(src), format!("{}:f16", spec.name))
            }
        };
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&label),
                source: wgpu::ShaderSource::Wgsl(source),
            });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, access) in spec.buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *access == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(&label),
                entries: &entries,
            });
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&label),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(spec.name),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    ..Default::default()
                },
                cache: self.disk_cache.as_ref().map(|c| &c.cache),
            });
        let kernel = Arc::new(Kernel {
            name: spec.name,
            pipeline,
            layout,
            spec: *spec,
            precision,
        });
        cache.insert(key, kernel.clone());
        Ok(kernel)
    }

    /// Records a launch of `kernel` over `workgroups` with `params` (the uniform at binding 0)
    /// and `buffers` at bindings 1.. in the kernel's order.
    pub fn launch(
        &self,
        label: &str,
        kernel: &Arc<Kernel>,
        params: &[u8],
        buffers: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) -> Launch {
        assert_eq!(
            buffers.len(),
            kernel.spec.buffers.len(),
            "kernel {}: wrong number of buffers",
            kernel.name
        );
        let params = self.buffer_init(
            label,
            params,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: params.as_entire_binding(),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &kernel.layout,
            entries: &entries,
        });
        Launch {
            label: label.to_string(),
            kernel: kernel.clone(),
            bind_group,
            workgroups,
            params,
            indirect: None,
            buffers: buffers.iter().map(|b| (*b).clone()).collect(),
        }
    }

    /// A copy of `l` (same kernel, params and grid, not indirect) whose bindings of the buffers
    /// named in `ranges` cover only `(offset, size)` bytes of them: the kernel then sees that
    /// range as the whole buffer (a block of rows of a batch). Offsets must be multiples of
    /// the device's `min_storage_buffer_offset_alignment`.
    pub fn rebound(&self, l: &Launch, ranges: &[(&wgpu::Buffer, u64, u64)]) -> Launch {
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: l.params.as_entire_binding(),
        }];
        for (i, b) in l.buffers.iter().enumerate() {
            let resource = match ranges.iter().find(|r| r.0 == b) {
                Some(&(_, offset, size)) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b,
                    offset,
                    size: wgpu::BufferSize::new(size),
                }),
                None => b.as_entire_binding(),
            };
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource,
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&l.label),
            layout: &l.kernel.layout,
            entries: &entries,
        });
        Launch {
            label: l.label.clone(),
            kernel: l.kernel.clone(),
            bind_group,
            workgroups: l.workgroups,
            params: l.params.clone(),
            indirect: None,
            buffers: l.buffers.clone(),
        }
    }

    /// A storage buffer of `size` bytes (at least 4), usable as copy source and destination.
    pub fn storage(&self, label: &str, size: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A storage buffer holding `data`.
    pub fn upload(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        self.upload_bytes(label, bytemuck::cast_slice(data))
    }

    /// A storage buffer holding `bytes` (f16 values: [`crate::precision::upload`]).
    pub fn upload_bytes(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        let bytes: &[u8] = if bytes.is_empty() { &[0u8; 4] } else { bytes };
        self.buffer_init(
            label,
            bytes,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// A storage buffer holding `data` as u32 words (packed images).
    pub fn device_buffer_u32(&self, data: &[u32]) -> wgpu::Buffer {
        let bytes: &[u8] = if data.is_empty() {
            &[0u8; 4]
        } else {
            bytemuck::cast_slice(data)
        };
        self.buffer_init(
            "u32 data",
            bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// wgpu's `create_buffer_init` without its panic: on a lost or destroyed device the new
    /// buffer cannot be mapped and wgpu's helper `expect`s it could, so building a plan there
    /// panicked instead of returning an error. Here the contents are skipped (the buffer is
    /// invalid anyway) and the loss surfaces from [`Context::take_error`] as `DeviceLost`.
    fn buffer_init(&self, label: &str, contents: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let align = wgpu::COPY_BUFFER_ALIGNMENT;
        let size = (contents.len() as u64).next_multiple_of(align).max(align);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: true,
        });
        if let Ok(mut view) = buffer.get_mapped_range_mut(..) {
            view.slice(..contents.len()).copy_from_slice(contents);
        }
        buffer.unmap();
        buffer
    }

    /// Encodes `launches` into one compute pass.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder, launches: &[Launch]) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgcnn"),
            timestamp_writes: None,
        });
        for l in launches {
            encode_launch(&mut pass, l);
        }
    }

    /// Runs `launches` in one submission and waits for them (tests and one-off work).
    pub fn run(&self, launches: &[Launch]) -> Result<(), KernelError> {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        self.encode(&mut encoder, launches);
        self.queue.submit([encoder.finish()]);
        self.wait()
    }

    /// Blocks until the queue is idle.
    pub fn wait(&self) -> Result<(), KernelError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| KernelError::Device(e.to_string()))
    }

    /// Copies the first `len` f32 of `buffer` back to the CPU (one submission).
    pub fn read(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>, KernelError> {
        let size = (len as u64 * 4).max(4);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let mut out = map_read(self, &[&staging])?;
        let mut v = out.pop().unwrap_or_default();
        v.truncate(len);
        Ok(v)
    }
}

impl Drop for Context {
    /// Saves the pipeline cache; a failure is logged, not raised.
    fn drop(&mut self) {
        if let Err(e) = self.save_pipeline_cache() {
            tracing::warn!("{e}");
        }
    }
}

/// Sets pipeline and bind group and dispatches one launch (indirectly where it says so).
pub fn encode_launch(pass: &mut wgpu::ComputePass<'_>, l: &Launch) {
    pass.set_pipeline(&l.kernel.pipeline);
    pass.set_bind_group(0, &l.bind_group, &[]);
    match &l.indirect {
        Some((args, offset)) => pass.dispatch_workgroups_indirect(args, *offset),
        None => pass.dispatch_workgroups(l.workgroups[0], l.workgroups[1], l.workgroups[2]),
    }
}

/// Maps `buffers` (MAP_READ, already written by a submitted copy), waits, and returns their
/// contents as f32.
pub fn map_read(ctx: &Context, buffers: &[&wgpu::Buffer]) -> Result<Vec<Vec<f32>>, KernelError> {
    let mut out = vec![Vec::new(); buffers.len()];
    map_read_with(ctx, buffers, |i, values| out[i] = values.to_vec())?;
    Ok(out)
}

/// Maps `buffers` as [`map_read`] does and hands each one's contents to `take(index, values)`
/// while mapped (copy them where they are needed: no allocation of ours).
pub fn map_read_with(
    ctx: &Context,
    buffers: &[&wgpu::Buffer],
    mut take: impl FnMut(usize, &[f32]),
) -> Result<(), KernelError> {
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, b) in buffers.iter().enumerate() {
        let tx = tx.clone();
        b.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send((i, r));
        });
    }
    ctx.wait()?;
    for _ in buffers {
        let (_, r) = rx.recv().map_err(|e| KernelError::Map(e.to_string()))?;
        r.map_err(|e| KernelError::Map(e.to_string()))?;
    }
    for (i, b) in buffers.iter().enumerate() {
        {
            let view = b
                .get_mapped_range(..)
                .map_err(|e| KernelError::Map(e.to_string()))?;
            take(i, bytemuck::cast_slice::<u8, f32>(&view));
        }
        b.unmap();
    }
    Ok(())
}

/// Splits `n` workgroups into a grid no axis of which exceeds `max` (65 535 by default):
/// kernels rebuild the linear id as `wg.x + wg.y * num_workgroups.x` and skip ids `>= n`.
pub fn grid(n: u32, max: u32) -> [u32; 3] {
    if n <= max {
        [n.max(1), 1, 1]
    } else {
        let y = n.div_ceil(max);
        [n.div_ceil(y), y, 1]
    }
}
