//! The graph: tensors, nodes, the builder that infers shapes as nodes are added, and weight
//! binding by PyTorch key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::{GraphError, Op, Shape};

/// Index of a tensor in [`Graph::tensors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub usize);

/// Where a tensor's values come from.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorKind {
    /// Fed at run time (the image batch).
    Input,
    /// A learned parameter, looked up by its name (the PyTorch key) when weights are bound.
    Param,
    /// Values known when the graph is built or made by a rewrite pass (folded BatchNorm).
    Const,
    /// Produced by a node.
    Activation,
}

/// A tensor's description and, for parameters and constants, its values once bound.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    /// The PyTorch key for parameters (`layer1.0.conv1.weight`), else a descriptive name.
    pub name: String,
    pub shape: Shape,
    pub kind: TensorKind,
    /// Row-major f32 values of a `Param` (after binding) or `Const`.
    pub data: Option<Arc<[f32]>>,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One operation: reads `inputs`, writes `output`.
#[derive(Clone, Debug)]
pub struct Node {
    /// The module path it comes from (`layer1.0.conv1`), for errors and profiles.
    pub name: String,
    pub op: Op,
    pub inputs: Vec<TensorId>,
    pub output: TensorId,
}

/// A network: tensors and nodes in topological order.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub tensors: Vec<TensorInfo>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
    /// Checkpoint keys the architecture knowingly does not use (e.g. `num_batches_tracked`,
    /// an auxiliary classifier): matched as suffixes, they are not reported as unexpected.
    pub ignored_key_suffixes: Vec<String>,
}

impl Graph {
    pub fn tensor(&self, id: TensorId) -> &TensorInfo {
        &self.tensors[id.0]
    }

    pub fn shape(&self, id: TensorId) -> &[usize] {
        &self.tensors[id.0].shape
    }

