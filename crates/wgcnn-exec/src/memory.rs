//! Activation memory planning: which GPU buffer ("slot") holds each activation tensor.
//!
//! Reshape/Flatten outputs share their input's storage (no launch, no copy). Every other
//! activation gets a slot when its node runs; a slot is returned to the free list after the last
//! node that reads it, so deep networks need a handful of buffers. A node's output never shares a
//! slot with any of its inputs (WebGPU refuses one buffer bound read-only and read-write in one
//! dispatch). Graph inputs and outputs get slots of their own that are never reused.
//!
//! Concatenations along channels are written in place ([`Placement`]): a convolution or pooling
//! whose output is only concatenated writes it straight into its channel slice of the
//! concatenation's buffer, so the `Concat` node needs no copy. Nested concatenations compose
//! (Inception-v3's `cat(a, cat(b, c))`), and with batch 1, where a channel prefix is one
//! contiguous range, a concatenation whose inputs begin a later one's (DenseNet's
//! `cat(x0, x1)`, `cat(x0, x1, x2)`, ...) is a prefix view of the later one's buffer, so each
//! feature map is written once per block. Tensors stored inside a concatenation may be read by
//! other nodes only as such a prefix (batch 1, channel offset 0). A producer that would read
//! the buffer it writes into keeps its own storage, and the concatenation copies it.

use std::collections::HashSet;

use wgcnn_graph::{Graph, Node, Op, TensorId, TensorKind};

/// Where a tensor written in place inside a concatenation's buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The concatenation output that owns the storage.
    pub root: TensorId,
    /// Channels of `root`.
    pub total: usize,
    /// First channel of the tensor inside `root`.
    pub offset: usize,
}

/// Storage assignment for every tensor of a graph.
#[derive(Debug, Clone)]
pub struct MemoryPlan {
    /// Slot of each tensor (`None` for parameters and constants).
    pub slot_of: Vec<Option<usize>>,
    /// Size in bytes of each slot (the largest tensor it ever holds).
    pub slot_bytes: Vec<u64>,
    /// For tensors stored inside a concatenation's buffer: where (`None`: at the start of
    /// storage of their own, or of their alias root).
    pub place_of: Vec<Option<Placement>>,
}

/// Whether the node only relabels its input's shape (shares storage).
pub fn is_alias(op: &Op) -> bool {
    matches!(op, Op::Flatten { .. } | Op::Reshape { .. })
}

/// Whether `node` is a concatenation whose buffer may hold its inputs in place: along the
/// channels of a 4-D activation.
fn can_host(g: &Graph, node: &Node) -> bool {
    matches!(node.op, Op::Concat { axis: 1 })
        && g.shape(node.output).len() == 4
        && matches!(g.tensor(node.output).kind, TensorKind::Activation)
}

/// Whether the kernel lowered for `node` can write its output as a channel slice of a wider
/// tensor (convolutions without groups, pooling; a concatenation passes the slice on).
fn writes_slices(g: &Graph, node: &Node) -> bool {
    let four = |t: TensorId| g.shape(t).len() == 4;
    match &node.op {
        // groups 1 over one input channel is depthwise-shaped: the depthwise kernel writes
        // whole tensors only.
        Op::Conv2d(c) => {
            c.groups == 1
                && four(node.output)
                && four(node.inputs[0])
                && g.shape(node.inputs[0])[1] > 1
        }
        Op::MaxPool2d(_) | Op::AvgPool2d(_) => four(node.output) && four(node.inputs[0]),
        Op::Concat { .. } => can_host(g, node),
        _ => false,
    }
}

