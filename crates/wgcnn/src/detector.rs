//! [`Detector`]: a torchvision two-stage detector (Faster R-CNN family) with its weights, run
//! entirely on the GPU: pixels → transform → backbone + FPN → RPN (top-k, decode, NMS) →
//! RoIAlign → box head → postprocess (per-class NMS) → boxes in image pixels, one submission.
//!
//! torchvision's transform resizes every image to a network size set by `min_size`/`max_size`,
//! so a detector is planned in two parts: a small front per image size (8-bit pixels to [0, 1],
//! normalize, bilinear resize; [`wgcnn_models::detect::transform::front_graph`]) and the network
//! per resized size ([`wgcnn_models::detect::Front::Resized`]), which every image size that
//! resizes to it shares (all 4:3 photos, whatever their resolution). Both run in one submission,
//! the front's output copied into the network's input on the GPU. The most recently used plans
//! are kept; the network plans share one copy of the weights.
//!
//! Mask R-CNN adds a third part per photo size, the back: its network graph ends at the mask
//! logits (a graph shared by photo sizes does not know their frame), and the back scales the
//! detections to the photo (`ScaleBoxes`) and pastes their masks there (`PasteMasks`), in the
//! same submission, thresholds them at 0.5 and packs them 32 pixels a word (`MaskBits`); only
//! the boxes and those bits are read back, and each mask is kept as COCO RLE ([`Mask`]).
//!
//! Keypoint R-CNN decodes its keypoints in the network (`KeypointDecode`, in the resized frame
//! its boxes come out in); they are read back with the boxes (17 x 3 floats a detection) and
//! scaled to the photo as the boxes are.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wgcnn_exec::Plan;
use wgcnn_graph::{GraphBuilder, INVALID_SCORE, Op, Tensor, WeightSource};
use wgcnn_kernels::encode_launch;
use wgcnn_kernels::preprocess::{self, PreprocessParams};
use wgcnn_models::detect::{DetectBuildOptions, DetectorConfig, DetectorInfo, LegacyDetectionKeys};

use crate::image::RgbImage;
use crate::lru::Lru;
use crate::rle::{CocoRle, RleError};
use crate::{Engine, Error};

/// COCO's 91 category names in torchvision's label order (`__background__` first, `N/A` gaps).
pub const COCO_LABELS: &str = include_str!("../assets/coco91.txt");

/// COCO's 17 person keypoint names in torchvision's (and COCO's) order, one a line: `nose`,
/// `left_eye`, ..., `right_ankle`; the order of [`Detection::keypoints`].
pub const COCO_PERSON_KEYPOINTS: &str = include_str!("../assets/coco_person_keypoints.txt");

/// COCO's person skeleton (`person_keypoints` category `skeleton`, made 0-based): the pairs of
/// [`COCO_PERSON_KEYPOINTS`] indices joined by a line, for [`crate::draw::draw_keypoints`].
pub const COCO_PERSON_SKELETON: [(usize, usize); 19] = [
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
];

/// How many network plans (resized sizes) a detector keeps; the least recently used goes first.
/// They share one copy of the weights on the GPU ([`wgcnn_exec::WeightCache`]), so a plan costs
/// its activation buffers only.
const PLAN_CACHE: usize = 4;
/// How many fronts (image sizes) a detector keeps: each is a few kernels and the image buffers.
const FRONT_CACHE: usize = 16;

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
    /// The instance mask at the photo's size (Mask R-CNN models). `None` for box-only models,
    /// and past the first detections (best first) whose pasted f32 probabilities fit in one
    /// buffer binding on the GPU: all 100 up to 640x480 on a 128 MiB binding, 16 at 1920x1080.
    pub mask: Option<Mask>,
    /// `[x, y, score]` per keypoint in the photo's pixels, in [`COCO_PERSON_KEYPOINTS`] order
    /// (Keypoint R-CNN models; `None` for the others). The score is the keypoint's heatmap
    /// logit (torchvision's `keypoints_scores`), not a probability.
    pub keypoints: Option<Vec<[f32; 3]>>,
}

