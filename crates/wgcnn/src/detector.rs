//! [`Detector`]: a torchvision two-stage detector (Faster R-CNN family) with its weights, run
//! entirely on the GPU: pixels → transform → backbone + FPN → RPN (top-k, decode, NMS) →
//! RoIAlign → box head → postprocess (per-class NMS) → boxes in image pixels, one submission.
//!
//! A detector graph is built for one input size (torchvision's transform resizes each image by
//! its own size), so plans are made per image size on first use and kept for the next images of
//! that size.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wgcnn_graph::{INVALID_SCORE, Tensor, WeightSource};
use wgcnn_kernels::encode_launch;
use wgcnn_kernels::preprocess::{self, PreprocessParams};
use wgcnn_models::detect::{DetectBuildOptions, DetectorConfig, DetectorInfo, LegacyDetectionKeys};

use crate::image::RgbImage;
use crate::{Engine, Error};

/// COCO's 91 category names in torchvision's label order (`__background__` first, `N/A` gaps).
pub const COCO_LABELS: &str = include_str!("../assets/coco91.txt");

/// How many plans (image sizes) a detector keeps; the least recently used goes first. Plans
/// share one copy of the weights on the GPU ([`wgcnn_exec::WeightCache`]), so a plan costs its
/// activation buffers only.
const PLAN_CACHE: usize = 4;

/// How to build a detector.
#[derive(Clone, Debug)]
pub struct DetectorOptions {
    /// A registered detector (`fasterrcnn_resnet50_fpn`, ...).
    pub model: String,
    /// A torchvision checkpoint (`.pth` or `.safetensors`).
    pub weights: PathBuf,
    /// Detections below this score are dropped (after the model's own 0.05 threshold).
    pub score_threshold: f32,
    /// Overrides of the model's configuration (`min_size`, thresholds, ...).
    pub config: Option<DetectorConfig>,
    /// Class names; `None` uses COCO's 91.
    pub labels: Option<Vec<String>>,
}

/// One detected object, box in the input image's pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub label: String,
    pub class: usize,
    pub score: f32,
    /// `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
}

struct SizedPlan {
    plan: wgcnn_exec::Plan,
    image: wgpu::Buffer,
    prepare: wgcnn_kernels::Launch,
    /// Box coordinates are multiplied by this (x, y) to return to the image's own pixels: 1
    /// unless the photo was shrunk before the network (see [`Detector::network_size`]).
    scale: [f32; 2],
    /// Held from writing the pixels until the results are read, so two threads detecting on
    /// images of one size do not overwrite each other's pixels.
    busy: Mutex<()>,
}

/// A detector ready to run on images of any size.
pub struct Detector {
    engine: Engine,
    info: &'static DetectorInfo,
    config: DetectorConfig,
    weights_path: PathBuf,
    weights: Box<dyn WeightSource + Send + Sync>,
    labels: Vec<String>,
    score_threshold: f32,
    /// Plans by image size, most recently used last.
    plans: Mutex<Vec<((usize, usize), Arc<SizedPlan>)>>,
    /// Weight buffers shared by the plans.
    gpu_weights: Arc<wgcnn_exec::WeightCache>,
}

/// Wall time of the stages of one [`Detector::detect_timed`] call.
#[derive(Clone, Copy, Debug, Default)]
pub struct DetectTimings {
    /// Building the plan for a new image size (zero when a plan was kept).
    pub plan: Duration,
    /// Uploading pixels.
    pub upload: Duration,
    /// The GPU submission (preprocess + network + postprocess) until results are mapped.
    pub gpu: Duration,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("model", &self.info.name)
            .finish()
    }
}

