//! [`FaceDetector`]: MTCNN (P-Net → R-Net → O-Net) with facenet-pytorch's real weights,
//! bundled; faces with five landmarks out.
//!
//! Every step of the cascade runs on the GPU in one submission per photo, or per batch of
//! photos of one size ([`FaceDetector::detect_batch`]: the chain encoded once a photo into one
//! command buffer), in `faces_gpu` with kernels in `wgcnn_kernels::detect::faces`; only the
//! faces and three counts are read back:
//! 1. the 8-bit photo uploaded once; every pyramid level area-resampled from it; P-Net on each
//!    level (in row strips where a level's activations exceed a binding); candidates, NMS 0.5
//!    per level and 0.7 over all levels, regression, squaring, the empty-crop filter;
//! 2. R-Net's 24x24 crops cut from the uploaded photo, R-Net, probability > 0.7, NMS 0.7,
//!    `bbreg`, squaring, the empty-crop filter;
//! 3. O-Net's 48x48 crops, O-Net, probability > 0.7, landmarks, `bbreg`, 'Min' NMS 0.7.
//!
//! The box counts stay on the GPU: R-Net and O-Net run per chunk of 256 boxes on the smallest
//! of several batch capacities that holds it, dispatched indirectly (`faces_net`).
//! [`FaceDetector::detect_staged`] submits the three stages one by one instead, for per-stage
//! times. The CPU reference is `wgcnn_models::faces::cascade`; the tests compare every GPU
//! stage with it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wgcnn_exec::{Plan, WeightCache};
use wgcnn_graph::{Graph, WeightSource};
use wgcnn_models::faces::{self, CascadeConfig, nets};

pub use wgcnn_models::faces::Face;

use crate::image::RgbImage;
use crate::lru::Lru;
use crate::{Engine, Error};

#[path = "faces_gpu.rs"]
mod gpu;
#[path = "faces_net.rs"]
mod net;

/// The face model `wgcnn detect` runs when none is named.
pub const FACE_MODEL: &str = "mtcnn";

/// facenet-pytorch 2.6.0's MTCNN weights (P-Net, R-Net, O-Net under `pnet.*`, `rnet.*`,
/// `onet.*`; MIT, Tim Esler), built into the library.
pub static MTCNN_WEIGHTS: &[u8] = include_bytes!("../assets/mtcnn.safetensors");

const MTCNN_WEIGHTS_NAME: &str = "<bundled mtcnn.safetensors>";

/// The landmark names, in [`Face::landmarks`] order.
pub const FACE_LANDMARKS: [&str; 5] =
    ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"];

/// R-Net and O-Net run on chunks of at most this many boxes, each padded to the smallest of
/// `faces_net::CAPS` that holds it (O-Net's first activation is 270 KB a crop).
const MAX_BATCH: usize = 256;
/// GPU front pipelines kept (one per photo size).
const PIPELINE_CACHE: usize = 4;
/// P-Net plans kept (one per level or strip size; a photo has about 10 levels).
const LEVEL_CACHE: usize = 24;

/// How to build a [`FaceDetector`].
#[derive(Clone, Debug)]
pub struct FaceDetectorOptions {
    /// A checkpoint with `pnet.*`, `rnet.*`, `onet.*` keys; `None` uses the bundled weights.
    pub weights: Option<PathBuf>,
    /// Smallest face side in pixels (facenet-pytorch's `min_face_size`, 20).
    pub min_face_size: f32,
    /// Probability thresholds of P-Net, R-Net and O-Net (0.6, 0.7, 0.7); the last is the
    /// score a face needs.
    pub thresholds: [f32; 3],
    /// Pyramid scale step (0.709).
    pub factor: f64,
}

impl Default for FaceDetectorOptions {
    fn default() -> Self {
        let c = CascadeConfig::default();
        FaceDetectorOptions {
            weights: None,
            min_face_size: c.min_face_size,
            thresholds: c.thresholds,
            factor: c.factor,
        }
    }
}

/// Wall time of one [`FaceDetector::detect_timed`] call, or of the stages of one
/// [`FaceDetector::detect_staged`] call.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaceTimings {
    /// [`FaceDetector::detect_staged`]'s submission 1: upload, pyramid, P-Net, candidates,
    /// both NMS, R-Net's boxes read back (plans made for a new photo size included).
    pub pnet: Duration,
    /// Its submission 2: R-Net's crops, R-Net, its NMS and boxes, O-Net's boxes read back.
    pub rnet: Duration,
    /// Its submission 3: O-Net's crops, O-Net, landmarks, 'Min' NMS, the faces read back.
    pub onet: Duration,
    /// Everything (plans made for a new photo size included); from
    /// [`FaceDetector::detect_batch_timed`], the whole submission the photo shared.
    pub total: Duration,
    /// Crops sent to R-Net and O-Net.
    pub rnet_crops: usize,
    pub onet_crops: usize,
}

