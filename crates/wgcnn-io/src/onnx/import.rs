//! The import driver: model checks, opsets, initializers, graph inputs, the node loop that
//! collects every unsupported node, and the graph outputs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wgcnn_graph::{GraphBuilder, Op, TensorId};

use super::proto::{GraphProto, ModelProto, NodeProto, ValueInfoProto, data_type};
use super::tensor::{HostTensor, checked_numel, decode_tensor};
use super::{NodeError, OnnxError, OnnxModel, OnnxOptions, OnnxValue, UnsupportedNode, ops};

/// The oldest default-domain opset the importer reads.
pub(crate) const MIN_OPSET: i64 = 7;

/// What an ONNX value name stands for during import.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// Known on the host: an initializer, a `Constant`, or a folded result.
    Host(Arc<HostTensor>),
    /// Computed at run time by the graph.
    Graph(TensorId),
}

/// Where a node sits, for messages.
#[derive(Clone, Debug)]
pub(crate) struct NodeInfo {
    pub label: String,
    pub opset: i64,
}

/// The state of one import.
pub(crate) struct Importer {
    pub b: GraphBuilder,
    values: HashMap<String, Value>,
    initializers: HashSet<String>,
    /// Host values already turned into graph tensors, by value name.
    materialized: HashMap<String, TensorId>,
    /// Parameters created from initializers, filled after `finish`.
    param_data: Vec<(TensorId, Arc<[f32]>)>,
    /// Counter for unique names of derived constants.
    next_const: usize,
    /// The model's folder, for external data.
    dir: PathBuf,
}

impl Importer {
    /// The folder external data paths are relative to.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// The value called `name`, or an error naming the unknown input.
    pub fn value(&self, name: &str) -> Result<&Value, NodeError> {
        self.values.get(name).ok_or_else(|| {
            NodeError::Invalid(format!(
                "input {name:?} is neither a graph input, an initializer nor a node output"
            ))
        })
    }

    /// Input `i` of `node`, `None` when absent (past the end or an empty name).
    pub fn input(&self, node: &NodeProto, i: usize) -> Result<Option<&Value>, NodeError> {
        match node.input.get(i) {
            None => Ok(None),
            Some(n) if n.is_empty() => Ok(None),
            Some(n) => self.value(n).map(Some),
        }
    }

    /// Input `i` of `node`, which must be present.
    pub fn req(&self, node: &NodeProto, i: usize) -> Result<&Value, NodeError> {
        self.input(node, i)?
            .ok_or_else(|| NodeError::Invalid(format!("input {i} is missing")))
    }

    /// Input `i`, which must be known on the host (a constant, not a run-time value).
    pub fn host(&self, node: &NodeProto, i: usize) -> Result<Option<Arc<HostTensor>>, NodeError> {
        match self.input(node, i)? {
            None => Ok(None),
            Some(Value::Host(t)) => Ok(Some(Arc::clone(t))),
            Some(Value::Graph(_)) => Err(NodeError::Unsupported(format!(
                "input {i} ({:?}) is computed at run time; it must be a constant known at import",
                node.input[i]
            ))),
        }
    }

    /// Input `i` as a host tensor, which must be present.
    pub fn host_req(&self, node: &NodeProto, i: usize) -> Result<Arc<HostTensor>, NodeError> {
        self.host(node, i)?
            .ok_or_else(|| NodeError::Invalid(format!("input {i} is missing")))
    }

