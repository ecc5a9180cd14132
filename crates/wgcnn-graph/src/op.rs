//! The operations of the IR and their shape rules.
//!
//! Every op works on NCHW f32 tensors. An op's inputs are positional (see each variant's doc);
//! parameters (weights, biases, BatchNorm statistics) are ordinary tensors of kind
//! [`crate::TensorKind::Param`] or [`crate::TensorKind::Const`] wired in as inputs.

use crate::Shape;

/// An element-wise activation. Fused into conv/linear epilogues by the passes, or run alone.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Activation {
    #[default]
    Identity,
    Relu,
    /// `min(max(x, min), max)`; ReLU6 is `Clip { min: 0, max: 6 }`.
    Clip {
        min: f32,
        max: f32,
    },
    Sigmoid,
    /// `x * sigmoid(x)` (a.k.a. swish).
    Silu,
    /// `clamp(alpha * x + beta, 0, 1)`; PyTorch's hardsigmoid is `alpha = 1/6, beta = 0.5`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * clamp(x / 6 + 0.5, 0, 1)` (PyTorch and ONNX agree).
    HardSwish,
    Tanh,
}

impl Activation {
    pub const RELU6: Activation = Activation::Clip { min: 0.0, max: 6.0 };
    pub const HARDSIGMOID: Activation = Activation::HardSigmoid {
        alpha: 1.0 / 6.0,
        beta: 0.5,
    };

    /// Applies the activation to one value (the CPU reference; kernels mirror it).
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(0.0),
            Activation::Clip { min, max } => x.max(min).min(max),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Tanh => x.tanh(),
        }
    }

    /// The `(code, p0, p1)` triple that kernels receive in their params uniform.
    /// Codes: 0 identity, 1 relu, 2 clip(p0, p1), 3 sigmoid, 4 silu, 5 hardsigmoid(p0 x + p1),
    /// 6 hardswish, 7 tanh. Keep in step with `act()` in the WGSL kernels.
    pub fn code(self) -> (u32, f32, f32) {
        match self {
            Activation::Identity => (0, 0.0, 0.0),
            Activation::Relu => (1, 0.0, 0.0),
            Activation::Clip { min, max } => (2, min, max),
            Activation::Sigmoid => (3, 0.0, 0.0),
            Activation::Silu => (4, 0.0, 0.0),
            Activation::HardSigmoid { alpha, beta } => (5, alpha, beta),
            Activation::HardSwish => (6, 0.0, 0.0),
            Activation::Tanh => (7, 0.0, 0.0),
        }
    }
}

/// 2-D convolution. Inputs: `[x [N,C,H,W], weight [K, C/groups, kh, kw], bias [K] if bias,
/// residual [N,K,OH,OW] if residual]`. Output: `act(conv(x) + bias + residual)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    pub stride: [usize; 2],
    /// Zero padding as `[top, left, bottom, right]`; asymmetric values are allowed (TF "SAME").
    pub padding: [usize; 4],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
    /// Set by the fusion pass: an extra input added before the activation.
    pub residual: bool,
    /// Set by the fusion pass: activation applied to the result.
    pub act: Activation,
}

impl Conv2d {
    /// A plain conv: symmetric padding, no dilation, no fused epilogue.
    pub fn new(stride: usize, padding: usize, groups: usize, bias: bool) -> Self {
        Conv2d {
            stride: [stride, stride],
            padding: [padding; 4],
            dilation: [1, 1],
            groups,
            bias,
            residual: false,
            act: Activation::Identity,
        }
    }
}

/// 2-D transposed convolution, PyTorch's `ConvTranspose2d` (ONNX `ConvTranspose`): every input
/// pixel scatters `x * weight` into the output at `(iy * stride + ky * dilation - pad_top,
/// ix * stride + kx * dilation - pad_left)`. Inputs: `[x [N, C, H, W], weight [C, K/groups, kh,
/// kw] (PyTorch's layout: input channels first), bias [K] if bias]`. Output `[N, K, OH, OW]`
/// with `OH = (H - 1) * stride - pad_top - pad_bottom + dilation * (kh - 1) + output_padding + 1`
/// (the same along W), then `act`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose2d {
    pub stride: [usize; 2],
    /// Cropping of the full scatter as `[top, left, bottom, right]` (ONNX allows asymmetric).
    pub padding: [usize; 4],
    /// Extra rows/columns at the bottom/right; PyTorch requires it below the stride or the
    /// dilation of its axis.
    pub output_padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
    /// Applied to the result (a model builder sets it where ReLU follows, as Mask R-CNN's).
    pub act: Activation,
}

