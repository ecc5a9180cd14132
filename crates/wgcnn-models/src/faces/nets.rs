//! facenet-pytorch's `PNet`, `RNet` and `ONet` (MTCNN, Zhang et al. 2016), parameters keyed
//! `pnet.*`, `rnet.*`, `onet.*` as in `assets/mtcnn.safetensors`.
//!
//! Each net is added to a builder by a `*_body` function so that one graph can hold several
//! copies (a P-Net per pyramid level) under distinct node names (`prefix`) while every copy
//! declares the same parameter keys: binding fills them all, and a plan's weight cache uploads
//! each tensor once.

use wgcnn_graph::{Activation, Conv2d, Graph, GraphBuilder, GraphError, Op, Pool2d, TensorId};

type Result<T> = std::result::Result<T, GraphError>;

/// Node names `{prefix}{net}.{module}`, parameter keys `{net}.{module}.weight|bias`.
struct Net<'a> {
    prefix: &'a str,
    net: &'static str,
}

impl Net<'_> {
    fn node(&self, module: &str) -> String {
        format!("{}{}.{module}", self.prefix, self.net)
    }

    fn key(&self, module: &str, what: &str) -> String {
        format!("{}.{module}.{what}", self.net)
    }

    /// `Conv2d(in, out, k)`: stride 1, no padding, with bias.
    fn conv(
        &self,
        b: &mut GraphBuilder,
        module: &str,
        x: TensorId,
        out: usize,
        k: usize,
    ) -> Result<TensorId> {
        let cin = b.shape(x).get(1).copied().unwrap_or(0);
        let w = b.param(&self.key(module, "weight"), &[out, cin, k, k]);
        let bias = b.param(&self.key(module, "bias"), &[out]);
        b.node(
            &self.node(module),
            Op::Conv2d(Conv2d::new(1, 0, 1, true)),
            &[x, w, bias],
        )
    }

    /// `PReLU(channels)`: one slope per channel, key `{net}.{module}.weight`.
    fn prelu(&self, b: &mut GraphBuilder, module: &str, x: TensorId) -> Result<TensorId> {
        let c = b.shape(x).get(1).copied().unwrap_or(0);
        let slope = b.param(&self.key(module, "weight"), &[c]);
        b.node(&self.node(module), Op::PRelu, &[x, slope])
    }

    /// `MaxPool2d(k, s, ceil_mode=True)`.
    fn pool(
        &self,
        b: &mut GraphBuilder,
        module: &str,
        x: TensorId,
        k: usize,
        s: usize,
    ) -> Result<TensorId> {
        b.node(
            &self.node(module),
            Op::MaxPool2d(Pool2d::new(k, s, 0, true)),
            &[x],
        )
    }

    fn linear(
        &self,
        b: &mut GraphBuilder,
        module: &str,
        x: TensorId,
        out: usize,
    ) -> Result<TensorId> {
        let k = b.shape(x).get(1).copied().unwrap_or(0);
        let w = b.param(&self.key(module, "weight"), &[out, k]);
        let bias = b.param(&self.key(module, "bias"), &[out]);
        let op = Op::Linear {
            bias: true,
            act: Activation::Identity,
        };
        b.node(&self.node(module), op, &[x, w, bias])
    }

    fn softmax(&self, b: &mut GraphBuilder, module: &str, x: TensorId) -> Result<TensorId> {
        b.node(&self.node(module), Op::Softmax { axis: 1 }, &[x])
    }

    /// `x.permute(0, 3, 2, 1).contiguous().view(N, -1)`: R-Net and O-Net flatten in W, H, C
    /// order (the layout of the Caffe original) before their dense layer.
    fn flatten_whc(&self, b: &mut GraphBuilder, x: TensorId) -> Result<TensorId> {
        let p = b.node(
            &self.node("permute"),
            Op::Permute {
                perm: vec![0, 3, 2, 1],
            },
            &[x],
        )?;
        b.node(&self.node("flatten"), Op::Flatten { axis: 1 }, &[p])
    }
}

/// P-Net on `x [N, 3, H, W]` (normalized; H, W >= 12): `(reg [N, 4, h, w], prob [N, 2, h, w])`,
/// `h = ceil((H - 2) / 2) - 4`, one cell per 12x12 window at stride 2.
pub fn pnet_body(b: &mut GraphBuilder, prefix: &str, x: TensorId) -> Result<(TensorId, TensorId)> {
    let n = Net {
        prefix,
        net: "pnet",
    };
    let x = n.conv(b, "conv1", x, 10, 3)?;
    let x = n.prelu(b, "prelu1", x)?;
    let x = n.pool(b, "pool1", x, 2, 2)?;
    let x = n.conv(b, "conv2", x, 16, 3)?;
    let x = n.prelu(b, "prelu2", x)?;
    let x = n.conv(b, "conv3", x, 32, 3)?;
    let x = n.prelu(b, "prelu3", x)?;
    let logits = n.conv(b, "conv4_1", x, 2, 1)?;
    let prob = n.softmax(b, "softmax4_1", logits)?;
    let reg = n.conv(b, "conv4_2", x, 4, 1)?;
    Ok((reg, prob))
}

