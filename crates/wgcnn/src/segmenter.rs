//! [`Segmenter`]: a torchvision semantic segmenter (FCN, DeepLabV3, LR-ASPP) with its weights,
//! run on the GPU: pixels → resize + normalize → network → logits resized to the photo → class
//! per pixel, one submission, only the class map read back.
//!
//! torchvision's `SemanticSegmentation` preset resizes the shorter side to 520 and does not crop,
//! so the network's input size depends on the photo's aspect ratio. A segmenter is planned in
//! parts, as the [`crate::Detector`] is: per photo size a front (the pixel upload, the
//! antialiased resize + normalize kernel, and the back: the argmax of the logits bilinearly
//! resized to the photo, [`wgcnn_graph::Op::ArgMax2d`]), and the network per resized size,
//! which every photo of that aspect shares. The network plans share one copy of the weights.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wgcnn_exec::Plan;
use wgcnn_graph::{GraphBuilder, Op, Tensor, WeightSource};
use wgcnn_kernels::preprocess::{self, PreprocessParams, Transform};
use wgcnn_kernels::{Precision, encode_launch, precision};
use wgcnn_models::segment::{SegmentBuildOptions, SegmenterInfo, find_segmenter};

use crate::draw::{self, Style};
use crate::image::RgbImage;
use crate::lru::Lru;
use crate::{Engine, Error};

/// PASCAL VOC's 21 category names in torchvision's order (`__background__` first).
pub const VOC_LABELS: &str = include_str!("../assets/voc21.txt");

/// How many network plans (resized sizes) a segmenter keeps.
const PLAN_CACHE: usize = 4;
/// How many fronts (photo sizes) a segmenter keeps.
const FRONT_CACHE: usize = 8;

/// The PASCAL VOC colour of class index `class` (0 black, 1 maroon, 2 green, ..., 255 cream),
/// the palette of VOC's label PNGs: bit `j` of the index's three low bit planes sets bit
/// `7 - j` of red, green and blue.
pub fn voc_color(class: u8) -> [u8; 3] {
    let (mut rgb, mut c) = ([0u8; 3], class);
    for j in 0..8 {
        for (k, v) in rgb.iter_mut().enumerate() {
            *v |= ((c >> k) & 1) << (7 - j);
        }
        c >>= 3;
    }
    rgb
}

/// Paints each class present but the background (class 0) over `img` in its VOC colour
/// (`alpha` blend, solid outline) and draws a legend of those classes with their shares at the
/// top left, largest first.
pub fn draw_segmentation(
    img: &mut RgbImage,
    seg: &Segmentation,
    labels: &[String],
    alpha: f32,
) -> Result<(), draw::DrawError> {
    let style = Style::for_image(img.width, img.height);
    let present: Vec<ClassShare> = seg
        .present(labels)
        .into_iter()
        .filter(|c| c.class != 0)
        .collect();
    for c in &present {
        draw::blend_mask(img, &seg.mask(c.class), class_color(c.class), alpha, &style)?;
    }
    // `draw_label` puts a tag above a box's top edge: stack the boxes one tag height apart.
    let tag = (style.font_px * 1.2).ceil() + 2.0 * (style.font_px * 0.1).round().max(1.0);
    let margin = style.line_width as f32 * 2.0;
    for (i, c) in present.iter().enumerate() {
        let y = margin + tag * (i + 1) as f32;
        let text = format!("{} {:.0}%", c.label, c.fraction * 100.0);
        draw::draw_label(
            img,
            [margin, y, margin + 1.0, y + 1.0],
            &text,
            class_color(c.class),
            &style,
        );
    }
    Ok(())
}

/// The overlay colour of `class`: VOC's palette for indices below 256.
fn class_color(class: usize) -> [u8; 3] {
    u8::try_from(class).map_or_else(|_| draw::class_color(class), voc_color)
}

/// How to build a segmenter.
#[derive(Clone, Debug)]
pub struct SegmenterOptions {
    /// A registered segmenter (`deeplabv3_resnet50`, ...).
    pub model: String,
    /// A torchvision checkpoint (`.pth` or `.safetensors`); `aux_classifier.*` keys are accepted.
    pub weights: PathBuf,
    /// The shorter side the network sees (torchvision's 520 when `None`).
    pub resize: Option<usize>,
    /// Class names; `None` uses VOC's 21.
    pub labels: Option<Vec<String>>,
    /// Run the checkpoint's auxiliary `FCNHead` too ([`Segmentation::aux_classes`]); its
    /// `aux_classifier.*` keys are then required. LR-ASPP has none.
    pub aux: bool,
    /// How weights and activations are stored on the GPU ([`Precision::F16`]: half the memory,
    /// computed in f32; devices with `shader-f16` only).
    pub precision: Precision,
}