impl ConvTranspose2d {
    /// A plain transposed conv: symmetric padding, no output padding, no dilation.
    pub fn new(stride: usize, padding: usize, groups: usize, bias: bool) -> Self {
        ConvTranspose2d {
            stride: [stride, stride],
            padding: [padding; 4],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups,
            bias,
            act: Activation::Identity,
        }
    }

    /// Output extent along `axis` (0 = H, 1 = W) for an input extent and kernel size, or why
    /// there is none.
    pub fn out_extent(&self, input: usize, kernel: usize, axis: usize) -> Result<usize, String> {
        let (s, d, op) = (
            self.stride[axis],
            self.dilation[axis],
            self.output_padding[axis],
        );
        if input == 0 || kernel == 0 {
            return Err("input and kernel must be non-empty".into());
        }
        let full = (input - 1) * s + d * (kernel - 1) + op + 1;
        let crop = self.padding[axis] + self.padding[axis + 2];
        match full.checked_sub(crop) {
            Some(out) if out > 0 => Ok(out),
            _ => Err(format!(
                "padding {:?} crops away the whole {full}-wide output along axis {axis}",
                self.padding
            )),
        }
    }
}

/// Max or average pooling window.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    pub ceil_mode: bool,
    /// Average pooling only: count padded positions in the divisor (PyTorch's default `true`).
    pub count_include_pad: bool,
}

impl Pool2d {
    pub fn new(kernel: usize, stride: usize, padding: usize, ceil_mode: bool) -> Self {
        Pool2d {
            kernel: [kernel, kernel],
            stride: [stride, stride],
            padding: [padding; 4],
            ceil_mode,
            count_include_pad: true,
        }
    }

    /// Output extent along one axis, PyTorch's rule (also ONNX's): with `ceil_mode` a last
    /// window that would start inside the right/bottom padding is dropped.
    pub fn out_extent(&self, input: usize, axis: usize) -> Option<usize> {
        let (k, s) = (self.kernel[axis], self.stride[axis]);
        let (p0, p1) = (self.padding[axis], self.padding[axis + 2]);
        let span = (input + p0 + p1).checked_sub(k)?;
        let mut out = if self.ceil_mode {
            span.div_ceil(s) + 1
        } else {
            span / s + 1
        };
        if self.ceil_mode && (out - 1) * s >= input + p0 {
            out -= 1;
        }
        Some(out)
    }
}

/// Local response normalization across channels, PyTorch's `LocalResponseNorm`:
/// `y = x / (k + alpha / size * sum(x^2 over channels [c - size/2, c + (size-1)/2]))^beta`.
#[derive(Clone, Debug, PartialEq)]
pub struct Lrn {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

/// Resampling of [`Op::Resize`], PyTorch's `F.interpolate` semantics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResizeMode {
    /// `mode="nearest"`: source index `min(floor(dst * in / out), in - 1)`.
    Nearest,
    /// `mode="bilinear"`; with `align_corners: false` the source coordinate is
    /// `max((dst + 0.5) * in / out - 0.5, 0)` (no antialiasing).
    Bilinear { align_corners: bool },
}

/// Score given to the unused rows of fixed-capacity detection tensors ([`Op::Proposals`],
/// [`Op::BoxPostprocess`]): their boxes are all zero and their score is this value.
pub const INVALID_SCORE: f32 = -1.0;