/// A binary instance mask (mask probability > 0.5, torchvision's threshold) at the photo's
/// size, kept as COCO's compressed RLE: a few hundred bytes instead of one per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    pub rle: CocoRle,
    /// Set pixels.
    pub area: u64,
}

impl Mask {
    /// A row-major `height` x `width` mask (nonzero = set).
    pub fn from_pixels(pixels: &[u8], height: usize, width: usize) -> Mask {
        Mask {
            rle: CocoRle::encode(pixels, height, width),
            area: pixels.iter().filter(|&&v| v != 0).count() as u64,
        }
    }

    /// `(width, height)`.
    pub fn size(&self) -> (usize, usize) {
        (self.rle.size[1], self.rle.size[0])
    }

    /// The pixels, row-major, `true` = set (for [`crate::draw::blend_mask`]).
    pub fn pixels(&self) -> Result<Vec<bool>, RleError> {
        Ok(self.rle.decode()?.into_iter().map(|v| v != 0).collect())
    }
}

/// What runs per image size before the network: pixels to [0, 1] (shrinking huge photos), then
/// torchvision's normalize and resize to the network size.
struct FrontPlan {
    /// The normalize + resize graph, input `[1, 3, h, w]` at the (possibly shrunk) photo size.
    plan: Plan,
    /// The photo's RGBA8 pixels.
    image: wgpu::Buffer,
    /// Pixels to the front's input.
    prepare: wgcnn_kernels::Launch,
    /// `(width, height)` of the network input (torchvision's resized size).
    resized: (usize, usize),
    /// torchvision's `resize_boxes` factors `[h, w]` from the resized size back to the front's
    /// input, then `[x, y]` factors from there to the photo (1 unless the photo was shrunk first,
    /// see [`Detector::network_size`]).
    box_scale: [f32; 2],
    shrink: [f32; 2],
    /// `(width, height)` of the photo.
    photo: (usize, usize),
    /// Mask R-CNN's paste into the front's input frame (see [`Detector::back_for`]).
    back: Option<BackPlan>,
    /// Held from writing the pixels until the results are read, so two threads detecting on
    /// images of one size do not overwrite each other's pixels.
    busy: Mutex<()>,
}

/// What runs after a Mask R-CNN network for one photo size: the detections scaled to the
/// front's input frame (torchvision's `resize_boxes`) and the first `rows` detections' masks
/// pasted there (`paste_masks_in_image`) and bit-packed; the rows and the bits are read back,
/// the network's mask logits and the probabilities stay on the GPU.
struct BackPlan {
    /// Inputs `detections [1, D, 6]`, `mask_rows [1, rows, 6]`, `mask_logits [rows, K, M, M]`
    /// (prefixes of the network's outputs); outputs the scaled detections `[1, D, 6]` and the
    /// masks as bits `[1, rows, ceil(h * w / 32)]` (u32 words in f32 storage).
    plan: Plan,
    rows: usize,
    /// `(width, height)` of the pasted masks: the front's input.
    size: (usize, usize),
}

