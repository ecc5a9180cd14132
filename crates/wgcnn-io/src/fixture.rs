//! The golden fixtures (`../shared/fixtures`): their files, and the weights that produced them
//! (the weight rule, overridden by each fixture's stored `state.*` BatchNorm statistics).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wgcnn_graph::{Graph, Shape, Tensor, WeightSource};

use crate::rule::rule_tensor;
use crate::{IoError, SafetensorsFile};

/// The fixtures directory: `$WGCNN_FIXTURES` when set, else `../shared/fixtures` next to the
/// workspace root.
pub fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WGCNN_FIXTURES") {
        return PathBuf::from(dir);
    }
    // CARGO_MANIFEST_DIR = <root>/crates/wgcnn-io, so <root>/.. is three levels up.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.ancestors().nth(3) {
        Some(above_root) => above_root.join("shared/fixtures"),
        None => manifest.join("../../../shared/fixtures"),
    }
}

/// A file under [`fixtures_dir`], e.g. `fixture_path("classify/resnet18.small.safetensors")`.
pub fn fixture_path(relative: &str) -> PathBuf {
    fixtures_dir().join(relative)
}

/// Prefix of the stored BatchNorm statistics in fixture files.
const STATE_PREFIX: &str = "state.";

/// One golden fixture file: inputs, reference outputs, stage tensors and stored statistics.
#[derive(Clone, Debug)]
pub struct Fixture {
    file: Arc<SafetensorsFile>,
}

impl Fixture {
    /// Opens a fixture file (a path, or one made with [`fixture_path`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Fixture, IoError> {
        Ok(Fixture {
            file: Arc::new(SafetensorsFile::open(path)?),
        })
    }

    /// The tensor stored under `name` (`input`, `output`, `stage.layer1`, `detections.boxes`...).
    pub fn tensor(&self, name: &str) -> Result<Tensor, IoError> {
        self.file.tensor(name)
    }

    /// Whether the fixture stores `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.file.contains(name)
    }

    /// Every tensor name in the file.
    pub fn keys(&self) -> &[String] {
        self.file.keys()
    }

    /// The header metadata (`model`, `builder`, `resolution`, thresholds...).
    pub fn metadata(&self) -> &HashMap<String, String> {
        self.file.metadata()
    }

    /// The underlying file.
    pub fn file(&self) -> &SafetensorsFile {
        &self.file
    }

    /// The state-dict keys of the stored statistics (`state.` removed).
    pub fn state_keys(&self) -> Vec<&str> {
        self.file
            .keys()
            .iter()
            .filter_map(|k| k.strip_prefix(STATE_PREFIX))
            .collect()
    }

    /// The weights that produced this fixture for `graph`: the rule for every parameter of the
    /// graph, overridden by every `state.<key>` tensor of the fixture (read when bound).
    pub fn weights_for(&self, graph: &Graph) -> RuleWeights {
        let mut weights = RuleWeights::for_graph(graph);
        for key in self.file.keys() {
            if let (Some(stripped), Some(shape)) =
                (key.strip_prefix(STATE_PREFIX), self.file.shape(key))
            {
                let entry = Entry::File {
                    file: Arc::clone(&self.file),
                    key: key.clone(),
                    shape: shape.to_vec(),
                };
                weights.entries.insert(stripped.to_string(), entry);
            }
        }
        weights
    }
}

/// Weights by the fixtures' rule, computed when loaded, with some tensors replaced by stored
/// values. A [`WeightSource`]: its keys are the graph's parameter keys plus the stored ones, so
/// binding reports a stored statistic that the architecture lacks as unexpected.
#[derive(Clone, Debug, Default)]
pub struct RuleWeights {
    entries: BTreeMap<String, Entry>,
}

#[derive(Clone, Debug)]
enum Entry {
    /// Computed by the rule on load.
    Rule(Shape),
    Stored(Tensor),
    /// Read from a fixture file on load.
    File {
        file: Arc<SafetensorsFile>,
        key: String,
        shape: Shape,
    },
}

impl RuleWeights {
    /// The pure rule for every parameter of `graph` (random-looking weights for benchmarks, or
    /// the exact weights of the BatchNorm-free fixtures). Parameters must carry PyTorch's key and
    /// shape: the rule depends on both.
    pub fn for_graph(graph: &Graph) -> RuleWeights {
        let entries = graph
            .params()
            .map(|id| {
                let t = graph.tensor(id);
                (t.name.clone(), Entry::Rule(t.shape.clone()))
            })
            .collect();
        RuleWeights { entries }
    }

    /// Replaces (or adds) the tensor under `key` with stored values.
    pub fn set(&mut self, key: &str, tensor: Tensor) {
        self.entries.insert(key.to_string(), Entry::Stored(tensor));
    }

