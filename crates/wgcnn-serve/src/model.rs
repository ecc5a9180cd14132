//! The models a server holds and how each kind maps protocol tensors in and out.
//!
//! A kind of model is one arm of [`Net`]: its metadata in [`Model::inputs`]/[`Model::outputs`]
//! and its output mapping in [`Model::run`].

use std::path::{Path, PathBuf};

use wgcnn::{
    Classifier, ClassifierOptions, Detection, Detector, DetectorOptions, Engine, Face,
    FaceDetector, FaceDetectorOptions, Precision, RgbImage, Scores, Segmentation, Segmenter,
    SegmenterOptions, Tensor,
};

use crate::ServeError;
use crate::tensor::{InTensor, InferRequest, OutTensor, base64_decode, split_bytes};

/// The network behind a model name.
pub enum Net {
    Classifier(Classifier),
    /// `masks`/`keypoints`: the model has those heads (Mask R-CNN, Keypoint R-CNN).
    Detector {
        net: Detector,
        masks: bool,
        keypoints: bool,
    },
    /// MTCNN: faces with five landmarks.
    Faces(FaceDetector),
    Segmenter(Segmenter),
}

/// A loaded model: its name, network, batching limit and storage precision.
pub struct Model {
    pub name: String,
    pub net: Net,
    pub max_batch: usize,
    pub precision: Precision,
}

/// Protocol metadata of one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorMeta {
    pub name: &'static str,
    pub datatype: &'static str,
    pub shape: Vec<i64>,
}

fn meta(name: &'static str, datatype: &'static str, shape: &[i64]) -> TensorMeta {
    TensorMeta {
        name,
        datatype,
        shape: shape.to_vec(),
    }
}

/// One image of a request, decoded on the blocking pool before it reaches the GPU worker.
pub enum Item {
    Image(RgbImage),
    /// A preprocessed `[1, 3, H, W]` float image.
    Tensor(Tensor),
}

/// What `--model` names: a registered network (with weights where it needs them) or an ONNX
/// file.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    pub weights: Option<PathBuf>,
    pub onnx: Option<PathBuf>,
}

impl ModelSpec {
    /// `NAME`, `NAME=weights.pth|.safetensors` or `file.onnx`.
    pub fn parse(spec: &str) -> ModelSpec {
        if let Some((name, weights)) = spec.split_once('=') {
            return ModelSpec {
                name: name.into(),
                weights: Some(weights.into()),
                onnx: None,
            };
        }
        if spec.to_ascii_lowercase().ends_with(".onnx") {
            let path = PathBuf::from(spec);
            return ModelSpec {
                name: stem(&path),
                weights: None,
                onnx: Some(path),
            };
        }
        ModelSpec {
            name: spec.into(),
            weights: None,
            onnx: None,
        }
    }

    /// What a model directory (KServe mounts it at /mnt/models) holds: `*.onnx` files and
    /// `NAME.safetensors` / `NAME.pth` checkpoints of registered networks.
    pub fn scan_dir(dir: &Path) -> Result<Vec<ModelSpec>, ServeError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| ServeError::internal(format!("{}: {e}", dir.display())))?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut specs = Vec::new();
        for path in paths {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            match ext.as_str() {
                "onnx" => specs.push(ModelSpec {
                    name: stem(&path),
                    weights: None,
                    onnx: Some(path),
                }),
                "safetensors" | "pth" => specs.push(ModelSpec {
                    name: stem(&path),
                    weights: Some(path),
                    onnx: None,
                }),
                _ => tracing::debug!(path = %path.display(), "not a model file; skipped"),
            }
        }
        Ok(specs)
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string()
}

