//! `ConvTranspose2d` nodes planned and run on the GPU: Mask R-CNN's mask upsampler shape (2x2
//! stride 2, ReLU, then a 1x1 conv to the class logits as in `MaskRCNNPredictor`) and a grouped,
//! dilated, asymmetrically cropped one give the interpreter's numbers.

use std::sync::{Arc, OnceLock};

use wgcnn_exec::Plan;
use wgcnn_graph::{Activation, Conv2d, ConvTranspose2d, GraphBuilder, Op, Tensor, interp};
use wgcnn_kernels::{Context, ContextOptions};

fn ctx() -> Arc<Context> {
    static CTX: OnceLock<Arc<Context>> = OnceLock::new();
    CTX.get_or_init(|| {
        Arc::new(Context::new(&ContextOptions::default()).expect("a GPU adapter (lavapipe in CI)"))
    })
    .clone()
}

/// Deterministic values in [-scale, scale).
fn values(seed: &mut u64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn check(
    input: [usize; 4],
    kernel: [usize; 2],
    t: ConvTranspose2d,
    out_channels: usize,
    with_predictor: bool,
) {
    let mut seed = 5;
    let mut b = GraphBuilder::new();
    let x = b.input("x", &input);
    let w_shape = [input[1], out_channels / t.groups, kernel[0], kernel[1]];
    let n: usize = w_shape.iter().product();
    let w = b
        .constant("up.weight", &w_shape, values(&mut seed, n, 0.2))
        .expect("weight");
    let mut ins = vec![x, w];
    if t.bias {
        let bias = values(&mut seed, out_channels, 0.5);
        ins.push(b.constant("up.bias", &[out_channels], bias).expect("bias"));
    }
    let mut y = b.node("up", Op::ConvTranspose2d(t), &ins).expect("node");
    if with_predictor {
        let k = 5;
        let pw = values(&mut seed, k * out_channels, 0.3);
        let pw = b
            .constant("logits.weight", &[k, out_channels, 1, 1], pw)
            .expect("weight");
        y = b
            .node("logits", Op::Conv2d(Conv2d::new(1, 0, 1, false)), &[y, pw])
            .expect("conv");
    }
    b.output(y);
    let g = b.finish();
    let numel = input.iter().product();
    let xt = Tensor::new(&input, values(&mut seed, numel, 1.0)).expect("x");
    let want = interp::run(&g, std::slice::from_ref(&xt)).expect("interpreter");
    let plan = Plan::new(ctx(), &g).expect("plan");
    let got = plan.run(&[xt]).expect("run");
    let err = got[0].rel_error(&want[0]);
    println!("{input:?} -> {:?}: rel error {err:e}", want[0].shape);
    assert_eq!(got[0].shape, want[0].shape);
    assert!(err < 1e-5, "rel error {err}");
}

#[test]
fn planned_mask_upsampler_and_predictor_match_the_interpreter() {
    let up = ConvTranspose2d {
        act: Activation::Relu,
        ..ConvTranspose2d::new(2, 0, 1, true)
    };
    check([3, 32, 14, 14], [2, 2], up, 32, true);
}

#[test]
fn planned_grouped_dilated_cropped_transpose_matches_the_interpreter() {
    let t = ConvTranspose2d {
        stride: [3, 2],
        padding: [2, 0, 1, 3],
        output_padding: [1, 1],
        dilation: [2, 1],
        groups: 2,
        bias: false,
        act: Activation::Identity,
    };
    check([2, 6, 5, 7], [3, 2], t, 10, false);
}
