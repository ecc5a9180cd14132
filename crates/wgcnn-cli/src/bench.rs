//! `wgcnn bench`: how fast a network runs on the chosen adapter, with random (rule) weights.
//!
//! Measures, in order: building the graph and its weights, planning it (`Engine::plan`:
//! pipelines, buffers, uploads, and the driver compiling every pipeline: lavapipe compiles with
//! LLVM at a pipeline's first dispatch, which the plan triggers) cold, i.e. the first plan in this
//! process, reading the on-disk pipeline cache and Mesa's shader cache when warm from earlier
//! runs; the first run; planning again in-process (warm: every pipeline compiled already);
//! `--warmup` untimed runs, then `--iterations` timed runs, each from writing the input to
//! mapping the outputs. `--profile` adds per-launch GPU times
//! (`Plan::profile`), aggregated per layer and per kernel category.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use wgcnn::wgcnn_exec::profile::{self, LayerTiming, Profile, Summary};
use wgcnn::wgcnn_io::{self, RuleWeights, onnx::OnnxOptions};
use wgcnn::wgcnn_models::{self, BuildOptions};
use wgcnn::{Engine, Graph, Tensor};

use crate::progress::{self, Progress};

#[derive(Args)]
pub struct BenchArgs {
    /// A registered model (`wgcnn models`) or an ONNX file (its own weights are used).
    #[arg(long, short, default_value = "resnet50", value_name = "NAME|FILE.onnx")]
    model: String,
    /// Input size `HxW` or `N` for a square (default: the model's resolution). Registered
    /// models only: an ONNX file fixes its input size.
    #[arg(long, value_name = "HxW", value_parser = parse_size)]
    size: Option<[usize; 2]>,
    /// Images per run.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Timed runs.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    iterations: u32,
    /// Untimed runs after the first one, before timing.
    #[arg(long, default_value_t = 2, value_name = "N")]
    warmup: u32,
    /// Print one JSON object on stdout instead of text (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Time every kernel launch on the GPU (timestamp queries) and list the slowest layers and
    /// the share of time per kernel category.
    #[arg(long)]
    profile: bool,
    /// Profiled runs; each launch's median over them is reported.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    profile_runs: u32,
    /// Detectors: torchvision's `min_size` (default: the model's own).
    #[arg(long, value_name = "N")]
    min_size: Option<usize>,
    /// Detectors: torchvision's `max_size` (default: the model's own).
    #[arg(long, value_name = "N")]
    max_size: Option<usize>,
    /// Layers listed in the profile's text output (JSON lists all).
    #[arg(long, default_value_t = 15, value_name = "N")]
    top: usize,
    /// How weights and activations are stored on the GPU: f32, or f16 (computed in f32; needs
    /// the adapter's shader-f16, see `wgcnn info`; classifiers and segmenters only: detectors
    /// are refused).
    #[arg(long, default_value = "f32", value_name = "f32|f16")]
    precision: wgcnn::Precision,
}

/// Plans `graph` at `precision` with weight buffers of its own.
fn plan_at(engine: &Engine, graph: &Graph, precision: wgcnn::Precision) -> Result<wgcnn::Plan> {
    Ok(wgcnn::Plan::with_precision(
        engine.context().clone(),
        graph,
        &wgcnn::wgcnn_exec::WeightCache::default(),
        precision,
    )?)
}

/// Parses `224`, `224x224` or `240X320` into `[height, width]`.
fn parse_size(s: &str) -> Result<[usize; 2], String> {
    let parse = |p: &str| match p.trim().parse::<usize>() {
        Ok(0) => Err(format!("{s:?}: sizes must be positive")),
        Ok(v) => Ok(v),
        Err(e) => Err(format!("{s:?}: {e} (expected HxW or N, e.g. 224x224)")),
    };
    match s.split_once(['x', 'X']) {
        Some((h, w)) => Ok([parse(h)?, parse(w)?]),
        None => {
            let n = parse(s)?;
            Ok([n, n])
        }
    }
}

/// A network ready to plan: its bound graph and where it came from.
struct Model {
    name: String,
    /// `registry` or `onnx`.
    source: &'static str,
    /// `rule` (the fixtures' deterministic random weights) or the ONNX file's own.
    weights: &'static str,
    graph: Graph,
}

