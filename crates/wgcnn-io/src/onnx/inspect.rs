//! `wgcnn inspect FILE` for ONNX models: what the file holds and whether it imports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use super::import::{domain_name, import_model};
use super::proto::{ModelProto, ValueInfoProto, data_type};
use super::{OnnxError, OnnxOptions, is_supported_op};

/// One dimension of a declared shape.
#[derive(Clone, Debug, PartialEq)]
pub enum OnnxDim {
    Fixed(i64),
    /// A named symbolic size such as `batch_size`.
    Symbolic(String),
    Unknown,
}

impl fmt::Display for OnnxDim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnnxDim::Fixed(v) => write!(f, "{v}"),
            OnnxDim::Symbolic(s) => write!(f, "{s}"),
            OnnxDim::Unknown => write!(f, "?"),
        }
    }
}

/// A graph input or output as declared in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxValueReport {
    pub name: String,
    /// `FLOAT`, `INT64`, ... (`?` when the file gives no tensor type).
    pub elem_type: String,
    /// `None` when the file declares no shape.
    pub dims: Option<Vec<OnnxDim>>,
}

impl fmt::Display for OnnxValueReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.elem_type)?;
        match &self.dims {
            None => write!(f, " [shape not given]"),
            Some(d) => write!(
                f,
                " [{}]",
                d.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// What an ONNX file holds, and what stands in the way of importing it.
#[derive(Clone, Debug)]
pub struct OnnxReport {
    pub path: PathBuf,
    pub ir_version: i64,
    pub producer_name: String,
    pub producer_version: String,
    pub graph_name: String,
    /// `(domain, version)`; the default domain is shown as `ai.onnx`.
    pub opsets: Vec<(String, i64)>,
    /// Run-time inputs (initializers that are also listed as inputs are left out).
    pub inputs: Vec<OnnxValueReport>,
    pub outputs: Vec<OnnxValueReport>,
    pub node_count: usize,
    pub initializer_count: usize,
    /// Total elements over all initializers.
    pub initializer_elements: u64,
    /// Nodes per op type; ops of other domains are keyed `domain::Op`.
    pub op_counts: BTreeMap<String, usize>,
    /// Op types (keyed as in `op_counts`) the importer does not map at all.
    pub unsupported_ops: Vec<String>,
    /// What a trial import with batch 1 reported (one line per unsupported node, or the
    /// error); empty when the model imports.
    pub import_problems: Vec<String>,
}

impl OnnxReport {
    /// Whether the trial import succeeded.
    pub fn imports(&self) -> bool {
        self.import_problems.is_empty()
    }
}

impl fmt::Display for OnnxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: ONNX model (IR version {})",
            self.path.display(),
            self.ir_version
        )?;
        writeln!(
            f,
            "  producer: {} {}",
            self.producer_name, self.producer_version
        )?;
        let opsets: Vec<String> = self
            .opsets
            .iter()
            .map(|(d, v)| format!("{d} {v}"))
            .collect();
        writeln!(f, "  opsets: {}", opsets.join(", "))?;
        for i in &self.inputs {
            writeln!(f, "  input:  {i}")?;
        }
        for o in &self.outputs {
            writeln!(f, "  output: {o}")?;
        }
        writeln!(
            f,
            "  {} nodes, {} initializers ({} elements)",
            self.node_count, self.initializer_count, self.initializer_elements
        )?;
        let ops: Vec<String> = self
            .op_counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(f, "  ops: {}", ops.join(", "))?;
        if !self.unsupported_ops.is_empty() {
            writeln!(
                f,
                "  unsupported op types: {}",
                self.unsupported_ops.join(", ")
            )?;
        }
        if self.import_problems.is_empty() {
            write!(f, "  imports: yes")
        } else {
            write!(f, "  imports: no")?;
            for p in &self.import_problems {
                write!(f, "\n    {p}")?;
            }
            Ok(())
        }
    }
}

fn value_report(vi: &ValueInfoProto) -> OnnxValueReport {
    let tt = vi.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    let elem_type = tt.map_or_else(|| "?".to_string(), |t| data_type::name(t.elem_type));
    let dims = tt.and_then(|t| t.shape.as_ref()).map(|s| {
        s.dim
            .iter()
            .map(|d| match (d.dim_value, &d.dim_param) {
                (Some(v), _) => OnnxDim::Fixed(v),
                (None, Some(p)) => OnnxDim::Symbolic(p.clone()),
                (None, None) => OnnxDim::Unknown,
            })
            .collect()
    });
    OnnxValueReport {
        name: vi.name.clone(),
        elem_type,
        dims,
    }
}

/// Describes the ONNX file at `path` without failing on unsupported content: only an
/// unreadable or undecodable file is an error.
pub fn inspect_onnx(path: impl AsRef<Path>) -> Result<OnnxReport, OnnxError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let model = ModelProto::from_bytes(&bytes).map_err(|source| OnnxError::Decode {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(report(&model, path, dir))
}

fn report(model: &ModelProto, path: &Path, dir: &Path) -> OnnxReport {
    let default_graph = Default::default();
    let graph = model.graph.as_ref().unwrap_or(&default_graph);
    let inits: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut op_counts = BTreeMap::new();
    let mut unsupported = BTreeSet::new();
    for n in &graph.node {
        let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
        let key = if default_domain {
            n.op_type.clone()
        } else {
            format!("{}::{}", n.domain, n.op_type)
        };
        if !default_domain || !is_supported_op(&n.op_type) {
            unsupported.insert(key.clone());
        }
        *op_counts.entry(key).or_insert(0) += 1;
    }
    let initializer_elements = graph
        .initializer
        .iter()
        .map(|t| {
            t.dims
                .iter()
                .fold(1u64, |acc, &d| acc.saturating_mul(d.max(0) as u64))
        })
        .fold(0u64, u64::saturating_add);
    let import_problems = match import_model(model, path, dir, &OnnxOptions::default()) {
        Ok(_) => Vec::new(),
        Err(OnnxError::Unsupported { nodes, .. }) => nodes.iter().map(|n| n.to_string()).collect(),
        Err(e) => vec![e.to_string()],
    };
    OnnxReport {
        path: path.to_path_buf(),
        ir_version: model.ir_version,
        producer_name: model.producer_name.clone(),
        producer_version: model.producer_version.clone(),
        graph_name: graph.name.clone(),
        opsets: model
            .opset_import
            .iter()
            .map(|o| (domain_name(&o.domain).to_string(), o.version))
            .collect(),
        inputs: graph
            .input
            .iter()
            .filter(|v| !inits.contains(v.name.as_str()))
            .map(value_report)
            .collect(),
        outputs: graph.output.iter().map(value_report).collect(),
        node_count: graph.node.len(),
        initializer_count: graph.initializer.len(),
        initializer_elements,
        op_counts,
        unsupported_ops: unsupported.into_iter().collect(),
        import_problems,
    }
}