/// Placements of the tensors written in place, as `(root, channel offset)`, skipping the
/// tensors in `no_place` and the concatenations (node indices) in `no_host`.
fn placements(
    g: &Graph,
    pinned: &[bool],
    no_place: &HashSet<usize>,
    no_host: &HashSet<usize>,
) -> Vec<Option<(usize, usize)>> {
    let n = g.tensors.len();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in g.nodes.iter().enumerate() {
        for t in &node.inputs {
            if readers[t.0].last() != Some(&i) {
                readers[t.0].push(i);
            }
        }
    }
    let host = |i: usize| !no_host.contains(&i) && can_host(g, &g.nodes[i]);
    let channels = |t: TensorId| g.shape(t)[1];
    let mut place: Vec<Option<(usize, usize)>> = vec![None; n];
    let resolve = |place: &[Option<(usize, usize)>], t: usize| place[t].unwrap_or((t, 0));
    // Readers come after their producers: in reverse order, every reader's own placement is
    // final when its inputs are decided.
    for (i, node) in g.nodes.iter().enumerate().rev() {
        let t = node.output.0;
        if is_alias(&node.op)
            || pinned[t]
            || no_place.contains(&t)
            || !matches!(g.tensors[t].kind, TensorKind::Activation)
            || !writes_slices(g, node)
        {
            continue;
        }
        let batch_one = g.shape(node.output)[0] == 1;
        // Where every concatenation reading t wants it; other readers need a batch-1 prefix.
        let mut target: Option<(usize, usize)> = None;
        let mut plain = false;
        let mut agree = true;
        for &r in &readers[t] {
            let reader = &g.nodes[r];
            if !host(r) {
                plain = true;
                continue;
            }
            let mut at = reader.inputs.iter().enumerate().filter(|(_, x)| x.0 == t);
            let (Some((pos, _)), None) = (at.next(), at.next()) else {
                agree = false;
                break;
            };
            let before: usize = reader.inputs[..pos].iter().map(|&x| channels(x)).sum();
            let (root, offset) = resolve(&place, reader.output.0);
            let want = (root, offset + before);
            if target.is_some_and(|have| have != want) {
                agree = false;
                break;
            }
            target = Some(want);
        }
        let prefix_ok = |(_, offset): (usize, usize)| !plain || (batch_one && offset == 0);
        if let Some(want) = target.filter(|&w| agree && prefix_ok(w)) {
            place[t] = Some(want);
            continue;
        }
        // A concatenation whose inputs begin a later one's is a prefix of it (batch 1).
        if host(i) && batch_one && !pinned[t] {
            let later = g.nodes[i + 1..].iter().enumerate().find(|(j, later)| {
                host(i + 1 + j)
                    && later.inputs.len() > node.inputs.len()
                    && later.inputs.starts_with(&node.inputs)
            });
            if let Some((_, later)) = later {
                let (root, offset) = resolve(&place, later.output.0);
                if offset == 0 {
                    place[t] = Some((root, 0));
                }
            }
        }
    }
    place
}

/// Storage root of every tensor: its placement's root, through aliases.
fn storage_roots(g: &Graph, place: &[Option<(usize, usize)>]) -> Vec<usize> {
    let mut store: Vec<usize> = (0..g.tensors.len())
        .map(|t| place[t].map_or(t, |(root, _)| root))
        .collect();
    for node in &g.nodes {
        if is_alias(&node.op) {
            store[node.output.0] = store[node.inputs[0].0];
        }
    }
    store
}