fn is_onnx(model: &str) -> bool {
    model.to_ascii_lowercase().ends_with(".onnx") || Path::new(model).is_file()
}

/// Builds the registered model (rule weights) or imports the ONNX file.
fn load(args: &BenchArgs) -> Result<Model> {
    let batch = args.batch as usize;
    if is_onnx(&args.model) {
        if args.size.is_some() {
            bail!(
                "--size applies to registered models; the ONNX file {} fixes its own input size",
                args.model
            );
        }
        let model = wgcnn_io::onnx::load_onnx(&args.model, &OnnxOptions { batch })
            .with_context(|| format!("loading {}", args.model))?;
        let name = Path::new(&args.model)
            .file_stem()
            .map_or(args.model.clone(), |s| s.to_string_lossy().into_owned());
        return Ok(Model {
            name,
            source: "onnx",
            weights: "the file's own",
            graph: model.graph,
        });
    }
    if let Ok(det) = wgcnn_models::detect::find_detector(&args.model) {
        let [height, width] = args.size.unwrap_or([480, 640]);
        let sizes = (
            args.min_size.unwrap_or(det.config.min_size),
            args.max_size.unwrap_or(det.config.max_size),
        );
        let config = det.config.with_sizes(sizes.0, sizes.1);
        let mut graph = det.graph_with(
            &wgcnn_models::detect::DetectBuildOptions {
                batch,
                height,
                width,
            },
            &config,
        )?;
        graph
            .bind(&RuleWeights::for_graph(&graph))
            .with_context(|| format!("binding rule weights to {}", det.name))?;
        return Ok(Model {
            name: det.name.to_string(),
            source: "registry",
            weights: "rule",
            graph,
        });
    }
    if let Ok(seg) = wgcnn_models::segment::find_segmenter(&args.model) {
        // 520x693: where torchvision's preset puts a 3:4 photo.
        let [height, width] = args.size.unwrap_or([520, 693]);
        let options = wgcnn_models::segment::SegmentBuildOptions::new(batch, height, width);
        let mut graph = seg.graph(&options)?;
        graph
            .bind(&RuleWeights::for_graph(&graph))
            .with_context(|| format!("binding rule weights to {}", seg.name))?;
        return Ok(Model {
            name: seg.name.to_string(),
            source: "registry",
            weights: "rule",
            graph,
        });
    }
    let info = wgcnn_models::find(&args.model)?;
    let [height, width] = args.size.unwrap_or([info.default_resolution; 2]);
    let mut graph = info.graph(&BuildOptions {
        batch,
        height,
        width,
        classes: info.classes,
    })?;
    graph
        .bind(&RuleWeights::for_graph(&graph))
        .with_context(|| format!("binding rule weights to {}", info.name))?;
    Ok(Model {
        name: info.name.to_string(),
        source: "registry",
        weights: "rule",
        graph,
    })
}

