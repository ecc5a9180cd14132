//! A per-detection head (RoIAlign of the GPU's detections, then 3x3 conv + ReLU, transposed
//! conv, bilinear x2 — the keypoint branch's layer kinds) and a box head (RoIAlign of the GPU's
//! proposals, flatten, two linear layers) run in blocks of rows dispatched indirectly on the
//! rows kept (`lower_rows.rs`): the rows in use must match the interpreter on the same boxes,
//! and the blocks past the last kept row must not run.

use std::error::Error;
use std::sync::Arc;

use wgcnn_exec::Plan;
use wgcnn_graph::interp::eval_op;
use wgcnn_graph::{
    Activation, Conv2d, ConvTranspose2d, GraphBuilder, INVALID_SCORE, Op, ResizeMode, Tensor,
};
use wgcnn_kernels::{Context, ContextOptions};

#[allow(dead_code)]
#[path = "../../wgcnn-graph/tests/support/detect_fixture.rs"]
mod detect_fixture;

use detect_fixture::{Model, roi_align_op};

type TestResult = Result<(), Box<dyn Error>>;

/// Deterministic values in [-scale, scale).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

#[test]
fn head_on_gpu_detections_runs_only_the_blocks_of_kept_rows_and_matches_interpreter() -> TestResult
{
    let m = Model::open("keypointrcnn_resnet50_fpn")?;
    let (logits, reg, props) = (
        m.t("roi_heads.class_logits")?,
        m.t("roi_heads.box_regression")?,
        m.proposals_input()?,
    );
    let (feats, scales) = m.roi_levels()?;
    let mut post = m.box_postprocess_op()?;
    // A high threshold leaves about half of the 100 rows kept: the blocks past them must not run.
    post.detections_per_img = 100;
    post.score_thresh = 0.999;

    let mut b = GraphBuilder::new();
    let ins = [
        b.input("class_logits", &logits.shape),
        b.input("box_regression", &reg.shape),
        b.input("proposals", &props.shape),
    ];
    let det = b.node(
        "roi_heads.postprocess_detections",
        Op::BoxPostprocess(post),
        &ins,
    )?;
    let mut roi_ins = vec![det];
    for (l, f) in feats.iter().enumerate() {
        roi_ins.push(b.input(&format!("features.{l}"), &f.shape));
    }
    let pooled = b.node(
        "pool",
        Op::RoiAlign(roi_align_op([14, 14], scales)),
        &roi_ins,
    )?;
    let c = feats[0].shape[1];
    let (k, j) = (16, 5);
    let (w1, b1) = (values(k * c * 9, 1, 0.05), values(k, 2, 0.5));
    let (w2, b2) = (values(k * j * 16, 3, 0.2), values(j, 4, 0.5));
    let cw1 = b.constant("conv.weight", &[k, c, 3, 3], w1.clone())?;
    let cb1 = b.constant("conv.bias", &[k], b1.clone())?;
    let conv = Conv2d::new(1, 1, 1, true);
    let x = b.node("conv", Op::Conv2d(conv.clone()), &[pooled, cw1, cb1])?;
    let x = b.node("relu", Op::Act(Activation::Relu), &[x])?;
    let tw = b.constant("up.weight", &[k, j, 4, 4], w2.clone())?;
    let tb = b.constant("up.bias", &[j], b2.clone())?;
    let up = ConvTranspose2d::new(2, 1, 1, true);
    let x = b.node("up", Op::ConvTranspose2d(up.clone()), &[x, tw, tb])?;
    let resize = Op::Resize {
        size: [56, 56],
        mode: ResizeMode::Bilinear {
            align_corners: false,
        },
    };
    let heat = b.node("heat", resize.clone(), &[x])?;
    b.output(det);
    b.output(heat);
    let ctx = Arc::new(Context::new(&ContextOptions::default())?);
    let plan = Plan::new(ctx, &b.finish())?;
    let mut inputs = vec![logits, reg, props];
    inputs.extend(feats.iter().cloned());
    let out = plan.run(&inputs)?;
    let (dets, got) = (&out[0], &out[1]);
    let rows = dets.shape[1];
    let kept = (0..rows)
        .filter(|&r| dets.data[r * 6 + 4] != INVALID_SCORE)
        .count();
    println!("{kept} of {rows} detection rows kept");
    assert!(
        kept > 0 && kept + 16 < rows,
        "the test needs a few kept rows, got {kept} of {rows}"
    );

    // The interpreter, on the GPU's detections.
    let mut roi_in = vec![dets];
    roi_in.extend(feats.iter());
    let p = eval_op(
        &Op::RoiAlign(roi_align_op([14, 14], m.roi_levels()?.1)),
        &roi_in,
    )?;
    let w1 = Tensor::new(&[k, c, 3, 3], w1)?;
    let b1 = Tensor::new(&[k], b1)?;
    let x = eval_op(&Op::Conv2d(conv), &[&p, &w1, &b1])?;
    let x = eval_op(&Op::Act(Activation::Relu), &[&x])?;
    let w2 = Tensor::new(&[k, j, 4, 4], w2)?;
    let b2 = Tensor::new(&[j], b2)?;
    let x = eval_op(&Op::ConvTranspose2d(up), &[&x, &w2, &b2])?;
    let want = eval_op(&resize, &[&x])?;
    let per_row = j * 56 * 56;
    let mut worst = 0.0f32;
    for i in 0..kept * per_row {
        worst = worst.max((got.data[i] - want.data[i]).abs());
    }
    println!("largest difference on the kept rows: {worst:.3e}");
    assert!(worst <= 1e-3, "kept rows differ by {worst}");
    // The last row (a zero box: the head's value for a zero input, the biases through the
    // layers) lies in a block past the count: not computed.
    let last = &got.data[(rows - 1) * per_row..];
    let last_want = &want.data[(rows - 1) * per_row..];
    assert!(
        last != last_want,
        "the last block ran although no detection is in it"
    );
    Ok(())
}