    /// The tensor under `key`: stored values, or the rule's.
    pub fn tensor(&self, key: &str) -> Result<Tensor, String> {
        match self.entries.get(key) {
            None => Err(format!("rule weights hold no key {key:?}")),
            Some(Entry::Stored(t)) => Ok(t.clone()),
            Some(Entry::File { file, key, .. }) => file.tensor(key).map_err(|e| e.to_string()),
            Some(Entry::Rule(shape)) => {
                let data = rule_tensor(key, shape).ok_or_else(|| {
                    format!(
                        "the weight rule leaves {key:?} (shape {shape:?}) alone and no stored value \
                         replaces it: the parameter's key or shape differs from PyTorch's state_dict"
                    )
                })?;
                Ok(Tensor {
                    shape: shape.clone(),
                    data,
                })
            }
        }
    }
}

impl WeightSource for RuleWeights {
    fn keys(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    fn shape(&self, key: &str) -> Option<Shape> {
        self.entries.get(key).map(|e| match e {
            Entry::Rule(shape) => shape.clone(),
            Entry::Stored(t) => t.shape.clone(),
            Entry::File { shape, .. } => shape.clone(),
        })
    }

    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        self.tensor(key).map(|t| t.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgcnn_graph::{Conv2d, GraphBuilder, Op};

    fn one_conv_graph() -> Graph {
        let mut b = GraphBuilder::new();
        let x = b.input("input", &[1, 1, 3, 3]);
        let w = b.param("conv1.weight", &[2, 1, 1, 2]);
        let conv = Conv2d::new(1, 0, 1, false);
        let y = b.node("conv1", Op::Conv2d(conv), &[x, w]).unwrap();
        b.output(y);
        b.finish()
    }

    #[test]
    fn rule_weights_bind_readme_check_values_into_a_conv() {
        let mut graph = one_conv_graph();
        graph.bind(&RuleWeights::for_graph(&graph)).unwrap();
        let w = graph.params().next().unwrap();
        let got = graph.tensor(w).data.as_deref().unwrap().to_vec();
        println!("bound conv1.weight = {got:?}");
        assert_eq!(got, [0.15614417, -1.472885, 1.5935521, 1.1905615]);
    }

    #[test]
    fn stored_values_override_the_rule_and_extra_stored_keys_are_unexpected() {
        let graph = one_conv_graph();
        let mut weights = RuleWeights::for_graph(&graph);
        weights.set(
            "conv1.weight",
            Tensor {
                shape: vec![2, 1, 1, 2],
                data: vec![1.0, 2.0, 3.0, 4.0],
            },
        );
        let mut bound = graph.clone();
        bound.bind(&weights).unwrap();
        let w = bound.params().next().unwrap();
        assert_eq!(
            bound.tensor(w).data.as_deref().unwrap(),
            [1.0, 2.0, 3.0, 4.0]
        );
        weights.set(
            "bn1.running_mean",
            Tensor {
                shape: vec![2],
                data: vec![0.0; 2],
            },
        );
        let err = graph.clone().bind(&weights).unwrap_err().to_string();
        println!("{err}");
        assert!(err.contains("bn1.running_mean"), "{err}");
    }

    #[test]
    fn fixture_input_equals_rule_input_and_state_overrides() {
        let path = fixture_path("classify/lenet5.full.safetensors");
        let fixture = Fixture::open(&path).unwrap();
        let input = fixture.tensor("input").unwrap();
        assert_eq!(input.shape, vec![1, 1, 32, 32]);
        let want = crate::rule_input("input", &input.shape);
        let diff = input
            .data
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        println!("lenet5 input vs rule_input: max |diff| = {diff:e}");
        assert_eq!(input.data, want);
        assert_eq!(
            fixture.metadata().get("model").map(String::as_str),
            Some("lenet5")
        );

        let bn = Fixture::open(fixture_path("classify/resnet18.small.safetensors")).unwrap();
        let states = bn.state_keys();
        assert!(states.contains(&"bn1.running_var"), "{states:?}");
        let mut b = GraphBuilder::new();
        for key in &states {
            let shape = bn.file().shape(&format!("state.{key}")).unwrap().to_vec();
            b.param(key, &shape);
        }
        let graph = b.finish();
        let weights = bn.weights_for(&graph);
        let stored = bn.tensor("state.bn1.running_var").unwrap();
        let got = weights.tensor("bn1.running_var").unwrap();
        assert_eq!(got, stored);
        assert_ne!(
            Some(got.data),
            rule_tensor("bn1.running_var", &stored.shape),
            "statistics are calibrated"
        );
        println!(
            "resnet18.small: {} stored statistics override the rule",
            states.len()
        );
    }

    #[test]
    fn fixtures_dir_points_at_shared_fixtures() {
        let dir = fixtures_dir();
        println!("fixtures dir: {}", dir.display());
        assert!(dir.join("README.md").is_file(), "{}", dir.display());
    }
}