/// A phase of the benchmark on stderr (none with `-q`).
fn phase(what: &str) {
    progress::note(&format!("bench: {what}"));
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

pub fn run(args: &BenchArgs, adapter: Option<&str>) -> Result<()> {
    phase(&format!("building {} ...", args.model));
    let started = Instant::now();
    let model = load(args)?;
    let build_ms = ms_since(started);
    if model.graph.inputs.len() != 1 {
        bail!(
            "{}: wgcnn bench feeds one input; the graph has {}",
            model.name,
            model.graph.inputs.len()
        );
    }
    let input_shape = model.graph.shape(model.graph.inputs[0]).to_vec();
    // Detectors take an image in [0, 1]; classifiers a normalized input in [-1, 1].
    let detector = wgcnn_models::detect::find_detector(&model.name).is_ok();
    let data = if detector {
        wgcnn_io::rule::rule_image("image", &input_shape)
    } else {
        wgcnn_io::rule_input("input", &input_shape)
    };
    let input = Tensor {
        data,
        shape: input_shape.clone(),
    };

    phase("opening the device and planning ...");
    let engine = Engine::new(&crate::engine_options(adapter))?;
    let cache = engine.pipeline_cache_status().clone();
    let started = Instant::now();
    let plan = plan_at(&engine, &model.graph, args.precision)
        .with_context(|| format!("{}: planning at {} storage", model.name, args.precision))?;
    let plan_ms = ms_since(started);
    let stats = plan.stats().clone();

    phase("first run ...");
    let inputs = std::slice::from_ref(&input);
    let started = Instant::now();
    plan.run(inputs)?;
    let first_run_ms = ms_since(started);

    phase("planning again (pipelines compiled in this process already) ...");
    let started = Instant::now();
    drop(plan_at(&engine, &model.graph, args.precision)?);
    let plan_warm_ms = ms_since(started);
    drop(model.graph);

    if args.warmup > 0 {
        phase(&format!("{} warm-up runs ...", args.warmup));
    }
    let mut bar = Progress::new("bench: warm-up", "runs", args.warmup.into(), 1);
    for _ in 0..args.warmup {
        let t = Instant::now();
        plan.run(inputs)?;
        let ms = ms_since(t);
        tracing::debug!(ms, "warm-up run");
        bar.inc(1, Some(format!("last {ms:.1} ms")));
    }
    drop(bar);
    phase(&format!("{} timed runs ...", args.iterations));
    let mut samples = Vec::with_capacity(args.iterations as usize);
    let mut bar = Progress::new("bench: timed", "runs", args.iterations.into(), 1);
    for _ in 0..args.iterations {
        let t = Instant::now();
        plan.run(inputs)?;
        let ms = ms_since(t);
        samples.push(ms);
        tracing::debug!(ms, "timed run");
        bar.inc(1, Some(format!("last {ms:.1} ms")));
    }
    drop(bar);
    let summary = profile::summarize(&samples).context("no timed runs")?;

    let profiled = if args.profile {
        phase(&format!("{} profiled runs ...", args.profile_runs));
        let runs = (0..args.profile_runs)
            .map(|_| plan.profile(inputs))
            .collect::<Result<Vec<_>, _>>()?;
        Some(Profile::median(runs).context("profiled runs disagree on their launches")?)
    } else {
        None
    };

    let adapter = engine.adapter_info();
    let flops = 2.0 * stats.macs as f64;
    let report = Report {
        model: &model.name,
        source: model.source,
        weights: model.weights,
        input_shape: &input_shape,
        batch: args.batch,
        summary,
        flops,
    };
    let layers = profiled.as_ref().map(|p| {
        let mut layers = profile::layers(&p.launches, plan.graph());
        layers.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        layers
    });
    if args.json {
        let mut out = json!({
            "model": report.model,
            "source": report.source,
            "weights": report.weights,
            "input_shape": report.input_shape,
            "batch": report.batch,
            "precision": args.precision.name(),
            "adapter": {
                "name": adapter.name,
                "backend": adapter.backend,
                "device_type": adapter.device_type,
                "driver": adapter.driver,
                "driver_info": adapter.driver_info,
            },
            "launches": stats.launches,
            "pipelines": stats.pipelines,
            "nodes": stats.nodes,
            "weight_bytes": stats.weight_bytes,
            "activation_bytes": stats.activation_bytes,
            "macs": stats.macs,
            "gflop_per_run": flops / 1e9,
            "build_ms": build_ms,
            "plan_ms": plan_ms,
            "plan_warm_ms": plan_warm_ms,
            "pipeline_cache": {
                "status": cache.to_string(),
                "hit": cache.is_hit(),
                "file": cache.path(),
            },
            "first_run_ms": first_run_ms,
            "warmup": args.warmup,
            "iterations": args.iterations,
            "median_ms": summary.median,
            "min_ms": summary.min,
            "p90_ms": summary.p90,
            "mean_ms": summary.mean,
            "max_ms": summary.max,
            "images_per_s": report.images_per_s(),
            "gflop_per_s": report.gflop_per_s(),
            "samples_ms": samples,
            "wgcnn_version": env!("CARGO_PKG_VERSION"),
        });
        if let (Some(p), Some(layers)) = (&profiled, &layers) {
            out["profile"] = profile_json(p, layers, args.profile_runs);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "model        {} ({}, {} weights), input {:?}, {:.2} GMAC = {:.2} GFLOP per run",
            report.model,
            report.source,
            report.weights,
            report.input_shape,
            stats.macs as f64 / 1e9,
            flops / 1e9
        );
        println!(
            "adapter      {} [{} {}], driver {} {}",
            adapter.name, adapter.backend, adapter.device_type, adapter.driver, adapter.driver_info
        );
        println!(
            "plan         {} launches per run, {} pipelines, {:.1} MiB weights, {:.1} MiB activations, {} storage",
            stats.launches,
            stats.pipelines,
            stats.weight_bytes as f64 / 1048576.0,
            stats.activation_bytes as f64 / 1048576.0,
            args.precision
        );
        println!(
            "build        {build_ms:.1} ms graph + weights, {plan_ms:.1} ms plan (pipelines compiled, buffers, uploads)"
        );
        println!(
            "plan again   {plan_warm_ms:.1} ms (warm: pipelines compiled in this process already)"
        );
        println!(
            "cache        {} ({})",
            if cache.is_hit() { "hit" } else { "miss" },
            cache
        );
        println!(
            "first run    {first_run_ms:.1} ms (after the plan; pipelines compiled at plan time)"
        );
        println!(
            "timed runs   {} after {} warm-up: median {:.2} ms, min {:.2} ms, p90 {:.2} ms (input written to outputs mapped)",
            summary.count, args.warmup, summary.median, summary.min, summary.p90
        );
        println!(
            "throughput   {:.2} images/s, {:.2} GFLOP/s (at the median)",
            report.images_per_s(),
            report.gflop_per_s()
        );
        if let (Some(p), Some(layers)) = (&profiled, &layers) {
            print_profile(p, layers, args.profile_runs, args.top);
        }
    }
    Ok(())
}

/// The timed figures shared by both outputs.
struct Report<'a> {
    model: &'a str,
    source: &'static str,
    weights: &'static str,
    input_shape: &'a [usize],
    batch: u32,
    summary: Summary,
    flops: f64,
}

