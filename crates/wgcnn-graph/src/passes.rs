//! Rewrite passes that keep a graph's results equal while giving the GPU executor fewer,
//! fatter launches. They work on a bound graph (parameters hold values); anything they cannot
//! prove safe, or whose values are missing, is left as it is.
//!
//! - [`fold_batchnorm`]: `BatchNorm(Conv2d(x))` and `BatchNorm(Linear(x))` become one conv or
//!   linear layer with scaled weights and a bias.
//! - [`fuse_epilogues`]: a residual `Add` and a following activation move into the conv's
//!   epilogue (`act(conv + bias + residual)`), and an activation after a linear layer into it.
//! - [`standalone_batchnorm`]: a BatchNorm left over (not after a conv) becomes a depthwise 1x1
//!   conv, so the activation after it fuses too.
//! - [`optimize`]: the three, in that order.
//!
//! Every pass returns a compacted graph: removed nodes are gone, tensors nothing reads or
//! writes any more are dropped, ids are renumbered (order kept), and the node order stays
//! topological. Graph inputs and outputs keep their tensors.

use std::sync::Arc;

use crate::{Activation, Graph, Node, Op, TensorId, TensorInfo, TensorKind};

#[cfg(test)]
mod tests;

/// Folds BatchNorm into the Conv2d or Linear layer that feeds it when that layer's output has
/// no other reader (and is not a graph output) and the layer has no fused epilogue yet. The
/// folded weight and bias are new [`TensorKind::Const`] tensors named `<weight key>+bn` and
/// `<bias key or node name.bias>+bn`; the layer then writes the BatchNorm's output tensor.
pub fn fold_batchnorm(g: &Graph) -> Graph {
    let mut g = g.clone();
    let uses = g.use_counts();
    let producer = producers(&g);
    let mut keep = vec![true; g.nodes.len()];
    for bi in 0..g.nodes.len() {
        let Op::BatchNorm { eps } = g.nodes[bi].op else {
            continue;
        };
        let Some(&x) = g.nodes[bi].inputs.first() else {
            continue;
        };
        let Some(pi) = producer[x.0] else { continue };
        if uses[x.0] != 1 || !keep[pi] || pi >= bi {
            continue;
        }
        let Some(folded) = fold_into(&g, pi, bi, eps) else {
            continue;
        };
        let [w, b] = folded.map(|t| {
            g.tensors.push(t);
            TensorId(g.tensors.len() - 1)
        });
        let bn_out = g.nodes[bi].output;
        let layer = &mut g.nodes[pi];
        match &mut layer.op {
            Op::Conv2d(c) => c.bias = true,
            Op::Linear { bias, .. } => *bias = true,
            _ => continue,
        }
        layer.inputs = vec![layer.inputs[0], w, b];
        layer.output = bn_out;
        keep[bi] = false;
    }
    compact(&g, &keep)
}

/// Fuses epilogues into their producers, residual adds first, then activations:
/// - `Add(a, b)` with equal shapes where one side is the only use of an epilogue-free Conv2d's
///   output and the other side is available before that conv runs (a graph input, parameter,
///   constant, or produced by an earlier node) becomes the conv's residual input;
/// - `Act(f)` reading the only use of a Conv2d's or Linear's output whose activation is
///   Identity becomes that layer's activation.
///
/// So ResNet's `relu(bn(conv(x)) + identity)`, after [`fold_batchnorm`], is one conv.
pub fn fuse_epilogues(g: &Graph) -> Graph {
    fuse_activations(&fuse_residuals(g))
}

/// [`fold_batchnorm`], [`standalone_batchnorm`], then [`fuse_epilogues`].
pub fn optimize(g: &Graph) -> Graph {
    fuse_epilogues(&standalone_batchnorm(&fold_batchnorm(g)))
}

