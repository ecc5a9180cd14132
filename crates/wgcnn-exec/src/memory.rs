//! Activation memory planning: which GPU buffer ("slot") holds each activation tensor.
//!
//! Reshape/Flatten outputs share their input's storage (no launch, no copy). Every other
//! activation gets a slot when its node runs; a slot is returned to the free list after the last
//! node that reads it, so deep networks need a handful of buffers. A node's output never shares a
//! slot with any of its inputs (WebGPU refuses one buffer bound read-only and read-write in one
//! dispatch). Graph inputs and outputs get slots of their own that are never reused.

use wgcnn_graph::{Graph, Op, TensorKind};

/// Storage assignment for every tensor of a graph.
#[derive(Debug, Clone)]
pub struct MemoryPlan {
    /// Slot of each tensor (`None` for parameters and constants).
    pub slot_of: Vec<Option<usize>>,
    /// Size in bytes of each slot (the largest tensor it ever holds).
    pub slot_bytes: Vec<u64>,
}

/// Whether the node only relabels its input's shape (shares storage).
pub fn is_alias(op: &Op) -> bool {
    matches!(op, Op::Flatten { .. } | Op::Reshape { .. })
}

impl MemoryPlan {
    pub fn new(g: &Graph) -> MemoryPlan {
        let n = g.tensors.len();
        // storage root of each tensor: aliases point at their input's root.
        let mut root: Vec<usize> = (0..n).collect();
        for node in &g.nodes {
            if is_alias(&node.op) {
                root[node.output.0] = root[node.inputs[0].0];
            }
        }
        // last node index reading each root; pinned roots (inputs/outputs) never free.
        let mut last_use: Vec<Option<usize>> = vec![None; n];
        for (i, node) in g.nodes.iter().enumerate() {
            for t in &node.inputs {
                last_use[root[t.0]] = Some(i);
            }
        }
        let mut pinned = vec![false; n];
        for t in g.inputs.iter().chain(&g.outputs) {
            pinned[root[t.0]] = true;
        }
        let bytes = |t: usize| g.tensors[t].numel() as u64 * 4;

        let mut slot_of: Vec<Option<usize>> = vec![None; n];
        let mut slot_bytes: Vec<u64> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        for t in &g.inputs {
            slot_of[t.0] = Some(slot_bytes.len());
            slot_bytes.push(bytes(t.0));
        }
        for (i, node) in g.nodes.iter().enumerate() {
            let out = node.output.0;
            if is_alias(&node.op) {
                slot_of[out] = slot_of[root[out]];
            } else if pinned[out] {
                slot_of[out] = Some(slot_bytes.len());
                slot_bytes.push(bytes(out));
            } else {
                // Best fit among free slots: the smallest that holds it, else the largest (grown).
                let need = bytes(out);
                let pick = free
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| slot_bytes[**s] >= need)
                    .min_by_key(|(_, s)| slot_bytes[**s])
                    .or_else(|| free.iter().enumerate().max_by_key(|(_, s)| slot_bytes[**s]))
                    .map(|(pos, _)| pos);
                let slot = match pick {
                    Some(pos) => free.swap_remove(pos),
                    None => {
                        slot_bytes.push(0);
                        slot_bytes.len() - 1
                    }
                };
                slot_bytes[slot] = slot_bytes[slot].max(need);
                slot_of[out] = Some(slot);
            }
            // Release the roots whose last reader is this node (after the output was placed,
            // so the output never lands in a slot this node reads).
            let mut released: Vec<usize> = node.inputs.iter().map(|t| root[t.0]).collect();
            released.sort_unstable();
            released.dedup();
            for r in released {
                let activation = matches!(g.tensors[r].kind, TensorKind::Activation);
                if activation && last_use[r] == Some(i) && !pinned[r] {
                    if let Some(s) = slot_of[r] {
                        free.push(s);
                    }
                }
            }
            // An output nobody reads (and not a graph output) is dead at once.
            if !pinned[out] && !is_alias(&node.op) && last_use[out].is_none() {
                if let Some(s) = slot_of[out] {
                    free.push(s);
                }
            }
        }
        MemoryPlan {
            slot_of,
            slot_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgcnn_graph::{Activation, GraphBuilder};

    #[test]
    fn chain_of_activations_reuses_two_slots() {
        let mut b = GraphBuilder::new();
        let mut x = b.input("input", &[1, 4, 8, 8]);
        for i in 0..6 {
            x = b
                .node(&format!("act{i}"), Op::Act(Activation::Relu), &[x])
                .expect("node");
        }
        b.output(x);
        let g = b.finish();
        let m = MemoryPlan::new(&g);
        // input slot + output slot + two ping-pong slots.
        assert_eq!(m.slot_bytes.len(), 4, "{:?}", m.slot_bytes);
        for node in &g.nodes {
            assert_ne!(m.slot_of[node.output.0], m.slot_of[node.inputs[0].0]);
        }
    }

    #[test]
    fn flatten_shares_its_input_slot() {
        let mut b = GraphBuilder::new();
        let x = b.input("input", &[2, 3, 4, 4]);
        let y = b
            .node("relu", Op::Act(Activation::Relu), &[x])
            .expect("node");
        let f = b.node("flat", Op::Flatten { axis: 1 }, &[y]).expect("node");
        let z = b
            .node("sig", Op::Act(Activation::Sigmoid), &[f])
            .expect("node");
        b.output(z);
        let g = b.finish();
        let m = MemoryPlan::new(&g);
        assert_eq!(m.slot_of[f.0], m.slot_of[y.0]);
        assert_ne!(m.slot_of[z.0], m.slot_of[f.0]);
    }

    #[test]
    fn skip_connection_stays_alive_until_its_reader() {
        let mut b = GraphBuilder::new();
        let x = b.input("input", &[1, 2, 4, 4]);
        let a = b.node("a", Op::Act(Activation::Relu), &[x]).expect("node");
        let c = b.node("c", Op::Act(Activation::Tanh), &[a]).expect("node");
        let d = b
            .node("d", Op::Act(Activation::Sigmoid), &[c])
            .expect("node");
        let e = b.node("add", Op::Add, &[d, a]).expect("node");
        b.output(e);
        let g = b.finish();
        let m = MemoryPlan::new(&g);
        assert_ne!(
            m.slot_of[d.0], m.slot_of[a.0],
            "a is read by add, d must not overwrite it"
        );
        assert_ne!(m.slot_of[c.0], m.slot_of[a.0]);
    }
}