/// torchvision's `RegionProposalNetwork.filter_proposals` (+ box decoding) for a batch: per
/// level top-`pre_nms_top_n` by objectness logit, decode against the anchors (weights 1,1,1,1,
/// `dw`/`dh` clamped at `bbox_clip`), clip to `image_size`, drop boxes smaller than `min_size`,
/// sigmoid scores, keep scores `>= score_thresh`, NMS per level at `nms_thresh` (a box is
/// suppressed by a higher-scored one with IoU `> nms_thresh`), keep the best `post_nms_top_n` by
/// score, sorted descending.
///
/// Inputs: `[objectness [N, A], deltas [N, A, 4], anchors [A, 4]]`, anchors level-major with
/// `level_sizes` anchors per level, each level in torchvision's `(H, W, anchor)` order.
/// Output: `[N, post_nms_top_n, 5]` rows `(x1, y1, x2, y2, score)`; unused rows are zero with
/// score [`INVALID_SCORE`]. Equal scores (in top-k and NMS) go by lower level first, then
/// higher logit, then lower anchor index (torchvision leaves ties unspecified).
#[derive(Clone, Debug, PartialEq)]
pub struct Proposals {
    pub level_sizes: Vec<usize>,
    pub pre_nms_top_n: usize,
    pub post_nms_top_n: usize,
    pub nms_thresh: f32,
    pub score_thresh: f32,
    pub min_size: f32,
    /// `(height, width)` of the resized image (before padding) boxes are clipped to.
    pub image_size: [usize; 2],
    /// `log(1000 / 16)` in torchvision.
    pub bbox_clip: f32,
}

/// torchvision's `MultiScaleRoIAlign`: each box is pooled from one feature level chosen by
/// `LevelMapper` (`k = floor(canonical_level + log2(sqrt(area) / canonical_scale) + 1e-6)`,
/// clamped to `[-log2(scales[0]), -log2(scales[last])]`), with
/// `roi_align(output, spatial_scale, sampling_ratio, aligned)`.
///
/// Inputs: `[boxes [N, R, 5] (as [`Op::Proposals`] outputs) or [N, R, 6] (as
/// [`Op::BoxPostprocess`] outputs: Mask and Keypoint R-CNN pool their detections); columns 0..4
/// are the box, column 4 the score, and rows with score [`INVALID_SCORE`] give zeros,
/// features level 0.. [N, C, H_l, W_l]]`. Output: `[N * R, C, output[0], output[1]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RoiAlign {
    pub output: [usize; 2],
    pub sampling_ratio: usize,
    /// Spatial scale of each feature level (1/4, 1/8, ...): torchvision infers
    /// `2^round(log2(feature / image))`.
    pub scales: Vec<f32>,
    pub canonical_scale: f32,
    pub canonical_level: f32,
    pub aligned: bool,
}

/// torchvision's `RoIHeads.postprocess_detections`: softmax over classes, per-class box decode
/// (`weights`, `dw`/`dh` clamped at `bbox_clip`) against the proposals, clip to `image_size`,
/// drop the background class, scores `<= score_thresh` and boxes smaller than `min_size`,
/// NMS per class at `nms_thresh`, keep the best `detections_per_img` by score, descending.
///
/// Inputs: `[class_logits [N * R, K], box_regression [N * R, K * 4], proposals [N, R, 5]]`.
/// Output: `[N, detections_per_img, 6]` rows `(x1, y1, x2, y2, score, label)`; unused rows are
/// zero with score [`INVALID_SCORE`]. Proposal rows with score [`INVALID_SCORE`] are skipped.
/// Equal scores go by lower index first: proposal, then class.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxPostprocess {
    pub image_size: [usize; 2],
    pub weights: [f32; 4],
    pub bbox_clip: f32,
    pub score_thresh: f32,
    pub nms_thresh: f32,
    pub detections_per_img: usize,
    pub min_size: f32,
}

