//! [`Classifier`]: a named network with its weights and preprocessing, planned on an
//! [`Engine`]; images in, top-k labels out. Decoding is on the CPU; resize, crop, normalize,
//! the network and the softmax all run on the GPU in one submission per batch.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wgcnn_graph::{Graph, Op, Tensor};
use wgcnn_kernels::preprocess::{self, Filter, PreprocessParams, Transform};
use wgcnn_kernels::{Launch, encode_launch};
use wgcnn_models::{BuildOptions, Interpolation, ModelInfo};

use crate::image::RgbImage;
use crate::{Engine, Error};

/// ImageNet-1k class names, in index order.
pub const IMAGENET_LABELS: &str = include_str!("../../../assets/imagenet.txt");

/// The model `wgcnn classify` uses when none is named.
pub const DEFAULT_MODEL: &str = "tf_efficientnet_lite0";

/// Where the bundled assets are: `$WGCNN_ASSETS`, else the source checkout's `assets/`.
pub fn assets_dir() -> PathBuf {
    std::env::var_os("WGCNN_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets"))
}

/// The weights file of the default model.
pub fn default_weights() -> PathBuf {
    assets_dir().join("tf_efficientnet_lite0.safetensors")
}

/// How to build a classifier.
#[derive(Clone, Debug)]
pub struct ClassifierOptions {
    /// A registered model name (`wgcnn models`).
    pub model: String,
    /// Checkpoint (`.safetensors` or PyTorch `.pth`); `None` uses the bundled default weights
    /// when `model` is the default model, else is an error.
    pub weights: Option<PathBuf>,
    /// Images per GPU submission.
    pub batch: usize,
    /// Preprocessing; `None` takes the model's own.
    pub transform: Option<Transform>,
    /// Class names; `None` uses ImageNet's for 1000-class models, else `class N`.
    pub labels: Option<Vec<String>>,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        ClassifierOptions {
            model: DEFAULT_MODEL.to_string(),
            weights: None,
            batch: 1,
            transform: None,
            labels: None,
        }
    }
}

/// One ranked class.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub index: usize,
    pub label: String,
    pub probability: f32,
}

/// Wall time of the stages of one [`Classifier::classify_batch`] call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Uploading pixels and params.
    pub upload: Duration,
    /// The GPU submission (preprocess + network + softmax) until results are mapped.
    pub gpu: Duration,
}

/// The preprocessing launches for one batch slot layout, rebuilt only when the pixel buffer
/// must grow.
struct Staging {
    capacity: usize,
    image: wgpu::Buffer,
    launches: Vec<Launch>,
}

/// A network ready to classify images.
pub struct Classifier {
    engine: Engine,
    name: String,
    plan: wgcnn_exec::Plan,
    transform: Transform,
    batch: usize,
    labels: Vec<String>,
    staging: Mutex<Option<Staging>>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("model", &self.name)
            .field("batch", &self.batch)
            .finish()
    }
}

/// Preprocessing for a model that carries none (ONNX): ImageNet mean/std, bilinear resize to
/// `size * 256 / 224`, center crop `size`.
pub fn onnx_default_transform(channels: usize, size: usize) -> Transform {
    let p = wgcnn_models::Preprocess::IMAGENET;
    Transform {
        resize: size * 256 / 224,
        crop: size,
        filter: Filter::Bilinear,
        channels,
        mean: if channels == 1 { [0.5; 3] } else { p.mean },
        std: if channels == 1 { [0.5; 3] } else { p.std },
    }
}

/// The model's own preprocessing as a kernel transform.
pub fn model_transform(info: &ModelInfo) -> Transform {
    let p = &info.preprocess;
    Transform {
        resize: p.resize,
        crop: p.crop,
        filter: match p.interpolation {
            Interpolation::Bilinear => Filter::Bilinear,
            Interpolation::Bicubic => Filter::Bicubic,
        },
        channels: info.channels,
        mean: p.mean,
        std: p.std,
    }
}

impl Classifier {
    /// Builds `options.model`, binds its weights, and plans it with a softmax head.
    pub fn new(engine: &Engine, options: &ClassifierOptions) -> Result<Classifier, Error> {
        let info = wgcnn_models::find(&options.model)?;
        let weights = match &options.weights {
            Some(p) => p.clone(),
            None if info.name == DEFAULT_MODEL => default_weights(),
            None => {
                return Err(Error::NoWeights {
                    model: info.name.to_string(),
                });
            }
        };
        let source = wgcnn_io::open_weights(&weights)?;
        let transform = options.transform.unwrap_or_else(|| model_transform(info));
        let batch = options.batch.max(1);
        let build = BuildOptions {
            batch,
            height: transform.crop,
            width: transform.crop,
            classes: info.classes,
        };
        let mut graph = info.graph(&build)?;
        graph.bind(source.as_ref()).map_err(|e| Error::Weights {
            path: weights.clone(),
            source: e,
        })?;
        Self::from_graph(engine, info.name, graph, transform, options.labels.clone())
    }