/// The first read/write aliasing the placements would cause, as bans to add: `Ok(())` when
/// there is none, else `Err((tensor to keep out of place, concatenation node not to host))`.
/// Every ban removes the hazard it was found at, so banning until none is left ends.
fn find_hazard(
    g: &Graph,
    place: &[Option<(usize, usize)>],
    store: &[usize],
) -> Result<(), (Option<usize>, Option<usize>)> {
    let channels = |t: TensorId| g.shape(t)[1];
    for (i, node) in g.nodes.iter().enumerate() {
        let t = node.output.0;
        if is_alias(&node.op) {
            continue;
        }
        let computed = |u: &TensorId| {
            matches!(
                g.tensor(*u).kind,
                TensorKind::Activation | TensorKind::Input
            )
        };
        if can_host(g, node) {
            // The copies of the inputs not already in place read them while writing here.
            let (root, offset) = place[t].unwrap_or((t, 0));
            let mut before = 0;
            for u in &node.inputs {
                let in_place = place[u.0] == Some((root, offset + before));
                before += channels(*u);
                if computed(u) && !in_place && store[u.0] == root {
                    // Neither host its inputs nor sit inside another concatenation.
                    return Err((Some(t), Some(i)));
                }
            }
        } else if place[t].is_some() && node.inputs.iter().any(|u| store[u.0] == store[t]) {
            return Err((Some(t), None));
        }
    }
    Ok(())
}

impl MemoryPlan {
    /// The plan for f32 storage (4 bytes an element).
    pub fn new(g: &Graph) -> MemoryPlan {
        Self::with_element_bytes(g, 4)
    }