impl Report<'_> {
    fn images_per_s(&self) -> f64 {
        f64::from(self.batch) * 1e3 / self.summary.median
    }

    fn gflop_per_s(&self) -> f64 {
        self.flops / (self.summary.median * 1e6)
    }
}

fn layer_json(l: &LayerTiming) -> Value {
    json!({
        "name": l.name,
        "kernel": l.kernel,
        "category": l.category.name(),
        "launches": l.launches,
        "ms": l.ms,
        "flops": l.flops,
        "gflop_per_s": l.gflops_per_s(),
        "output_shape": l.output_shape,
    })
}

fn profile_json(p: &Profile, layers: &[LayerTiming], runs: u32) -> Value {
    let categories: Vec<Value> = profile::category_shares(&p.launches)
        .iter()
        .map(|s| json!({"category": s.category.name(), "launches": s.launches, "ms": s.ms, "share": s.share}))
        .collect();
    json!({
        "method": p.method.id(),
        "runs": runs,
        "launches_total_ms": p.total_ms(),
        "wall_ms": p.wall_ms,
        "categories": categories,
        "layers": layers.iter().map(layer_json).collect::<Vec<_>>(),
    })
}

fn print_profile(p: &Profile, layers: &[LayerTiming], runs: u32, top: usize) {
    let total = p.total_ms();
    println!();
    println!(
        "profile      {}, median of {runs} run{}: launches sum to {total:.2} ms, profiled run {:.2} ms wall",
        p.method.describe(),
        if runs == 1 { "" } else { "s" },
        p.wall_ms
    );
    let width = layers
        .iter()
        .take(top)
        .map(|l| l.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "  {:<width$}  {:<14} {:<18} {:>8} {:>9} {:>9} {:>6}",
        "layer", "kernel", "output", "GFLOP", "ms", "GFLOP/s", "share"
    );
    for l in layers.iter().take(top) {
        let shape = l
            .output_shape
            .as_ref()
            .map_or_else(|| "-".to_string(), |s| format!("{s:?}"));
        let gflop = if l.flops > 0 {
            format!("{:.3}", l.flops as f64 / 1e9)
        } else {
            "-".to_string()
        };
        let rate = l
            .gflops_per_s()
            .map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
        let share = if total > 0.0 {
            l.ms / total * 100.0
        } else {
            0.0
        };
        println!(
            "  {:<width$}  {:<14} {:<18} {:>8} {:>9.3} {:>9} {:>5.1}%",
            l.name, l.kernel, shape, gflop, l.ms, rate, share
        );
    }
    if layers.len() > top {
        println!("  ... {} more layers", layers.len() - top);
    }
    print_detector_stages(layers);
    print_segmenter_stages(layers);
    println!("time by category:");
    for s in profile::category_shares(&p.launches) {
        if s.launches > 0 {
            println!(
                "  {:<12} {:>4} launches {:>10.2} ms {:>5.1}%",
                s.category.name(),
                s.launches,
                s.ms,
                s.share * 100.0
            );
        }
    }
}