/// The operations. Input lists are positional; see each variant.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// See [`Conv2d`].
    Conv2d(Conv2d),
    /// See [`ConvTranspose2d`].
    ConvTranspose2d(ConvTranspose2d),
    /// Inputs `[x]`. Padded positions never win.
    MaxPool2d(Pool2d),
    /// Inputs `[x]`. Divisor per [`Pool2d::count_include_pad`], PyTorch's rule.
    AvgPool2d(Pool2d),
    /// Inputs `[x]`; window `i` spans `[floor(i*H/oh), ceil((i+1)*H/oh))`. Global average
    /// pooling is `output: [1, 1]`.
    AdaptiveAvgPool2d { output: [usize; 2] },
    /// Inputs `[x [N,K], weight [M,K], bias [M] if bias]`; `y = act(x W^T + b)`.
    Linear { bias: bool, act: Activation },
    /// Inference BatchNorm over axis 1. Inputs `[x, gamma, beta, running_mean, running_var]`.
    BatchNorm { eps: f32 },
    /// Inputs `[x]`.
    Act(Activation),
    /// Inputs `[a, b]`; `b` broadcasts to `a` by numpy rules (same shape, `[N|1, C, 1, 1]`, or a
    /// single element). Output has `a`'s shape.
    Add,
    /// Inputs `[a, b]`, broadcasting as [`Op::Add`] (squeeze-excitation's channel scale).
    Mul,
    /// Inputs `[x [N, C, ...], slope [C] or [1]]`; `y = x` where `x >= 0`, else `slope[c] * x`,
    /// the slope taken along axis 1 (PyTorch's `PReLU`, MTCNN's activation).
    PRelu,
    /// Inputs: any number of tensors equal in every axis but `axis`.
    Concat { axis: usize },
    /// Inputs `[x]`; output `[prod(dims[..axis]), prod(dims[axis..])]`.
    Flatten { axis: usize },
    /// Inputs `[x]`; same element count, new static shape.
    Reshape { shape: Shape },
    /// Inputs `[x]`.
    Lrn(Lrn),
    /// Inputs `[x]`; softmax along `axis`.
    Softmax { axis: usize },
    /// Inputs `[x [N,C,H,W]]`; constant padding `[top, left, bottom, right]` with `value`.
    Pad { padding: [usize; 4], value: f32 },
    /// Inputs `[x [N,C,H,W]]`; output `[N, C, size[0], size[1]]`.
    Resize { size: [usize; 2], mode: ResizeMode },
    /// Inputs `[x]`; output axis `i` is input axis `perm[i]` (data moves).
    Permute { perm: Vec<usize> },
    /// Inputs `[logits [N, C, H, W]]`; output `[N, size[0], size[1]]`: per pixel, the index (as
    /// f32) of the largest channel of the logits bilinearly resized to `size`
    /// (`align_corners=False`, as [`Op::Resize`]; the identity at the input's size), the first
    /// one on ties. A segmenter's class map at any image size without materializing the
    /// resized logits.
    ArgMax2d { size: [usize; 2] },
    /// See [`Proposals`].
    Proposals(Proposals),
    /// See [`RoiAlign`].
    RoiAlign(RoiAlign),
    /// See [`BoxPostprocess`].
    BoxPostprocess(BoxPostprocess),
    /// Inputs `[detections [N, D, 6]]`: boxes scaled back to the input image, `x * scale[1]`,
    /// `y * scale[0]` (`scale` = original / resized, height then width); unused rows stay.
    ScaleBoxes { scale: [f32; 2] },
    /// Mask R-CNN's `maskrcnn_inference` + torchvision's `paste_masks_in_image`. Inputs
    /// `[mask_logits [N * D, K, M, M], detections [N, D, 6]]` (rows `(x1, y1, x2, y2, score,
    /// label)` in the frame of the `size[0]` x `size[1]` image). Output `[N, D, size[0],
    /// size[1]]`: per detection, the sigmoid of its label's channel, zero-padded by `padding`,
    /// its box expanded by `(M + 2 padding) / M` about the centre (f32) and truncated to
    /// integers, bilinearly resized (`align_corners=False`) to the box's `x2 - x1 + 1` by
    /// `y2 - y1 + 1` pixels (at least 1) and written at the box's corner, clipped to the image;
    /// zero elsewhere, and everywhere for unused rows (score [`INVALID_SCORE`]) and labels
    /// `>= K`.
    PasteMasks { size: [usize; 2], padding: usize },
    /// Binary masks bit-packed for reading back: input `[N, D, H, W]` probabilities, output
    /// `[N, D, ceil(H * W / 32)]` words, each mask starting on a word; bit `b` of word `w` is
    /// pixel `32 w + b` (row-major) `> threshold`. The words are u32 bit patterns carried in
    /// the f32 tensor (`f32::to_bits` reads them); they are data, never arithmetic.
    MaskBits { threshold: f32 },
    /// Keypoint R-CNN's `heatmaps_to_keypoints`. Inputs `[heatmaps [N * D, J, H, W],
    /// detections [N, D, 6]]` (rows `(x1, y1, x2, y2, score, label)`, the frame the heatmaps
    /// were pooled in). Output `[N, D, J, 3]`: per detection and keypoint `(x, y, score)`. The
    /// box's width and height (at least 1) give a map of `ceil(h)` x `ceil(w)` pixels, the
    /// heatmap bicubically resized to it (PyTorch's `A = -0.75`, `align_corners=False`, border
    /// taps clamped); at its first maximum (row-major) `(x_int, y_int)`,
    /// `x = ((x_int + 0.5) * w / ceil(w) + x1) * scale[1]`, `y` alike with `scale[0]` (the
    /// `resize_keypoints` factors, as [`Op::ScaleBoxes`]), `score` = the resized value there.
    /// Unused rows (score [`INVALID_SCORE`]) and boxes wider or taller than 32768 pixels (or
    /// NaN) give zeros.
    KeypointDecode { scale: [f32; 2] },
}

