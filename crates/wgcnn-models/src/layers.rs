//! Building blocks shared by the architectures: one function per PyTorch module kind.
//!
//! Each helper takes the [`GraphBuilder`], the module path `name` (which becomes the node name
//! and the prefix of its parameter keys), the input tensor and the module's hyper-parameters,
//! declares the parameters with their PyTorch keys and shapes, adds the node and returns its
//! output. Input channel counts are read from the input's inferred shape, so callers only give
//! output sizes. A shape that does not fit fails with [`GraphError::Shape`] naming the node.
//!
//! ```
//! use wgcnn_models::layers::{self, Conv};
//! use wgcnn_models::BuildOptions;
//!
//! let (mut b, x) = layers::begin(&BuildOptions::square(32, 10), 3);
//! let x = layers::conv_bn_act(&mut b, ["stem.conv", "stem.bn", "stem.relu"], x,
//!                             Conv::new(16, 3).stride(2).pad(1), layers::BN_EPS,
//!                             layers::Activation::Relu)?;
//! let x = layers::global_avg_pool(&mut b, "avgpool", x)?;
//! let x = layers::flatten(&mut b, "flatten", x)?;
//! let x = layers::linear(&mut b, "fc", x, 10, true)?;
//! let graph = layers::finish(b, x);
//! assert_eq!(graph.shape(graph.outputs[0]), [1, 10]);
//! # Ok::<(), wgcnn_graph::GraphError>(())
//! ```

use wgcnn_graph::{Conv2d, Graph, GraphBuilder, GraphError, Op, TensorId};

use crate::BuildOptions;

pub use wgcnn_graph::{Activation, Pool2d};

/// PyTorch's default BatchNorm epsilon.
pub const BN_EPS: f32 = 1e-5;

type Result<T> = std::result::Result<T, GraphError>;

/// Starts a graph: a builder with the `input` tensor `[batch, channels, height, width]` declared
/// and `num_batches_tracked` keys marked as ignored.
pub fn begin(options: &BuildOptions, channels: usize) -> (GraphBuilder, TensorId) {
    let mut b = GraphBuilder::new();
    let x = b.input(
        "input",
        &[options.batch, channels, options.height, options.width],
    );
    b.ignore_key_suffix("num_batches_tracked");
    (b, x)
}

/// Marks `output` as the graph's output and returns the graph.
pub fn finish(mut b: GraphBuilder, output: TensorId) -> Graph {
    b.output(output);
    b.finish()
}

/// Hyper-parameters of a `Conv2d` module. Start from [`Conv::new`] (square kernel, stride 1,
/// no padding, no dilation, one group, with bias) and chain the setters:
/// `Conv::new(64, 7).stride(2).pad(3).bias(false)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    /// Output channels.
    pub out: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    /// `[dh, dw]`.
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
}

impl Conv {
    /// `out` channels, a `k` x `k` kernel, stride 1, no padding, one group, with bias.
    pub const fn new(out: usize, k: usize) -> Conv {
        Conv::rect(out, [k, k])
    }

    /// `out` channels, a `[kh, kw]` kernel (Inception's 1x7 and 7x1), otherwise as [`Conv::new`].
    pub const fn rect(out: usize, kernel: [usize; 2]) -> Conv {
        Conv {
            out,
            kernel,
            stride: [1, 1],
            padding: [0; 4],
            dilation: [1, 1],
            groups: 1,
            bias: true,
        }
    }

    /// The same stride along both axes.
    pub const fn stride(mut self, s: usize) -> Conv {
        self.stride = [s, s];
        self
    }

    /// The same zero padding on all four sides.
    pub const fn pad(mut self, p: usize) -> Conv {
        self.padding = [p; 4];
        self
    }

    /// Symmetric padding `ph` rows top and bottom, `pw` columns left and right
    /// (PyTorch's `padding=(ph, pw)`).
    pub const fn pad_hw(mut self, ph: usize, pw: usize) -> Conv {
        self.padding = [ph, pw, ph, pw];
        self
    }

    /// Explicit `[top, left, bottom, right]` padding (TensorFlow "SAME" is asymmetric).
    pub const fn padding(mut self, padding: [usize; 4]) -> Conv {
        self.padding = padding;
        self
    }

    /// The same dilation along both axes.
    pub const fn dilation(mut self, d: usize) -> Conv {
        self.dilation = [d, d];
        self
    }

    /// Grouped convolution; depthwise is `groups(channels)` with `out == channels` (or a
    /// multiple).
    pub const fn groups(mut self, groups: usize) -> Conv {
        self.groups = groups;
        self
    }

    /// Whether the module has a `bias` parameter.
    pub const fn bias(mut self, bias: bool) -> Conv {
        self.bias = bias;
        self
    }
}