/// Turns each BatchNorm over a 4-D tensor that [`fold_batchnorm`] left alone (DenseNet's
/// pre-activation `norm` on a concatenation, a BatchNorm after a pooling layer) into a
/// depthwise 1x1 convolution with weight `scale = gamma / sqrt(var + eps)` and bias
/// `beta - mean * scale`: the same per-channel multiply-add, but a conv has an epilogue, so
/// [`fuse_epilogues`] then folds the ReLU that follows into the same launch (one pass over the
/// tensor instead of two). Left as it is when a statistic has no values or the wrong length.
pub fn standalone_batchnorm(g: &Graph) -> Graph {
    let mut g = g.clone();
    for bi in 0..g.nodes.len() {
        let Op::BatchNorm { eps } = g.nodes[bi].op else {
            continue;
        };
        let node = &g.nodes[bi];
        let Some(&x) = node.inputs.first() else {
            continue;
        };
        let &[_, c, _, _] = g.shape(x) else { continue };
        let values = |i: usize| {
            let t = g.tensors.get(node.inputs.get(i)?.0)?;
            t.data.clone().filter(|d| d.len() == c && c > 0)
        };
        let (Some(gamma), Some(beta), Some(mean), Some(var)) =
            (values(1), values(2), values(3), values(4))
        else {
            continue;
        };
        // Same arithmetic as fold_batchnorm (and the interpreter's scale).
        let scale: Vec<f32> = (0..c).map(|i| gamma[i] / (var[i] + eps).sqrt()).collect();
        let shift: Vec<f32> = (0..c).map(|i| beta[i] - mean[i] * scale[i]).collect();
        let konst = |name: String, shape: Vec<usize>, data: Vec<f32>| TensorInfo {
            name,
            shape,
            kind: TensorKind::Const,
            data: Some(Arc::from(data)),
        };
        let name = node.name.clone();
        g.tensors
            .push(konst(format!("{name}.weight+bn"), vec![c, 1, 1, 1], scale));
        let w = TensorId(g.tensors.len() - 1);
        g.tensors
            .push(konst(format!("{name}.bias+bn"), vec![c], shift));
        let b = TensorId(g.tensors.len() - 1);
        let node = &mut g.nodes[bi];
        node.op = Op::Conv2d(crate::Conv2d::new(1, 0, c, true));
        node.inputs = vec![x, w, b];
    }
    let keep = vec![true; g.nodes.len()];
    compact(&g, &keep)
}

/// The folded `[weight, bias]` tensors for BatchNorm node `bi` after layer node `pi`, or `None`
/// when the layer cannot take it or a value is missing.
fn fold_into(g: &Graph, pi: usize, bi: usize, eps: f32) -> Option<[TensorInfo; 2]> {
    let layer = &g.nodes[pi];
    let has_bias = match &layer.op {
        Op::Conv2d(c) if !c.residual && c.act == Activation::Identity => c.bias,
        Op::Linear {
            bias,
            act: Activation::Identity,
        } => *bias,
        _ => return None,
    };
    let values = |id: TensorId| g.tensors.get(id.0).and_then(|t| t.data.clone());
    let bn = &g.nodes[bi];
    let [gamma, beta, mean, var] =
        [1, 2, 3, 4].map(|i| bn.inputs.get(i).and_then(|&id| values(id)));
    let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
    let wid = *layer.inputs.get(1)?;
    let winfo = g.tensors.get(wid.0)?;
    let w = winfo.data.clone()?;
    let k = *winfo.shape.first()?;
    if [&gamma, &beta, &mean, &var].iter().any(|t| t.len() != k) || k == 0 || w.len() % k != 0 {
        return None;
    }
    let bias = if has_bias {
        Some(values(*layer.inputs.get(2)?)?)
    } else {
        None
    };
    if bias.as_ref().is_some_and(|b| b.len() != k) {
        return None;
    }
    // Same arithmetic as the interpreter's BatchNorm: scale = gamma / sqrt(var + eps).
    let scale: Vec<f32> = (0..k).map(|c| gamma[c] / (var[c] + eps).sqrt()).collect();
    let per = w.len() / k;
    let new_w: Vec<f32> = w
        .iter()
        .enumerate()
        .map(|(i, &v)| v * scale[i / per])
        .collect();
    let new_b: Vec<f32> = (0..k)
        .map(|c| (bias.as_ref().map_or(0.0, |b| b[c]) - mean[c]) * scale[c] + beta[c])
        .collect();
    let bias_name = match has_bias {
        true => g.tensors[layer.inputs[2].0].name.clone(),
        false => format!("{}.bias", layer.name),
    };
    let konst = |name: String, shape: Vec<usize>, data: Vec<f32>| TensorInfo {
        name,
        shape,
        kind: TensorKind::Const,
        data: Some(Arc::from(data)),
    };
    Some([
        konst(format!("{}+bn", winfo.name), winfo.shape.clone(), new_w),
        konst(format!("{bias_name}+bn"), vec![k], new_b),
    ])
}