impl SegmenterOptions {
    /// `model` with `weights`, torchvision's preprocessing and VOC labels, no aux head.
    pub fn new(model: &str, weights: impl Into<PathBuf>) -> Self {
        SegmenterOptions {
            model: model.to_string(),
            weights: weights.into(),
            resize: None,
            labels: None,
            aux: false,
            precision: Precision::F32,
        }
    }
}

/// The classes in `classes` with their shares, largest first.
fn shares(classes: &[u32], labels: &[String]) -> Vec<ClassShare> {
    let mut counts = std::collections::BTreeMap::<u32, usize>::new();
    for &c in classes {
        *counts.entry(c).or_default() += 1;
    }
    let total = classes.len().max(1) as f32;
    let mut shares: Vec<ClassShare> = counts
        .into_iter()
        .map(|(c, n)| ClassShare {
            class: c as usize,
            label: labels
                .get(c as usize)
                .cloned()
                .unwrap_or_else(|| format!("class {c}")),
            fraction: n as f32 / total,
        })
        .collect();
    shares.sort_by(|a, b| b.fraction.total_cmp(&a.fraction));
    shares
}

/// A class present in a [`Segmentation`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClassShare {
    pub class: usize,
    pub label: String,
    /// Share of the photo's pixels, in `[0, 1]`.
    pub fraction: f32,
}

/// The class of every pixel of a photo.
#[derive(Clone, Debug, PartialEq)]
pub struct Segmentation {
    pub width: usize,
    pub height: usize,
    /// Row-major class indices, one per photo pixel.
    pub classes: Vec<u32>,
    /// The auxiliary head's class indices, likewise, when it ran ([`SegmenterOptions::aux`]).
    pub aux_classes: Option<Vec<u32>>,
    /// `(width, height)` the network ran at.
    pub network_size: (usize, usize),
}

impl Segmentation {
    /// The classes present, largest share first (ties by class index), named from `labels`.
    pub fn present(&self, labels: &[String]) -> Vec<ClassShare> {
        shares(&self.classes, labels)
    }

    /// The same for the auxiliary head's class map, when it ran.
    pub fn aux_present(&self, labels: &[String]) -> Option<Vec<ClassShare>> {
        self.aux_classes.as_deref().map(|c| shares(c, labels))
    }

    /// The class map as an 8-bit palette PNG (pixel value = class index, VOC colours), the
    /// format of VOC's own label images. Classes must be below 256.
    pub fn palette_png(&self) -> Result<Vec<u8>, Error> {
        let mut indices = Vec::with_capacity(self.classes.len());
        for &c in &self.classes {
            indices.push(u8::try_from(c).map_err(|_| Error::TooManyClasses { class: c })?);
        }
        let encode_err = |e: png::EncodingError| Error::Encode(e.to_string());
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette((0..=255u8).flat_map(voc_color).collect::<Vec<u8>>());
        let mut writer = encoder.write_header().map_err(encode_err)?;
        writer.write_image_data(&indices).map_err(encode_err)?;
        writer.finish().map_err(encode_err)?;
        Ok(out)
    }

    /// Whether each pixel is of class `class`.
    pub fn mask(&self, class: usize) -> Vec<bool> {
        self.classes.iter().map(|&c| c as usize == class).collect()
    }
}

/// Wall time of the stages of one [`Segmenter::segment_timed`] call.
#[derive(Clone, Copy, Debug, Default)]
pub struct SegmentTimings {
    /// Building plans for a new photo or network size (zero when kept).
    pub plan: Duration,
    /// Uploading pixels.
    pub upload: Duration,
    /// The GPU submission (preprocess, network, class map) until the map is read.
    pub gpu: Duration,
}

/// What runs per photo size around the network.
struct FrontPlan {
    /// The photo's RGBA8 pixels.
    image: wgpu::Buffer,
    /// The normalized network input `[1, 3, h, w]`, copied into the network's input buffer.
    staged: wgpu::Buffer,
    /// Pixels to `staged`: antialiased resize, /255, mean/std.
    prepare: wgcnn_kernels::Launch,
    /// `(width, height)` of the network input.
    resized: (usize, usize),
    /// Logits `[1, C, h, w]` → classes `[1, H, W]` at the photo size.
    back: Plan,
    /// Held from writing the pixels until the class map is read.
    busy: Mutex<()>,
}

