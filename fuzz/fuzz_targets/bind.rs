//! Weight binding: a valid LeNet-5 checkpoint (the fixtures' rule weights) whose tensors the
//! input renames, reshapes, truncates, drops, duplicates or re-types, written as a safetensors
//! file by hand (so sizes may disagree with shapes) and bound through the real reader; the same
//! edits are also bound from memory, where the source hands `Graph::bind` data of the wrong
//! length. Both must be a typed error or a correct binding, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wgcnn_graph::{Graph, Shape, WeightSource};
use wgcnn_io::{RuleWeights, SafetensorsFile};
use wgcnn_models::BuildOptions;

struct Entry {
    key: String,
    shape: Shape,
    data: Vec<f32>,
    /// 0 F32, 1 F16, 2 BF16, 3 I64, 4 U8 (what the header says; the bytes stay f32's).
    dtype: u8,
}

fn base() -> &'static (Graph, Vec<(String, Shape, Vec<f32>)>) {
    static BASE: OnceLock<(Graph, Vec<(String, Shape, Vec<f32>)>)> = OnceLock::new();
    BASE.get_or_init(|| {
        let graph = wgcnn_models::build("lenet5", &BuildOptions::square(32, 10)).expect("lenet5");
        let rule = RuleWeights::for_graph(&graph);
        let tensors = rule
            .keys()
            .into_iter()
            .map(|k| {
                let t = rule.tensor(&k).expect("rule tensor");
                (k, t.shape, t.data)
            })
            .collect();
        (graph, tensors)
    })
}

fn edit(entries: &mut Vec<Entry>, op: &[u8]) {
    if entries.is_empty() {
        return;
    }
    let i = op[1] as usize % entries.len();
    let (a, b) = (op[2], op[3]);
    let e = &mut entries[i];
    match op[0] % 8 {
        0 => e.key.push(char::from(b'a' + a % 26)),
        1 => {
            let cut = a as usize % (e.key.len() + 1);
            e.key.truncate(cut);
        }
        2 if !e.shape.is_empty() => {
            let d = a as usize % e.shape.len();
            e.shape[d] = b as usize;
        }
        3 => e
            .shape
            .insert(a as usize % (e.shape.len() + 1), b as usize % 4),
        4 => {
            let keep = e.data.len() * b as usize / 256;
            e.data.truncate(keep);
        }
        5 => e.dtype = a % 5,
        6 => {
            entries.remove(i);
        }
        _ => {
            let copy = Entry {
                key: format!("{}{}", e.key, a),
                shape: e.shape.clone(),
                data: e.data.clone(),
                dtype: e.dtype,
            };
            entries.push(copy);
        }
    }
}

fn safetensors_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut data = Vec::new();
    for (n, e) in entries.iter().enumerate() {
        let dtype = ["F32", "F16", "BF16", "I64", "U8"][e.dtype as usize % 5];
        let start = data.len();
        data.extend(e.data.iter().flat_map(|v| v.to_le_bytes()));
        let key: String = e.key.chars().filter(|c| *c != '"' && *c != '\\').collect();
        header.push_str(&format!(
            "{}\"{key}\":{{\"dtype\":\"{dtype}\",\"shape\":{:?},\"data_offsets\":[{start},{}]}}",
            if n > 0 { "," } else { "" },
            e.shape,
            data.len()
        ));
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// The edited tensors as they are, wrong lengths included.
struct Raw<'a>(&'a [Entry]);

impl WeightSource for Raw<'_> {
    fn keys(&self) -> Vec<String> {
        self.0.iter().map(|e| e.key.clone()).collect()
    }
    fn shape(&self, key: &str) -> Option<Shape> {
        self.0
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.shape.clone())
    }
    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        self.0
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.data.clone())
            .ok_or_else(|| format!("no {key}"))
    }
}

fuzz_target!(|data: &[u8]| {
    let (graph, tensors) = base();
    let mut entries: Vec<Entry> = tensors
        .iter()
        .map(|(key, shape, data)| Entry {
            key: key.clone(),
            shape: shape.clone(),
            data: data.clone(),
            dtype: 0,
        })
        .collect();
    for op in data.chunks_exact(4).take(64) {
        edit(&mut entries, op);
    }
    let mut g = graph.clone();
    let _ = g.bind(&Raw(&entries));
    if let Ok(file) = SafetensorsFile::from_bytes("fuzz.safetensors", safetensors_bytes(&entries)) {
        let mut g = graph.clone();
        let _ = g.bind(&file);
    }
});