    /// Loads an ONNX classifier (one `[N, C, H, W]` input, one `[N, classes]` output). ONNX
    /// files carry no preprocessing: `options.transform` or, by default, ImageNet mean/std with
    /// a resize to `size * 256 / 224` and a center crop of the input's own size.
    pub fn from_onnx(
        engine: &Engine,
        path: impl AsRef<Path>,
        options: &ClassifierOptions,
    ) -> Result<Classifier, Error> {
        let path = path.as_ref();
        let model = wgcnn_io::onnx::load_onnx(
            path,
            &wgcnn_io::onnx::OnnxOptions {
                batch: options.batch.max(1),
            },
        )?;
        let shape = model
            .graph
            .inputs
            .first()
            .map(|&i| model.graph.shape(i).to_vec())
            .unwrap_or_default();
        let transform = match options.transform {
            Some(t) => t,
            None => {
                let (channels, size) = match shape.as_slice() {
                    [_, c, h, w] if h == w => (*c, *h),
                    _ => {
                        return Err(Error::Model(format!(
                            "{}: input {shape:?} is not a square NCHW image; pass the size and preprocessing explicitly",
                            path.display()
                        )));
                    }
                };
                onnx_default_transform(channels, size)
            }
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "onnx".into());
        Self::from_graph(
            engine,
            &name,
            model.graph,
            transform,
            options.labels.clone(),
        )
    }