/// MTCNN on an [`Engine`]. Plans are made on first use per photo size (pyramid) and batch
/// capacity (R-Net, O-Net) and kept; they share one copy of the weights.
pub struct FaceDetector {
    engine: Engine,
    weights: Box<dyn WeightSource + Send + Sync>,
    config: CascadeConfig,
    pipelines: Mutex<Lru<(usize, usize), gpu::PnetPipeline>>,
    levels: Mutex<Lru<(usize, usize), Plan>>,
    /// Held while a front pipeline runs: pipelines share P-Net plans.
    busy: Mutex<()>,
    /// P-Net runs in row strips on levels whose first activation exceeds this.
    strip_bytes: u64,
    /// The packed photo's rows past this many bytes go to a second binding.
    band_bytes: u64,
    rnets: Mutex<Lru<usize, Plan>>,
    onets: Mutex<Lru<usize, Plan>>,
    gpu_weights: Arc<WeightCache>,
}

impl std::fmt::Debug for FaceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceDetector")
            .field("config", &self.config)
            .finish()
    }
}

impl FaceDetector {
    /// Loads the weights (bundled unless `options.weights` names a file) and checks every key
    /// and shape of the three nets.
    pub fn new(engine: &Engine, options: &FaceDetectorOptions) -> Result<FaceDetector, Error> {
        let invalid = |reason: String| {
            Error::Models(wgcnn_models::ModelError::InvalidOptions {
                model: FACE_MODEL.into(),
                reason,
            })
        };
        if !(options.min_face_size.is_finite() && options.min_face_size >= 1.0) {
            return Err(invalid(format!(
                "min_face_size must be at least 1 pixel, got {}",
                options.min_face_size
            )));
        }
        if !(options.factor > 0.0 && options.factor < 1.0) {
            return Err(invalid(format!(
                "the pyramid factor must be in (0, 1), got {}",
                options.factor
            )));
        }
        if options.thresholds.iter().any(|t| t.is_nan()) {
            return Err(invalid("thresholds must be numbers".into()));
        }
        let weights: Box<dyn WeightSource + Send + Sync> = match &options.weights {
            Some(path) => wgcnn_io::open_weights(path)?,
            None => Box::new(wgcnn_io::SafetensorsFile::from_bytes(
                MTCNN_WEIGHTS_NAME,
                MTCNN_WEIGHTS.to_vec(),
            )?),
        };
        let name = options
            .weights
            .clone()
            .unwrap_or_else(|| PathBuf::from(MTCNN_WEIGHTS_NAME));
        let check = |mut g: Graph, net: &str| {
            faces::bind(&mut g, weights.as_ref(), net).map_err(|source| Error::Weights {
                path: name.clone(),
                source,
            })
        };
        check(nets::pnet(1, 12, 12)?, "pnet")?;
        check(nets::rnet(1)?, "rnet")?;
        check(nets::onet(1)?, "onet")?;
        Ok(FaceDetector {
            engine: engine.clone(),
            weights,
            config: CascadeConfig {
                min_face_size: options.min_face_size,
                thresholds: options.thresholds,
                factor: options.factor,
            },
            pipelines: Mutex::new(Lru::new(PIPELINE_CACHE)),
            levels: Mutex::new(Lru::new(LEVEL_CACHE)),
            busy: Mutex::new(()),
            strip_bytes: engine.context().max_binding() / 2,
            band_bytes: engine.context().max_binding(),
            rnets: Mutex::new(Lru::new(8)),
            onets: Mutex::new(Lru::new(8)),
            gpu_weights: WeightCache::new(),
        })
    }

    /// Photos of one size that share a submission in [`FaceDetector::detect_batch`], at most.
    pub const MAX_BATCH_PHOTOS: usize = 16;
    /// Upload bytes of one submission's photos (4 a pixel: a 1280x720 photo takes 3.7 MB, a
    /// 4000x3000 one 48 MB), at most; a single photo may exceed it. Each photo past the first
    /// also takes 123 KB of read-back (its faces and counts).
    pub const BATCH_UPLOAD_BYTES: u64 = 256 << 20;

