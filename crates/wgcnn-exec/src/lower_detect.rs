//! Lowering of the detection ops: [`Op::Resize`], [`Op::Permute`], [`Op::Proposals`],
//! [`Op::RoiAlign`], [`Op::BoxPostprocess`], [`Op::ScaleBoxes`], [`Op::PasteMasks`] and
//! [`Op::KeypointDecode`].
//!
//! Proposals and box post-processing are several launches each (top-k, decode, NMS,
//! compaction; see `wgcnn_kernels::detect`) with private scratch buffers made here, at plan
//! time, and kept alive by the launches' bind groups. Every stage stays on the GPU: a detector
//! is one submission with no read-back between stages.

use wgcnn_graph::{Node, Op, ResizeMode};
use wgcnn_kernels::detect::{self, BoxPostprocessDesc, ProposalsDesc};
use wgcnn_kernels::resize::{ResizeKind, ResizeParams};
use wgcnn_kernels::roi_align::RoiAlignDesc;
use wgcnn_kernels::{keypoint_decode, paste_masks, permute, resize, roi_align, scale_boxes};

use super::{Lowering, four, kernel_err};
use crate::ExecError;

impl Lowering<'_> {
    /// Records the launches of one detection-op node writing `out`.
    pub(super) fn detect_node(&mut self, node: &Node, out: &wgpu::Buffer) -> Result<(), ExecError> {
        // With the rows of a block while a per-detection head layer is lowered in blocks.
        let (graph, block) = (self.graph, self.rows.block());
        let shape = move |i: usize| super::rows::shape(graph, block, node.inputs[i]);
        if self.graph.tensor(node.output).numel() == 0 {
            return Ok(());
        }
        match &node.op {
            Op::Resize { size, mode } => {
                let x = self.input_or_upload(node, 0)?;
                let kind = match *mode {
                    ResizeMode::Nearest => ResizeKind::Nearest,
                    ResizeMode::Bilinear { align_corners } => {
                        ResizeKind::Bilinear { align_corners }
                    }
                };
                let p = ResizeParams::new(kind, four(node, &shape(0))?, *size);
                self.launches
                    .push(resize::launch(self.ctx, &node.name, &p, &x, out));
            }
            Op::Permute { perm } => {
                let x = self.input_or_upload(node, 0)?;
                let p = permute::PermuteParams::new(&shape(0), perm)
                    .map_err(|e| kernel_err(node, e))?;
                self.launches
                    .push(permute::launch(self.ctx, &node.name, &p, &x, out));
            }
            Op::Proposals(p) => {
                let (objectness, deltas) = (
                    self.input_or_upload(node, 0)?,
                    self.input_or_upload(node, 1)?,
                );
                let anchors = self.input_or_upload(node, 2)?;
                let desc = ProposalsDesc {
                    images: shape(0)[0],
                    level_sizes: p.level_sizes.clone(),
                    pre_nms_top_n: p.pre_nms_top_n,
                    post_nms_top_n: p.post_nms_top_n,
                    nms_thresh: p.nms_thresh,
                    score_thresh: p.score_thresh,
                    min_size: p.min_size,
                    image_size: p.image_size,
                    bbox_clip: p.bbox_clip,
                };
                let launches = detect::proposals(
                    self.ctx,
                    &node.name,
                    &desc,
                    &objectness,
                    &deltas,
                    &anchors,
                    out,
                )
                .map_err(|e| kernel_err(node, e))?;
                self.launches.extend(launches);
            }
            Op::RoiAlign(r) => {
                let boxes = self.input_or_upload(node, 0)?;
                let mut features = Vec::with_capacity(node.inputs.len() - 1);
                let mut levels = Vec::with_capacity(node.inputs.len() - 1);
                for i in 1..node.inputs.len() {
                    let [_, _, h, w] = four(node, &shape(i))?;
                    levels.push([h, w]);
                    features.push(self.input_or_upload(node, i)?);
                }
                let [b, c] = [shape(0), shape(1)];
                let desc = RoiAlignDesc {
                    images: b[0],
                    rows: b[1],
                    box_stride: b[2],
                    channels: c[1],
                    levels,
                    scales: r.scales.clone(),
                    output: r.output,
                    sampling_ratio: r.sampling_ratio,
                    aligned: r.aligned,
                    canonical_scale: r.canonical_scale,
                    canonical_level: r.canonical_level,
                };
                let refs: Vec<&wgpu::Buffer> = features.iter().map(|f| f.as_ref()).collect();
                let launches = roi_align::launches(self.ctx, &node.name, &desc, &boxes, &refs, out)
                    .map_err(|e| kernel_err(node, e))?;
                self.launches.extend(launches);
            }
            Op::BoxPostprocess(p) => {
                let (logits, regression) = (
                    self.input_or_upload(node, 0)?,
                    self.input_or_upload(node, 1)?,
                );
                let proposals = self.input_or_upload(node, 2)?;
                let props = shape(2);
                let desc = BoxPostprocessDesc {
                    images: props[0],
                    rois: props[1],
                    classes: shape(0)[1],
                    image_size: p.image_size,
                    weights: p.weights,
                    bbox_clip: p.bbox_clip,
                    score_thresh: p.score_thresh,
                    nms_thresh: p.nms_thresh,
                    detections_per_img: p.detections_per_img,
                    min_size: p.min_size,
                };
                let launches = detect::box_postprocess(
                    self.ctx,
                    &node.name,
                    &desc,
                    &logits,
                    &regression,
                    &proposals,
                    out,
                )
                .map_err(|e| kernel_err(node, e))?;
                self.launches.extend(launches);
            }
            Op::ScaleBoxes { scale } => {
                let x = self.input_or_upload(node, 0)?;
                let s = shape(0);
                let p = scale_boxes::ScaleBoxesParams::new(s[0] * s[1], *scale);
                self.launches
                    .push(scale_boxes::launch(self.ctx, &node.name, &p, &x, out));
            }
            Op::PasteMasks { size, padding } => {
                let (logits, dets) = (
                    self.input_or_upload(node, 0)?,
                    self.input_or_upload(node, 1)?,
                );
                let [rows, classes, mask, _] = four(node, &shape(0))?;
                let p = paste_masks::PasteMasksParams::new(rows, classes, mask, *padding, *size)
                    .map_err(|e| kernel_err(node, e))?;
                self.launches.push(paste_masks::launch(
                    self.ctx, &node.name, &p, &logits, &dets, out,
                ));
            }
            Op::MaskBits { threshold } => {
                let x = self.input_or_upload(node, 0)?;
                let [n, d, h, w] = four(node, &shape(0))?;
                let p = paste_masks::MaskBitsParams::new(n * d, h * w, *threshold);
                self.launches
                    .push(paste_masks::bits_launch(self.ctx, &node.name, &p, &x, out));
            }
            Op::KeypointDecode { scale } => {
                let (heatmaps, dets) = (
                    self.input_or_upload(node, 0)?,
                    self.input_or_upload(node, 1)?,
                );
                let [rows, joints, h, w] = four(node, &shape(0))?;
                let p = keypoint_decode::KeypointDecodeParams::new(rows, joints, h, w, *scale)
                    .map_err(|e| kernel_err(node, e))?;
                self.launches.push(keypoint_decode::launch(
                    self.ctx, &node.name, &p, &heatmaps, &dets, out,
                ));
            }
            other => {
                return Err(ExecError::Unsupported {
                    node: node.name.clone(),
                    op: other.kind(),
                    message: "not a detection op (lowered elsewhere)".into(),
                });
            }
        }
        Ok(())
    }
}