/// Builds a whole graph: [`begin`], then `body(builder, input)` returns the logits, then
/// [`finish`]. The usual shape of an architecture function:
/// `Ok(layers::graph(options, 3, |b, x| { ...; Ok(logits) })?)`.
pub fn graph(
    options: &BuildOptions,
    channels: usize,
    body: impl FnOnce(&mut GraphBuilder, TensorId) -> Result<TensorId>,
) -> Result<Graph> {
    let (mut b, x) = begin(options, channels);
    let y = body(&mut b, x)?;
    Ok(finish(b, y))
}

/// A [`GraphError::Shape`] for node `name`.
pub fn shape_error(
    b: &GraphBuilder,
    name: &str,
    op: &'static str,
    inputs: &[TensorId],
    message: String,
) -> GraphError {
    GraphError::Shape {
        node: name.to_string(),
        op,
        inputs: inputs.iter().map(|&i| b.shape(i).to_vec()).collect(),
        message,
    }
}

/// Axis 1 of `x` (channels of NCHW, features of `[N, K]`), or a shape error for node `name`.
pub fn channels(b: &GraphBuilder, name: &str, op: &'static str, x: TensorId) -> Result<usize> {
    match b.shape(x) {
        [_, c, ..] => Ok(*c),
        s => Err(shape_error(
            b,
            name,
            op,
            &[x],
            format!("input must have a channel axis, got {s:?}"),
        )),
    }
}

/// `Conv2d` module `name`: parameters `{name}.weight` `[out, in/groups, kh, kw]` and, with
/// `c.bias`, `{name}.bias` `[out]`.
pub fn conv(b: &mut GraphBuilder, name: &str, x: TensorId, c: Conv) -> Result<TensorId> {
    let cin = channels(b, name, "conv2d", x)?;
    if b.shape(x).len() != 4 {
        return Err(shape_error(
            b,
            name,
            "conv2d",
            &[x],
            "input must be 4-D NCHW".into(),
        ));
    }
    if c.groups == 0 || !cin.is_multiple_of(c.groups) || !c.out.is_multiple_of(c.groups) {
        let msg = format!(
            "groups {} must divide input channels {cin} and output channels {}",
            c.groups, c.out
        );
        return Err(shape_error(b, name, "conv2d", &[x], msg));
    }
    let weight = b.param(
        &format!("{name}.weight"),
        &[c.out, cin / c.groups, c.kernel[0], c.kernel[1]],
    );
    let mut inputs = vec![x, weight];
    if c.bias {
        inputs.push(b.param(&format!("{name}.bias"), &[c.out]));
    }
    let op = Conv2d {
        stride: c.stride,
        padding: c.padding,
        dilation: c.dilation,
        groups: c.groups,
        bias: c.bias,
        residual: false,
        act: Activation::Identity,
    };
    b.node(name, Op::Conv2d(op), &inputs)
}

/// `BatchNorm2d` module `name` (inference): parameters `{name}.weight`, `.bias`,
/// `.running_mean`, `.running_var`, each `[channels]`.
pub fn batchnorm(b: &mut GraphBuilder, name: &str, x: TensorId, eps: f32) -> Result<TensorId> {
    let c = channels(b, name, "batchnorm", x)?;
    let params: Vec<TensorId> = ["weight", "bias", "running_mean", "running_var"]
        .iter()
        .map(|p| b.param(&format!("{name}.{p}"), &[c]))
        .collect();
    b.node(
        name,
        Op::BatchNorm { eps },
        &[x, params[0], params[1], params[2], params[3]],
    )
}

/// An activation node `name` (no parameters).
pub fn act(
    b: &mut GraphBuilder,
    name: &str,
    x: TensorId,
    activation: Activation,
) -> Result<TensorId> {
    b.node(name, Op::Act(activation), &[x])
}

/// A ReLU node `name`.
pub fn relu(b: &mut GraphBuilder, name: &str, x: TensorId) -> Result<TensorId> {
    act(b, name, x, Activation::Relu)
}

/// Conv, BatchNorm, then `activation` (no node for [`Activation::Identity`]), with the three
/// nodes named `names = [conv, bn, act]`.
pub fn conv_bn_act(
    b: &mut GraphBuilder,
    names: [&str; 3],
    x: TensorId,
    c: Conv,
    eps: f32,
    activation: Activation,
) -> Result<TensorId> {
    let y = conv(b, names[0], x, c)?;
    let y = batchnorm(b, names[1], y, eps)?;
    if activation == Activation::Identity {
        Ok(y)
    } else {
        act(b, names[2], y, activation)
    }
}

/// torchvision's `Conv2dNormActivation` at `prefix`: `{prefix}.0` conv (no bias, whatever
/// `c.bias` says, as torchvision does when a norm follows), `{prefix}.1` BatchNorm,
/// `{prefix}.2` activation (omitted for [`Activation::Identity`]).
pub fn conv_norm_act(
    b: &mut GraphBuilder,
    prefix: &str,
    x: TensorId,
    c: Conv,
    eps: f32,
    activation: Activation,
) -> Result<TensorId> {
    let names = [
        format!("{prefix}.0"),
        format!("{prefix}.1"),
        format!("{prefix}.2"),
    ];
    conv_bn_act(
        b,
        [&names[0], &names[1], &names[2]],
        x,
        c.bias(false),
        eps,
        activation,
    )
}

