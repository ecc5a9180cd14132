//! Lowering: one graph node → zero or more kernel launches (made once, at plan time).

use std::sync::Arc;

use wgcnn_graph::{Graph, Node, Op, TensorId, TensorKind};
use wgcnn_kernels::binary::{self, BinaryOp, Broadcast};
use wgcnn_kernels::conv2d::{self, ChannelSlice, ConvDesc, strided, winograd};
use wgcnn_kernels::pool2d::{self, PoolMode};
use wgcnn_kernels::{
    Context, Launch, adaptive_avgpool2d, argmax2d, conv_transpose2d, copy_channels, linear, lrn,
    pad, prelu, softmax, unary,
};

use crate::memory::{Placement, is_alias};
use crate::{ExecError, WeightCache};

#[path = "lower_detect.rs"]
mod detect;
#[path = "lower_rows.rs"]
mod rows;

pub(crate) struct Lowering<'a> {
    ctx: &'a Context,
    graph: &'a Graph,
    buffer_of: &'a dyn Fn(TensorId) -> Result<Arc<wgpu::Buffer>, ExecError>,
    /// Tensors written in place into a concatenation's buffer ([`crate::memory::MemoryPlan`]).
    place_of: &'a [Option<Placement>],
    launches: Vec<Launch>,
    /// Where weight buffers come from (shared with other plans of the model).
    weights: &'a WeightCache,
    /// Bytes of weight buffers this plan binds, and of those it uploaded itself.
    weight_bytes: u64,
    uploaded_bytes: u64,
    /// A 4-byte buffer bound where a kernel's optional input is absent.
    dummy: wgpu::Buffer,
    /// Scratch shared by the Winograd convolutions.
    winograd: winograd::Scratch,
    /// Scratch shared by the strided 1x1 convolutions (their subsampled inputs), with its size.
    subsample: Option<(u64, Arc<wgpu::Buffer>)>,
    /// The per-detection heads, run only on the rows in use (`lower_rows.rs`).
    rows: rows::RowsState,
}

impl<'a> Lowering<'a> {
    pub fn new(
        ctx: &'a Context,
        graph: &'a Graph,
        buffer_of: &'a dyn Fn(TensorId) -> Result<Arc<wgpu::Buffer>, ExecError>,
        place_of: &'a [Option<Placement>],
        weights: &'a WeightCache,
    ) -> Self {
        let dummy = ctx.upload("dummy", &[0.0]);
        Lowering {
            ctx,
            graph,
            buffer_of,
            place_of,
            launches: Vec::new(),
            weights,
            weight_bytes: 0,
            uploaded_bytes: 0,
            dummy,
            winograd: Default::default(),
            subsample: None,
            rows: Default::default(),
        }
    }

    /// The launches, the bytes of weights bound and the bytes of weights uploaded by this plan.
    pub fn finish(mut self) -> (Vec<Launch>, u64, u64) {
        self.finish_rows();
        (self.launches, self.weight_bytes, self.uploaded_bytes)
    }

    /// Uploads constant values (or finds them in the weight cache), checked against the
    /// device's largest binding.
    fn upload(&mut self, name: &str, data: &[f32]) -> Result<Arc<wgpu::Buffer>, ExecError> {
        // The plan's precision (`Plan::with_precision` opens the scope around lowering).
        let precision = wgcnn_kernels::precision::current();
        let bytes = data.len() as u64 * precision.bytes();
        let limit = self.ctx.max_binding();
        if bytes > limit {
            return Err(ExecError::TooLarge {
                name: name.to_string(),
                shape: vec![data.len()],
                bytes,
                limit,
            });
        }
        self.weight_bytes += bytes;
        let (buffer, fresh) = self.weights.get_or_upload(self.ctx, name, data, precision);
        if fresh {
            self.uploaded_bytes += bytes;
        }
        Ok(buffer)
    }