    /// Whether every present input of `node` is known on the host.
    pub fn all_host(&self, node: &NodeProto) -> Result<bool, NodeError> {
        for i in 0..node.input.len() {
            if let Some(Value::Graph(_)) = self.input(node, i)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The static shape of a value.
    pub fn shape_of(&self, v: &Value) -> Vec<usize> {
        match v {
            Value::Host(t) => t.shape.clone(),
            Value::Graph(id) => self.b.shape(*id).to_vec(),
        }
    }

    /// Input `i` as a graph tensor: host values become bound parameters (initializers used as
    /// they are, named by the initializer) or constants.
    pub fn graph_input(&mut self, node: &NodeProto, i: usize) -> Result<TensorId, NodeError> {
        let name = node
            .input
            .get(i)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| NodeError::Invalid(format!("input {i} is missing")))?;
        match self.value(name)?.clone() {
            Value::Graph(id) => Ok(id),
            Value::Host(t) => self.materialize(name, &t),
        }
    }

    /// Turns a named host value into a graph tensor, once per name.
    pub fn materialize(&mut self, name: &str, t: &HostTensor) -> Result<TensorId, NodeError> {
        if let Some(&id) = self.materialized.get(name) {
            return Ok(id);
        }
        let id = if self.initializers.contains(name) && t.is_float() {
            let id = self.b.param(name, &t.shape);
            self.param_data.push((id, t.to_f32().into()));
            id
        } else {
            self.b.constant(name, &t.shape, t.to_f32())?
        };
        self.materialized.insert(name.to_string(), id);
        Ok(id)
    }

    /// A new constant derived by the importer (transposed or scaled weights, biases).
    pub fn derived_const(
        &mut self,
        base: &str,
        shape: &[usize],
        data: Vec<f32>,
    ) -> Result<TensorId, NodeError> {
        self.next_const += 1;
        let name = format!("{base}#{}", self.next_const);
        Ok(self.b.constant(&name, shape, data)?)
    }

    /// Adds an IR node, turning shape errors into node errors.
    pub fn node(&mut self, name: &str, op: Op, inputs: &[TensorId]) -> Result<TensorId, NodeError> {
        let id = self.b.node(name, op, inputs)?;
        if checked_numel(self.b.shape(id)).is_none() {
            return Err(NodeError::Invalid(format!(
                "output shape {:?} is too large",
                self.b.shape(id)
            )));
        }
        Ok(id)
    }

    /// Binds output `i` of `node` (ignored when the node does not name it).
    pub fn set_output(&mut self, node: &NodeProto, i: usize, v: Value) {
        if let Some(name) = node.output.get(i).filter(|n| !n.is_empty()) {
            self.values.insert(name.clone(), v);
        }
    }
}

/// The label of node `index`: its name, else `#index`.
pub(crate) fn node_label(node: &NodeProto, index: usize) -> String {
    if node.name.is_empty() {
        format!("#{index}")
    } else {
        node.name.clone()
    }
}

/// The opset version of `domain` (`""` and `ai.onnx` are the default domain), 0 when absent.
pub(crate) fn opset_of(model: &ModelProto, domain: &str) -> i64 {
    let default = |d: &str| d.is_empty() || d == "ai.onnx";
    model
        .opset_import
        .iter()
        .filter(|o| o.domain == domain || (default(domain) && default(&o.domain)))
        .map(|o| o.version)
        .max()
        .unwrap_or(0)
}

/// The domain as shown in messages.
pub(crate) fn domain_name(domain: &str) -> &str {
    if domain.is_empty() { "ai.onnx" } else { domain }
}

/// Runs the import of a decoded model.
pub(crate) fn import_model(
    model: &ModelProto,
    path: &Path,
    dir: &Path,
    opts: &OnnxOptions,
) -> Result<OnnxModel, OnnxError> {
    let model_err = |message: String| OnnxError::Model {
        path: path.to_path_buf(),
        message,
    };
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| model_err("the model holds no graph".into()))?;
    let opset = opset_of(model, "");
    if opset == 0 {
        return Err(model_err(
            "the model imports no ai.onnx operator set".into(),
        ));
    }
    if opset < MIN_OPSET {
        return Err(model_err(format!(
            "ai.onnx opset {opset} is older than the oldest supported ({MIN_OPSET}); convert it with onnx.version_converter"
        )));
    }
    if opts.batch == 0 || checked_numel(&[opts.batch]).is_none() {
        return Err(model_err(format!("batch size {} is not valid", opts.batch)));
    }

    let mut imp = Importer {
        b: GraphBuilder::new(),
        values: HashMap::new(),
        initializers: HashSet::new(),
        materialized: HashMap::new(),
        param_data: Vec::new(),
        next_const: 0,
        dir: dir.to_path_buf(),
    };
    for t in &graph.initializer {
        let host = decode_tensor(t, dir).map_err(|message| OnnxError::Tensor {
            path: path.to_path_buf(),
            name: t.name.clone(),
            message,
        })?;
        imp.initializers.insert(t.name.clone());
        imp.values
            .insert(t.name.clone(), Value::Host(Arc::new(host)));
    }

    let mut inputs = Vec::new();
    for vi in &graph.input {
        if imp.initializers.contains(&vi.name) {
            continue;
        }
        let shape = input_shape(vi, opts.batch)
            .map_err(|m| model_err(format!("input {:?}: {m}", vi.name)))?;
        let id = imp.b.input(&vi.name, &shape);
        imp.values.insert(vi.name.clone(), Value::Graph(id));
        inputs.push(OnnxValue {
            name: vi.name.clone(),
            shape,
        });
    }

    let unsupported = import_nodes(&mut imp, model, graph, path)?;
    if !unsupported.is_empty() {
        return Err(OnnxError::Unsupported {
            path: path.to_path_buf(),
            nodes: unsupported,
        });
    }

