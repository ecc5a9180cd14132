//! Figures made from timings: sample statistics ([`summarize`]), per-layer aggregation
//! ([`layers`]) and the share of time per kernel category ([`category_shares`]). Pure functions,
//! no GPU: unit-tested on made-up numbers.

use std::collections::HashMap;

use wgcnn_graph::{Graph, Node};

use super::LaunchTiming;

/// Statistics of a set of samples (milliseconds in `wgcnn bench`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// The 50th percentile (the mean of the two middle samples for an even count).
    pub median: f64,
    /// The 90th percentile, interpolated linearly between the closest ranks (numpy's default).
    pub p90: f64,
}

/// The `q`-quantile (`0..=1`) of ascending `sorted` samples, interpolated linearly between the
/// two closest ranks. `sorted` must not be empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Min, max, mean, median and p90 of `samples`; `None` when there are none. NaN samples are
/// ignored.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    Some(Summary {
        count: sorted.len(),
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        median: quantile(&sorted, 0.5),
        p90: quantile(&sorted, 0.9),
    })
}

/// What a kernel does, for the share-of-time breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// `conv2d`, `dwconv2d` and their variants.
    Conv,
    /// `linear` (fully connected layers) and other plain matrix products.
    Gemm,
    /// Max, average and adaptive average pooling.
    Pooling,
    /// `unary`, `binary`, `softmax`, `lrn`, `pad`.
    Elementwise,
    /// `copy_channels` (concatenation).
    Copy,
    /// Anything else (preprocessing, new kernels).
    Other,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 6] = [
        Category::Conv,
        Category::Gemm,
        Category::Pooling,
        Category::Elementwise,
        Category::Copy,
        Category::Other,
    ];

    /// The category of a kernel by its shader name; variants named with a suffix
    /// (`conv2d_1x1`, `linear_splitk`) count with their family.
    pub fn of_kernel(kernel: &str) -> Category {
        let family = |names: &[&str]| {
            names
                .iter()
                .any(|n| kernel == *n || kernel.starts_with(&format!("{n}_")))
        };
        if family(&["conv2d", "dwconv2d", "conv"]) {
            Category::Conv
        } else if family(&["linear", "gemm", "matmul"]) {
            Category::Gemm
        } else if family(&["pool2d", "adaptive_avgpool2d", "maxpool2d", "avgpool2d"]) {
            Category::Pooling
        } else if family(&["unary", "binary", "softmax", "lrn", "pad"]) {
            Category::Elementwise
        } else if family(&["copy_channels", "copy"]) {
            Category::Copy
        } else {
            Category::Other
        }
    }

    /// The name reports print (`conv`, `GEMM`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Category::Conv => "conv",
            Category::Gemm => "GEMM",
            Category::Pooling => "pooling",
            Category::Elementwise => "elementwise",
            Category::Copy => "copies",
            Category::Other => "other",
        }
    }
}

/// The layer a launch label belongs to: the label without a trailing `[..]` part suffix
/// (`classifier.0[0..2048]` → `classifier.0`, `features.concat[2]` → `features.concat`).
pub fn layer_name(label: &str) -> &str {
    match label
        .strip_suffix(']')
        .and_then(|l| l.rfind('[').map(|i| &label[..i]))
    {
        Some(base) if !base.is_empty() => base,
        _ => label,
    }
}

/// The time of one layer: every launch whose label maps to it by [`layer_name`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerTiming {
    /// The node name (`layer1.0.conv1`).
    pub name: String,
    /// The kernels it launched, distinct, joined with `+` in first-use order.
    pub kernel: String,
    /// The category of its first launch's kernel.
    pub category: Category,
    pub launches: usize,
    /// Milliseconds, summed over its launches.
    pub ms: f64,
    /// Floating-point operations (2 x multiply-adds) of the graph node of this name; 0 for data
    /// movement or when the plan's graph has no such node.
    pub flops: u64,
    /// The node's output shape, when the graph has a node of this name.
    pub output_shape: Option<Vec<usize>>,
}

impl LayerTiming {
    /// Achieved GFLOP/s, when the layer does arithmetic and took measurable time.
    pub fn gflops_per_s(&self) -> Option<f64> {
        (self.flops > 0 && self.ms > 0.0).then(|| self.flops as f64 / (self.ms * 1e6))
    }
}

/// Aggregates launches per layer (in order of first launch), with FLOPs and output shapes
/// from `graph`'s nodes of the same name (pass the plan's graph, [`crate::Plan::graph`]).
pub fn layers(launches: &[LaunchTiming], graph: &Graph) -> Vec<LayerTiming> {
    let nodes: HashMap<&str, &Node> = graph.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<LayerTiming> = Vec::new();
    for l in launches {
        // A label that is itself a node name wins over stripping a `[..]` it may contain.
        let name = if nodes.contains_key(l.label.as_str()) {
            l.label.as_str()
        } else {
            layer_name(&l.label)
        };
        let i = *index.entry(name).or_insert_with(|| {
            let node = nodes.get(name);
            let (flops, output_shape) = node.map_or((0, None), |n| {
                let ins: Vec<&[usize]> = n.inputs.iter().map(|&t| graph.shape(t)).collect();
                let out = graph.shape(n.output);
                (2 * n.op.macs(&ins, out), Some(out.to_vec()))
            });
            out.push(LayerTiming {
                name: name.to_string(),
                kernel: String::new(),
                category: Category::of_kernel(l.kernel),
                launches: 0,
                ms: 0.0,
                flops,
                output_shape,
            });
            out.len() - 1
        });
        let layer = &mut out[i];
        layer.launches += 1;
        layer.ms += l.ms;
        if !layer.kernel.split('+').any(|k| k == l.kernel) {
            if !layer.kernel.is_empty() {
                layer.kernel.push('+');
            }
            layer.kernel.push_str(l.kernel);
        }
    }
    out
}

/// The time spent in one category.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CategoryShare {
    pub category: Category,
    pub launches: usize,
    pub ms: f64,
    /// `ms` over the total of all launches (0 when the total is 0).
    pub share: f64,
}

/// Time per category, every category listed in [`Category::ALL`] order (empty ones with 0).
pub fn category_shares(launches: &[LaunchTiming]) -> Vec<CategoryShare> {
    let total: f64 = launches.iter().map(|l| l.ms).sum();
    Category::ALL
        .iter()
        .map(|&category| {
            let mine = launches
                .iter()
                .filter(|l| Category::of_kernel(l.kernel) == category);
            let (launches, ms) = mine.fold((0, 0.0), |(n, ms), l| (n + 1, ms + l.ms));
            CategoryShare {
                category,
                launches,
                ms,
                share: if total > 0.0 { ms / total } else { 0.0 },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