impl Model {
    /// Builds the network `spec` names: a registered detector or segmenter (they need weights),
    /// else a classifier (registered, with bundled or given weights, or ONNX). `precision`
    /// applies to classifiers and segmenters; a detector or the face model asked for f16 is an
    /// error (their buffers carry integers; the library runs them at f32 only).
    pub fn load(
        engine: &Engine,
        spec: &ModelSpec,
        max_batch: usize,
        precision: Precision,
    ) -> Result<Model, ServeError> {
        let max_batch = max_batch.max(1);
        let lib = |e: wgcnn::Error| ServeError::internal(format!("model {}: {e}", spec.name));
        let needs = |what: &str| {
            ServeError::internal(format!(
                "model {} is a {what}: give its checkpoint as {}=FILE.pth|.safetensors",
                spec.name, spec.name
            ))
        };
        let f32_only = |what: &str| {
            if precision == Precision::F32 {
                return Ok(());
            }
            Err(ServeError::internal(format!(
                "model {} is a {what}, which runs at f32 only: --precision {precision} applies to \
                 classifiers and segmenters (serve the {what} from a `wgcnn serve` without it)",
                spec.name
            )))
        };
        let net = if spec.onnx.is_none()
            && wgcnn::wgcnn_models::detect::find_detector(&spec.name).is_ok()
        {
            f32_only("detector")?;
            let weights = spec.weights.clone().ok_or_else(|| needs("detector"))?;
            let options = DetectorOptions {
                model: spec.name.clone(),
                weights,
                score_threshold: 0.5,
                config: None,
                labels: None,
            };
            Net::Detector {
                net: Detector::new(engine, &options).map_err(lib)?,
                masks: spec.name.starts_with("maskrcnn"),
                keypoints: spec.name.starts_with("keypointrcnn"),
            }
        } else if spec.onnx.is_none() && spec.name == wgcnn::FACE_MODEL {
            f32_only("face detector")?;
            let options = FaceDetectorOptions {
                weights: spec.weights.clone(),
                ..Default::default()
            };
            Net::Faces(FaceDetector::new(engine, &options).map_err(lib)?)
        } else if spec.onnx.is_none()
            && wgcnn::wgcnn_models::segment::find_segmenter(&spec.name).is_ok()
        {
            let weights = spec.weights.clone().ok_or_else(|| needs("segmenter"))?;
            let options = SegmenterOptions {
                precision,
                ..SegmenterOptions::new(&spec.name, weights)
            };
            Net::Segmenter(Segmenter::new(engine, &options).map_err(lib)?)
        } else if let Some(onnx) = &spec.onnx {
            let model = onnx.display().to_string();
            let probe = wgcnn::wgcnn_io::onnx::load_onnx(
                &model,
                &wgcnn::wgcnn_io::onnx::OnnxOptions { batch: 1 },
            )
            .map_err(|e| ServeError::internal(format!("{model}: {e}")))?;
            let shape = probe
                .graph
                .inputs
                .first()
                .map(|&i| probe.graph.shape(i).to_vec())
                .unwrap_or_default();
            let [_, c, h, _] = shape[..] else {
                return Err(ServeError::internal(format!(
                    "{model}: input {shape:?} is not an NCHW image"
                )));
            };
            // The same defaults `wgcnn classify --model net.onnx` uses.
            let options = ClassifierOptions {
                model: model.clone(),
                weights: None,
                batch: max_batch,
                transform: Some(wgcnn::onnx_default_transform(c, h)),
                labels: None,
                precision,
            };
            Net::Classifier(Classifier::from_onnx(engine, &model, &options).map_err(lib)?)
        } else {
            let options = ClassifierOptions {
                model: spec.name.clone(),
                weights: spec.weights.clone(),
                batch: max_batch,
                transform: None,
                labels: None,
                precision,
            };
            Net::Classifier(Classifier::new(engine, &options).map_err(lib)?)
        };
        // Detectors and segmenters run one image per GPU submission: the batcher still groups
        // requests, and the worker runs them back to back.
        Ok(Model {
            name: spec.name.clone(),
            net,
            max_batch,
            precision,
        })
    }