impl Detector {
    /// Loads the checkpoint and checks it against the architecture (no plan is made yet).
    pub fn new(engine: &Engine, options: &DetectorOptions) -> Result<Detector, Error> {
        let info = wgcnn_models::detect::find_detector(&options.model)?;
        let weights = wgcnn_io::open_weights(&options.weights)?;
        let config = options.config.unwrap_or(info.config);
        let detector = Detector {
            engine: engine.clone(),
            info,
            config,
            weights_path: options.weights.clone(),
            weights,
            labels: options
                .labels
                .clone()
                .unwrap_or_else(|| COCO_LABELS.lines().map(str::to_string).collect()),
            score_threshold: options.score_threshold,
            plans: Mutex::new(Vec::new()),
            gpu_weights: wgcnn_exec::WeightCache::new(),
        };
        // Check every key and shape now, at a small size, so a wrong checkpoint fails at load.
        let mut probe = info.graph_with(
            &DetectBuildOptions {
                batch: 1,
                height: 64,
                width: 64,
            },
            &config,
        )?;
        probe
            .bind(&LegacyDetectionKeys::new(detector.weights.as_ref()))
            .map_err(|e| Error::Weights {
                path: options.weights.clone(),
                source: e,
            })?;
        Ok(detector)
    }

    pub fn name(&self) -> &str {
        self.info.name
    }

    /// Detections in one image file.
    pub fn detect_file(&self, path: impl AsRef<Path>) -> Result<Vec<Detection>, Error> {
        self.detect(&RgbImage::open(path)?)
    }