/// A segmenter ready to run on photos of any size.
pub struct Segmenter {
    engine: Engine,
    info: &'static SegmenterInfo,
    transform: Transform,
    weights_path: PathBuf,
    weights: Box<dyn WeightSource + Send + Sync>,
    labels: Vec<String>,
    fronts: Mutex<Lru<(usize, usize), FrontPlan>>,
    networks: Mutex<Lru<(usize, usize), Plan>>,
    gpu_weights: Arc<wgcnn_exec::WeightCache>,
    /// Whether the aux head runs.
    aux: bool,
    /// How every plan (network, class map) and the staged input store values.
    precision: Precision,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter")
            .field("model", &self.info.name)
            .finish()
    }
}

impl Segmenter {
    /// Loads the checkpoint and checks every key and shape against the architecture (no plan
    /// is made yet).
    pub fn new(engine: &Engine, options: &SegmenterOptions) -> Result<Segmenter, Error> {
        let info = find_segmenter(&options.model)?;
        let p = info.preprocess;
        let resize = options.resize.unwrap_or(p.resize);
        if resize == 0 {
            return Err(wgcnn_models::ModelError::InvalidOptions {
                model: info.name.to_string(),
                reason: "the resize size must be positive".into(),
            }
            .into());
        }
        if options.aux && !info.has_aux() {
            return Err(wgcnn_models::ModelError::InvalidOptions {
                model: info.name.to_string(),
                reason: "it has no auxiliary head (--aux)".into(),
            }
            .into());
        }
        let weights = wgcnn_io::open_weights(&options.weights)?;
        let mut probe = info.graph(&SegmentBuildOptions {
            aux: options.aux,
            ..SegmentBuildOptions::new(1, 64, 64)
        })?;
        probe.bind(weights.as_ref()).map_err(|e| Error::Weights {
            path: options.weights.clone(),
            source: e,
        })?;
        Ok(Segmenter {
            engine: engine.clone(),
            info,
            transform: Transform {
                resize,
                crop: 0,
                filter: preprocess::Filter::Bilinear,
                channels: 3,
                mean: p.mean,
                std: p.std,
            },
            weights_path: options.weights.clone(),
            weights,
            labels: options
                .labels
                .clone()
                .unwrap_or_else(|| VOC_LABELS.lines().map(str::to_string).collect()),
            fronts: Mutex::new(Lru::new(FRONT_CACHE)),
            networks: Mutex::new(Lru::new(PLAN_CACHE)),
            gpu_weights: wgcnn_exec::WeightCache::new(),
            aux: options.aux,
            precision: options.precision,
        })
    }

    pub fn name(&self) -> &str {
        self.info.name
    }

    /// Class names by index.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Bytes of GPU memory the weights take (one copy, whatever the number of plans).
    pub fn weight_bytes(&self) -> u64 {
        self.gpu_weights.bytes()
    }

    /// The `(width, height)` the network sees a `width` x `height` photo at: the shorter side
    /// resized to the preprocessing's size, the longer scaled and truncated (torchvision).
    pub fn network_size(&self, width: usize, height: usize) -> (usize, usize) {
        let (w, h) = self.transform.resized(width, height);
        (w.max(1), h.max(1))
    }

    /// The class map of one image file.
    pub fn segment_file(&self, path: impl AsRef<Path>) -> Result<Segmentation, Error> {
        self.segment(&RgbImage::open(path)?)
    }

    /// The class of every pixel of `image`.
    pub fn segment(&self, image: &RgbImage) -> Result<Segmentation, Error> {
        Ok(self.segment_timed(image)?.0)
    }

