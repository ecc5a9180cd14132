//! The segmenter checks against torchvision's tensors (`fixtures/segment/*.safetensors`, a
//! 120x160 input), shared by the CPU interpreter (`crates/wgcnn-models/tests/segment`) and the
//! GPU (`tests/segment_gpu.rs`). The including binary supplies `crate::backend_run`.
//!
//! Each model is checked twice: the backbone from the input (`backbone.*` stage tensors), and the
//! head fed the reference backbone tensors (`classifier`, `output`, `output.argmax`), so a head
//! error is not hidden behind a backbone one. Tolerances are the fixtures' README's: stage tensors
//! and logits within `1e-3 * max|want| + 1e-5`; class indices equal except where the reference
//! logits' top-1 minus top-2 is below 1e-3.

use std::error::Error;

use wgcnn_graph::{Graph, Tensor, TensorId};
use wgcnn_io::{Fixture, fixtures_dir};
use wgcnn_models::segment::{SegmentBuildOptions, find_segmenter, with_argmax};

pub type TestResult = Result<(), Box<dyn Error>>;

/// The fixtures' input size.
pub const SIZE: [usize; 2] = [120, 160];
/// Below this top-1 minus top-2 logit margin the reference's class is a near-tie.
pub const MARGIN: f32 = 1e-3;

/// The fixture of `model`.
pub fn fixture(model: &str) -> Result<Fixture, Box<dyn Error>> {
    Ok(Fixture::open(
        fixtures_dir()
            .join("segment")
            .join(format!("{model}.safetensors")),
    )?)
}

/// The model at the fixture size with the fixture's weights bound and `output.argmax` appended.
pub fn bound_graph(model: &str, fx: &Fixture) -> Result<Graph, Box<dyn Error>> {
    let info = find_segmenter(model)?;
    let mut graph = info.graph(&SegmentBuildOptions::new(1, SIZE[0], SIZE[1]))?;
    with_argmax(&mut graph, SIZE)?;
    graph.bind(&fx.weights_for(&graph))?;
    Ok(graph)
}

fn id(graph: &Graph, name: &str) -> Result<TensorId, Box<dyn Error>> {
    graph
        .find(name)
        .ok_or_else(|| format!("graph has no tensor {name}").into())
}

/// Runs the part of `graph` from the tensors `inputs` (fed `feeds`) to `outputs` on the backend.
fn run(
    graph: &Graph,
    inputs: &[&str],
    feeds: Vec<Tensor>,
    outputs: &[&str],
) -> Result<Vec<Tensor>, Box<dyn Error>> {
    let ins = inputs
        .iter()
        .map(|n| id(graph, n))
        .collect::<Result<Vec<_>, _>>()?;
    let outs = outputs
        .iter()
        .map(|n| id(graph, n))
        .collect::<Result<Vec<_>, _>>()?;
    let stage = graph.cut(&ins, &outs)?;
    crate::backend_run(&stage, feeds)
}

/// `max |got - want|` against the fixture tolerance; prints both.
pub fn check_close(what: &str, got: &Tensor, want: &Tensor) -> TestResult {
    if got.shape != want.shape {
        return Err(format!("{what}: shape {:?}, want {:?}", got.shape, want.shape).into());
    }
    let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got
        .data
        .iter()
        .zip(&want.data)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let tol = 1e-3 * scale + 1e-5;
    println!("{what}: max abs error {err:.3e} (tolerance {tol:.3e}, max |want| {scale:.3})");
    // A NaN error fails too.
    if err.is_nan() || err > tol {
        return Err(format!("{what}: max abs error {err} > {tol}").into());
    }
    Ok(())
}

/// Class maps equal except where `logits` (the reference, `[1, C, H, W]`) has a top-1 minus
/// top-2 margin under [`MARGIN`]. Returns the number of near-ties that differ.
pub fn check_argmax(what: &str, got: &Tensor, want: &Tensor, logits: &Tensor) -> TestResult {
    if got.shape != want.shape {
        return Err(format!("{what}: shape {:?}, want {:?}", got.shape, want.shape).into());
    }
    let (c, plane) = (logits.shape[1], logits.shape[2] * logits.shape[3]);
    let (mut ties, mut tied_differ, mut differ) = (0, 0, Vec::new());
    for p in 0..plane {
        let mut v: Vec<f32> = (0..c).map(|k| logits.data[k * plane + p]).collect();
        v.sort_by(|a, b| b.total_cmp(a));
        let tied = v[0] - v[1] < MARGIN;
        ties += tied as usize;
        if got.data[p] != want.data[p] {
            if tied {
                tied_differ += 1;
            } else {
                differ.push(p);
            }
        }
    }
    println!(
        "{what}: {} of {plane} pixels differ away from ties; {ties} near-ties (margin < {MARGIN}), {tied_differ} of them differ",
        differ.len()
    );
    if let Some(&p) = differ.first() {
        return Err(format!(
            "{what}: {} pixels differ, first at (y {}, x {}): got {}, want {}",
            differ.len(),
            p / logits.shape[3],
            p % logits.shape[3],
            got.data[p],
            want.data[p]
        )
        .into());
    }
    Ok(())
}

/// The backbone from the input, then the head from the reference backbone tensors.
pub fn check_model(model: &str) -> TestResult {
    let fx = fixture(model)?;
    let graph = bound_graph(model, &fx)?;
    let stages: &[&str] = if model.starts_with("lraspp") {
        &["backbone.high", "backbone.low"]
    } else {
        &["backbone.out", "backbone.aux"]
    };
    let got = run(&graph, &["input"], vec![fx.tensor("input")?], stages)?;
    for (name, t) in stages.iter().zip(&got) {
        check_close(&format!("{model} {name}"), t, &fx.tensor(name)?)?;
    }
    let feeds = stages
        .iter()
        .map(|n| fx.tensor(n))
        .collect::<Result<Vec<_>, _>>()?;
    let outs = ["classifier", "output", "output.argmax"];
    let got = run(&graph, stages, feeds, &outs)?;
    let want_logits = fx.tensor("output")?;
    check_close(
        &format!("{model} classifier"),
        &got[0],
        &fx.tensor("classifier")?,
    )?;
    check_close(&format!("{model} output"), &got[1], &want_logits)?;
    check_argmax(
        &format!("{model} output.argmax"),
        &got[2],
        &fx.tensor("output.argmax")?,
        &want_logits,
    )
}

/// One `#[test]` per model running [`check_model`].
#[macro_export]
macro_rules! segmenter_tests {
    ($($test:ident => $model:literal,)*) => {
        $(
            #[test]
            fn $test() -> checks::TestResult {
                checks::check_model($model)
            }
        )*
    };
}