/// The detector stage a layer belongs to, by its node name (`None` for classifiers).
fn detector_stage(layer: &str) -> Option<&'static str> {
    const STAGES: &[(&str, &str)] = &[
        ("transform", "transform"),
        ("backbone.body", "backbone"),
        ("backbone.fpn", "fpn"),
        ("features.", "fpn"),
        ("rpn.proposals", "rpn proposals (top-k, decode, nms)"),
        ("rpn.", "rpn head"),
        ("roi_heads.box_roi_pool", "roi align"),
        ("roi_heads.", "box head + predictor"),
        ("detections", "postprocess (decode, nms)"),
        ("output", "scale boxes"),
    ];
    STAGES
        .iter()
        .find(|(prefix, _)| layer.starts_with(prefix))
        .map(|(_, stage)| *stage)
}

/// For detectors: GPU time per pipeline stage.
fn print_detector_stages(layers: &[LayerTiming]) {
    if !layers.iter().any(|l| l.name.starts_with("rpn.")) {
        return;
    }
    let mut stages: Vec<(&str, f64)> = Vec::new();
    for l in layers {
        let stage = detector_stage(&l.name).unwrap_or("other");
        match stages.iter_mut().find(|(s, _)| *s == stage) {
            Some(entry) => entry.1 += l.ms,
            None => stages.push((stage, l.ms)),
        }
    }
    let order = [
        "transform",
        "backbone",
        "fpn",
        "rpn head",
        "rpn proposals (top-k, decode, nms)",
        "roi align",
        "box head + predictor",
        "postprocess (decode, nms)",
        "scale boxes",
        "other",
    ];
    stages.sort_by_key(|(s, _)| order.iter().position(|o| o == s));
    println!("time by detector stage:");
    for (stage, ms) in stages {
        println!("  {stage:<36} {ms:>10.2} ms");
    }
}

/// For segmenters: GPU time in the backbone, the head and the final upsampling.
fn print_segmenter_stages(layers: &[LayerTiming]) {
    // Segmenters name their trunk `backbone.` (torchvision's FCN/DeepLab); classifiers have a
    // `classifier` too, so that alone does not make a segmenter.
    let has = |prefix: &str| layers.iter().any(|l| l.name.starts_with(prefix));
    if !has("backbone.") || !has("classifier") {
        return;
    }
    let mut stages = [
        ("backbone", 0.0),
        ("head", 0.0),
        ("upsample to input", 0.0),
        ("other", 0.0),
    ];
    for l in layers {
        let i = match l.name.as_str() {
            n if n.starts_with("backbone.") => 0,
            n if n.starts_with("classifier") => 1,
            n if n.starts_with("output") => 2,
            _ => 3,
        };
        stages[i].1 += l.ms;
    }
    println!("time by segmenter stage:");
    for (stage, ms) in stages {
        println!("  {stage:<36} {ms:>10.2} ms");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn parse_size_accepts_square_and_hxw_and_rejects_zero_or_junk() {
        assert_eq!(parse_size("224"), Ok([224, 224]));
        assert_eq!(parse_size("240x320"), Ok([240, 320]));
        assert_eq!(parse_size("64X48"), Ok([64, 48]));
        for bad in ["0", "0x10", "axb", "", "10x"] {
            let err = parse_size(bad).unwrap_err();
            println!("{bad:?}: {err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
