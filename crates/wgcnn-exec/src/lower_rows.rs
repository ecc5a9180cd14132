//! The per-detection heads (Mask R-CNN's mask branch, Keypoint R-CNN's keypoint branch) run
//! only on the detections kept, not on all `detections_per_img` rows; the box head only on
//! the proposals kept, not on all `post_nms_top_n` rows.
//!
//! The box post-processing writes a fixed-capacity `[N, D, 6]` tensor whose kept rows come
//! first (the rest have score -1), the RPN's proposals a `[N, P, 5]` one alike; the head pools
//! it (`RoiAlign`, `[N * D, C, h, w]`) and runs per row. Every layer of the head (a row-wise op
//! whose first input has the pooled rows) is lowered for blocks of rows ([`DETECTION_BLOCK`],
//! [`PROPOSAL_BLOCK`]) — its launches made once per block size, then
//! bound to each block's range of its input and output buffers — and each block's launches are
//! dispatched indirectly: `detect_rows_args` (one launch after the pooling) gives them their
//! grid when the block's first row is in use and an empty one otherwise. A block is a whole
//! smaller batch, so this holds for any kernel, whatever order its workgroups take the rows
//! in (the convolutions run pixel blocks fastest, so shrinking one grid would cut channels,
//! not rows). With 3 people found, the keypoint head runs 8 rows instead of 100.
//!
//! Rows past the count keep stale values: nothing reads them (`PasteMasks` and
//! `KeypointDecode` skip rows with score -1; a graph output of head rows, as the resized-front
//! Mask R-CNN's logits, is read only for kept detections; `BoxPostprocess`'s decode drops
//! proposals with score -1 whatever their logits).

use std::collections::HashMap;
use std::sync::Arc;

use wgcnn_graph::{Graph, Node, Op, TensorId};
use wgcnn_kernels::Launch;
use wgcnn_kernels::detect::rows::{self, RowsEntry};

use super::Lowering;
use crate::ExecError;

/// Rows per block of a per-detection head (rounded up to what the device's binding offset
/// alignment allows): small enough that a few detections run few rows, large enough that a
/// block's convolutions still fill their tiles.
const DETECTION_BLOCK: usize = 8;

/// Rows per block of the box head: its linear layers take the GEMM kernels, whose workgroups
/// own 256 rows, so smaller blocks would compute mostly dropped rows when every proposal is
/// kept (the common case at torchvision's default sizes) and re-read the weights per block.
const PROPOSAL_BLOCK: usize = 256;

/// What the lowering knows about the heads that run per detection.
#[derive(Debug, Default)]
pub(super) struct RowsState {
    analyzed: bool,
    /// Tensors whose rows follow a source's detections: the pooled tensor and every head layer
    /// after it, with their source.
    tagged: HashMap<TensorId, usize>,
    sources: Vec<Source>,
    /// Set while a node is lowered the ordinary way from inside [`Lowering::rows_node`].
    inner: bool,
    /// While a head layer is lowered for a block: its rows, its input and its output.
    block: Option<(usize, TensorId, TensorId)>,
}

/// One `RoiAlign` of a detection tensor written on the GPU by `BoxPostprocess`.
#[derive(Debug)]
struct Source {
    /// The detections `[N, D, width]` and the pooled rows (N * D).
    dets: TensorId,
    rows: usize,
    /// The rows per block it aims at.
    block: usize,
    /// The launch index right after the pooling's launches, where `detect_rows_args` goes.
    at: Option<usize>,
    dets_buffer: Option<Arc<wgpu::Buffer>>,
    label: String,
    /// The gated launches (their index in the plan) and their entries.
    gated: Vec<(usize, RowsEntry)>,
}