/// A detector ready to run on images of any size.
///
/// `Send + Sync`: threads may share one detector. Plans are looked up under short-lived locks;
/// a photo size's front is held from writing its pixels until its results are read, and a
/// network plan serializes its runs, so concurrent calls on the same sizes take turns, other
/// sizes run side by side, and results are bit-identical to one thread's
/// (`tests/robustness.rs`).
pub struct Detector {
    engine: Engine,
    info: &'static DetectorInfo,
    config: DetectorConfig,
    weights_path: PathBuf,
    weights: Box<dyn WeightSource + Send + Sync>,
    labels: Vec<String>,
    score_threshold: f32,
    /// Fronts by photo size `(width, height)`.
    fronts: Mutex<Lru<(usize, usize), FrontPlan>>,
    /// Network plans by resized size `(width, height)`.
    networks: Mutex<Lru<(usize, usize), Plan>>,
    /// Weight buffers shared by the network plans.
    gpu_weights: Arc<wgcnn_exec::WeightCache>,
    /// The network's `roi_heads.mask_logits` shape `[D, K, M, M]` for Mask R-CNN models.
    mask_logits: Option<[usize; 4]>,
    /// Keypoints per detection for Keypoint R-CNN models (the network's second output
    /// `[1, D, J, 3]`).
    keypoints: Option<usize>,
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
        let mut detector = Detector {
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
            fronts: Mutex::new(Lru::new(FRONT_CACHE)),
            networks: Mutex::new(Lru::new(PLAN_CACHE)),
            gpu_weights: wgcnn_exec::WeightCache::new(),
            mask_logits: None,
            keypoints: None,
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
        detector.mask_logits = probe
            .find("roi_heads.mask_logits")
            .and_then(|id| <[usize; 4]>::try_from(probe.shape(id)).ok());
        detector.keypoints = probe
            .find("keypoints")
            .and_then(|id| probe.shape(id).get(2).copied());
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
        let (front, network) = self.plans_for(image.width, image.height)?;
        let planned = started.elapsed();
        let ctx = self.engine.context();
        let _busy = front.busy.lock().unwrap_or_else(|p| p.into_inner());
        ctx.queue.write_buffer(
            &front.image,
            0,
            bytemuck::cast_slice(&preprocess::pack_rgb8(&image.pixels)),
        );
        let uploaded = started.elapsed();
        let dets = self.run(&front, &network, |encoder| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("image"),
                timestamp_writes: None,
            });
            encode_launch(&mut pass, &front.prepare);
        })?;
        let timings = DetectTimings {
            plan: planned,
            upload: uploaded - planned,
            gpu: started.elapsed() - uploaded,
        };
        Ok((dets, timings))
    }

    /// One submission: `prepare` (the pixels into the front's input), the front, the network
    /// and, for Mask R-CNN, the back; then the detections decoded.
    fn run(
        &self,
        front: &FrontPlan,
        network: &Plan,
        prepare: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<Vec<Detection>, Error> {
        let Some(back) = &front.back else {
            let out = network.run_with(|encoder| {
                prepare(encoder);
                Self::encode_front(encoder, front, network);
            })?;
            let keypoints = self
                .keypoints
                .zip(out.get(1))
                .map(|(j, k)| (j, &k.data[..]));
            return Ok(self.decode(&out[0].data, front, None, keypoints));
        };
        // Submissions run in queue order, so the network's outputs are copied into this
        // photo size's back before another submission can run the (shared) network again.
        let out = back.plan.run_with(|encoder| {
            prepare(encoder);
            Self::encode_front(encoder, front, network);
            network.encode(encoder);
            let shapes = back.plan.input_shapes();
            let sources = [0, 0, 1];
            for (i, (shape, from)) in shapes.iter().zip(sources).enumerate() {
                if let (Some(from), Some(to)) =
                    (network.output_buffer(from), back.plan.input_buffer(i))
                {
                    let bytes = shape.iter().product::<usize>() * 4;
                    encoder.copy_buffer_to_buffer(from, 0, to, 0, bytes as u64);
                }
            }
        })?;
        let [rows, masks] = out.as_slice() else {
            return Err(Error::Internal("mask back plan has two outputs"));
        };
        Ok(self.decode(&rows.data, front, Some((back, &masks.data)), None))
    }

    /// Records the front's normalize + resize and the copy of its output into the network's
    /// input: the image never leaves the GPU.
    fn encode_front(encoder: &mut wgpu::CommandEncoder, front: &FrontPlan, network: &Plan) {
        front.plan.encode(encoder);
        if let (Some(from), Some(to)) = (front.plan.output_buffer(0), network.input_buffer(0)) {
            let (w, h) = front.resized;
            encoder.copy_buffer_to_buffer(from, 0, to, 0, (3 * w * h * 4) as u64);
        }
    }

    /// Bytes of GPU memory the weights take (one copy, whatever the number of plans).
    pub fn weight_bytes(&self) -> u64 {
        self.gpu_weights.bytes()
    }

    /// Network input sizes `(width, height)` (after torchvision's resize) with a plan kept,
    /// least recently used first.
    pub fn planned_sizes(&self) -> Vec<(usize, usize)> {
        self.networks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
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
        let (front, network) = self.plans_for(width, height)?;
        let _busy = front.busy.lock().unwrap_or_else(|p| p.into_inner());
        let input = front
            .plan
            .input_buffer(0)
            .ok_or(Error::Internal("front plan has no input"))?;
        self.engine
            .context()
            .queue
            .write_buffer(input, 0, bytemuck::cast_slice(&image.data));
        self.run(&front, &network, |_| {})
    }

    /// The front for a `width` x `height` photo and the network plan for its resized size, kept
    /// ones or new ones (evicting the least recently used). The locks are held while planning so
    /// two threads never build the same plan twice.
    fn plans_for(&self, width: usize, height: usize) -> Result<(Arc<FrontPlan>, Arc<Plan>), Error> {
        let front = self
            .fronts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_try((width, height), || self.front_for(width, height))?;
        let network = self
            .networks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_try(front.resized, || self.network_for(front.resized))?;
        Ok((front, network))
    }

    /// The network for images normalized and resized to `(width, height)`, bound and planned
    /// with the detector's shared weights.
    fn network_for(&self, (width, height): (usize, usize)) -> Result<Plan, Error> {
        let mut graph = self.info.network_graph(
            &DetectBuildOptions {
                batch: 1,
                height,
                width,
            },
            &self.config,
        )?;
        graph
            .bind(&LegacyDetectionKeys::new(self.weights.as_ref()))
            .map_err(|e| Error::Weights {
                path: self.weights_path.clone(),
                source: e,
            })?;
        let ctx = self.engine.context().clone();
        Ok(Plan::with_weights(ctx, &graph, &self.gpu_weights)?)
    }

    /// The front for a `width` x `height` photo: the upload buffer, the launch that turns its
    /// RGBA8 pixels into a `[1, 3, H, W]` image in `[0, 1]` (shrunk first if huge), and the
    /// normalize + resize plan to the network size.
    fn front_for(&self, width: usize, height: usize) -> Result<FrontPlan, Error> {
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
        let (graph, sizes) =
            wgcnn_models::detect::transform::front_graph(1, net_h, net_w, &self.config).map_err(
                |reason| wgcnn_models::ModelError::InvalidOptions {
                    model: self.info.name.to_string(),
                    reason,
                },
            )?;
        let plan = self.engine.plan(&graph)?;
        let resized = (sizes.resized[1], sizes.resized[0]);
        let box_scale = sizes.box_scale();
        let back = match self.mask_logits {
            Some(logits) => Some(self.back_for(logits, (net_w, net_h), box_scale)?),
            None => None,
        };
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
        Ok(FrontPlan {
            plan,
            image,
            prepare,
            resized,
            box_scale,
            shrink: [width as f32 / net_w as f32, height as f32 / net_h as f32],
            photo: (width, height),
            back,
            busy: Mutex::new(()),
        })
    }

    /// The back of a Mask R-CNN photo size whose front takes `(width, height)`: `ScaleBoxes` to
    /// that frame, then `PasteMasks` there for the first [`Detector::mask_rows`] detections.
    fn back_for(
        &self,
        [d, k, m, _]: [usize; 4],
        (width, height): (usize, usize),
        box_scale: [f32; 2],
    ) -> Result<BackPlan, Error> {
        let rows = self.mask_rows(width, height)?.min(d);
        let mut b = GraphBuilder::new();
        let all = b.input("detections", &[1, d, 6]);
        let first = b.input("mask_rows", &[1, rows, 6]);
        let logits = b.input("mask_logits", &[rows, k, m, m]);
        let scale = Op::ScaleBoxes { scale: box_scale };
        let scaled = b.node("detections.scaled", scale.clone(), &[all])?;
        let boxes = b.node("mask_rows.scaled", scale, &[first])?;
        let paste = Op::PasteMasks {
            size: [height, width],
            padding: 1,
        };
        let masks = b.node("masks", paste, &[logits, boxes])?;
        // torchvision's 0.5 threshold on the GPU: one bit a pixel is read back.
        let bits = b.node("masks.bits", Op::MaskBits { threshold: 0.5 }, &[masks])?;
        b.output(scaled);
        b.output(bits);
        Ok(BackPlan {
            plan: self.engine.plan(&b.finish())?,
            rows,
            size: (width, height),
        })
    }

    /// How many detections (best first) get a mask on a photo whose front takes `width` x
    /// `height`: as many as the pasted f32 probabilities fit in one buffer binding (all 100 up
    /// to 640x480 on a 128 MiB binding; 16 at 1920x1080).
    fn mask_rows(&self, width: usize, height: usize) -> Result<usize, Error> {
        let limit = self.engine.context().max_binding();
        let one = (width * height) as u64 * 4;
        if one > limit {
            return Err(Error::ImageTooLarge {
                what: format!("one {width}x{height} instance mask"),
                bytes: one,
                limit,
            });
        }
        Ok((limit / one) as usize)
    }

    /// Rows `(x1, y1, x2, y2, score, label)` → detections above the threshold in the photo's
    /// pixels. Without a back the rows are in the resized image's pixels: torchvision's
    /// `resize_boxes` (f32 factors, as its `ScaleBoxes` node computes them) first; with one the
    /// back's `ScaleBoxes` did that on the GPU, and `masks` holds its bit-packed masks.
    /// Then the shrink of huge photos (masks upsampled, nearest, to the photo). `keypoints`
    /// (keypoints per row, the network's `[1, D, J, 3]` in the resized frame) are scaled as the
    /// boxes.
    fn decode(
        &self,
        rows: &[f32],
        front: &FrontPlan,
        masks: Option<(&BackPlan, &[f32])>,
        keypoints: Option<(usize, &[f32])>,
    ) -> Vec<Detection> {
        let [sy, sx] = if masks.is_some() {
            [1.0, 1.0]
        } else {
            front.box_scale
        };
        let [kx, ky] = front.shrink;
        rows.chunks_exact(6)
            .enumerate()
            .filter(|(_, r)| r[4] != INVALID_SCORE && r[4] >= self.score_threshold)
            .map(|(i, r)| {
                let class = r[5].max(0.0) as usize;
                let mask = masks.and_then(|(back, words)| {
                    let (w, h) = back.size;
                    let n = (w * h).div_ceil(32);
                    let p = words.get(i * n..(i + 1) * n)?;
                    (i < back.rows).then(|| self.mask_at_photo_size(p, w, h, front))
                });
                let keypoints = keypoints.and_then(|(j, all)| {
                    let row = all.get(i * j * 3..(i + 1) * j * 3)?;
                    let scaled = row.chunks_exact(3);
                    Some(
                        scaled
                            .map(|k| [k[0] * sx * kx, k[1] * sy * ky, k[2]])
                            .collect(),
                    )
                });
                Detection {
                    label: self
                        .labels
                        .get(class)
                        .cloned()
                        .unwrap_or_else(|| format!("class {class}")),
                    class,
                    score: r[4],
                    bbox: [
                        r[0] * sx * kx,
                        r[1] * sy * ky,
                        r[2] * sx * kx,
                        r[3] * sy * ky,
                    ],
                    mask,
                    keypoints,
                }
            })
            .collect()
    }

    /// A `w` x `h` mask from its bit-packed words (the GPU's `MaskBits`: pixel `i` is bit
    /// `i % 32` of word `i / 32`, the u32 carried as f32 bits) and, for a photo shrunk before
    /// the network, upsampled (nearest) to the photo's size.
    fn mask_at_photo_size(&self, words: &[f32], w: usize, h: usize, front: &FrontPlan) -> Mask {
        let set = |i: usize| words[i / 32].to_bits() >> (i % 32) & 1 == 1;
        let (pw, ph) = front.photo;
        if (pw, ph) == (w, h) {
            let bits: Vec<u8> = (0..w * h).map(|i| u8::from(set(i))).collect();
            return Mask::from_pixels(&bits, h, w);
        }
        let mut bits = vec![0u8; pw * ph];
        for y in 0..ph {
            let sy = ((y as f64 + 0.5) * h as f64 / ph as f64) as usize;
            let sy = sy.min(h - 1);
            for x in 0..pw {
                let sx = ((x as f64 + 0.5) * w as f64 / pw as f64) as usize;
                let sx = sx.min(w - 1);
                bits[y * pw + x] = u8::from(set(sy * w + sx));
            }
        }
        Mask::from_pixels(&bits, ph, pw)
    }
}