    /// [`Segmenter::segment`] with the time each stage took.
    pub fn segment_timed(&self, image: &RgbImage) -> Result<(Segmentation, SegmentTimings), Error> {
        let started = Instant::now();
        let (front, network) = self.plans_for(image.width, image.height)?;
        let planned = started.elapsed();
        let _busy = front.busy.lock().unwrap_or_else(|p| p.into_inner());
        self.engine.context().queue.write_buffer(
            &front.image,
            0,
            bytemuck::cast_slice(&preprocess::pack_rgb8(&image.pixels)),
        );
        let uploaded = started.elapsed();
        let out = front.back.run_with(|encoder| {
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("image"),
                    timestamp_writes: None,
                });
                encode_launch(&mut pass, &front.prepare);
            }
            Self::encode_network(encoder, &front, &network);
        })?;
        let timings = SegmentTimings {
            plan: planned,
            upload: uploaded - planned,
            gpu: started.elapsed() - uploaded,
        };
        Ok((
            self.decode(out, image.width, image.height, &front)?,
            timings,
        ))
    }

    /// Whether a `width` x `height` image enters the network at its own size (no resize), which
    /// [`Segmenter::segment_tensor`] requires.
    pub fn runs_at_full_size(&self, width: usize, height: usize) -> bool {
        self.network_size(width, height) == (width, height)
    }

    /// The class map of an image given as a `[1, 3, H, W]` tensor in `[0, 1]` (e.g. from
    /// [`RgbImage::open_precise`]) at full precision: normalized on the CPU, no resize, so the
    /// image must be at its network size ([`Segmenter::runs_at_full_size`]).
    pub fn segment_tensor(&self, image: &Tensor) -> Result<Segmentation, Error> {
        let (height, width) = match image.shape.as_slice() {
            [1, 3, h, w] if self.runs_at_full_size(*w, *h) => (*h, *w),
            s => {
                return Err(Error::SegmenterInput {
                    shape: s.to_vec(),
                    resize: self.transform.resize,
                });
            }
        };
        let (front, network) = self.plans_for(width, height)?;
        let _busy = front.busy.lock().unwrap_or_else(|p| p.into_inner());
        let plane = width * height;
        let t = &self.transform;
        let normalized: Vec<f32> = image
            .data
            .iter()
            .enumerate()
            .map(|(i, v)| (v - t.mean[i / plane]) / t.std[i / plane])
            .collect();
        precision::write(
            self.engine.context(),
            &front.staged,
            &normalized,
            self.precision,
        );
        let out = front
            .back
            .run_with(|encoder| Self::encode_network(encoder, &front, &network))?;
        self.decode(out, width, height, &front)
    }

    /// Records the copy of the staged input into the network, the network, and the copy of its
    /// logits into the back: nothing leaves the GPU.
    fn encode_network(encoder: &mut wgpu::CommandEncoder, front: &FrontPlan, network: &Plan) {
        let (w, h) = front.resized;
        // Values of the plans' precision, in whole 4-byte words.
        let bytes = |n: usize| (n as u64 * network.precision().bytes()).next_multiple_of(4);
        if let Some(to) = network.input_buffer(0) {
            encoder.copy_buffer_to_buffer(&front.staged, 0, to, 0, bytes(3 * w * h));
        }
        network.encode(encoder);
        // The logits (and the aux head's, when it runs) into the class-map plan's inputs.
        let shapes = front.back.input_shapes();
        for (i, shape) in shapes.iter().enumerate() {
            if let (Some(from), Some(to)) = (network.output_buffer(i), front.back.input_buffer(i)) {
                encoder.copy_buffer_to_buffer(from, 0, to, 0, bytes(shape.iter().product()));
            }
        }
    }

    fn decode(
        &self,
        out: Vec<Tensor>,
        width: usize,
        height: usize,
        front: &FrontPlan,
    ) -> Result<Segmentation, Error> {
        let as_classes = |t: Tensor| t.data.iter().map(|&c| c.max(0.0) as u32).collect();
        let mut maps = out.into_iter();
        let map = maps
            .next()
            .ok_or(Error::Internal("class map plan has no output"))?;
        Ok(Segmentation {
            width,
            height,
            classes: as_classes(map),
            aux_classes: maps.next().map(as_classes),
            network_size: front.resized,
        })
    }

    /// The front for a `width` x `height` photo and the network for its resized size.
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

    /// The network for inputs of `(width, height)`, bound and planned with the shared weights.
    fn network_for(&self, (width, height): (usize, usize)) -> Result<Plan, Error> {
        let mut graph = self.info.graph(&SegmentBuildOptions {
            aux: self.aux,
            ..SegmentBuildOptions::new(1, height, width)
        })?;
        graph
            .bind(self.weights.as_ref())
            .map_err(|e| Error::Weights {
                path: self.weights_path.clone(),
                source: e,
            })?;
        let ctx = self.engine.context().clone();
        Ok(Plan::with_precision(
            ctx,
            &graph,
            &self.gpu_weights,
            self.precision,
        )?)
    }

    /// The upload buffer, the preprocess launch and the class-map plan for a `width` x
    /// `height` photo.
    fn front_for(&self, width: usize, height: usize) -> Result<FrontPlan, Error> {
        let ctx = self.engine.context();
        let (net_w, net_h) = self.network_size(width, height);
        let classes = self.labels.len().max(1);
        let checks = [
            (
                format!("a {width}x{height} image"),
                (width * height) as u64 * 4,
            ),
            (
                format!("a {net_w}x{net_h} network input"),
                (3 * net_w * net_h) as u64 * 4,
            ),
            (
                format!("{classes} logits of {net_w}x{net_h}"),
                (classes * net_w * net_h) as u64 * 4,
            ),
        ];
        for (what, bytes) in checks {
            if bytes > ctx.max_binding() {
                return Err(Error::ImageTooLarge {
                    what,
                    bytes,
                    limit: ctx.max_binding(),
                });
            }
        }
        let mut b = GraphBuilder::new();
        let heads: &[&str] = if self.aux {
            &["output", "aux"]
        } else {
            &["output"]
        };
        for head in heads {
            let logits = b.input(head, &[1, classes, net_h, net_w]);
            let map = b.node(
                &format!("{head}.argmax"),
                Op::ArgMax2d {
                    size: [height, width],
                },
                &[logits],
            )?;
            b.output(map);
        }
        let back = Plan::with_precision(
            ctx.clone(),
            &b.finish(),
            &wgcnn_exec::WeightCache::default(),
            self.precision,
        )?;
        let image = ctx.storage("image pixels", (width * height) as u64 * 4);
        let staged = ctx.storage("segmenter input", (3 * net_w * net_h) as u64 * 4);
        let mut params = PreprocessParams::resize_only(width, height, net_w, net_h);
        for c in 0..3 {
            params.mean[c] = self.transform.mean[c];
            params.inv_std[c] = 1.0 / self.transform.std[c];
        }
        // It writes `staged` at the network's precision.
        let prepare = {
            let _precision = precision::scope(self.precision);
            preprocess::launch(ctx, "resize + normalize", &params, &image, &staged)
        };
        ctx.compile_pipelines(std::slice::from_ref(&prepare))?;
        Ok(FrontPlan {
            image,
            staged,
            prepare,
            resized: (net_w, net_h),
            back,
            busy: Mutex::new(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_palette_matches_the_dataset_colours() {
        assert_eq!(voc_color(0), [0, 0, 0]);
        assert_eq!(voc_color(1), [128, 0, 0]);
        assert_eq!(voc_color(2), [0, 128, 0]);
        assert_eq!(voc_color(3), [128, 128, 0]);
        assert_eq!(voc_color(15), [192, 128, 128]); // person
        assert_eq!(voc_color(20), [0, 64, 128]); // tvmonitor
        assert_eq!(voc_color(255), [224, 224, 192]); // VOC's "void"
    }

    #[test]
    fn palette_png_decodes_to_voc_colours_at_each_class() -> Result<(), Error> {
        let seg = Segmentation {
            width: 3,
            height: 2,
            classes: vec![0, 1, 15, 20, 2, 0],
            aux_classes: None,
            network_size: (3, 2),
        };
        let png = seg.palette_png()?;
        // Indexed, 8 bits, the pixel values the class indices themselves.
        let mut reader = png::Decoder::new(std::io::Cursor::new(&png))
            .read_info()
            .expect("a PNG header");
        assert_eq!(reader.info().color_type, png::ColorType::Indexed);
        let mut raw = vec![0; reader.output_buffer_size().expect("size")];
        reader.next_frame(&mut raw).expect("pixels");
        assert_eq!(raw[..6], [0, 1, 15, 20, 2, 0]);
        let decoded = image::load_from_memory(&png)
            .expect("a valid PNG")
            .to_rgb8();
        assert_eq!((decoded.width(), decoded.height()), (3, 2));
        for (i, px) in decoded.pixels().enumerate() {
            assert_eq!(px.0, voc_color(seg.classes[i] as u8), "pixel {i}");
        }
        let too_many = Segmentation {
            classes: vec![256; 6],
            ..seg
        };
        assert!(matches!(
            too_many.palette_png(),
            Err(Error::TooManyClasses { class: 256 })
        ));
        Ok(())
    }

    #[test]
    fn voc_labels_are_torchvisions_21_in_order() {
        let labels: Vec<&str> = VOC_LABELS.lines().collect();
        assert_eq!(labels.len(), 21);
        assert_eq!(labels[0], "__background__");
        assert_eq!(labels[15], "person");
        assert_eq!(labels[20], "tvmonitor");
    }

    #[test]
    fn present_classes_come_largest_first_with_fractions() {
        let seg = Segmentation {
            width: 4,
            height: 1,
            classes: vec![0, 8, 8, 3],
            aux_classes: None,
            network_size: (4, 1),
        };
        let labels: Vec<String> = VOC_LABELS.lines().map(str::to_string).collect();
        let got = seg.present(&labels);
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].class, got[0].label.as_str(), got[0].fraction),
            (8, "cat", 0.5)
        );
        assert_eq!(got[1].fraction, 0.25);
        assert_eq!(seg.mask(8), [false, true, true, false]);
    }
}