    /// Detections in one image, best first.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Detection>, Error> {
        Ok(self.detect_timed(image)?.0)
    }

    /// [`Detector::detect`] with the time each stage took.
    pub fn detect_timed(&self, image: &RgbImage) -> Result<(Vec<Detection>, DetectTimings), Error> {
        let started = Instant::now();
        let sized = self.cached_plan(image.width, image.height)?;
        let planned = started.elapsed();
        let ctx = self.engine.context();
        let _busy = sized.busy.lock().unwrap_or_else(|p| p.into_inner());
        ctx.queue.write_buffer(
            &sized.image,
            0,
            bytemuck::cast_slice(&preprocess::pack_rgb8(&image.pixels)),
        );
        let uploaded = started.elapsed();
        let out = sized.plan.run_with(|encoder| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("image"),
                timestamp_writes: None,
            });
            encode_launch(&mut pass, &sized.prepare);
        })?;
        let timings = DetectTimings {
            plan: planned,
            upload: uploaded - planned,
            gpu: started.elapsed() - uploaded,
        };
        Ok((self.decode(&out[0].data, sized.scale), timings))
    }

    /// Bytes of GPU memory the weights take (one copy, whatever the number of plans).
    pub fn weight_bytes(&self) -> u64 {
        self.gpu_weights.bytes()
    }

    /// Image sizes with a plan kept, least recently used first.
    pub fn planned_sizes(&self) -> Vec<(usize, usize)> {
        let plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        plans.iter().map(|(k, _)| *k).collect()
    }

    /// The size the network takes a `width` x `height` photo at: the photo itself, unless its
    /// longer side exceeds twice the transform's `max_size`; then it is first shrunk on the GPU
    /// (antialiased) to that, which the transform's own resize would go far below anyway, so
    /// the network's float input stays well inside one buffer binding.
    fn network_size(&self, width: usize, height: usize) -> (usize, usize) {
        let cap = 2 * self.config.max_size;
        let long = width.max(height);
        if long <= cap {
            return (width, height);
        }
        let s = cap as f64 / long as f64;
        (
            ((width as f64 * s).round() as usize).max(1),
            ((height as f64 * s).round() as usize).max(1),
        )
    }

    /// Whether a `width` x `height` image enters the network at its own size (else it is shrunk
    /// first, which only the 8-bit path of [`Detector::detect`] does).
    pub fn runs_at_full_size(&self, width: usize, height: usize) -> bool {
        self.network_size(width, height) == (width, height)
    }

    /// Detections in an image given as a `[1, 3, H, W]` tensor in `[0, 1]` (e.g. from
    /// [`RgbImage::open_precise`]), skipping the 8-bit upload. The image must run at its own
    /// size ([`Detector::runs_at_full_size`]).
    pub fn detect_tensor(&self, image: &Tensor) -> Result<Vec<Detection>, Error> {
        let (height, width) = match image.shape.as_slice() {
            [1, 3, h, w] => (*h, *w),
            s => {
                return Err(Error::DetectorInput { shape: s.to_vec() });
            }
        };
        if !self.runs_at_full_size(width, height) {
            return Err(Error::FloatImageTooLarge {
                width,
                height,
                max: 2 * self.config.max_size,
            });
        }
        let sized = self.cached_plan(width, height)?;
        let _busy = sized.busy.lock().unwrap_or_else(|p| p.into_inner());
        let out = sized.plan.run(std::slice::from_ref(image))?;
        Ok(self.decode(&out[0].data, [1.0, 1.0]))
    }

    /// The plan for a `width` x `height` image: a kept one (moved to most recently used), or
    /// a new one, evicting the least recently used past [`PLAN_CACHE`]. The lock is held while
    /// planning so two threads never build the same plan twice.
    fn cached_plan(&self, width: usize, height: usize) -> Result<Arc<SizedPlan>, Error> {
        let key = (width, height);
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = plans.iter().position(|(k, _)| *k == key) {
            let entry = plans.remove(i);
            let sized = entry.1.clone();
            plans.push(entry);
            return Ok(sized);
        }
        let sized = Arc::new(self.plan_for(width, height)?);
        if plans.len() >= PLAN_CACHE {
            plans.remove(0);
        }
        plans.push((key, sized.clone()));
        Ok(sized)
    }

    /// The graph for one image size, bound and planned, with the launch that turns the
    /// uploaded RGBA8 pixels into its `[1, 3, H, W]` input in `[0, 1]`.
    fn plan_for(&self, width: usize, height: usize) -> Result<SizedPlan, Error> {
        let ctx = self.engine.context();
        let pixels = (width * height) as u64 * 4;
        if pixels > ctx.max_binding() {
            return Err(Error::ImageTooLarge {
                what: format!("a {width}x{height} image"),
                bytes: pixels,
                limit: ctx.max_binding(),
            });
        }
        let (net_w, net_h) = self.network_size(width, height);
        let mut graph = self.info.graph_with(
            &DetectBuildOptions {
                batch: 1,
                height: net_h,
                width: net_w,
            },
            &self.config,
        )?;
        graph
            .bind(&LegacyDetectionKeys::new(self.weights.as_ref()))
            .map_err(|e| Error::Weights {
                path: self.weights_path.clone(),
                source: e,
            })?;
        let plan = wgcnn_exec::Plan::with_weights(ctx.clone(), &graph, &self.gpu_weights)?;
        let image = ctx.storage("image pixels", pixels);
        let input = plan
            .input_buffer(0)
            .ok_or(Error::Internal("plan has no input"))?;
        let prepare = preprocess::launch(
            ctx,
            "image to [0, 1]",
            &PreprocessParams::resize_only(width, height, net_w, net_h),
            &image,
            input,
        );
        ctx.compile_pipelines(std::slice::from_ref(&prepare))?;
        Ok(SizedPlan {
            plan,
            image,
            prepare,
            scale: [width as f32 / net_w as f32, height as f32 / net_h as f32],
            busy: Mutex::new(()),
        })
    }

    /// Rows `(x1, y1, x2, y2, score, label)` → detections above the threshold.
    fn decode(&self, rows: &[f32], scale: [f32; 2]) -> Vec<Detection> {
        rows.chunks_exact(6)
            .filter(|r| r[4] != INVALID_SCORE && r[4] >= self.score_threshold)
            .map(|r| {
                let class = r[5].max(0.0) as usize;
                Detection {
                    label: self
                        .labels
                        .get(class)
                        .cloned()
                        .unwrap_or_else(|| format!("class {class}")),
                    class,
                    score: r[4],
                    bbox: [
                        r[0] * scale[0],
                        r[1] * scale[1],
                        r[2] * scale[0],
                        r[3] * scale[1],
                    ],
                }
            })
            .collect()
    }
}