    /// Ids of all parameters (tensors of kind `Param`).
    pub fn params(&self) -> impl Iterator<Item = TensorId> + '_ {
        self.tensors
            .iter()
            .enumerate()
            .filter(|(_, t)| t.kind == TensorKind::Param)
            .map(|(i, _)| TensorId(i))
    }

    /// Total number of parameter elements.
    pub fn param_count(&self) -> usize {
        self.params().map(|id| self.tensor(id).numel()).sum()
    }

    /// Multiply-accumulates of one forward pass.
    pub fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| {
                let ins: Vec<&[usize]> = n.inputs.iter().map(|&i| self.shape(i)).collect();
                n.op.macs(&ins, self.shape(n.output))
            })
            .sum()
    }

    /// Fills every parameter from `source`, checking every key and shape first. All problems
    /// are reported at once: missing keys, unexpected keys, shape mismatches.
    pub fn bind(&mut self, source: &dyn WeightSource) -> Result<(), GraphError> {
        let mut report = WeightReport::default();
        let declared: BTreeSet<&str> = self
            .params()
            .map(|id| self.tensors[id.0].name.as_str())
            .collect();
        for id in self.params() {
            let t = &self.tensors[id.0];
            match source.shape(&t.name) {
                None => report.missing.push((t.name.clone(), t.shape.clone())),
                Some(found) if found != t.shape => {
                    report
                        .mismatched
                        .push((t.name.clone(), t.shape.clone(), found))
                }
                Some(_) => {}
            }
        }
        let keys = source.keys();
        // Keys the architecture knowingly leaves unused, counted per suffix for the log.
        let mut ignored: BTreeMap<&str, usize> = BTreeMap::new();
        for key in &keys {
            if declared.contains(key.as_str()) {
                continue;
            }
            match self
                .ignored_key_suffixes
                .iter()
                .find(|s| key.ends_with(s.as_str()))
            {
                Some(suffix) => {
                    tracing::trace!(%key, %suffix, "checkpoint key ignored");
                    *ignored.entry(suffix.as_str()).or_default() += 1;
                }
                None => report.unexpected.push(key.clone()),
            }
        }
        for (suffix, count) in &ignored {
            tracing::debug!(suffix, count, "checkpoint keys ignored by suffix");
        }
        if !report.is_empty() {
            tracing::debug!(
                missing = report.missing.len(),
                unexpected = report.unexpected.len(),
                misshapen = report.mismatched.len(),
                "weights do not fit"
            );
            return Err(GraphError::Weights(report));
        }
        let ids: Vec<TensorId> = self.params().collect();
        let (bound, mut values) = (ids.len(), 0usize);
        for id in ids {
            let name = self.tensors[id.0].name.clone();
            let data = source
                .load(&name)
                .map_err(|reason| GraphError::WeightLoad {
                    key: name.clone(),
                    reason,
                })?;
            if data.len() != self.tensors[id.0].numel() {
                return Err(GraphError::WeightLoad {
                    key: name,
                    reason: format!(
                        "{} values for {} elements",
                        data.len(),
                        self.tensors[id.0].numel()
                    ),
                });
            }
            tracing::trace!(key = %name, shape = ?self.tensors[id.0].shape, "weight bound");
            values += data.len();
            self.tensors[id.0].data = Some(data.into());
        }
        tracing::info!(
            params = bound,
            values,
            checkpoint_keys = keys.len(),
            ignored = ignored.values().sum::<usize>(),
            "weights bound"
        );
        Ok(())
    }

    /// Appends a node after all others (shape inferred) and returns its output tensor, named
    /// after the node.
    pub fn push_node(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[TensorId],
    ) -> Result<TensorId, GraphError> {
        if let Some(bad) = inputs.iter().find(|i| i.0 >= self.tensors.len()) {
            return Err(GraphError::Invalid(format!(
                "node {name}: unknown input tensor {}",
                bad.0
            )));
        }
        let shapes: Vec<&[usize]> = inputs.iter().map(|&i| self.shape(i)).collect();
        let out = op.infer(&shapes).map_err(|message| GraphError::Shape {
            node: name.to_string(),
            op: op.kind(),
            inputs: shapes.iter().map(|s| s.to_vec()).collect(),
            message,
        })?;
        self.tensors.push(TensorInfo {
            name: name.to_string(),
            shape: out,
            kind: TensorKind::Activation,
            data: None,
        });
        let output = TensorId(self.tensors.len() - 1);
        self.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs: inputs.to_vec(),
            output,
        });
        Ok(output)
    }

    /// The part of the graph that computes `outputs` from `inputs`: the given tensors become the
    /// graph inputs (fed at run time instead of computed), nodes not needed are dropped. Used to
    /// run one stage of a network on reference tensors. Errors name a needed tensor that is
    /// neither given, constant, nor computable from the given ones.
    pub fn cut(&self, inputs: &[TensorId], outputs: &[TensorId]) -> Result<Graph, GraphError> {
        let producer: std::collections::HashMap<TensorId, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.output, i))
            .collect();
        let mut needed_nodes = vec![false; self.nodes.len()];
        let mut stack: Vec<TensorId> = outputs.to_vec();
        let mut seen = BTreeSet::new();
        while let Some(t) = stack.pop() {
            if !seen.insert(t) || inputs.contains(&t) {
                continue;
            }
            match (self.tensor(t).kind.clone(), producer.get(&t)) {
                (TensorKind::Param | TensorKind::Const, _) => {}
                (_, Some(&i)) => {
                    needed_nodes[i] = true;
                    stack.extend(self.nodes[i].inputs.iter().copied());
                }
                (_, None) => {
                    return Err(GraphError::Invalid(format!(
                        "cut: tensor {} is needed but is not among the given inputs",
                        self.tensor(t).name
                    )));
                }
            }
        }
        let mut g = self.clone();
        g.nodes = self
            .nodes
            .iter()
            .zip(&needed_nodes)
            .filter(|(_, k)| **k)
            .map(|(n, _)| n.clone())
            .collect();
        for &t in inputs {
            g.tensors[t.0].kind = TensorKind::Input;
        }
        g.inputs = inputs.to_vec();
        g.outputs = outputs.to_vec();
        Ok(g)
    }

    /// The tensor called `name` (the last one, if several share it).
    pub fn find(&self, name: &str) -> Option<TensorId> {
        self.tensors
            .iter()
            .rposition(|t| t.name == name)
            .map(TensorId)
    }

    /// Whether every parameter and constant has values.
    pub fn is_bound(&self) -> bool {
        self.tensors
            .iter()
            .all(|t| !matches!(t.kind, TensorKind::Param | TensorKind::Const) || t.data.is_some())
    }

    /// How many nodes read each tensor (outputs count as one more reader).
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0; self.tensors.len()];
        for n in &self.nodes {
            for i in &n.inputs {
                uses[i.0] += 1;
            }
        }
        for o in &self.outputs {
            uses[o.0] += 1;
        }
        uses
    }
}