/// The RPN head's per-level outputs as the Proposals op takes them (torchvision's
/// `permute_and_flatten` + `cat`), on the CPU: `[N, sum HWA]`, `[N, sum HWA, 4]`, level sizes.
fn rpn_tensors(
    levels: &[(Tensor, Tensor)],
) -> Result<(Tensor, Tensor, Vec<usize>), Box<dyn Error>> {
    let (mut objs, mut dels, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for (ob, de) in levels {
        let [n, a, h, w] = <[usize; 4]>::try_from(ob.shape.as_slice())?;
        let o = eval_op(
            &Op::Permute {
                perm: vec![0, 2, 3, 1],
            },
            &[ob],
        )?;
        objs.push(Tensor::new(&[n, h * w * a], o.data.to_vec())?);
        let d = Tensor::new(&[n, a, 4, h, w], de.data.to_vec())?;
        let d = eval_op(
            &Op::Permute {
                perm: vec![0, 3, 4, 1, 2],
            },
            &[&d],
        )?;
        dels.push(Tensor::new(&[n, h * w * a, 4], d.data.to_vec())?);
        sizes.push(h * w * a);
    }
    let concat = |ts: &[Tensor]| eval_op(&Op::Concat { axis: 1 }, &ts.iter().collect::<Vec<_>>());
    Ok((concat(&objs)?, concat(&dels)?, sizes))
}

#[test]
fn box_head_on_gpu_proposals_runs_only_the_blocks_of_kept_rows_and_matches_interpreter()
-> TestResult {
    let m = Model::open("fasterrcnn_resnet50_fpn")?;
    let (obj, del, sizes) = rpn_tensors(&m.rpn_levels()?)?;
    let (feats, scales) = m.roi_levels()?;
    let anchors = m.t("rpn.anchors")?;
    let mut op = m.proposals_op(sizes)?;
    // A high objectness threshold leaves a few hundred of the 1000 rows kept: the box head's
    // blocks of 256 past them must not run.
    op.post_nms_top_n = 1000;
    op.score_thresh = 0.9;

    let mut b = GraphBuilder::new();
    let (o, d) = (
        b.input("objectness", &obj.shape),
        b.input("deltas", &del.shape),
    );
    let a = b.constant("anchors", &anchors.shape, anchors.data.to_vec())?;
    let props = b.node("rpn", Op::Proposals(op), &[o, d, a])?;
    let mut ins = vec![props];
    for (l, f) in feats.iter().enumerate() {
        ins.push(b.input(&format!("features.{l}"), &f.shape));
    }
    let pooled = b.node("pool", Op::RoiAlign(roi_align_op([7, 7], scales)), &ins)?;
    let flat = b.node("flat", Op::Flatten { axis: 1 }, &[pooled])?;
    let k = b.shape(flat)[1];
    let (h, c) = (32, 12);
    let (w1, b1) = (values(h * k, 5, 0.01), values(h, 6, 0.5));
    let (w2, b2) = (values(c * h, 7, 0.2), values(c, 8, 0.5));
    let fc1 = Op::Linear {
        bias: true,
        act: Activation::Relu,
    };
    let fc2 = Op::Linear {
        bias: true,
        act: Activation::Identity,
    };
    let (cw1, cb1) = (
        b.constant("fc1.weight", &[h, k], w1.clone())?,
        b.constant("fc1.bias", &[h], b1.clone())?,
    );
    let x = b.node("fc1", fc1.clone(), &[flat, cw1, cb1])?;
    let (cw2, cb2) = (
        b.constant("fc2.weight", &[c, h], w2.clone())?,
        b.constant("fc2.bias", &[c], b2.clone())?,
    );
    let y = b.node("fc2", fc2.clone(), &[x, cw2, cb2])?;
    b.output(props);
    b.output(y);
    let ctx = Arc::new(Context::new(&ContextOptions::default())?);
    let plan = Plan::new(ctx, &b.finish())?;
    let mut inputs = vec![obj, del];
    inputs.extend(feats.iter().cloned());
    let out = plan.run(&inputs)?;
    let (props, got) = (&out[0], &out[1]);
    let rows = props.shape[1];
    let kept = (0..rows)
        .filter(|&r| props.data[r * 5 + 4] != INVALID_SCORE)
        .count();
    println!("{kept} of {rows} proposal rows kept");
    assert!(
        kept > 0 && kept + 256 < rows,
        "the test needs a block past the kept rows, got {kept} of {rows}"
    );

    let mut roi_in = vec![props];
    roi_in.extend(feats.iter());
    let p = eval_op(
        &Op::RoiAlign(roi_align_op([7, 7], m.roi_levels()?.1)),
        &roi_in,
    )?;
    let p = Tensor::new(&[rows, k], p.data.to_vec())?;
    let x = eval_op(
        &fc1,
        &[&p, &Tensor::new(&[h, k], w1)?, &Tensor::new(&[h], b1)?],
    )?;
    let want = eval_op(
        &fc2,
        &[&x, &Tensor::new(&[c, h], w2)?, &Tensor::new(&[c], b2)?],
    )?;
    let mut worst = 0.0f32;
    for i in 0..kept * c {
        worst = worst.max((got.data[i] - want.data[i]).abs());
    }
    println!("largest difference on the kept rows: {worst:.3e}");
    assert!(worst <= 1e-3, "kept rows differ by {worst}");
    let last = &got.data[(rows - 1) * c..];
    assert!(
        last != &want.data[(rows - 1) * c..],
        "the last block ran although no proposal is in it"
    );
    Ok(())
}