    /// The faces in `image`, by descending probability: a batch of one.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, Error> {
        Ok(self.detect_timed(image)?.0)
    }

    /// As [`FaceDetector::detect`] (one submission), with its time and the numbers of R-Net
    /// and O-Net crops; the stage times stay zero (see [`FaceDetector::detect_staged`]).
    pub fn detect_timed(&self, image: &RgbImage) -> Result<(Vec<Face>, FaceTimings), Error> {
        let mut found = self.detect_batch_timed(std::slice::from_ref(image))?;
        found
            .pop()
            .ok_or(Error::Internal("a batch of one photo gave no result"))
    }

    /// The faces in each of `images` (in order; each by descending probability), the same as
    /// [`FaceDetector::detect`] on each. Photos of the same size share one queue submission,
    /// up to [`FaceDetector::MAX_BATCH_PHOTOS`] photos and
    /// [`FaceDetector::BATCH_UPLOAD_BYTES`] of pixels each; photos of different sizes are
    /// grouped by size, one submission (or more, past those bounds) per group.
    pub fn detect_batch(&self, images: &[RgbImage]) -> Result<Vec<Vec<Face>>, Error> {
        Ok(self
            .detect_batch_timed(images)?
            .into_iter()
            .map(|(faces, _)| faces)
            .collect())
    }

    /// As [`FaceDetector::detect_batch`], with each photo's numbers of R-Net and O-Net crops;
    /// its `total` is the wall time of the submission it shared with the others of its group
    /// (plans made for a new photo size included).
    pub fn detect_batch_timed(
        &self,
        images: &[RgbImage],
    ) -> Result<Vec<(Vec<Face>, FaceTimings)>, Error> {
        let mut found = vec![(Vec::new(), FaceTimings::default()); images.len()];
        let sizes: Vec<[usize; 2]> = images.iter().map(|i| [i.height, i.width]).collect();
        for group in batch_groups(&sizes) {
            let started = Instant::now();
            let Some(pipeline) = self.pipeline(&images[group[0]])? else {
                continue;
            };
            let photos = group
                .iter()
                .map(|&i| {
                    let image = &images[i];
                    if image.pixels.len() < image.height * image.width * 3 {
                        return Err(Error::Internal("RgbImage holds fewer pixels than its size"));
                    }
                    Ok(image.pixels.as_slice())
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Pipelines share P-Net, R-Net and O-Net plans, and a pipeline's photo buffer is
            // written per call: one detection at a time on this detector.
            let results = {
                let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
                pipeline.run_batch(self, &photos)?
            };
            let total = started.elapsed();
            for (&i, (faces, [rnet, onet])) in group.iter().zip(results) {
                found[i] = (
                    faces,
                    FaceTimings {
                        total,
                        rnet_crops: rnet,
                        onet_crops: onet,
                        ..FaceTimings::default()
                    },
                );
            }
        }
        Ok(found)
    }

    /// The same GPU stages as [`FaceDetector::detect`] submitted one by one, the box counts read
    /// between them (they size R-Net's and O-Net's batches on the CPU instead of indirect
    /// dispatch): the faces and the wall time of each stage. For profiling; the results are
    /// the same.
    pub fn detect_staged(&self, image: &RgbImage) -> Result<(Vec<Face>, FaceTimings), Error> {
        let started = Instant::now();
        let mut timings = FaceTimings::default();
        let Some(pipeline) = self.pipeline(image)? else {
            return Ok((Vec::new(), timings));
        };
        // Pipelines share P-Net, R-Net and O-Net plans, and a pipeline's photo buffer is
        // written per call: one detection at a time on this detector.
        let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let boxes = pipeline.run(self, &image.pixels)?;
        timings.pnet = started.elapsed();
        timings.rnet_crops = boxes.len();
        let mut found = Vec::new();
        if !boxes.is_empty() {
            let rnet_started = Instant::now();
            let onet_boxes = pipeline.run_rnet(self, boxes.len())?;
            timings.rnet = rnet_started.elapsed();
            timings.onet_crops = onet_boxes.len();
            if !onet_boxes.is_empty() {
                let onet_started = Instant::now();
                found = pipeline.run_onet(self, onet_boxes.len())?;
                timings.onet = onet_started.elapsed();
            }
        }
        timings.total = started.elapsed();
        Ok((found, timings))
    }

    /// The GPU front for `image`'s size (made on first use).
    fn pipeline(&self, image: &RgbImage) -> Result<Option<Arc<gpu::PnetPipeline>>, Error> {
        let (h, w) = (image.height, image.width);
        if image.pixels.len() < h * w * 3 {
            return Err(Error::Internal("RgbImage holds fewer pixels than its size"));
        }
        let (scales, levels) = gpu::levels(h, w, &self.config);
        if levels.is_empty() {
            return Ok(None);
        }
        let pipeline = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_try((h, w), || {
                gpu::PnetPipeline::new(self, [h, w], &levels, &scales, self.strip_bytes)
            })?;
        Ok(Some(pipeline))
    }

    /// R-Net's crop boxes of `image` from the GPU front, in order (none when the photo is
    /// smaller than one 12-pixel cell at the first scale).
    #[cfg(test)]
    fn rnet_boxes(&self, image: &RgbImage) -> Result<Vec<faces::Candidate>, Error> {
        let Some(pipeline) = self.pipeline(image)? else {
            return Ok(Vec::new());
        };
        let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        pipeline.run(self, &image.pixels)
    }

    fn plan(&self, mut graph: Graph, net: &str) -> Result<Plan, Error> {
        faces::bind(&mut graph, self.weights.as_ref(), net)?;
        Ok(Plan::with_weights(
            self.engine.context().clone(),
            &graph,
            &self.gpu_weights,
        )?)
    }

    /// R-Net's (`"rnet"`) or O-Net's (`"onet"`) plan for batches of `cap` crops.
    fn net_plan(&self, net: &str, cap: usize) -> Result<Arc<Plan>, Error> {
        let (cache, graph) = if net == "rnet" {
            (&self.rnets, nets::rnet as fn(usize) -> _)
        } else {
            (&self.onets, nets::onet as fn(usize) -> _)
        };
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_try(cap, || self.plan(graph(cap)?, net))
    }
}

/// The submissions of [`FaceDetector::detect_batch`]: indices of `sizes` (`[height, width]`)
/// grouped by size in order of first appearance, each group split into runs of at most
/// [`FaceDetector::MAX_BATCH_PHOTOS`] photos and [`FaceDetector::BATCH_UPLOAD_BYTES`] of packed
/// pixels (at least one photo a run).
fn batch_groups(sizes: &[[usize; 2]]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut open: Vec<([usize; 2], usize)> = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let bytes = (size[0] as u64)
            .saturating_mul(size[1] as u64)
            .saturating_mul(4);
        let limit = (FaceDetector::BATCH_UPLOAD_BYTES / bytes.max(1))
            .clamp(1, FaceDetector::MAX_BATCH_PHOTOS as u64) as usize;
        match open.iter_mut().find(|(s, _)| *s == size) {
            Some((_, g)) if groups[*g].len() < limit => groups[*g].push(i),
            Some((_, g)) => {
                *g = groups.len();
                groups.push(vec![i]);
            }
            None => {
                open.push((size, groups.len()));
                groups.push(vec![i]);
            }
        }
    }
    groups
}