impl RowsState {
    fn analyze(&mut self, graph: &Graph) {
        self.analyzed = true;
        let producer: HashMap<TensorId, &Node> =
            graph.nodes.iter().map(|n| (n.output, n)).collect();
        for node in &graph.nodes {
            let rows_of = |t: TensorId| graph.shape(t).first().copied();
            match &node.op {
                Op::RoiAlign(_) => {
                    let d = node.inputs[0];
                    let block = match producer.get(&d).map(|p| &p.op) {
                        Some(Op::BoxPostprocess(_)) => Some(DETECTION_BLOCK),
                        Some(Op::Proposals(_)) => Some(PROPOSAL_BLOCK),
                        _ => None,
                    };
                    let ds = graph.shape(d);
                    if let Some(block) = block
                        && ds.len() == 3
                        && ds[2] > 4
                        && rows_of(node.output) == Some(ds[0] * ds[1])
                    {
                        self.tagged.insert(node.output, self.sources.len());
                        self.sources.push(Source {
                            dets: d,
                            rows: ds[0] * ds[1],
                            block,
                            at: None,
                            dets_buffer: None,
                            label: format!("{}[rows in use]", node.name),
                            gated: Vec::new(),
                        });
                    }
                }
                Op::Conv2d(c) if c.residual => {}
                // Row-wise ops: output row i depends on input row i only. Flatten and Reshape
                // keeping the rows are aliases (the pooled buffer read as `[rows, C * h * w]`).
                Op::Conv2d(_)
                | Op::ConvTranspose2d(_)
                | Op::Resize { .. }
                | Op::Act(_)
                | Op::BatchNorm { .. }
                | Op::Linear { .. }
                | Op::Flatten { axis: 1 } => {
                    if let Some(&s) = self.tagged.get(&node.inputs[0])
                        && rows_of(node.output) == Some(self.sources[s].rows)
                    {
                        self.tagged.insert(node.output, s);
                    }
                }
                Op::Reshape { shape } => {
                    if let Some(&s) = self.tagged.get(&node.inputs[0])
                        && shape.first() == Some(&self.sources[s].rows)
                        && rows_of(node.output) == Some(self.sources[s].rows)
                    {
                        self.tagged.insert(node.output, s);
                    }
                }
                _ => {}
            }
        }
    }

    /// The block override for `node`'s shapes while it is lowered for a block.
    pub(super) fn block(&self) -> Option<(usize, TensorId, TensorId)> {
        self.block
    }
}

/// `graph`'s shape of `t`, with the block's rows where `block` is set and `t` is its input or
/// output.
pub(super) fn shape(
    graph: &Graph,
    block: Option<(usize, TensorId, TensorId)>,
    t: TensorId,
) -> Vec<usize> {
    let mut s = graph.shape(t).to_vec();
    if let Some((rows, x, out)) = block
        && (t == x || t == out)
        && !s.is_empty()
    {
        s[0] = rows;
    }
    s
}

/// The blocks `(first row, rows)` of `rows` rows of `row_bytes` each (every tensor a block
/// binds): `target` rows rounded up so each block starts at an aligned byte offset; `None` when
/// one block would hold every row. All blocks have the same size where the alignment allows
/// (the last one then overlaps its neighbour, recomputing a few rows), so the layer is lowered
/// once, with one kernel variant and one weight layout; else the last block is shorter.
fn blocks(
    target: usize,
    align: u64,
    row_bytes: &[u64],
    rows: usize,
) -> Option<Vec<(usize, usize)>> {
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut unit = 1u64;
    for &b in row_bytes {
        let need = align / gcd(b, align).max(1);
        unit = unit / gcd(unit, need) * need;
    }
    let unit = unit as usize;
    let n = target.next_multiple_of(unit);
    if n >= rows {
        return None;
    }
    let mut out: Vec<(usize, usize)> = (0..rows / n).map(|i| (i * n, n)).collect();
    let covered = out.len() * n;
    if covered < rows {
        if (rows - n).is_multiple_of(unit) {
            out.push((rows - n, n));
        } else {
            out.push((covered, rows - covered));
        }
    }
    Some(out)
}