fn fuse_residuals(g: &Graph) -> Graph {
    let mut g = g.clone();
    let uses = g.use_counts();
    let producer = producers(&g);
    let mut keep = vec![true; g.nodes.len()];
    for ai in 0..g.nodes.len() {
        if g.nodes[ai].op != Op::Add {
            continue;
        }
        let [a, b] = match g.nodes[ai].inputs.as_slice() {
            &[a, b] => [a, b],
            _ => continue,
        };
        if a == b || g.shape(a) != g.shape(b) {
            continue;
        }
        // Try either side as the conv; the other must exist before the conv runs.
        let pick = [(a, b), (b, a)].into_iter().find_map(|(side, other)| {
            let ci = producer[side.0]?;
            let fusable = matches!(&g.nodes[ci].op, Op::Conv2d(c) if !c.residual && c.act == Activation::Identity);
            let ready = producer[other.0].is_none_or(|oi| oi < ci);
            (fusable && keep[ci] && uses[side.0] == 1 && ready && ci < ai).then_some((ci, other))
        });
        let Some((ci, other)) = pick else { continue };
        let out = g.nodes[ai].output;
        let conv = &mut g.nodes[ci];
        if let Op::Conv2d(c) = &mut conv.op {
            c.residual = true;
        }
        conv.inputs.push(other);
        conv.output = out;
        keep[ai] = false;
    }
    compact(&g, &keep)
}

fn fuse_activations(g: &Graph) -> Graph {
    let mut g = g.clone();
    let uses = g.use_counts();
    let producer = producers(&g);
    let mut keep = vec![true; g.nodes.len()];
    for ai in 0..g.nodes.len() {
        let Op::Act(f) = g.nodes[ai].op else { continue };
        let Some(&x) = g.nodes[ai].inputs.first() else {
            continue;
        };
        let Some(pi) = producer[x.0] else { continue };
        if uses[x.0] != 1 || !keep[pi] || pi >= ai {
            continue;
        }
        let out = g.nodes[ai].output;
        let layer = &mut g.nodes[pi];
        let slot = match &mut layer.op {
            Op::Conv2d(c) => &mut c.act,
            Op::Linear { act, .. } => act,
            _ => continue,
        };
        if *slot != Activation::Identity {
            continue;
        }
        *slot = f;
        layer.output = out;
        keep[ai] = false;
    }
    compact(&g, &keep)
}

/// For each tensor, the index of the node that writes it.
fn producers(g: &Graph) -> Vec<Option<usize>> {
    let mut p = vec![None; g.tensors.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        if let Some(slot) = p.get_mut(n.output.0) {
            *slot = Some(i);
        }
    }
    p
}

/// Keeps the nodes marked in `keep` whose outputs are still needed (read by a kept node or a
/// graph output), drops every tensor nothing refers to any more, and renumbers ids in order.
fn compact(g: &Graph, keep: &[bool]) -> Graph {
    let n = g.tensors.len();
    let mut needed = vec![false; n];
    for &o in &g.outputs {
        needed[o.0] = true;
    }
    let mut live = vec![false; g.nodes.len()];
    for (i, node) in g.nodes.iter().enumerate().rev() {
        if keep[i] && needed[node.output.0] {
            live[i] = true;
            for &x in &node.inputs {
                needed[x.0] = true;
            }
        }
    }
    let mut referenced = needed;
    for &i in &g.inputs {
        referenced[i.0] = true;
    }
    let mut remap = vec![usize::MAX; n];
    let mut tensors = Vec::new();
    for (i, t) in g.tensors.iter().enumerate() {
        if referenced[i] {
            remap[i] = tensors.len();
            tensors.push(t.clone());
        }
    }
    let id = |t: TensorId| TensorId(remap[t.0]);
    let nodes = g
        .nodes
        .iter()
        .zip(&live)
        .filter(|(_, l)| **l)
        .map(|(node, _)| Node {
            name: node.name.clone(),
            op: node.op.clone(),
            inputs: node.inputs.iter().map(|&t| id(t)).collect(),
            output: id(node.output),
        })
        .collect();
    Graph {
        tensors,
        nodes,
        inputs: g.inputs.iter().map(|&t| id(t)).collect(),
        outputs: g.outputs.iter().map(|&t| id(t)).collect(),
        ignored_key_suffixes: g.ignored_key_suffixes.clone(),
    }
}