    /// The plan for elements of `element_bytes` bytes (2 for f16 storage): slot sizes scale,
    /// placements (channel offsets, counted in elements) do not.
    pub fn with_element_bytes(g: &Graph, element_bytes: u64) -> MemoryPlan {
        let n = g.tensors.len();
        let mut pinned = vec![false; n];
        {
            // Pin alias roots too: a graph output seen through Flatten keeps its storage.
            let mut alias_root: Vec<usize> = (0..n).collect();
            for node in &g.nodes {
                if is_alias(&node.op) {
                    alias_root[node.output.0] = alias_root[node.inputs[0].0];
                }
            }
            for t in g.inputs.iter().chain(&g.outputs) {
                pinned[t.0] = true;
                pinned[alias_root[t.0]] = true;
            }
        }
        let (mut no_place, mut no_host) = (HashSet::new(), HashSet::new());
        let (place, store) = loop {
            let place = placements(g, &pinned, &no_place, &no_host);
            let store = storage_roots(g, &place);
            match find_hazard(g, &place, &store) {
                Ok(()) => break (place, store),
                Err((t, node)) => {
                    no_place.extend(t);
                    no_host.extend(node);
                }
            }
        };
        // Last node reading each storage root; pinned roots (inputs/outputs) never free.
        let mut last_use: Vec<Option<usize>> = vec![None; n];
        for (i, node) in g.nodes.iter().enumerate() {
            for t in &node.inputs {
                last_use[store[t.0]] = Some(i);
            }
        }
        for t in 0..n {
            if pinned[t] {
                pinned[store[t]] = true;
            }
        }
        let bytes = |t: usize| g.tensors[t].numel() as u64 * element_bytes;

        let mut root_slot: Vec<Option<usize>> = vec![None; n];
        let mut slot_bytes: Vec<u64> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        for t in &g.inputs {
            root_slot[t.0] = Some(slot_bytes.len());
            slot_bytes.push(bytes(t.0));
        }
        for (i, node) in g.nodes.iter().enumerate() {
            let out = node.output.0;
            let root = store[out];
            if !is_alias(&node.op) && root_slot[root].is_none() {
                // The first tensor stored in `root` (itself, or its first in-place input).
                let need = bytes(root);
                let slot = if pinned[root] {
                    slot_bytes.push(need);
                    slot_bytes.len() - 1
                } else {
                    // Best fit among free slots: the smallest that holds it, else the largest
                    // (grown).
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
                    slot
                };
                root_slot[root] = Some(slot);
            }
            // Release the roots whose last reader is this node (after the output was placed,
            // so the output never lands in a slot this node reads).
            let mut released: Vec<usize> = node.inputs.iter().map(|t| store[t.0]).collect();
            released.sort_unstable();
            released.dedup();
            for r in released {
                let activation = matches!(g.tensors[r].kind, TensorKind::Activation);
                if activation && last_use[r] == Some(i) && !pinned[r] {
                    if let Some(s) = root_slot[r] {
                        free.push(s);
                    }
                }
            }
            // An output nobody reads (and not a graph output) is dead at once; a root holding
            // in-place inputs is only complete at its own node, which reads them.
            if root == out && !pinned[out] && !is_alias(&node.op) && last_use[out].is_none() {
                if let Some(s) = root_slot[out] {
                    free.push(s);
                }
            }
        }
        let slot_of = (0..n).map(|t| root_slot[store[t]]).collect();
        let place_of = (0..n)
            .map(|t| {
                place[t].map(|(root, offset)| Placement {
                    root: TensorId(root),
                    total: g.tensors[root].shape[1],
                    offset,
                })
            })
            .collect();
        MemoryPlan {
            slot_of,
            slot_bytes,
            place_of,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgcnn_graph::{Activation, Conv2d, GraphBuilder, Pool2d};

    /// Replays the plan's writes at channel granularity and checks that every read finds the
    /// value its producer wrote (nothing overwrote it in between), and that no dispatch writes
    /// the buffer it reads.
    fn assert_reads_see_their_values(g: &Graph, m: &MemoryPlan) {
        let mut alias_root: Vec<usize> = (0..g.tensors.len()).collect();
        for node in &g.nodes {
            if is_alias(&node.op) {
                alias_root[node.output.0] = alias_root[node.inputs[0].0];
            }
        }
        let span = |t: usize| match m.place_of[t] {
            Some(p) => (p.root.0, p.offset, p.offset + g.tensors[t].shape[1]),
            None => (t, 0, usize::MAX),
        };
        let mut valid: Vec<usize> = g.inputs.iter().map(|t| t.0).collect();
        for node in &g.nodes {
            for u in &node.inputs {
                if matches!(
                    g.tensor(*u).kind,
                    TensorKind::Activation | TensorKind::Input
                ) {
                    let a = alias_root[u.0];
                    assert!(
                        valid.contains(&a),
                        "{}: input {} was overwritten",
                        node.name,
                        g.tensor(*u).name
                    );
                }
            }
            if is_alias(&node.op) {
                continue;
            }
            let t = node.output.0;
            let slot = m.slot_of[t];
            let (root, lo, hi) = span(t);
            let concat = matches!(node.op, Op::Concat { .. });
            for u in &node.inputs {
                let (u_root, u_lo, u_hi) = span(alias_root[u.0]);
                let copied_in = concat && u_root == root && lo <= u_lo && u_hi <= hi;
                if matches!(
                    g.tensor(*u).kind,
                    TensorKind::Activation | TensorKind::Input
                ) {
                    assert!(
                        copied_in || m.slot_of[u.0] != slot,
                        "{}: reads {} from the buffer it writes",
                        node.name,
                        g.tensor(*u).name
                    );
                }
            }
            valid.retain(|&v| {
                let (v_root, v_lo, v_hi) = span(v);
                m.slot_of[v] != slot
                    || (v_root == root && (v_hi <= lo || hi <= v_lo))
                    || (concat && v_root == root && lo <= v_lo && v_hi <= hi)
            });
            valid.push(t);
        }
    }

    fn conv(b: &mut GraphBuilder, name: &str, x: TensorId, k: usize, kernel: usize) -> TensorId {
        let c = b.shape(x)[1];
        let w = b.param(&format!("{name}.weight"), &[k, c, kernel, kernel]);
        let op = Op::Conv2d(Conv2d::new(1, kernel / 2, 1, false));
        b.node(name, op, &[x, w]).expect("conv")
    }

    fn relu(b: &mut GraphBuilder, name: &str, x: TensorId) -> TensorId {
        b.node(name, Op::Act(Activation::Relu), &[x]).expect("relu")
    }

    fn cat(b: &mut GraphBuilder, name: &str, xs: &[TensorId]) -> TensorId {
        b.node(name, Op::Concat { axis: 1 }, xs).expect("concat")
    }

    fn placed(m: &MemoryPlan, t: TensorId) -> Option<(TensorId, usize, usize)> {
        m.place_of[t.0].map(|p| (p.root, p.total, p.offset))
    }

    #[test]
    fn inception_branches_write_their_concat_in_place_batch_two() {
        let mut b = GraphBuilder::new();
        let x = b.input("input", &[2, 4, 8, 8]);
        let r = relu(&mut b, "stem", x);
        let a = conv(&mut b, "branch1", r, 3, 1);
        let c3 = conv(&mut b, "branch2", r, 5, 3);
        let p = b
            .node("pool", Op::MaxPool2d(Pool2d::new(3, 1, 1, false)), &[r])
            .expect("pool");
        let y = cat(&mut b, "cat", &[a, c3, p]);
        let z = relu(&mut b, "head", y);
        b.output(z);
        let g = b.finish();
        let m = MemoryPlan::new(&g);
        assert_eq!(placed(&m, a), Some((y, 12, 0)));
        assert_eq!(placed(&m, c3), Some((y, 12, 3)));
        assert_eq!(placed(&m, p), Some((y, 12, 8)));
        assert_eq!(placed(&m, y), None, "the concat owns its buffer");
        for t in [a, c3, p] {
            assert_eq!(m.slot_of[t.0], m.slot_of[y.0]);
        }
        assert_ne!(m.slot_of[r.0], m.slot_of[y.0]);
        assert_reads_see_their_values(&g, &m);
    }

    #[test]
    fn nested_concat_composes_channel_offsets() {
        // Inception-v3's InceptionE: cat(b1, cat(b2a, b2b), pool branch).
        let mut b = GraphBuilder::new();
        let x = b.input("input", &[2, 4, 6, 6]);
        let r = relu(&mut b, "stem", x);
        let b1 = conv(&mut b, "b1", r, 2, 1);
        let b2a = conv(&mut b, "b2a", r, 3, 3);
        let b2b = conv(&mut b, "b2b", r, 5, 1);
        let inner = cat(&mut b, "inner", &[b2a, b2b]);
        let b3 = conv(&mut b, "b3", r, 1, 1);
        let outer = cat(&mut b, "outer", &[b1, inner, b3]);
        let z = relu(&mut b, "head", outer);
        b.output(z);
        let g = b.finish();
        let m = MemoryPlan::new(&g);
        assert_eq!(placed(&m, b1), Some((outer, 11, 0)));
        assert_eq!(placed(&m, inner), Some((outer, 11, 2)));
        assert_eq!(placed(&m, b2a), Some((outer, 11, 2)));
        assert_eq!(placed(&m, b2b), Some((outer, 11, 5)));
        assert_eq!(placed(&m, b3), Some((outer, 11, 10)));
        assert_reads_see_their_values(&g, &m);
    }

    /// A DenseNet block of three layers over `x0` (a pooled map), batch `n`; returns the graph,
    /// the features `[x0, x1, x2, x3]` and the concatenations `[c1, c2, c3]`.
    fn dense_block(n: usize) -> (Graph, Vec<TensorId>, Vec<TensorId>) {
        let mut b = GraphBuilder::new();
        let x = b.input("input", &[n, 4, 8, 8]);
        let stem = relu(&mut b, "stem", x);
        let x0 = b
            .node("pool0", Op::MaxPool2d(Pool2d::new(2, 2, 0, false)), &[stem])
            .expect("pool");
        let mut features = vec![x0];
        let mut cats = Vec::new();
        for l in 0..3 {
            let input = if l == 0 {
                x0
            } else {
                let c = cat(&mut b, &format!("layer{l}.cat"), &features);
                cats.push(c);
                c
            };
            let y = relu(&mut b, &format!("layer{l}.norm1"), input);
            let y = conv(&mut b, &format!("layer{l}.conv1"), y, 8, 1);
            let y = conv(&mut b, &format!("layer{l}.conv2"), y, 2, 3);
            features.push(y);
        }
        let last = cat(&mut b, "block.cat", &features);
        cats.push(last);
        let z = relu(&mut b, "transition", last);
        b.output(z);
        (b.finish(), features, cats)
    }

    #[test]
    fn densenet_block_writes_each_feature_once_batch_one() {
        let (g, f, c) = dense_block(1);
        let m = MemoryPlan::new(&g);
        let root = c[2];
        // x0 at 0 (4 channels), then 2 channels per layer; every concat a prefix view.
        for (i, t) in f.iter().enumerate() {
            let offset = if i == 0 { 0 } else { 4 + 2 * (i - 1) };
            assert_eq!(placed(&m, *t), Some((root, 10, offset)), "feature {i}");
        }
        assert_eq!(placed(&m, c[0]), Some((root, 10, 0)));
        assert_eq!(placed(&m, c[1]), Some((root, 10, 0)));
        assert_reads_see_their_values(&g, &m);
    }

    #[test]
    fn densenet_block_batch_two_places_only_the_last_concat() {
        // With batch 2 a channel prefix is not contiguous: the inner concats keep their own
        // buffers, and only the newest feature goes straight into the last one.
        let (g, f, c) = dense_block(2);
        let m = MemoryPlan::new(&g);
        assert_eq!(placed(&m, f[3]), Some((c[2], 10, 8)));
        for t in [f[0], f[1], f[2], c[0], c[1]] {
            assert_eq!(placed(&m, t), None, "{}", g.tensor(t).name);
        }
        assert_reads_see_their_values(&g, &m);
    }

    #[test]
    fn producer_reading_its_concat_buffer_falls_back_to_a_copy() {
        // x1 = conv(x0) and cat(x0, x1), batch 1: x0 may sit at the start of the concat, but
        // then x1's conv would read and write that buffer in one dispatch.
        let mut b = GraphBuilder::new();
        let x = b.input("input", &[1, 4, 8, 8]);
        let stem = relu(&mut b, "stem", x);
        let x0 = b
            .node("pool", Op::MaxPool2d(Pool2d::new(3, 1, 1, false)), &[stem])
            .expect("pool");
        let x1 = conv(&mut b, "conv", x0, 3, 3);
        let y = cat(&mut b, "cat", &[x0, x1]);
        let z = relu(&mut b, "head", y);
        b.output(z);
        let g = b.finish();
        let m = MemoryPlan::new(&g);
        assert_eq!(placed(&m, x0), Some((y, 7, 0)));
        assert_eq!(placed(&m, x1), None, "conv reads the concat's buffer");
        assert_ne!(m.slot_of[x1.0], m.slot_of[y.0]);
        assert_reads_see_their_values(&g, &m);
    }

    #[test]
    fn tensor_concatenated_twice_or_read_elsewhere_keeps_its_buffer() {
        // Batch 2: `a` is also read by a ReLU (not a contiguous prefix), `d` twice by one
        // concat, `e` is a graph output; none is written in place.
        let mut b = GraphBuilder::new();
        let x = b.input("input", &[2, 4, 5, 5]);
        let stem = relu(&mut b, "stem", x);
        let a = conv(&mut b, "a", stem, 3, 1);
        let d = conv(&mut b, "d", stem, 2, 1);
        let e = conv(&mut b, "e", stem, 2, 1);
        let side = relu(&mut b, "side", a);
        let y = cat(&mut b, "cat", &[a, d, d, e]);
        let z = relu(&mut b, "head", y);
        b.output(z);
        b.output(side);
        b.output(e);
        let g = b.finish();
        let m = MemoryPlan::new(&g);
        for t in [a, d, e] {
            assert_eq!(placed(&m, t), None, "{}", g.tensor(t).name);
        }
        assert_reads_see_their_values(&g, &m);
    }

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