/// A place to read weights from by key: a safetensors file, a `.pth`, a rule.
pub trait WeightSource {
    /// Every key the source holds (integer buffers included; unused ones may be ignored).
    fn keys(&self) -> Vec<String>;
    /// The shape stored under `key`, if present.
    fn shape(&self, key: &str) -> Option<Shape>;
    /// The values under `key` converted to f32, row-major.
    fn load(&self, key: &str) -> Result<Vec<f32>, String>;
}

/// Everything wrong between an architecture and a checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightReport {
    /// `(key, expected shape)`.
    pub missing: Vec<(String, Shape)>,
    pub unexpected: Vec<String>,
    /// `(key, expected shape, found shape)`.
    pub mismatched: Vec<(String, Shape, Shape)>,
}

impl WeightReport {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for WeightReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 10;
        let more = |f: &mut fmt::Formatter<'_>, n: usize| {
            if n > SHOW {
                write!(f, "\n    ... and {} more", n - SHOW)
            } else {
                Ok(())
            }
        };
        write!(
            f,
            "weights do not fit the architecture: {} missing, {} unexpected, {} misshapen",
            self.missing.len(),
            self.unexpected.len(),
            self.mismatched.len()
        )?;
        if !self.missing.is_empty() {
            write!(f, "\n  missing keys:")?;
            for (k, s) in self.missing.iter().take(SHOW) {
                write!(f, "\n    {k} (expected {s:?})")?;
            }
            more(f, self.missing.len())?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "\n  unexpected keys:")?;
            for k in self.unexpected.iter().take(SHOW) {
                write!(f, "\n    {k}")?;
            }
            more(f, self.unexpected.len())?;
        }
        if !self.mismatched.is_empty() {
            write!(f, "\n  shape mismatches:")?;
            for (k, want, got) in self.mismatched.iter().take(SHOW) {
                write!(f, "\n    {k}: expected {want:?}, found {got:?}")?;
            }
            more(f, self.mismatched.len())?;
        }
        Ok(())
    }
}

/// Builds a [`Graph`], inferring each node's output shape as it is added.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: Graph,
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(
        &mut self,
        name: &str,
        shape: Shape,
        kind: TensorKind,
        data: Option<Arc<[f32]>>,
    ) -> TensorId {
        self.graph.tensors.push(TensorInfo {
            name: name.to_string(),
            shape,
            kind,
            data,
        });
        TensorId(self.graph.tensors.len() - 1)
    }

    /// Declares a run-time input.
    pub fn input(&mut self, name: &str, shape: &[usize]) -> TensorId {
        let id = self.push(name, shape.to_vec(), TensorKind::Input, None);
        self.graph.inputs.push(id);
        id
    }

    /// Declares a parameter looked up by `key` when weights are bound.
    pub fn param(&mut self, key: &str, shape: &[usize]) -> TensorId {
        self.push(key, shape.to_vec(), TensorKind::Param, None)
    }

    /// A constant with known values.
    pub fn constant(
        &mut self,
        name: &str,
        shape: &[usize],
        data: Vec<f32>,
    ) -> Result<TensorId, GraphError> {
        let n: usize = shape.iter().product();
        if data.len() != n {
            return Err(GraphError::Invalid(format!(
                "constant {name}: {} values for shape {shape:?}",
                data.len()
            )));
        }
        Ok(self.push(name, shape.to_vec(), TensorKind::Const, Some(data.into())))
    }

    pub fn shape(&self, id: TensorId) -> &[usize] {
        self.graph.shape(id)
    }

    /// Adds a node and returns its output tensor; the output is named after the node.
    pub fn node(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[TensorId],
    ) -> Result<TensorId, GraphError> {
        self.graph.push_node(name, op, inputs)
    }

    /// Marks a tensor as a graph output.
    pub fn output(&mut self, id: TensorId) {
        self.graph.outputs.push(id);
    }

    /// Keys ending with `suffix` in a checkpoint are not reported as unexpected.
    pub fn ignore_key_suffix(&mut self, suffix: &str) {
        self.graph.ignored_key_suffixes.push(suffix.to_string());
    }

    pub fn finish(self) -> Graph {
        self.graph
    }
}