    /// Plans an already bound graph (one `[N, C, H, W]` input, one `[N, classes]` output) with
    /// the given preprocessing; used for ONNX models and custom graphs.
    pub fn from_graph(
        engine: &Engine,
        name: &str,
        mut graph: Graph,
        transform: Transform,
        labels: Option<Vec<String>>,
    ) -> Result<Classifier, Error> {
        let (input, logits) = match (graph.inputs.as_slice(), graph.outputs.as_slice()) {
            ([i], [o]) => (*i, *o),
            _ => {
                return Err(Error::Model(format!(
                    "{name}: a classifier needs one input and one output"
                )));
            }
        };
        let in_shape = graph.shape(input).to_vec();
        let out_shape = graph.shape(logits).to_vec();
        if in_shape.len() != 4 || out_shape.len() != 2 || in_shape[1] != transform.channels {
            return Err(Error::Model(format!(
                "{name}: input {in_shape:?} / output {out_shape:?} do not fit a classifier of {}-channel images",
                transform.channels
            )));
        }
        if in_shape[2] != transform.crop || in_shape[3] != transform.crop {
            return Err(Error::Model(format!(
                "{name}: input is {}x{} but the preprocessing crops {}x{}",
                in_shape[2], in_shape[3], transform.crop, transform.crop
            )));
        }
        // Softmax on the GPU; the logits stay an output too.
        let probs = graph.push_node("softmax", Op::Softmax { axis: 1 }, &[logits])?;
        graph.outputs.push(probs);
        let plan = engine.plan(&graph)?;
        let classes = out_shape[1];
        let labels = match labels {
            Some(l) => l,
            None if classes == 1000 => IMAGENET_LABELS.lines().map(str::to_string).collect(),
            None => (0..classes).map(|i| format!("class {i}")).collect(),
        };
        Ok(Classifier {
            engine: engine.clone(),
            name: name.to_string(),
            plan,
            transform,
            batch: in_shape[0],
            labels,
            staging: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Images per submission.
    pub fn batch(&self) -> usize {
        self.batch
    }

    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    pub fn plan(&self) -> &wgcnn_exec::Plan {
        &self.plan
    }

    /// Logits of an already preprocessed input `[batch, C, H, W]`.
    pub fn logits(&self, input: &Tensor) -> Result<Tensor, Error> {
        let mut out = self.plan.run(std::slice::from_ref(input))?;
        Ok(out.swap_remove(0))
    }

    /// Top-`k` classes of one image file.
    pub fn classify_file(
        &self,
        path: impl AsRef<Path>,
        k: usize,
    ) -> Result<Vec<Prediction>, Error> {
        let img = RgbImage::open(path)?;
        let (mut out, _) = self.classify_batch(std::slice::from_ref(&img), k)?;
        Ok(out.swap_remove(0))
    }

    /// Top-`k` classes of up to [`Classifier::batch`] images, in one GPU submission.
    pub fn classify_batch(
        &self,
        images: &[RgbImage],
        k: usize,
    ) -> Result<(Vec<Vec<Prediction>>, Timings), Error> {
        let (out, timings) = self.run_images(images)?;
        let probs = &out[1];
        let classes = probs.shape[1];
        let top = (0..images.len())
            .map(|i| self.top_k(&probs.data[i * classes..(i + 1) * classes], k))
            .collect();
        Ok((top, timings))
    }

    /// The network input the GPU preprocessing makes of one image (for checks and debugging).
    pub fn preprocess(&self, image: &RgbImage) -> Result<Tensor, Error> {
        self.run_images(std::slice::from_ref(image))?;
        let ctx = self.engine.context();
        let input = self
            .plan
            .input_buffer(0)
            .ok_or_else(|| Error::Model("plan has no input".into()))?;
        let shape = self.plan.input_shapes().remove(0);
        let per_image: usize = shape[1..].iter().product();
        let data = ctx.read(input, per_image)?;
        let mut one = shape;
        one[0] = 1;
        Ok(Tensor { shape: one, data })
    }

    /// Uploads and preprocesses `images` and runs the network: outputs `[logits, probabilities]`.
    fn run_images(&self, images: &[RgbImage]) -> Result<(Vec<Tensor>, Timings), Error> {
        if images.is_empty() || images.len() > self.batch {
            return Err(Error::Model(format!(
                "a batch takes 1..={} images, got {}",
                self.batch,
                images.len()
            )));
        }
        let started = Instant::now();
        let ctx = self.engine.context();
        let total: usize = images.iter().map(|i| i.width * i.height).sum();
        let mut guard = self.staging.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(|s| s.capacity < total) {
            *guard = Some(self.staging(total.next_power_of_two().max(1 << 16))?);
        }
        let staging = guard
            .as_ref()
            .ok_or_else(|| Error::Model("no staging buffer".into()))?;
        let mut offset = 0;
        for (i, img) in images.iter().enumerate() {
            let p = PreprocessParams::new(&self.transform, img.width, img.height, i)
                .with_input_offset(offset);
            ctx.queue
                .write_buffer(&staging.launches[i].params, 0, bytemuck::bytes_of(&p));
            ctx.queue.write_buffer(
                &staging.image,
                offset as u64 * 4,
                bytemuck::cast_slice(&preprocess::pack_rgb8(&img.pixels)),
            );
            offset += img.width * img.height;
        }
        let uploaded = started.elapsed();
        let launches = &staging.launches[..images.len()];
        let out = self.plan.run_with(|encoder| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("preprocess"),
                timestamp_writes: None,
            });
            for l in launches {
                encode_launch(&mut pass, l);
            }
        })?;
        let timings = Timings {
            upload: uploaded,
            gpu: started.elapsed() - uploaded,
        };
        Ok((out, timings))
    }

    fn staging(&self, capacity: usize) -> Result<Staging, Error> {
        let ctx = self.engine.context();
        let limit = ctx.max_binding();
        if capacity as u64 * 4 > limit {
            return Err(Error::Model(format!(
                "images of {capacity} pixels in one batch exceed the device's {limit}-byte binding"
            )));
        }
        let image = ctx.storage("images", capacity as u64 * 4);
        let input = self
            .plan
            .input_buffer(0)
            .ok_or_else(|| Error::Model("plan has no input".into()))?;
        let launches = (0..self.batch)
            .map(|i| {
                let p = PreprocessParams::new(&self.transform, 1, 1, i);
                preprocess::launch(ctx, &format!("preprocess {i}"), &p, &image, input)
            })
            .collect::<Vec<_>>();
        // Compile the preprocessing pipeline now rather than at the first image's dispatch.
        ctx.compile_pipelines(&launches)?;
        Ok(Staging {
            capacity,
            image,
            launches,
        })
    }

    fn top_k(&self, probs: &[f32], k: usize) -> Vec<Prediction> {
        let mut idx: Vec<usize> = (0..probs.len()).collect();
        idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        idx.into_iter()
            .take(k)
            .map(|i| Prediction {
                index: i,
                label: self
                    .labels
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("class {i}")),
                probability: probs[i],
            })
            .collect()
    }
}
