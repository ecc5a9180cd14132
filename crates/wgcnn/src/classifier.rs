//! [`Classifier`]: a named network with its weights and preprocessing, planned on an
//! [`Engine`]; images in, top-k labels out. Decoding is on the CPU; resize, crop, normalize,
//! the network and the softmax all run on the GPU in one submission per batch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wgcnn_exec::{Plan, WeightCache};
use wgcnn_graph::{Graph, Op, Tensor, WeightSource};
use wgcnn_kernels::preprocess::{self, Filter, PreprocessParams, Transform};
use wgcnn_kernels::{Launch, Precision, encode_launch, precision};
use wgcnn_models::{BuildOptions, Interpolation, ModelInfo};

use crate::image::RgbImage;
use crate::{Engine, Error};

/// ImageNet-1k class names, in index order.
pub const IMAGENET_LABELS: &str = include_str!("../assets/imagenet.txt");

/// The model `wgcnn classify` uses when none is named.
pub const DEFAULT_MODEL: &str = "tf_efficientnet_lite0";

/// The default model's weights (timm's `tf_efficientnet_lite0`, ImageNet-1k, Apache-2.0),
/// built into the library so a copied or installed binary classifies with nothing beside it.
pub static DEFAULT_WEIGHTS: &[u8] = include_bytes!("../assets/tf_efficientnet_lite0.safetensors");

/// The name the bundled weights go by in messages.
const DEFAULT_WEIGHTS_NAME: &str = "<bundled tf_efficientnet_lite0.safetensors>";