/// facenet-pytorch's `extract_face`: the box widened by `margin` pixels (in the output's
/// scale: `margin * (x2 - x1) / (size - margin)` in the photo), truncated to integers, clipped
/// to the photo and resized to `size` x `size` (bilinear, antialiased like PIL's when
/// shrinking) — the usual input of face-recognition models (160 for FaceNet).
pub fn extract_face(image: &RgbImage, bbox: [f32; 4], size: usize, margin: f32) -> RgbImage {
    let size = size.max(1);
    let black = RgbImage {
        width: size,
        height: size,
        pixels: vec![0; size * size * 3],
    };
    if image.width == 0 || image.height == 0 || image.pixels.len() < image.width * image.height * 3
    {
        return black;
    }
    let denom = (size as f32 - margin).max(1.0);
    let mx = margin * (bbox[2] - bbox[0]) / denom;
    let my = margin * (bbox[3] - bbox[1]) / denom;
    let (w, h) = (image.width as f32, image.height as f32);
    // Python's int() truncates; saturating casts keep NaN and huge values harmless.
    let x1 = (bbox[0] - mx / 2.0).max(0.0) as usize;
    let y1 = (bbox[1] - my / 2.0).max(0.0) as usize;
    let x2 = ((bbox[2] + mx / 2.0).min(w) as usize).min(image.width);
    let y2 = ((bbox[3] + my / 2.0).min(h) as usize).min(image.height);
    let (cw, ch) = (x2.saturating_sub(x1).max(1), y2.saturating_sub(y1).max(1));
    let (x1, y1) = (
        x1.min(image.width.saturating_sub(1)),
        y1.min(image.height.saturating_sub(1)),
    );
    let (cw, ch) = (cw.min(image.width - x1), ch.min(image.height - y1));
    let mut crop = Vec::with_capacity(cw * ch * 3);
    for y in y1..y1 + ch {
        let start = (y * image.width + x1) * 3;
        crop.extend_from_slice(&image.pixels[start..start + cw * 3]);
    }
    let face = ::image::RgbImage::from_raw(cw as u32, ch as u32, crop).map(|c| {
        ::image::imageops::resize(
            &c,
            size as u32,
            size as u32,
            ::image::imageops::FilterType::Triangle,
        )
    });
    match face {
        Some(f) => RgbImage {
            width: size,
            height: size,
            pixels: f.into_raw(),
        },
        None => black,
    }
}

#[cfg(test)]
#[path = "faces_tests.rs"]
mod tests;