impl Op {
    /// A short name for messages and profiles (`conv2d`, `maxpool2d`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv2d",
            Op::ConvTranspose2d(_) => "conv_transpose2d",
            Op::MaxPool2d(_) => "maxpool2d",
            Op::AvgPool2d(_) => "avgpool2d",
            Op::AdaptiveAvgPool2d { .. } => "adaptive_avgpool2d",
            Op::Linear { .. } => "linear",
            Op::BatchNorm { .. } => "batchnorm",
            Op::Act(_) => "activation",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::PRelu => "prelu",
            Op::Concat { .. } => "concat",
            Op::Flatten { .. } => "flatten",
            Op::Reshape { .. } => "reshape",
            Op::Lrn(_) => "lrn",
            Op::Softmax { .. } => "softmax",
            Op::Pad { .. } => "pad",
            Op::Resize { .. } => "resize",
            Op::Permute { .. } => "permute",
            Op::ArgMax2d { .. } => "argmax2d",
            Op::Proposals(_) => "proposals",
            Op::RoiAlign(_) => "roi_align",
            Op::BoxPostprocess(_) => "box_postprocess",
            Op::ScaleBoxes { .. } => "scale_boxes",
            Op::PasteMasks { .. } => "paste_masks",
            Op::MaskBits { .. } => "mask_bits",
            Op::KeypointDecode { .. } => "keypoint_decode",
        }
    }

    /// Infers the output shape from the input shapes, or says what does not fit.
    pub fn infer(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        let arity = |lo: usize, hi: usize| -> Result<(), String> {
            if inputs.len() < lo || inputs.len() > hi {
                Err(format!("takes {lo}..={hi} inputs, got {}", inputs.len()))
            } else {
                Ok(())
            }
        };
        let rank4 = |s: &[usize], what: &str| -> Result<[usize; 4], String> {
            <[usize; 4]>::try_from(s).map_err(|_| format!("{what} must be 4-D NCHW, got {s:?}"))
        };
        match self {
            Op::Conv2d(c) => {
                let want = 2 + c.bias as usize + c.residual as usize;
                arity(want, want)?;
                let [n, ch, h, w] = rank4(inputs[0], "input")?;
                let [k, cg, kh, kw] = rank4(inputs[1], "weight")?;
                if c.groups == 0 || ch % c.groups != 0 || k % c.groups != 0 {
                    return Err(format!(
                        "groups {} must divide channels {ch} and {k}",
                        c.groups
                    ));
                }
                if cg * c.groups != ch {
                    return Err(format!(
                        "weight {:?} expects {} input channels, input has {ch}",
                        inputs[1],
                        cg * c.groups
                    ));
                }
                if c.stride.contains(&0) || c.dilation.contains(&0) {
                    return Err("stride and dilation must be positive".into());
                }
                let extent = |len: usize, kk: usize, axis: usize| -> Result<usize, String> {
                    let span = len + c.padding[axis] + c.padding[axis + 2];
                    let eff = c.dilation[axis] * (kk - 1) + 1;
                    span.checked_sub(eff)
                        .map(|d| d / c.stride[axis] + 1)
                        .ok_or_else(|| format!("kernel {kh}x{kw} larger than padded input {h}x{w}"))
                };
                let out = vec![n, k, extent(h, kh, 0)?, extent(w, kw, 1)?];
                if c.bias && inputs[2] != [k] {
                    return Err(format!("bias must be [{k}], got {:?}", inputs[2]));
                }
                if c.residual && inputs[inputs.len() - 1] != out.as_slice() {
                    return Err(format!(
                        "residual must be {out:?}, got {:?}",
                        inputs[inputs.len() - 1]
                    ));
                }
                Ok(out)
            }
            Op::ConvTranspose2d(c) => {
                let want = 2 + c.bias as usize;
                arity(want, want)?;
                let [n, ch, h, w] = rank4(inputs[0], "input")?;
                let [wc, kg, kh, kw] = rank4(inputs[1], "weight")?;
                if c.groups == 0 || ch % c.groups != 0 {
                    return Err(format!("groups {} must divide channels {ch}", c.groups));
                }
                if wc != ch {
                    return Err(format!(
                        "weight {:?} expects {wc} input channels, input has {ch}",
                        inputs[1]
                    ));
                }
                if c.stride.contains(&0) || c.dilation.contains(&0) {
                    return Err("stride and dilation must be positive".into());
                }
                for axis in 0..2 {
                    let op = c.output_padding[axis];
                    if op >= c.stride[axis] && op >= c.dilation[axis] {
                        return Err(format!(
                            "output_padding {:?} must be below the stride or the dilation",
                            c.output_padding
                        ));
                    }
                }
                let k = kg * c.groups;
                let out = vec![n, k, c.out_extent(h, kh, 0)?, c.out_extent(w, kw, 1)?];
                if c.bias && inputs[2] != [k] {
                    return Err(format!("bias must be [{k}], got {:?}", inputs[2]));
                }
                Ok(out)
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                arity(1, 1)?;
                let [n, c, h, w] = rank4(inputs[0], "input")?;
                if p.stride.contains(&0) || p.kernel.contains(&0) {
                    return Err("kernel and stride must be positive".into());
                }
                if p.padding[0] * 2 > p.kernel[0] || p.padding[1] * 2 > p.kernel[1] {
                    return Err(format!(
                        "padding {:?} exceeds half the kernel {:?}",
                        p.padding, p.kernel
                    ));
                }
                let oh = p
                    .out_extent(h, 0)
                    .ok_or("window larger than padded input")?;
                let ow = p
                    .out_extent(w, 1)
                    .ok_or("window larger than padded input")?;
                Ok(vec![n, c, oh, ow])
            }
            Op::AdaptiveAvgPool2d { output } => {
                arity(1, 1)?;
                let [n, c, _, _] = rank4(inputs[0], "input")?;
                if output.contains(&0) {
                    return Err("output size must be positive".into());
                }
                Ok(vec![n, c, output[0], output[1]])
            }
            Op::Linear { bias, .. } => {
                let want = 2 + *bias as usize;
                arity(want, want)?;
                let (x, wt) = (inputs[0], inputs[1]);
                if x.len() != 2 || wt.len() != 2 || x[1] != wt[1] {
                    return Err(format!(
                        "input {x:?} and weight {wt:?} do not fit [N,K] x [M,K]"
                    ));
                }
                if *bias && inputs[2] != [wt[0]] {
                    return Err(format!("bias must be [{}], got {:?}", wt[0], inputs[2]));
                }
                Ok(vec![x[0], wt[0]])
            }
            Op::BatchNorm { .. } => {
                arity(5, 5)?;
                let x = inputs[0];
                if x.len() < 2 {
                    return Err(format!("input must have a channel axis, got {x:?}"));
                }
                for (i, s) in inputs[1..].iter().enumerate() {
                    if *s != [x[1]] {
                        return Err(format!("parameter {} must be [{}], got {s:?}", i + 1, x[1]));
                    }
                }
                Ok(x.to_vec())
            }
            Op::Act(_) => {
                arity(1, 1)?;
                Ok(inputs[0].to_vec())
            }
            Op::Add | Op::Mul => {
                arity(2, 2)?;
                let (a, b) = (inputs[0], inputs[1]);
                if !broadcasts_to(b, a) {
                    return Err(format!("{b:?} does not broadcast to {a:?}"));
                }
                Ok(a.to_vec())
            }
            Op::PRelu => {
                arity(2, 2)?;
                let (x, slope) = (inputs[0], inputs[1]);
                let channels = x.get(1).copied().unwrap_or(1);
                if slope != [channels] && slope != [1] {
                    return Err(format!(
                        "slope must be [{channels}] (axis 1 of {x:?}) or [1], got {slope:?}"
                    ));
                }
                Ok(x.to_vec())
            }
            Op::Concat { axis } => {
                if inputs.is_empty() {
                    return Err("needs at least one input".into());
                }
                let first = inputs[0];
                if *axis >= first.len() {
                    return Err(format!("axis {axis} out of range for {first:?}"));
                }
                let mut out = first.to_vec();
                out[*axis] = 0;
                for s in inputs {
                    let same_rest = s.len() == first.len()
                        && s.iter()
                            .zip(first)
                            .enumerate()
                            .all(|(i, (a, b))| i == *axis || a == b);
                    if !same_rest {
                        return Err(format!("{s:?} does not fit {first:?} outside axis {axis}"));
                    }
                    out[*axis] += s[*axis];
                }
                Ok(out)
            }
            Op::Flatten { axis } => {
                arity(1, 1)?;
                let x = inputs[0];
                if *axis > x.len() {
                    return Err(format!("axis {axis} out of range for {x:?}"));
                }
                Ok(vec![
                    x[..*axis].iter().product(),
                    x[*axis..].iter().product(),
                ])
            }
            Op::Reshape { shape } => {
                arity(1, 1)?;
                let (a, b) = (
                    inputs[0].iter().product::<usize>(),
                    shape.iter().product::<usize>(),
                );
                if a != b {
                    return Err(format!(
                        "cannot reshape {:?} ({a} elements) to {shape:?}",
                        inputs[0]
                    ));
                }
                Ok(shape.clone())
            }
            Op::Lrn(l) => {
                arity(1, 1)?;
                rank4(inputs[0], "input")?;
                if l.size == 0 {
                    return Err("size must be positive".into());
                }
                Ok(inputs[0].to_vec())
            }
            Op::Softmax { axis } => {
                arity(1, 1)?;
                if *axis >= inputs[0].len() {
                    return Err(format!("axis {axis} out of range for {:?}", inputs[0]));
                }
                Ok(inputs[0].to_vec())
            }
            Op::Pad { padding, .. } => {
                arity(1, 1)?;
                let [n, c, h, w] = rank4(inputs[0], "input")?;
                Ok(vec![
                    n,
                    c,
                    h + padding[0] + padding[2],
                    w + padding[1] + padding[3],
                ])
            }
            Op::Resize { size, .. } => {
                arity(1, 1)?;
                let [n, c, _, _] = rank4(inputs[0], "input")?;
                if size.contains(&0) {
                    return Err("output size must be positive".into());
                }
                Ok(vec![n, c, size[0], size[1]])
            }
            Op::ArgMax2d { size } => {
                arity(1, 1)?;
                let [n, c, _, _] = rank4(inputs[0], "input")?;
                if size.contains(&0) || c == 0 {
                    return Err("output size and channels must be positive".into());
                }
                Ok(vec![n, size[0], size[1]])
            }
            Op::Permute { perm } => {
                arity(1, 1)?;
                let x = inputs[0];
                let mut seen = vec![false; x.len()];
                if perm.len() != x.len()
                    || perm
                        .iter()
                        .any(|&p| p >= x.len() || std::mem::replace(&mut seen[p], true))
                {
                    return Err(format!(
                        "{perm:?} is not a permutation of the axes of {x:?}"
                    ));
                }
                Ok(perm.iter().map(|&p| x[p]).collect())
            }
            Op::Proposals(p) => {
                arity(3, 3)?;
                let (obj, deltas, anchors) = (inputs[0], inputs[1], inputs[2]);
                let total: usize = p.level_sizes.iter().sum();
                if obj.len() != 2
                    || obj[1] != total
                    || deltas != [obj[0], total, 4]
                    || anchors != [total, 4]
                {
                    return Err(format!(
                        "expects objectness [N, {total}], deltas [N, {total}, 4], anchors [{total}, 4]; got {obj:?}, {deltas:?}, {anchors:?}"
                    ));
                }
                Ok(vec![obj[0], p.post_nms_top_n, 5])
            }
            Op::RoiAlign(r) => {
                if inputs.len() != 1 + r.scales.len() {
                    return Err(format!(
                        "takes boxes and {} feature levels, got {} inputs",
                        r.scales.len(),
                        inputs.len()
                    ));
                }
                let boxes = inputs[0];
                if boxes.len() != 3 || !(5..=6).contains(&boxes[2]) {
                    return Err(format!(
                        "boxes must be [N, R, 5] or [N, R, 6], got {boxes:?}"
                    ));
                }
                let mut channels = None;
                for f in &inputs[1..] {
                    let [n, c, _, _] = rank4(f, "feature")?;
                    if n != boxes[0] || channels.is_some_and(|k| k != c) {
                        return Err(format!(
                            "feature {f:?} does not fit boxes {boxes:?} / other levels"
                        ));
                    }
                    channels = Some(c);
                }
                Ok(vec![
                    boxes[0] * boxes[1],
                    channels.unwrap_or(0),
                    r.output[0],
                    r.output[1],
                ])
            }
            Op::BoxPostprocess(p) => {
                arity(3, 3)?;
                let (logits, reg, props) = (inputs[0], inputs[1], inputs[2]);
                if logits.len() != 2
                    || reg != [logits[0], logits[1] * 4]
                    || props.len() != 3
                    || props[0] * props[1] != logits[0]
                    || props[2] != 5
                {
                    return Err(format!(
                        "expects class_logits [N*R, K], box_regression [N*R, K*4], proposals [N, R, 5]; got {logits:?}, {reg:?}, {props:?}"
                    ));
                }
                Ok(vec![props[0], p.detections_per_img, 6])
            }
            Op::ScaleBoxes { .. } => {
                arity(1, 1)?;
                let x = inputs[0];
                if x.len() != 3 || x[2] != 6 {
                    return Err(format!("detections must be [N, D, 6], got {x:?}"));
                }
                Ok(x.to_vec())
            }
            Op::PasteMasks { size, .. } => {
                arity(2, 2)?;
                let [rows, k, mh, mw] = rank4(inputs[0], "mask logits")?;
                let dets = inputs[1];
                if dets.len() != 3 || dets[2] != 6 || dets[0] * dets[1] != rows {
                    return Err(format!(
                        "expects mask_logits [N * D, K, M, M] and detections [N, D, 6]; got {:?}, {dets:?}",
                        inputs[0]
                    ));
                }
                if k == 0 || mh == 0 || mh != mw || size.contains(&0) {
                    return Err(format!(
                        "masks must be square and non-empty, the image size positive; got {:?}, size {size:?}",
                        inputs[0]
                    ));
                }
                Ok(vec![dets[0], dets[1], size[0], size[1]])
            }
            Op::MaskBits { .. } => {
                arity(1, 1)?;
                let x = inputs[0];
                if x.len() != 4 || x[2] == 0 || x[3] == 0 {
                    return Err(format!("masks must be [N, D, H, W], got {x:?}"));
                }
                Ok(vec![x[0], x[1], (x[2] * x[3]).div_ceil(32)])
            }
            Op::KeypointDecode { .. } => {
                arity(2, 2)?;
                let [rows, joints, mh, mw] = rank4(inputs[0], "heatmaps")?;
                let dets = inputs[1];
                if dets.len() != 3 || dets[2] != 6 || dets[0] * dets[1] != rows {
                    return Err(format!(
                        "expects heatmaps [N * D, J, H, W] and detections [N, D, 6]; got {:?}, {dets:?}",
                        inputs[0]
                    ));
                }
                if joints == 0 || mh == 0 || mw == 0 {
                    return Err(format!("heatmaps must be non-empty, got {:?}", inputs[0]));
                }
                Ok(vec![dets[0], dets[1], joints, 3])
            }
        }
    }

    /// Multiply-accumulate count of the op for `output` (0 for data movement), used for GFLOP
    /// figures: FLOPs = 2 x MACs.
    pub fn macs(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        let numel = |s: &[usize]| s.iter().product::<usize>() as u64;
        match self {
            Op::Conv2d(_) => {
                let w = inputs[1];
                numel(output) * (w[1] * w[2] * w[3]) as u64
            }
            Op::Linear { .. } => numel(output) * inputs[1][1] as u64,
            // Every input pixel meets every weight of its group once.
            Op::ConvTranspose2d(_) => {
                let w = inputs[1];
                numel(inputs[0]) * (w[1] * w[2] * w[3]) as u64
            }
            _ => 0,
        }
    }
}

/// Whether `b` broadcasts to `a` under numpy rules without changing `a`'s shape.
pub fn broadcasts_to(b: &[usize], a: &[usize]) -> bool {
    b.len() <= a.len()
        && b.iter()
            .rev()
            .zip(a.iter().rev())
            .all(|(&x, &y)| x == y || x == 1)
}