/// torchvision's `BasicConv2d` (GoogLeNet, Inception) at `prefix`: `{prefix}.conv` (no bias),
/// `{prefix}.bn` with `eps`, then a ReLU node `{prefix}.relu`.
pub fn basic_conv(
    b: &mut GraphBuilder,
    prefix: &str,
    x: TensorId,
    c: Conv,
    eps: f32,
) -> Result<TensorId> {
    let names = [
        format!("{prefix}.conv"),
        format!("{prefix}.bn"),
        format!("{prefix}.relu"),
    ];
    conv_bn_act(
        b,
        [&names[0], &names[1], &names[2]],
        x,
        c.bias(false),
        eps,
        Activation::Relu,
    )
}

/// `Linear` module `name` on a `[N, in]` input: `{name}.weight` `[out, in]` and, with `bias`,
/// `{name}.bias` `[out]`.
pub fn linear(
    b: &mut GraphBuilder,
    name: &str,
    x: TensorId,
    out: usize,
    bias: bool,
) -> Result<TensorId> {
    let k = match b.shape(x) {
        [_, k] => *k,
        s => {
            return Err(shape_error(
                b,
                name,
                "linear",
                &[x],
                format!("input must be 2-D [N, K], got {s:?}"),
            ));
        }
    };
    linear_fixed(b, name, x, k, out, bias)
}

/// `Linear` module `name` whose input size is fixed by the architecture (LeNet-5's
/// `fc1` takes exactly 400 features): the weight is declared `[out, in_features]`, so an input
/// of another size fails here with a shape error instead of at weight binding.
pub fn linear_fixed(
    b: &mut GraphBuilder,
    name: &str,
    x: TensorId,
    in_features: usize,
    out: usize,
    bias: bool,
) -> Result<TensorId> {
    let weight = b.param(&format!("{name}.weight"), &[out, in_features]);
    let mut inputs = vec![x, weight];
    if bias {
        inputs.push(b.param(&format!("{name}.bias"), &[out]));
    }
    b.node(
        name,
        Op::Linear {
            bias,
            act: Activation::Identity,
        },
        &inputs,
    )
}

/// `MaxPool2d` node `name`; build the window with [`Pool2d::new`]`(kernel, stride, padding,
/// ceil_mode)`.
pub fn max_pool(b: &mut GraphBuilder, name: &str, x: TensorId, pool: Pool2d) -> Result<TensorId> {
    b.node(name, Op::MaxPool2d(pool), &[x])
}

/// `AvgPool2d` node `name` (set `pool.count_include_pad` as the module does; PyTorch's
/// default is `true`).
pub fn avg_pool(b: &mut GraphBuilder, name: &str, x: TensorId, pool: Pool2d) -> Result<TensorId> {
    b.node(name, Op::AvgPool2d(pool), &[x])
}

/// `AdaptiveAvgPool2d(output)` node `name`.
pub fn adaptive_avg_pool(
    b: &mut GraphBuilder,
    name: &str,
    x: TensorId,
    output: [usize; 2],
) -> Result<TensorId> {
    b.node(name, Op::AdaptiveAvgPool2d { output }, &[x])
}

/// Global average pooling (`AdaptiveAvgPool2d(1)`) node `name`: `[N, C, 1, 1]`.
pub fn global_avg_pool(b: &mut GraphBuilder, name: &str, x: TensorId) -> Result<TensorId> {
    adaptive_avg_pool(b, name, x, [1, 1])
}

/// `torch.flatten(x, 1)` node `name`: `[N, C*H*W]`.
pub fn flatten(b: &mut GraphBuilder, name: &str, x: TensorId) -> Result<TensorId> {
    b.node(name, Op::Flatten { axis: 1 }, &[x])
}

/// Element-wise `a + other` node `name` (`other` may broadcast, e.g. `[N, C, 1, 1]`).
pub fn add(b: &mut GraphBuilder, name: &str, a: TensorId, other: TensorId) -> Result<TensorId> {
    b.node(name, Op::Add, &[a, other])
}

/// Element-wise `a * other` node `name` (squeeze-excitation's channel scale broadcasts
/// `[N, C, 1, 1]`).
pub fn mul(b: &mut GraphBuilder, name: &str, a: TensorId, other: TensorId) -> Result<TensorId> {
    b.node(name, Op::Mul, &[a, other])
}

/// `torch.cat(xs, 1)` node `name`: concatenation along channels.
pub fn concat(b: &mut GraphBuilder, name: &str, xs: &[TensorId]) -> Result<TensorId> {
    b.node(name, Op::Concat { axis: 1 }, xs)
}