/// The default model's weights as a weight source.
pub fn default_weights() -> Result<wgcnn_io::SafetensorsFile, Error> {
    Ok(wgcnn_io::SafetensorsFile::from_bytes(
        DEFAULT_WEIGHTS_NAME,
        DEFAULT_WEIGHTS.to_vec(),
    )?)
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
    /// How weights and activations are stored on the GPU: [`Precision::F16`] halves memory
    /// and traffic (computing in f32 still) on devices with `shader-f16`; a model with an op
    /// that has no f16 kernel is refused.
    pub precision: Precision,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        ClassifierOptions {
            model: DEFAULT_MODEL.to_string(),
            weights: None,
            batch: 1,
            transform: None,
            labels: None,
            precision: Precision::F32,
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

/// The plan for one batch size, with its preprocessing staging.
struct BatchPlan {
    plan: Plan,
    staging: Mutex<Option<Staging>>,
}

/// Builds the bound graph of the network at another batch size (for partial batches).
type Rebuild = Box<dyn Fn(usize) -> Result<Graph, Error> + Send + Sync>;

/// A network ready to classify images.
///
/// `Send + Sync`: share one (by reference or in an `Arc`) between threads rather than building
/// one per thread, which would upload the weights again. Calls that use the same batch size's
/// plan take turns (its staging buffer is held from upload to read-back, and the plan
/// serializes its runs), calls on different batch sizes run side by side, and every result is
/// bit-identical to what the same call gives on one thread (`tests/robustness.rs`).
pub struct Classifier {
    engine: Engine,
    name: String,
    transform: Transform,
    batch: usize,
    labels: Vec<String>,
    /// The plan at the full batch size.
    full: Arc<BatchPlan>,
    /// Plans for smaller batches (the last partial batch of a run), made on first use.
    partial: Mutex<Vec<(usize, Arc<BatchPlan>)>>,
    /// How to make them; `None` for a graph given as is ([`Classifier::from_graph`]), whose
    /// partial batches run the full plan.
    rebuild: Option<Rebuild>,
    /// Weight buffers shared by every plan.
    weights: Arc<WeightCache>,
    /// How the plans store tensors.
    precision: Precision,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("model", &self.name)
            .field("batch", &self.batch)
            .finish()
    }
}

/// A classifier's raw outputs for a batch: `[n, classes]` each, row-major.
#[derive(Clone, Debug)]
pub struct Scores {
    pub logits: Tensor,
    pub probabilities: Tensor,
}

impl Scores {
    /// The first `n` rows of a plan's `[logits, probabilities]` outputs.
    fn from_outputs(out: Vec<Tensor>, n: usize) -> Result<Scores, Error> {
        let [logits, probabilities]: [Tensor; 2] = out
            .try_into()
            .map_err(|_| Error::Internal("a classifier plan has two outputs"))?;
        let rows = |mut t: Tensor| {
            let classes = t.shape.get(1).copied().unwrap_or(0);
            t.data.truncate(n * classes);
            t.shape = vec![n, classes];
            t
        };
        Ok(Scores {
            logits: rows(logits),
            probabilities: rows(probabilities),
        })
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
        let (path, source): (PathBuf, Arc<dyn WeightSource + Send + Sync>) = match &options.weights
        {
            Some(p) => (p.clone(), Arc::from(wgcnn_io::open_weights(p)?)),
            None if info.name == DEFAULT_MODEL => {
                (DEFAULT_WEIGHTS_NAME.into(), Arc::new(default_weights()?))
            }
            None => {
                return Err(Error::NoWeights {
                    model: info.name.to_string(),
                });
            }
        };
        let transform = options.transform.unwrap_or_else(|| model_transform(info));
        let rebuild: Rebuild = Box::new(move |batch| {
            let build = BuildOptions {
                batch,
                height: transform.crop,
                width: transform.crop,
                classes: info.classes,
            };
            let mut graph = info.graph(&build)?;
            graph.bind(source.as_ref()).map_err(|e| Error::Weights {
                path: path.clone(),
                source: e,
            })?;
            Ok(graph)
        });
        let graph = rebuild(options.batch.max(1))?;
        Self::assemble(
            engine,
            info.name,
            graph,
            transform,
            options.labels.clone(),
            Some(rebuild),
            options.precision,
        )
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
                        return Err(Error::NonSquareInput {
                            path: path.to_path_buf(),
                            shape,
                        });
                    }
                };
                onnx_default_transform(channels, size)
            }
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "onnx".into());
        let file = path.to_path_buf();
        let rebuild: Rebuild = Box::new(move |batch| {
            let options = wgcnn_io::onnx::OnnxOptions { batch };
            Ok(wgcnn_io::onnx::load_onnx(&file, &options)?.graph)
        });
        Self::assemble(
            engine,
            &name,
            model.graph,
            transform,
            options.labels.clone(),
            Some(rebuild),
            options.precision,
        )
    }

    /// Plans an already bound graph (one `[N, C, H, W]` input, one `[N, classes]` output) with
    /// the given preprocessing, for custom graphs. A partial batch runs the whole batch's plan
    /// (the graph cannot be rebuilt at another size); [`Classifier::new`] and
    /// [`Classifier::from_onnx`] compute only the images given.
    pub fn from_graph(
        engine: &Engine,
        name: &str,
        graph: Graph,
        transform: Transform,
        labels: Option<Vec<String>>,
    ) -> Result<Classifier, Error> {
        Self::assemble(engine, name, graph, transform, labels, None, Precision::F32)
    }

    fn assemble(
        engine: &Engine,
        name: &str,
        graph: Graph,
        transform: Transform,
        labels: Option<Vec<String>>,
        rebuild: Option<Rebuild>,
        precision: Precision,
    ) -> Result<Classifier, Error> {
        let (input, logits) = match (graph.inputs.as_slice(), graph.outputs.as_slice()) {
            ([i], [o]) => (*i, *o),
            _ => {
                return Err(Error::NotAClassifier {
                    model: name.to_string(),
                    detail: format!(
                        "a classifier has one input and one output; this graph has {} and {}",
                        graph.inputs.len(),
                        graph.outputs.len()
                    ),
                });
            }
        };
        let in_shape = graph.shape(input).to_vec();
        let out_shape = graph.shape(logits).to_vec();
        if in_shape.len() != 4 || out_shape.len() != 2 || in_shape[1] != transform.channels {
            return Err(Error::NotAClassifier {
                model: name.to_string(),
                detail: format!(
                    "input {in_shape:?} / output {out_shape:?} do not fit a classifier of {}-channel images",
                    transform.channels
                ),
            });
        }
        if in_shape[2] != transform.crop || in_shape[3] != transform.crop {
            return Err(Error::CropMismatch {
                model: name.to_string(),
                height: in_shape[2],
                width: in_shape[3],
                crop: transform.crop,
            });
        }
        let weights = WeightCache::new();
        let full = Arc::new(batch_plan(engine, graph, &weights, precision)?);
        let classes = out_shape[1];
        let labels = match labels {
            Some(l) => l,
            None if classes == 1000 => IMAGENET_LABELS.lines().map(str::to_string).collect(),
            None => (0..classes).map(|i| format!("class {i}")).collect(),
        };
        Ok(Classifier {
            engine: engine.clone(),
            name: name.to_string(),
            transform,
            batch: in_shape[0],
            labels,
            full,
            partial: Mutex::new(Vec::new()),
            rebuild,
            weights,
            precision,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How weights and activations are stored on the GPU.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Images per submission.
    pub fn batch(&self) -> usize {
        self.batch
    }

    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// The plan at the full batch size.
    pub fn plan(&self) -> &Plan {
        &self.full.plan
    }

    /// Batch sizes planned so far: the full one first, then partial ones in the order made.
    pub fn planned_batches(&self) -> Vec<usize> {
        let partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
        std::iter::once(self.batch)
            .chain(partial.iter().map(|(n, _)| *n))
            .collect()
    }

    /// Bytes of GPU memory the weights take (one copy, shared by every batch size's plan).
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes()
    }

    /// Logits of an already preprocessed input `[batch, C, H, W]`.
    pub fn logits(&self, input: &Tensor) -> Result<Tensor, Error> {
        let mut out = self.full.plan.run(std::slice::from_ref(input))?;
        Ok(out.swap_remove(0))
    }

    /// Logits and softmax probabilities (both computed on the GPU, `[batch, classes]`) of an
    /// already preprocessed input `[batch, C, H, W]` at the full batch size.
    pub fn scores(&self, input: &Tensor) -> Result<Scores, Error> {
        let out = self.full.plan.run(std::slice::from_ref(input))?;
        Scores::from_outputs(out, self.batch)
    }

    /// Logits and softmax probabilities `[images.len(), classes]` of up to
    /// [`Classifier::batch`] images, in one GPU submission: what a server returns as tensors.
    pub fn scores_batch(&self, images: &[RgbImage]) -> Result<(Scores, Timings), Error> {
        let (out, timings, _) = self.run_images(images)?;
        Ok((Scores::from_outputs(out, images.len())?, timings))
    }

    /// Class names by index (`class K` where the model has none).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The plan for `n` images: the full one, or one of exactly `n` images where the network
    /// can be rebuilt at that size (made once, sharing the weights).
    fn plan_for(&self, n: usize) -> Result<Arc<BatchPlan>, Error> {
        let Some(rebuild) = self.rebuild.as_ref().filter(|_| n < self.batch) else {
            return Ok(self.full.clone());
        };
        let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, p)) = partial.iter().find(|(size, _)| *size == n) {
            return Ok(p.clone());
        }
        let plan = Arc::new(batch_plan(
            &self.engine,
            rebuild(n)?,
            &self.weights,
            self.precision,
        )?);
        tracing::debug!(model = %self.name, batch = n, "planned a partial batch");
        partial.push((n, plan.clone()));
        Ok(plan)
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
        let (out, timings, _) = self.run_images(images)?;
        let probs = &out[1];
        let classes = probs.shape[1];
        let top = (0..images.len())
            .map(|i| self.top_k(&probs.data[i * classes..(i + 1) * classes], k))
            .collect();
        Ok((top, timings))
    }

    /// The network input the GPU preprocessing makes of one image (for checks and debugging).
    pub fn preprocess(&self, image: &RgbImage) -> Result<Tensor, Error> {
        let (_, _, used) = self.run_images(std::slice::from_ref(image))?;
        let ctx = self.engine.context();
        let input = used
            .plan
            .input_buffer(0)
            .ok_or(Error::Internal("plan has no input"))?;
        let shape = used.plan.input_shapes().remove(0);
        let per_image: usize = shape[1..].iter().product();
        let data = precision::read(ctx, input, per_image, used.plan.precision())?;
        let mut one = shape;
        one[0] = 1;
        Ok(Tensor { shape: one, data })
    }

    /// Uploads and preprocesses `images` and runs the network: outputs `[logits, probabilities]`
    /// (rows past `images.len()` are unused), with the plan that ran.
    fn run_images(
        &self,
        images: &[RgbImage],
    ) -> Result<(Vec<Tensor>, Timings, Arc<BatchPlan>), Error> {
        if images.is_empty() || images.len() > self.batch {
            return Err(Error::BatchSize {
                max: self.batch,
                got: images.len(),
            });
        }
        let started = Instant::now();
        let used = self.plan_for(images.len())?;
        let ctx = self.engine.context();
        let total: usize = images.iter().map(|i| i.width * i.height).sum();
        let mut guard = used.staging.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(|s| s.capacity < total) {
            *guard = Some(self.staging(&used.plan, total.next_power_of_two().max(1 << 16))?);
        }
        let staging = guard.as_ref().ok_or(Error::Internal("no staging buffer"))?;
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
        let out = used.plan.run_with(|encoder| {
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
        drop(guard);
        Ok((out, timings, used))
    }

    fn staging(&self, plan: &Plan, capacity: usize) -> Result<Staging, Error> {
        let ctx = self.engine.context();
        let limit = ctx.max_binding();
        if capacity as u64 * 4 > limit {
            return Err(Error::ImageTooLarge {
                what: format!("a batch of images of {capacity} pixels in all"),
                bytes: capacity as u64 * 4,
                limit,
            });
        }
        let image = ctx.storage("images", capacity as u64 * 4);
        let input = plan
            .input_buffer(0)
            .ok_or(Error::Internal("plan has no input"))?;
        let slots = plan.input_shapes().first().map_or(1, |s| s[0]);
        // The kernel writes the plan's input at the plan's precision.
        let _precision = precision::scope(plan.precision());
        let launches = (0..slots)
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

/// Plans `graph` with a softmax on the GPU after its logits (the logits stay an output too).
fn batch_plan(
    engine: &Engine,
    mut graph: Graph,
    weights: &WeightCache,
    precision: Precision,
) -> Result<BatchPlan, Error> {
    let logits = *graph
        .outputs
        .first()
        .ok_or(Error::Internal("graph has no output"))?;
    let probs = graph.push_node("softmax", Op::Softmax { axis: 1 }, &[logits])?;
    graph.outputs.push(probs);
    let plan = Plan::with_precision(engine.context().clone(), &graph, weights, precision)?;
    Ok(BatchPlan {
        plan,
        staging: Mutex::new(None),
    })
}