    let mut outputs = Vec::new();
    for vi in &graph.output {
        let v = imp
            .values
            .get(&vi.name)
            .cloned()
            .ok_or_else(|| model_err(format!("output {:?} is produced by no node", vi.name)))?;
        let id = match v {
            Value::Graph(id) => id,
            Value::Host(t) => imp
                .materialize(&vi.name, &t)
                .map_err(|e| model_err(format!("output {:?}: {}", vi.name, e.message())))?,
        };
        imp.b.output(id);
        outputs.push(OnnxValue {
            name: vi.name.clone(),
            shape: imp.b.shape(id).to_vec(),
        });
    }
    if outputs.is_empty() {
        return Err(model_err("the graph has no outputs".into()));
    }

    let mut g = imp.b.finish();
    for (id, data) in imp.param_data {
        g.tensors[id.0].data = Some(data);
    }
    let mut opsets: Vec<(String, i64)> = model
        .opset_import
        .iter()
        .map(|o| (o.domain.clone(), o.version))
        .collect();
    opsets.sort();
    Ok(OnnxModel {
        graph: g,
        inputs,
        outputs,
        opset,
        opsets,
        ir_version: model.ir_version,
        producer_name: model.producer_name.clone(),
        producer_version: model.producer_version.clone(),
    })
}

/// Imports every node. Unsupported nodes are collected (their outputs become unknown, and
/// nodes depending on them are skipped); any other problem stops the import.
fn import_nodes(
    imp: &mut Importer,
    model: &ModelProto,
    graph: &GraphProto,
    path: &Path,
) -> Result<Vec<UnsupportedNode>, OnnxError> {
    let mut unsupported = Vec::new();
    let mut poisoned: HashSet<&str> = HashSet::new();
    for (index, node) in graph.node.iter().enumerate() {
        let opset = opset_of(model, &node.domain);
        let info = NodeInfo {
            label: node_label(node, index),
            opset,
        };
        let flag = |reason: String| UnsupportedNode {
            node: info.label.clone(),
            index,
            op_type: node.op_type.clone(),
            domain: domain_name(&node.domain).to_string(),
            opset,
            reason,
        };
        let reason = if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            Some(format!(
                "operators of domain {} are not supported",
                node.domain
            ))
        } else if !ops::SUPPORTED_OPS.contains(&node.op_type.as_str()) {
            Some(format!("{} is not supported by wgcnn", node.op_type))
        } else {
            None
        };
        let skip = reason.is_some() || node.input.iter().any(|i| poisoned.contains(i.as_str()));
        if let Some(reason) = reason {
            unsupported.push(flag(reason));
        }
        if !skip {
            match ops::import_node(imp, node, &info) {
                Ok(()) => continue,
                Err(NodeError::Unsupported(reason)) => unsupported.push(flag(reason)),
                Err(NodeError::Invalid(message)) => {
                    return Err(OnnxError::Node {
                        path: path.to_path_buf(),
                        node: info.label.clone(),
                        op_type: node.op_type.clone(),
                        opset,
                        message,
                    });
                }
            }
        }
        poisoned.extend(node.output.iter().map(String::as_str));
    }
    Ok(unsupported)
}

/// The static shape of a graph input: `dim_param` (or an unset dim) on axis 0 takes `batch`.
fn input_shape(vi: &ValueInfoProto, batch: usize) -> Result<Vec<usize>, String> {
    let tt = vi
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or("not a tensor (no tensor type)")?;
    match tt.elem_type {
        data_type::FLOAT | data_type::FLOAT16 | data_type::DOUBLE | data_type::BFLOAT16 => {}
        other => {
            return Err(format!(
                "element type {} is not supported (inputs are f32 images)",
                data_type::name(other)
            ));
        }
    }
    let dims = &tt.shape.as_ref().ok_or("no shape given")?.dim;
    let mut shape = Vec::with_capacity(dims.len());
    for (axis, d) in dims.iter().enumerate() {
        let v = match (d.dim_value, &d.dim_param) {
            (Some(v), _) if v > 0 => v as usize,
            (Some(v), _) if v < 0 => return Err(format!("dimension {axis} is negative ({v})")),
            (_, Some(_)) | (None, None) | (Some(_), None) if axis == 0 => batch,
            (_, Some(p)) => {
                return Err(format!(
                    "dimension {axis} is symbolic ({p:?}); only the batch axis may be"
                ));
            }
            _ => {
                return Err(format!(
                    "dimension {axis} is unknown; only the batch axis may be"
                ));
            }
        };
        shape.push(v);
    }
    if checked_numel(&shape).is_none() {
        return Err(format!("shape {shape:?} is too large"));
    }
    Ok(shape)
}