    /// Values of a parameter or constant input.
    fn data(&self, node: &Node, t: TensorId) -> Result<&'a [f32], ExecError> {
        let info = self.graph.tensor(t);
        info.data.as_deref().ok_or_else(|| ExecError::Unsupported {
            node: node.name.clone(),
            op: node.op.kind(),
            message: format!(
                "input {} must be a constant or parameter on the GPU path",
                info.name
            ),
        })
    }

    /// The GPU buffer of an activation input (constants are not allowed here).
    fn input(&self, node: &Node, i: usize) -> Result<Arc<wgpu::Buffer>, ExecError> {
        let t = node.inputs[i];
        match self.graph.tensor(t).kind {
            TensorKind::Input | TensorKind::Activation => (self.buffer_of)(t),
            _ => Err(ExecError::Unsupported {
                node: node.name.clone(),
                op: node.op.kind(),
                message: format!(
                    "input {i} ({}) must be computed, not a constant",
                    self.graph.tensor(t).name
                ),
            }),
        }
    }

    /// The buffer of input `i`, uploading it when it is a constant or parameter.
    fn input_or_upload(&mut self, node: &Node, i: usize) -> Result<Arc<wgpu::Buffer>, ExecError> {
        match self.graph.tensor(node.inputs[i]).kind {
            TensorKind::Input | TensorKind::Activation => self.input(node, i),
            _ => self.upload_input(node, i),
        }
    }

    /// Uploads constant input `i` of `node`.
    fn upload_input(&mut self, node: &Node, i: usize) -> Result<Arc<wgpu::Buffer>, ExecError> {
        let data = self.data(node, node.inputs[i])?;
        self.upload(&self.graph.tensor(node.inputs[i]).name.clone(), data)
    }

    /// Records a convolution with the kernel variant that suits it on this device, uploading
    /// the weights in the layout that variant reads.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        node: &Node,
        desc: &ConvDesc,
        x: &wgpu::Buffer,
        weight: &[f32],
        bias: Option<&wgpu::Buffer>,
        residual: Option<&wgpu::Buffer>,
        out: &wgpu::Buffer,
    ) -> Result<(), ExecError> {
        let slice = self.slice(node.output, desc.weight[0]);
        if strided::subsampled_pointwise(self.ctx, desc).is_some() {
            let wb = self.upload(&self.graph.tensor(node.inputs[1]).name, weight)?;
            let bytes = strided::scratch_bytes(desc).map_err(|e| kernel_err(node, e))?;
            let scratch = match &self.subsample {
                Some((size, b)) if *size >= bytes => b.clone(),
                _ => {
                    let b = Arc::new(self.ctx.storage("subsample scratch", bytes));
                    self.subsample = Some((bytes, b.clone()));
                    b
                }
            };
            let launches = strided::launch_subsampled_into(
                self.ctx,
                &node.name,
                desc,
                x,
                &wb,
                bias.unwrap_or(&self.dummy),
                residual.unwrap_or(&self.dummy),
                out,
                slice,
                &scratch,
            )
            .map_err(|e| kernel_err(node, e))?;
            self.launches.extend(launches);
            return Ok(());
        }
        let variant = conv2d::variant(self.ctx, desc);
        let prepared =
            conv2d::prepare_weights(variant, desc, weight).map_err(|e| kernel_err(node, e))?;
        let wb = self.upload(&self.graph.tensor(node.inputs[1]).name, &prepared)?;
        let bias = bias.unwrap_or(&self.dummy);
        let residual = residual.unwrap_or(&self.dummy);
        if let Some(tile) = variant.winograd_tile() {
            let p = winograd::WinogradParams::with_tile(desc, tile)
                .map_err(|e| kernel_err(node, e))?
                .into_channels(slice);
            let (v, m) = self.winograd.buffers(self.ctx, &p);
            self.launches.extend(winograd::launches(
                self.ctx, &node.name, &p, x, &wb, bias, residual, out, &v, &m,
            ));
        } else {
            let launch = conv2d::launch_variant_into(
                self.ctx, &node.name, variant, desc, x, &wb, bias, residual, out, slice,
            )
            .map_err(|e| kernel_err(node, e))?;
            self.launches.push(launch);
        }
        Ok(())
    }

    /// Where the kernel computing `t` (`channels` wide) writes: its channel slice of the
    /// concatenation it is stored in, else the whole of its own buffer.
    fn slice(&self, t: TensorId, channels: usize) -> ChannelSlice {
        match self.place_of[t.0] {
            Some(p) => ChannelSlice {
                total: p.total,
                offset: p.offset,
            },
            None => ChannelSlice::whole(channels),
        }
    }

    pub fn node(&mut self, node: &Node) -> Result<(), ExecError> {
        if is_alias(&node.op) || self.rows_node(node)? {
            return Ok(());
        }
        let in_place = matches!(
            node.op,
            Op::Conv2d(_) | Op::MaxPool2d(_) | Op::AvgPool2d(_) | Op::Concat { .. }
        );
        if self.place_of[node.output.0].is_some() && !in_place {
            return Err(ExecError::Unsupported {
                node: node.name.clone(),
                op: node.op.kind(),
                message: "planned to write into a concatenation, which its kernel cannot".into(),
            });
        }
        let (graph, block) = (self.graph, self.rows.block());
        let shape = move |t: TensorId| rows::shape(graph, block, t);
        let out = (self.buffer_of)(node.output)?;
        match &node.op {
            Op::Act(a) => {
                let x = self.input(node, 0)?;
                let p = unary::UnaryParams::new(&shape(node.output), false, a.code());
                self.launches.push(unary::launch(
                    self.ctx,
                    &node.name,
                    &p,
                    &x,
                    &self.dummy,
                    &out,
                ));
            }
            Op::BatchNorm { eps } => {
                let x = self.input(node, 0)?;
                let [g, b, m, v] = [1, 2, 3, 4].map(|i| node.inputs[i]);
                let (g, b, m, v) = (
                    self.data(node, g)?,
                    self.data(node, b)?,
                    self.data(node, m)?,
                    self.data(node, v)?,
                );
                let scale: Vec<f32> = g.iter().zip(v).map(|(g, v)| g / (v + eps).sqrt()).collect();
                let mut affine = scale.clone();
                affine.extend(b.iter().zip(m).zip(&scale).map(|((b, m), s)| b - m * s));
                let ab = self.upload(&format!("{} affine", node.name), &affine)?;
                let p = unary::UnaryParams::new(&shape(node.output), true, (0, 0.0, 0.0));
                self.launches
                    .push(unary::launch(self.ctx, &node.name, &p, &x, &ab, &out));
            }
            Op::Conv2d(c) => {
                let x = self.input(node, 0)?;
                let w_shape = shape(node.inputs[1]);
                let weight = self.data(node, node.inputs[1])?;
                let bias = if c.bias {
                    Some(self.upload_input(node, 2)?)
                } else {
                    None
                };
                let residual = if c.residual {
                    Some(self.input(node, node.inputs.len() - 1)?)
                } else {
                    None
                };
                let desc = ConvDesc {
                    input: four(node, &shape(node.inputs[0]))?,
                    weight: four(node, &w_shape)?,
                    stride: c.stride,
                    padding: c.padding,
                    dilation: c.dilation,
                    groups: c.groups,
                    bias: c.bias,
                    residual: c.residual,
                    act: c.act.code(),
                };
                self.conv(
                    node,
                    &desc,
                    &x,
                    weight,
                    bias.as_deref(),
                    residual.as_deref(),
                    &out,
                )?;
            }
            Op::ConvTranspose2d(c) => {
                let x = self.input(node, 0)?;
                let desc = conv_transpose2d::ConvTransposeDesc {
                    input: four(node, &shape(node.inputs[0]))?,
                    weight: four(node, &shape(node.inputs[1]))?,
                    output: four(node, &shape(node.output))?,
                    stride: c.stride,
                    padding: c.padding,
                    dilation: c.dilation,
                    groups: c.groups,
                    bias: c.bias,
                    act: c.act.code(),
                };
                let weight = self.data(node, node.inputs[1])?;
                let bias = if c.bias {
                    Some(self.upload_input(node, 2)?)
                } else {
                    None
                };
                // groups 1: the multiply-adds on the conv GEMM kernels (a 1x1 conv to
                // cols = W^T x), then col2im; lavapipe, Mask R-CNN's conv5_mask over 100 RoIs:
                // 0.33 s this way, 1.7 s with the direct kernel.
                let cols_bytes = conv_transpose2d::cols_bytes(&desc);
                if c.groups == 1 && cols_bytes <= self.ctx.max_binding() {
                    let gemm = conv_transpose2d::gemm_weights(&desc, weight)
                        .map_err(|e| kernel_err(node, e))?;
                    let [n, ch, h, w] = desc.input;
                    let rows = gemm.len() / ch;
                    let as_conv = ConvDesc {
                        input: [n, ch, h, w],
                        weight: [rows, ch, 1, 1],
                        stride: [1, 1],
                        padding: [0; 4],
                        dilation: [1, 1],
                        groups: 1,
                        bias: false,
                        residual: false,
                        act: (0, 0.0, 0.0),
                    };
                    let cols = self.ctx.storage(&format!("{} cols", node.name), cols_bytes);
                    self.conv(node, &as_conv, &x, &gemm, None, None, &cols)?;
                    let unused = self.upload(&format!("{} unused", node.name), &[0.0; 4])?;
                    let launch = conv_transpose2d::launch_from_cols(
                        self.ctx,
                        &node.name,
                        &desc,
                        &cols,
                        &unused,
                        bias.as_deref().unwrap_or(&self.dummy),
                        &out,
                    )
                    .map_err(|e| kernel_err(node, e))?;
                    self.launches.push(launch);
                    return Ok(());
                }
                let prepared = conv_transpose2d::prepare_weights(&desc, weight)
                    .map_err(|e| kernel_err(node, e))?;
                let wb = self.upload(&self.graph.tensor(node.inputs[1]).name.clone(), &prepared)?;
                let bias = bias.as_deref().unwrap_or(&self.dummy);
                let launch =
                    conv_transpose2d::launch(self.ctx, &node.name, &desc, &x, &wb, bias, &out)
                        .map_err(|e| kernel_err(node, e))?;
                self.launches.push(launch);
            }
            Op::Linear { bias, act } => {
                let x = self.input(node, 0)?;
                let [m, k] = [shape(node.inputs[1])[0], shape(node.inputs[1])[1]];
                let batch = shape(node.inputs[0])[0];
                let desc = linear::LinearDesc {
                    batch,
                    in_features: k,
                    out_features: m,
                    bias: *bias,
                    act: act.code(),
                };
                let weight = self.data(node, node.inputs[1])?;
                // Many rows (a detector's box head over its proposals) are a GEMM: the layer is a
                // 1x1 convolution of a [batch, K, 1, 1] input, same memory layout, and the conv
                // kernels block over rows where the linear kernel streams each weight row once
                // per 4 rows.
                if batch >= GEMM_ROWS && (m * k) as u64 * 4 <= self.ctx.max_binding() {
                    let as_conv = ConvDesc {
                        input: [batch, k, 1, 1],
                        weight: [m, k, 1, 1],
                        stride: [1, 1],
                        padding: [0; 4],
                        dilation: [1, 1],
                        groups: 1,
                        bias: *bias,
                        residual: false,
                        act: act.code(),
                    };
                    let bias_buffer = if *bias {
                        Some(self.upload_input(node, 2)?)
                    } else {
                        None
                    };
                    return self.conv(
                        node,
                        &as_conv,
                        &x,
                        weight,
                        bias_buffer.as_deref(),
                        None,
                        &out,
                    );
                }
                let name = self.graph.tensor(node.inputs[1]).name.clone();
                let chunks = linear::row_chunks(m, k, self.ctx.max_binding())
                    .map_err(|e| kernel_err(node, e))?;
                let mut buffers = Vec::with_capacity(chunks.len());
                for rows in &chunks {
                    buffers.push(self.upload(
                        &format!("{name}[{rows:?}]"),
                        &weight[rows.start * k..rows.end * k],
                    )?);
                }
                let bias_buffer = if *bias {
                    Some(self.upload_input(node, 2)?)
                } else {
                    None
                };
                let pairs: Vec<_> = chunks
                    .iter()
                    .cloned()
                    .zip(buffers.iter().map(|b| b.as_ref()))
                    .collect();
                let launches = linear::launches(
                    self.ctx,
                    &node.name,
                    &desc,
                    &x,
                    &pairs,
                    bias_buffer.as_deref().unwrap_or(&self.dummy),
                    &out,
                )
                .map_err(|e| kernel_err(node, e))?;
                self.launches.extend(launches);
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                let x = self.input(node, 0)?;
                let mode = match &node.op {
                    Op::MaxPool2d(_) => PoolMode::Max,
                    _ => PoolMode::Avg {
                        count_include_pad: p.count_include_pad,
                    },
                };
                let o = shape(node.output);
                let params = pool2d::Pool2dParams::new(
                    mode,
                    four(node, &shape(node.inputs[0]))?,
                    [o[2], o[3]],
                    p.kernel,
                    p.stride,
                    p.padding,
                )
                .into_channels(self.slice(node.output, o[1]));
                self.launches
                    .push(pool2d::launch(self.ctx, &node.name, &params, &x, &out));
            }
            Op::AdaptiveAvgPool2d { output } => {
                let x = self.input(node, 0)?;
                let p = adaptive_avgpool2d::AdaptiveAvgPool2dParams::new(
                    self.ctx,
                    four(node, &shape(node.inputs[0]))?,
                    *output,
                );
                self.launches.push(adaptive_avgpool2d::launch(
                    self.ctx, &node.name, &p, &x, &out,
                ));
            }
            Op::Add | Op::Mul => {
                let a = self.input(node, 0)?;
                let b = self.input_or_upload(node, 1)?;
                let (sa, sb) = (shape(node.inputs[0]), shape(node.inputs[1]));
                let broadcast = Broadcast::classify(&sa, &sb).ok_or_else(|| ExecError::Unsupported {
                    node: node.name.clone(),
                    op: node.op.kind(),
                    message: format!("broadcast of {sb:?} onto {sa:?} has no GPU kernel (same shape, per channel or scalar only)"),
                })?;
                let op = if matches!(node.op, Op::Add) {
                    BinaryOp::Add
                } else {
                    BinaryOp::Mul
                };
                let p = binary::BinaryParams::new(&sa, broadcast, op, (0, 0.0, 0.0));
                self.launches
                    .push(binary::launch(self.ctx, &node.name, &p, &a, &b, &out));
            }
            Op::PRelu => {
                let x = self.input(node, 0)?;
                let slope = self.input_or_upload(node, 1)?;
                let sx = shape(node.inputs[0]);
                let slopes: usize = shape(node.inputs[1]).iter().product();
                let spatial: usize = sx.get(2..).map_or(1, |s| s.iter().product());
                if spatial >= prelu::MIN_SPATIAL {
                    // Conv outputs: one plane per workgroup row, no per-element division.
                    let p = prelu::PreluParams::new(&sx, slopes);
                    self.launches
                        .push(prelu::launch(self.ctx, &node.name, &p, &x, &slope, &out));
                    return Ok(());
                }
                // Dense outputs: the slopes run along axis 1; laid out as [1, C, 1, ...] (or one
                // value) they are the binary kernel's per-channel (or scalar) operand.
                let mut sb = vec![1; sx.len().max(1)];
                if let Some(c) = sb.get_mut(1) {
                    *c = shape(node.inputs[1]).iter().product();
                }
                let broadcast =
                    Broadcast::classify(&sx, &sb).ok_or_else(|| ExecError::Unsupported {
                        node: node.name.clone(),
                        op: node.op.kind(),
                        message: format!("slopes {sb:?} do not fit {sx:?}"),
                    })?;
                let p = binary::BinaryParams::new(&sx, broadcast, BinaryOp::PRelu, (0, 0.0, 0.0));
                self.launches
                    .push(binary::launch(self.ctx, &node.name, &p, &x, &slope, &out));
            }
            Op::Concat { axis } => {
                let o = shape(node.output);
                let outer: usize = o[..*axis].iter().product();
                let inner: usize = o[axis + 1..].iter().product();
                // This concatenation may itself sit inside a wider one's buffer.
                let (root, total, mut offset) = match self.place_of[node.output.0] {
                    Some(p) => (p.root, p.total, p.offset),
                    None => (node.output, o[*axis], 0),
                };
                for i in 0..node.inputs.len() {
                    let c = shape(node.inputs[i])[*axis];
                    let written = Placement {
                        root,
                        total,
                        offset,
                    };
                    if self.place_of[node.inputs[i].0] == Some(written) {
                        // Its producer wrote it in place.
                        offset += c;
                        continue;
                    }
                    let x = self.input_or_upload(node, i)?;
                    let p =
                        copy_channels::CopyChannelsParams::concat(outer, c, inner, total, offset);
                    self.launches.push(copy_channels::launch(
                        self.ctx,
                        &format!("{}[{i}]", node.name),
                        &p,
                        &x,
                        &out,
                    ));
                    offset += c;
                }
            }
            Op::Lrn(l) => {
                let x = self.input(node, 0)?;
                let p = lrn::LrnParams::new(&shape(node.inputs[0]), l.size, l.alpha, l.beta, l.k);
                self.launches
                    .push(lrn::launch(self.ctx, &node.name, &p, &x, &out));
            }
            Op::Softmax { axis } => {
                let x = self.input(node, 0)?;
                let p = softmax::SoftmaxParams::new(self.ctx, &shape(node.inputs[0]), *axis);
                self.launches
                    .push(softmax::launch(self.ctx, &node.name, &p, &x, &out));
            }
            Op::Pad { padding, value } => {
                let x = self.input(node, 0)?;
                let p = pad::PadParams::new(four(node, &shape(node.inputs[0]))?, *padding, *value);
                self.launches
                    .push(pad::launch(self.ctx, &node.name, &p, &x, &out));
            }
            Op::Flatten { .. } | Op::Reshape { .. } => {}
            Op::ArgMax2d { size } => {
                let x = self.input(node, 0)?;
                let p = argmax2d::ArgMax2dParams::new(four(node, &shape(node.inputs[0]))?, *size);
                self.launches
                    .push(argmax2d::launch(self.ctx, &node.name, &p, &x, &out));
            }
            Op::Resize { .. }
            | Op::Permute { .. }
            | Op::Proposals(_)
            | Op::RoiAlign(_)
            | Op::BoxPostprocess(_)
            | Op::ScaleBoxes { .. }
            | Op::PasteMasks { .. }
            | Op::MaskBits { .. }
            | Op::KeypointDecode { .. } => self.detect_node(node, &out)?,
        }
        Ok(())
    }
}

/// From this many rows on, a linear layer runs on the conv (GEMM) kernels.
const GEMM_ROWS: usize = 16;

fn four(node: &Node, s: &[usize]) -> Result<[usize; 4], ExecError> {
    <[usize; 4]>::try_from(s).map_err(|_| ExecError::Unsupported {
        node: node.name.clone(),
        op: node.op.kind(),
        message: format!("expects a 4-D NCHW tensor, got {s:?}"),
    })
}

fn kernel_err(node: &Node, e: wgcnn_kernels::KernelError) -> ExecError {
    ExecError::Unsupported {
        node: node.name.clone(),
        op: node.op.kind(),
        message: e.to_string(),
    }
}