/// R-Net on `x [N, 3, 24, 24]`: `(reg [N, 4], prob [N, 2])`.
pub fn rnet_body(b: &mut GraphBuilder, prefix: &str, x: TensorId) -> Result<(TensorId, TensorId)> {
    let n = Net {
        prefix,
        net: "rnet",
    };
    let x = n.conv(b, "conv1", x, 28, 3)?;
    let x = n.prelu(b, "prelu1", x)?;
    let x = n.pool(b, "pool1", x, 3, 2)?;
    let x = n.conv(b, "conv2", x, 48, 3)?;
    let x = n.prelu(b, "prelu2", x)?;
    let x = n.pool(b, "pool2", x, 3, 2)?;
    let x = n.conv(b, "conv3", x, 64, 2)?;
    let x = n.prelu(b, "prelu3", x)?;
    let x = n.flatten_whc(b, x)?;
    let x = n.linear(b, "dense4", x, 128)?;
    let x = n.prelu(b, "prelu4", x)?;
    let logits = n.linear(b, "dense5_1", x, 2)?;
    let prob = n.softmax(b, "softmax5_1", logits)?;
    let reg = n.linear(b, "dense5_2", x, 4)?;
    Ok((reg, prob))
}

/// O-Net on `x [N, 3, 48, 48]`: `(reg [N, 4], landmarks [N, 10], prob [N, 2])`; landmarks are
/// five x then five y, relative to the box.
pub fn onet_body(
    b: &mut GraphBuilder,
    prefix: &str,
    x: TensorId,
) -> Result<(TensorId, TensorId, TensorId)> {
    let n = Net {
        prefix,
        net: "onet",
    };
    let x = n.conv(b, "conv1", x, 32, 3)?;
    let x = n.prelu(b, "prelu1", x)?;
    let x = n.pool(b, "pool1", x, 3, 2)?;
    let x = n.conv(b, "conv2", x, 64, 3)?;
    let x = n.prelu(b, "prelu2", x)?;
    let x = n.pool(b, "pool2", x, 3, 2)?;
    let x = n.conv(b, "conv3", x, 64, 3)?;
    let x = n.prelu(b, "prelu3", x)?;
    let x = n.pool(b, "pool3", x, 2, 2)?;
    let x = n.conv(b, "conv4", x, 128, 2)?;
    let x = n.prelu(b, "prelu4", x)?;
    let x = n.flatten_whc(b, x)?;
    let x = n.linear(b, "dense5", x, 256)?;
    let x = n.prelu(b, "prelu5", x)?;
    let logits = n.linear(b, "dense6_1", x, 2)?;
    let prob = n.softmax(b, "softmax6_1", logits)?;
    let reg = n.linear(b, "dense6_2", x, 4)?;
    let landmarks = n.linear(b, "dense6_3", x, 10)?;
    Ok((reg, landmarks, prob))
}

/// P-Net alone on a normalized `[batch, 3, height, width]` input named `input`; outputs
/// `[reg, prob]` (nodes `pnet.conv4_2`, `pnet.softmax4_1`).
pub fn pnet(batch: usize, height: usize, width: usize) -> Result<Graph> {
    let mut b = GraphBuilder::new();
    let x = b.input("input", &[batch, 3, height, width]);
    let (reg, prob) = pnet_body(&mut b, "", x)?;
    b.output(reg);
    b.output(prob);
    Ok(b.finish())
}

/// R-Net alone on `[batch, 3, 24, 24]`; outputs `[reg, prob]`.
pub fn rnet(batch: usize) -> Result<Graph> {
    let mut b = GraphBuilder::new();
    let x = b.input("input", &[batch, 3, 24, 24]);
    let (reg, prob) = rnet_body(&mut b, "", x)?;
    b.output(reg);
    b.output(prob);
    Ok(b.finish())
}

/// O-Net alone on `[batch, 3, 48, 48]`; outputs `[reg, landmarks, prob]`.
pub fn onet(batch: usize) -> Result<Graph> {
    let mut b = GraphBuilder::new();
    let x = b.input("input", &[batch, 3, 48, 48]);
    let (reg, landmarks, prob) = onet_body(&mut b, "", x)?;
    b.output(reg);
    b.output(landmarks);
    b.output(prob);
    Ok(b.finish())
}

/// The pyramid: the photo `image [1, 3, H, W]` (RGB, 0..255) area-resampled
/// (`AdaptiveAvgPool2d`, PyTorch's `mode="area"`) to each of `levels` (`[h, w]`), normalized
/// `(x - 127.5) * 0.0078125` and run through P-Net. Outputs `reg, prob` per level, in order.
pub fn pyramid(height: usize, width: usize, levels: &[[usize; 2]]) -> Result<Graph> {
    let mut b = GraphBuilder::new();
    let image = b.input("image", &[1, 3, height, width]);
    let shift = b.constant("pyramid.shift", &[1], vec![-127.5])?;
    let scale = b.constant("pyramid.scale", &[1], vec![0.0078125])?;
    for (i, &output) in levels.iter().enumerate() {
        let x = b.node(
            &format!("level{i}.resample"),
            Op::AdaptiveAvgPool2d { output },
            &[image],
        )?;
        let x = b.node(&format!("level{i}.shift"), Op::Add, &[x, shift])?;
        let x = b.node(&format!("level{i}.normalize"), Op::Mul, &[x, scale])?;
        let (reg, prob) = pnet_body(&mut b, &format!("level{i}."), x)?;
        b.output(reg);
        b.output(prob);
    }
    Ok(b.finish())
}