    pub fn platform(&self) -> &'static str {
        match self.net {
            Net::Classifier(_) => "wgcnn_classifier",
            Net::Detector { .. } => "wgcnn_detector",
            Net::Faces(_) => "wgcnn_face_detector",
            Net::Segmenter(_) => "wgcnn_segmenter",
        }
    }

    /// The inputs a model takes (one of them per request). Every kind also accepts `input` as
    /// `UINT8 [N, H, W, 3]` pixels; metadata lists one datatype per name, so the face detector
    /// (which takes no preprocessed tensor) lists that one.
    pub fn inputs(&self) -> Vec<TensorMeta> {
        let input = match self.net {
            Net::Faces(_) => meta("input", "UINT8", &[-1, -1, -1, 3]),
            _ => meta("input", "FP32", &[-1, 3, -1, -1]),
        };
        vec![meta("image", "BYTES", &[-1]), input]
    }

    pub fn outputs(&self) -> Vec<TensorMeta> {
        match &self.net {
            Net::Classifier(_) => vec![
                meta("logits", "FP32", &[-1, -1]),
                meta("probabilities", "FP32", &[-1, -1]),
            ],
            Net::Faces(_) => vec![
                meta("boxes", "FP32", &[-1, -1, 4]),
                meta("scores", "FP32", &[-1, -1]),
                meta("classes", "INT32", &[-1, -1]),
                meta("num_detections", "INT32", &[-1]),
                meta("landmarks", "FP32", &[-1, -1, 5, 2]),
            ],
            Net::Detector {
                masks, keypoints, ..
            } => {
                let mut v = vec![
                    meta("boxes", "FP32", &[-1, -1, 4]),
                    meta("scores", "FP32", &[-1, -1]),
                    meta("classes", "INT32", &[-1, -1]),
                    meta("num_detections", "INT32", &[-1]),
                ];
                if *masks {
                    v.push(meta("masks", "BYTES", &[-1, -1]));
                }
                if *keypoints {
                    v.push(meta("keypoints", "FP32", &[-1, -1, 17, 3]));
                }
                v
            }
            Net::Segmenter(_) => vec![meta("labels", "UINT8", &[-1, -1, -1])],
        }
    }

    /// Class names by index, once known.
    pub fn labels(&self) -> Option<&[String]> {
        match &self.net {
            Net::Classifier(c) => Some(c.labels()),
            Net::Segmenter(s) => Some(s.labels()),
            Net::Detector { .. } | Net::Faces(_) => None,
        }
    }

    /// Decodes a request's single input into images (runs on the blocking pool).
    pub fn prepare(&self, req: &InferRequest) -> Result<Vec<Item>, ServeError> {
        let [input] = &req.inputs[..] else {
            return Err(ServeError::bad(format!(
                "model {} takes exactly one input ('image' or 'input'), got {}",
                self.name,
                req.inputs.len()
            )));
        };
        input.validate()?;
        // Checked before decoding, so an oversized batch costs no decoding work.
        let n = match input.name.as_str() {
            "image" => crate::tensor::element_count(&input.shape)?,
            _ => input.shape.first().map_or(0, |&d| d.max(0) as usize),
        };
        if n == 0 || n > self.max_batch {
            return Err(ServeError::bad(format!(
                "inference request batch-size must be in 1..={} for model {}, got {n}",
                self.max_batch, self.name
            )));
        }
        let items = match (input.name.as_str(), input.datatype.as_str()) {
            ("image", "BYTES") => decode_images(input)?,
            ("input", "FP32") => float_images(input)?,
            ("input", "UINT8") => pixel_images(input)?,
            (name @ ("image" | "input"), dt) => {
                return Err(ServeError::bad(format!(
                    "input '{name}' has datatype {dt}; expected {}",
                    if name == "image" {
                        "BYTES"
                    } else {
                        "FP32 [N, 3, H, W] or UINT8 [N, H, W, 3]"
                    }
                )));
            }
            (name, _) => {
                return Err(ServeError::bad(format!(
                    "model {} has no input '{name}' (inputs: image, input)",
                    self.name
                )));
            }
        };
        if items.is_empty() || items.len() > self.max_batch {
            return Err(ServeError::bad(format!(
                "inference request batch-size must be in 1..={} for model {}, got {}",
                self.max_batch,
                self.name,
                items.len()
            )));
        }
        Ok(items)
    }

    /// Runs a batch formed from several requests (on the model's GPU worker): one result per
    /// request, each with every output of the model.
    pub fn run(&self, batch: &mut [Vec<Item>]) -> Vec<Result<Vec<OutTensor>, ServeError>> {
        match &self.net {
            Net::Classifier(c) => self.run_classifier(c, batch),
            Net::Faces(f) => batch
                .iter()
                .map(|items| {
                    let faces = items
                        .iter()
                        .map(|item| match item {
                            Item::Image(img) => f.detect(img).map_err(ServeError::from_lib),
                            Item::Tensor(_) => Err(ServeError::bad(format!(
                                "model {} takes images: input 'image' (BYTES) or 'input' as \
                                 UINT8 [N, H, W, 3] pixels, not a preprocessed FP32 tensor",
                                self.name
                            ))),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(face_outputs(&faces))
                })
                .collect(),
            Net::Detector {
                net,
                masks,
                keypoints,
            } => batch
                .iter()
                .map(|items| {
                    let dets = items
                        .iter()
                        .map(|item| match item {
                            Item::Image(img) => net.detect(img),
                            Item::Tensor(t) => net.detect_tensor(t),
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(ServeError::from_lib)?;
                    Ok(detection_outputs(&dets, *masks, *keypoints))
                })
                .collect(),
            Net::Segmenter(s) => batch
                .iter()
                .map(|items| {
                    let segs = items
                        .iter()
                        .map(|item| match item {
                            Item::Image(img) => s.segment(img),
                            Item::Tensor(t) => s.segment_tensor(t),
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(ServeError::from_lib)?;
                    segmentation_output(&segs)
                })
                .collect(),
        }
    }

    fn run_classifier(
        &self,
        c: &Classifier,
        batch: &mut [Vec<Item>],
    ) -> Vec<Result<Vec<OutTensor>, ServeError>> {
        // Every decoded image of every request goes to the GPU in submissions of the
        // classifier's batch size; float inputs (rare) run one by one through the full-batch
        // plan. Logits and the softmax both come from the GPU.
        // The images move out of the requests (a placeholder stays) rather than being copied.
        let owned: Vec<RgbImage> = batch
            .iter_mut()
            .flatten()
            .filter_map(|i| match i {
                Item::Image(img) => Some(std::mem::replace(
                    img,
                    RgbImage {
                        width: 0,
                        height: 0,
                        pixels: Vec::new(),
                    },
                )),
                Item::Tensor(_) => None,
            })
            .collect();
        let mut image_rows: Vec<(Vec<f32>, Vec<f32>)> = Vec::with_capacity(owned.len());
        for chunk in owned.chunks(c.batch().max(1)) {
            match c.scores_batch(chunk) {
                Ok((scores, _)) => image_rows.extend(score_rows(&scores)),
                Err(e) => {
                    let err = ServeError::from_lib(e);
                    return batch.iter().map(|_| Err(err.clone())).collect();
                }
            }
        }
        let mut next_image = image_rows.into_iter();
        batch
            .iter()
            .map(|items| {
                let mut logits = Vec::new();
                let mut probs = Vec::new();
                for item in items {
                    let (l, p) = match item {
                        Item::Image(_) => next_image
                            .next()
                            .ok_or_else(|| ServeError::internal("classifier lost an image"))?,
                        Item::Tensor(t) => tensor_scores(c, t)?,
                    };
                    logits.push(l);
                    probs.push(p);
                }
                let shape = vec![
                    logits.len() as i64,
                    logits.first().map_or(0, Vec::len) as i64,
                ];
                Ok(vec![
                    OutTensor::f32("logits", shape.clone(), &logits.concat()),
                    OutTensor::f32("probabilities", shape, &probs.concat()),
                ])
            })
            .collect()
    }
}

/// One `(logits, probabilities)` pair of rows per image of a batch's scores.
fn score_rows(scores: &Scores) -> Vec<(Vec<f32>, Vec<f32>)> {
    let classes = scores.logits.shape.get(1).copied().unwrap_or(0).max(1);
    scores
        .logits
        .data
        .chunks(classes)
        .zip(scores.probabilities.data.chunks(classes))
        .map(|(l, p)| (l.to_vec(), p.to_vec()))
        .collect()
}

/// Logits and probabilities of one preprocessed `[1, 3, H, W]` image, padded to the plan's
/// batch.
fn tensor_scores(c: &Classifier, t: &Tensor) -> Result<(Vec<f32>, Vec<f32>), ServeError> {
    let per: usize = t.data.len();
    let mut shape = t.shape.clone();
    shape[0] = c.batch();
    let mut data = vec![0f32; per * c.batch()];
    data[..per].copy_from_slice(&t.data);
    let scores = c
        .scores(&Tensor { shape, data })
        .map_err(ServeError::from_lib)?;
    score_rows(&scores)
        .into_iter()
        .next()
        .ok_or_else(|| ServeError::internal("classifier returned no row"))
}

fn detection_outputs(dets: &[Vec<Detection>], masks: bool, keypoints: bool) -> Vec<OutTensor> {
    let n = dets.len();
    let k = dets.iter().map(Vec::len).max().unwrap_or(0);
    let mut points = vec![0f32; n * k * 17 * 3];
    let mut boxes = vec![0f32; n * k * 4];
    let mut scores = vec![0f32; n * k];
    let mut classes = vec![-1i32; n * k];
    let mut rles = vec![Vec::new(); n * k];
    for (i, image) in dets.iter().enumerate() {
        for (j, d) in image.iter().enumerate() {
            let at = i * k + j;
            boxes[at * 4..at * 4 + 4].copy_from_slice(&d.bbox);
            scores[at] = d.score;
            classes[at] = d.class as i32;
            if let Some(kps) = &d.keypoints {
                for (slot, kp) in points[at * 51..at * 51 + 51].chunks_exact_mut(3).zip(kps) {
                    slot.copy_from_slice(kp);
                }
            }
            if let Some(m) = &d.mask {
                rles[at] = serde_json::json!({"size": m.rle.size, "counts": m.rle.counts})
                    .to_string()
                    .into_bytes();
            }
        }
    }
    let counts: Vec<i32> = dets.iter().map(|d| d.len() as i32).collect();
    let (n, k) = (n as i64, k as i64);
    let mut out = vec![
        OutTensor::f32("boxes", vec![n, k, 4], &boxes),
        OutTensor::f32("scores", vec![n, k], &scores),
        OutTensor::i32("classes", vec![n, k], &classes),
        OutTensor::i32("num_detections", vec![n], &counts),
    ];
    if masks {
        out.push(OutTensor::bytes("masks", vec![n, k], &rles));
    }
    if keypoints {
        out.push(OutTensor::f32("keypoints", vec![n, k, 17, 3], &points));
    }
    out
}

/// Faces as detections of class 1 (`face`), padded to the most faces of one image, with their
/// five landmarks (eyes, nose, mouth corners) as `[N, K, 5, 2]`.
fn face_outputs(faces: &[Vec<Face>]) -> Vec<OutTensor> {
    let n = faces.len();
    let k = faces.iter().map(Vec::len).max().unwrap_or(0);
    let mut boxes = vec![0f32; n * k * 4];
    let mut scores = vec![0f32; n * k];
    let mut classes = vec![-1i32; n * k];
    let mut landmarks = vec![0f32; n * k * 10];
    for (i, image) in faces.iter().enumerate() {
        for (j, f) in image.iter().enumerate() {
            let at = i * k + j;
            boxes[at * 4..at * 4 + 4].copy_from_slice(&f.bbox);
            scores[at] = f.score;
            classes[at] = 1;
            landmarks[at * 10..at * 10 + 10].copy_from_slice(f.landmarks.as_flattened());
        }
    }
    let counts: Vec<i32> = faces.iter().map(|f| f.len() as i32).collect();
    let (n, k) = (n as i64, k as i64);
    vec![
        OutTensor::f32("boxes", vec![n, k, 4], &boxes),
        OutTensor::f32("scores", vec![n, k], &scores),
        OutTensor::i32("classes", vec![n, k], &classes),
        OutTensor::i32("num_detections", vec![n], &counts),
        OutTensor::f32("landmarks", vec![n, k, 5, 2], &landmarks),
    ]
}

fn segmentation_output(segs: &[Segmentation]) -> Result<Vec<OutTensor>, ServeError> {
    let (h, w) = segs.first().map_or((0, 0), |s| (s.height, s.width));
    if segs.iter().any(|s| (s.height, s.width) != (h, w)) {
        return Err(ServeError::bad(
            "the images of one request must share their size to stack their label maps",
        ));
    }
    let mut data = Vec::with_capacity(segs.len() * h * w);
    for s in segs {
        for &c in &s.classes {
            data.push(
                u8::try_from(c).map_err(|_| ServeError::internal(format!("class {c} > 255")))?,
            );
        }
    }
    Ok(vec![OutTensor::u8(
        "labels",
        vec![segs.len() as i64, h as i64, w as i64],
        data,
    )])
}

fn decode_images(input: &InTensor) -> Result<Vec<Item>, ServeError> {
    let items = split_bytes(&input.raw).unwrap_or_default();
    items
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let what = format!("image {i}");
            match RgbImage::decode(bytes, &what) {
                Ok(img) => Ok(Item::Image(img)),
                // JSON carries BYTES as strings: accept base64 there, as KServe's servers do.
                Err(e) => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(base64_decode)
                    .and_then(|b| RgbImage::decode(&b, &what).ok())
                    .map(Item::Image)
                    .ok_or_else(|| ServeError::bad(format!("input 'image': {e}"))),
            }
        })
        .collect()
}

fn dims(input: &InTensor, want: usize) -> Result<Vec<usize>, ServeError> {
    if input.shape.len() != want {
        return Err(ServeError::bad(format!(
            "input '{}' of datatype {} must have {want} dimensions, got shape {:?}",
            input.name, input.datatype, input.shape
        )));
    }
    Ok(input.shape.iter().map(|&d| d as usize).collect())
}

fn float_images(input: &InTensor) -> Result<Vec<Item>, ServeError> {
    let d = dims(input, 4)?;
    if d[1] != 3 || d[2] == 0 || d[3] == 0 {
        return Err(ServeError::bad(format!(
            "input 'input' FP32 must be [N, 3, H, W], got {:?}",
            input.shape
        )));
    }
    let per = 3 * d[2] * d[3];
    let data: Vec<f32> = input
        .raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(data
        .chunks_exact(per)
        .map(|c| {
            Item::Tensor(Tensor {
                shape: vec![1, 3, d[2], d[3]],
                data: c.to_vec(),
            })
        })
        .collect())
}

fn pixel_images(input: &InTensor) -> Result<Vec<Item>, ServeError> {
    let d = dims(input, 4)?;
    if d[3] != 3 || d[1] == 0 || d[2] == 0 {
        return Err(ServeError::bad(format!(
            "input 'input' UINT8 must be [N, H, W, 3], got {:?}",
            input.shape
        )));
    }
    let per = 3 * d[1] * d[2];
    Ok(input
        .raw
        .chunks_exact(per)
        .map(|c| {
            Item::Image(RgbImage {
                width: d[2],
                height: d[1],
                pixels: c.to_vec(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs_name_registered_models_checkpoints_and_onnx_files() {
        assert_eq!(
            ModelSpec::parse("resnet50"),
            ModelSpec {
                name: "resnet50".into(),
                weights: None,
                onnx: None
            }
        );
        let s = ModelSpec::parse("resnet50=/w/r50.pth");
        assert_eq!(
            (s.name.as_str(), s.weights),
            ("resnet50", Some(PathBuf::from("/w/r50.pth")))
        );
        let s = ModelSpec::parse("/m/My.Net.ONNX");
        assert_eq!(
            (s.name.as_str(), s.onnx),
            ("My.Net", Some(PathBuf::from("/m/My.Net.ONNX")))
        );
    }

    #[test]
    fn a_models_dir_yields_onnx_files_and_checkpoints_by_stem() {
        let dir = std::env::temp_dir().join(format!("wgcnn-serve-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["b.onnx", "resnet18.pth", "a.safetensors", "README.md"] {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        let specs = ModelSpec::scan_dir(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let names: Vec<(&str, bool)> = specs
            .iter()
            .map(|s| (s.name.as_str(), s.onnx.is_some()))
            .collect();
        assert_eq!(names, [("a", false), ("b", true), ("resnet18", false)]);
        assert!(ModelSpec::scan_dir(Path::new("/nonexistent/models")).is_err());
    }

    fn floats(t: &OutTensor) -> Vec<f32> {
        t.raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    #[test]
    fn keypoints_are_padded_per_image_like_the_boxes() {
        let person = |x: f32| Detection {
            label: "person".into(),
            class: 1,
            score: 0.9,
            bbox: [x, 0.0, x + 10.0, 20.0],
            mask: None,
            keypoints: Some((0..17).map(|k| [x + k as f32, 1.0, 2.0]).collect()),
        };
        let out = detection_outputs(&[vec![person(5.0), person(50.0)], vec![]], false, true);
        let names: Vec<&str> = out.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["boxes", "scores", "classes", "num_detections", "keypoints"]
        );
        let kps = &out[4];
        assert_eq!(kps.shape, [2, 2, 17, 3]);
        let v = floats(kps);
        assert_eq!(&v[..3], &[5.0, 1.0, 2.0]);
        assert_eq!(&v[51..54], &[50.0, 1.0, 2.0]);
        assert!(
            v[102..].iter().all(|&x| x == 0.0),
            "the empty image is zero padding"
        );
    }

    #[test]
    fn faces_are_class_1_with_five_landmarks_each() {
        let face = Face {
            score: 0.99,
            bbox: [1.0, 2.0, 3.0, 4.0],
            landmarks: [[1.5, 2.5], [2.5, 2.5], [2.0, 3.0], [1.5, 3.5], [2.5, 3.5]],
        };
        let out = face_outputs(&[vec![face], vec![face, face]]);
        assert_eq!(out[4].name, "landmarks");
        assert_eq!(out[4].shape, [2, 2, 5, 2]);
        let lm = floats(&out[4]);
        assert_eq!(&lm[..10], face.landmarks.as_flattened());
        assert!(lm[10..20].iter().all(|&x| x == 0.0), "image 0 has one face");
        assert_eq!(floats(&out[0])[..4], [1.0, 2.0, 3.0, 4.0]);
        let counts: Vec<i32> = out[3]
            .raw
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(counts, [1, 2]);
    }
}