impl Lowering<'_> {
    /// Lowers `node` when it is a per-detection head layer (in blocks, gated on the rows in
    /// use) or the pooling that feeds one (and notes where the gate goes). Returns whether it
    /// did; otherwise the caller lowers `node` the ordinary way.
    pub(super) fn rows_node(&mut self, node: &Node) -> Result<bool, ExecError> {
        if self.rows.inner {
            return Ok(false);
        }
        if !self.rows.analyzed {
            self.rows.analyze(self.graph);
        }
        let Some(&s) = self.rows.tagged.get(&node.output) else {
            return Ok(false);
        };
        if matches!(node.op, Op::RoiAlign(_)) {
            self.rows.inner = true;
            let r = self.node(node);
            self.rows.inner = false;
            r?;
            let dets = (self.buffer_of)(self.rows.sources[s].dets)?;
            let src = &mut self.rows.sources[s];
            src.at = Some(self.launches.len());
            src.dets_buffer = Some(dets);
            return Ok(true);
        }
        if self.rows.sources[s].at.is_none() {
            return Ok(false);
        }
        let (rows, target) = (self.rows.sources[s].rows, self.rows.sources[s].block);
        let (xt, ot) = (node.inputs[0], node.output);
        let (x, out) = ((self.buffer_of)(xt)?, (self.buffer_of)(ot)?);
        if x == out || self.place_of[xt.0].is_some() || self.place_of[ot.0].is_some() {
            return Ok(false);
        }
        let row_bytes = |t: TensorId| self.graph.shape(t)[1..].iter().product::<usize>() as u64 * 4;
        let (bx, bo) = (row_bytes(xt), row_bytes(ot));
        let align = u64::from(self.ctx.limits.min_storage_buffer_offset_alignment);
        let Some(blocks) = blocks(target, align, &[bx, bo], rows) else {
            return Ok(false);
        };
        // One set of launches per block size (the last block may be shorter).
        let mut templates: Vec<(usize, Vec<Launch>)> = Vec::new();
        for &(_, n) in &blocks {
            if templates.iter().any(|t| t.0 == n) {
                continue;
            }
            let start = self.launches.len();
            self.rows.inner = true;
            self.rows.block = Some((n, xt, ot));
            let r = self.node(node);
            self.rows.inner = false;
            self.rows.block = None;
            r?;
            templates.push((n, self.launches.drain(start..).collect()));
        }
        for &(first, n) in &blocks {
            let Some((_, launches)) = templates.iter().find(|t| t.0 == n) else {
                continue;
            };
            let (fx, fo) = (first as u64, first as u64);
            let ranges = [
                (x.as_ref(), fx * bx, n as u64 * bx),
                (out.as_ref(), fo * bo, n as u64 * bo),
            ];
            for t in launches {
                let l = self.ctx.rebound(t, &ranges);
                let entry = RowsEntry {
                    first: first as u32,
                    workgroups: t.workgroups,
                };
                self.rows.sources[s]
                    .gated
                    .push((self.launches.len(), entry));
                self.launches.push(l);
            }
        }
        Ok(true)
    }

    /// Gives the gated launches their slots in each source's indirect arguments and puts the
    /// `detect_rows_args` launch that fills them right after the pooling.
    pub(super) fn finish_rows(&mut self) {
        let sources = std::mem::take(&mut self.rows.sources);
        let mut gates: Vec<(usize, Launch)> = Vec::new();
        for src in sources {
            let (Some(at), Some(dets)) = (src.at, src.dets_buffer) else {
                continue;
            };
            if src.gated.is_empty() {
                continue;
            }
            let args = rows::args_buffer(self.ctx, &src.label, src.gated.len());
            for (e, (i, _)) in src.gated.iter().enumerate() {
                self.launches[*i].indirect = Some((args.clone(), e as u64 * 12));
            }
            let entries: Vec<RowsEntry> = src.gated.iter().map(|g| g.1).collect();
            let ds = self.graph.shape(src.dets);
            let shape = [ds[0], ds[1], ds[2]];
            let l = rows::args_launch(self.ctx, &src.label, shape, &dets, &entries, &args);
            gates.push((at, l));
        }
        gates.sort_by_key(|g| std::cmp::Reverse(g.0));
        for (at, l) in gates {
            self.launches.insert(at, l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::blocks;

    #[test]
    fn blocks_cover_every_row_from_aligned_offsets_with_one_size_where_possible() {
        // Keypoint head rows (512 x 14 x 14 f32) are multiples of 256 bytes: 12 blocks of 8
        // and one of 8 overlapping the previous by 4 rows.
        let b = blocks(8, 256, &[512 * 196 * 4, 512 * 196 * 4], 100).expect("blocks");
        assert_eq!(b.len(), 13);
        assert!(b.iter().all(|&(_, n)| n == 8));
        assert_eq!(b[11], (88, 8));
        assert_eq!(b[12], (92, 8));
        // Mask logits (91 x 28 x 28 f32 = 1114.75 x 256 bytes) start every 4 rows.
        let b = blocks(8, 256, &[256 * 784 * 4, 91 * 784 * 4], 100).expect("blocks");
        assert!(b.iter().all(|&(f, _)| (f * 91 * 784 * 4) % 256 == 0));
        assert_eq!(b.last(), Some(&(92, 8)));
        // A row of 4 bytes needs 64-row blocks at 256-byte alignment; 1000 is no multiple of
        // 64, so the last block is shorter.
        let b = blocks(8, 256, &[4, 4], 1000).expect("blocks");
        assert_eq!(b.len(), 16);
        assert_eq!(b[15], (960, 40));
        // No blocks when one block would hold every row.
        assert_eq!(blocks(8, 256, &[4, 4], 64), None);
        assert_eq!(blocks(8, 256, &[1024, 1024], 8), None);
        // The box head: 1000 proposals, pooled 256 x 7 x 7, class logits of 91.
        let b = blocks(256, 256, &[256 * 49 * 4, 91 * 4], 1000).expect("blocks");
        assert_eq!(b, vec![(0, 256), (256, 256), (512, 256), (768, 232)]);
        assert_eq!(blocks(256, 256, &[256 * 49 * 4, 91 * 4], 150), None);
    }
}
