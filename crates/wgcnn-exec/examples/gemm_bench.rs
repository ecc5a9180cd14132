//! Microbenchmark of the convolution and linear kernels alone, on every distinct conv/linear
//! shape of a network (ResNet-50 at 224 by default), next to the machine's f32 peak estimate.
//!
//! ```text
//! cargo run --release -p wgcnn-exec --example gemm_bench -- [--model NAME] [--size N]
//!     [--batch N] [--time SECONDS] [--kernels SET] [--shapes fpn] [FILTER]
//! ```
//!
//! `--kernels SET` plans with a forced kernel set (`auto`, `portable`, `subgroup`, `winograd`
//! for F(2x2, 3x3), `winograd4` for F(4x4, 3x3); see `Variants`), to compare variants shape by
//! shape. `--shapes fpn` measures, instead of a classifier's layers, the 3x3 256->256 layers of
//! `fasterrcnn_resnet50_fpn` at torchvision's default sizes (an 800x1199 input, padded to
//! 800x1216): the FPN output convolutions and the RPN head's conv at strides 4 to 32 (200x304
//! down to 25x38; each twice, FPN and RPN) and the RPN conv on the pool level (13x19).
//!
//! Each shape becomes a one-node graph (conv + bias + ReLU, or linear + bias) planned by the
//! executor, so the kernel variant measured is the one the network itself gets. Its launch is
//! repeated inside one submission, after one warm-up submission that also compiles the
//! pipeline, until `--time` seconds (default 0.5) have passed. Printed per shape: wall ms per
//! launch, GFLOP/s (2 x multiply-adds per wall second), GFLOP per CPU-second of this process
//! (lavapipe's worker threads included; less disturbed when other work shares the cores), and
//! the share of the peak. `FILTER` keeps the shapes whose description contains it.
//!
//! Peak: logical CPUs x f32 SIMD lanes x 2 (FMA) x clock, from `/proc/cpuinfo` (`avx512f` 16
//! lanes, `avx`/`avx2` 8, else 4; `cpu MHz`), and the same with the vector width llvmpipe's
//! adapter name reports ("256 bits": 8 lanes). One FMA unit per core is assumed: cores with two
//! FMA pipes peak twice as high. A measurement, never an assertion.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use wgcnn_exec::Plan;
use wgcnn_graph::{Activation, Conv2d, Graph, GraphBuilder, Op, passes};
use wgcnn_io::RuleWeights;
use wgcnn_kernels::{Context, ContextOptions, Variants, encode_launch};
use wgcnn_models::BuildOptions;

type Res<T> = Result<T, Box<dyn Error>>;

struct Options {
    model: String,
    size: Option<usize>,
    batch: usize,
    seconds: f64,
    filter: String,
    variants: Variants,
    fpn: bool,
}

fn options() -> Res<Options> {
    let mut o = Options {
        model: "resnet50".into(),
        size: None,
        batch: 1,
        seconds: 0.5,
        filter: String::new(),
        variants: Variants::Auto,
        fpn: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--model" => o.model = value("--model")?,
            "--size" => {
                o.size = Some(
                    value("--size")?
                        .parse()
                        .map_err(|e| format!("--size: {e}"))?,
                )
            }
            "--batch" => {
                o.batch = value("--batch")?
                    .parse()
                    .map_err(|e| format!("--batch: {e}"))?
            }
            "--time" => {
                o.seconds = value("--time")?
                    .parse()
                    .map_err(|e| format!("--time: {e}"))?
            }
            "--kernels" => o.variants = value("--kernels")?.parse()?,
            "--shapes" => match value("--shapes")?.as_str() {
                "fpn" => o.fpn = true,
                other => return Err(format!("--shapes: unknown set {other:?} (fpn)").into()),
            },
            "-h" | "--help" => {
                println!(
                    "gemm_bench [--model NAME] [--size N] [--batch N] [--time SECONDS] \
                     [--kernels SET] [--shapes fpn] [FILTER]"
                );
                std::process::exit(0);
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}").into()),
            s => o.filter = s.to_string(),
        }
    }
    Ok(o)
}

/// One distinct layer shape: the op and its input shapes, the first node using it, how often.
struct Shape {
    op: Op,
    input: Vec<usize>,
    weight: Vec<usize>,
    first: String,
    count: usize,
    macs: u64,
}

impl Shape {
    fn describe(&self) -> String {
        match &self.op {
            Op::Conv2d(c) => {
                let (w, x) = (&self.weight, &self.input);
                let groups = if c.groups > 1 {
                    format!(" g{}", c.groups)
                } else {
                    String::new()
                };
                format!(
                    "{}x{}/{} {}->{}{groups} @{}x{}",
                    w[2], w[3], c.stride[0], x[1], w[0], x[2], x[3]
                )
            }
            _ => format!(
                "fc {}->{} batch {}",
                self.weight[1], self.weight[0], self.input[0]
            ),
        }
    }
}

/// The distinct conv and linear shapes of `graph` (after the executor's rewrites), in order.
fn shapes(graph: &Graph) -> Vec<Shape> {
    let mut out: Vec<Shape> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for n in &graph.nodes {
        let geometry = match &n.op {
            Op::Conv2d(c) => Op::Conv2d(Conv2d {
                act: Activation::Relu,
                bias: true,
                residual: false,
                ..c.clone()
            }),
            Op::Linear { .. } => Op::Linear {
                bias: true,
                act: Activation::Identity,
            },
            _ => continue,
        };
        let (input, weight) = (
            graph.shape(n.inputs[0]).to_vec(),
            graph.shape(n.inputs[1]).to_vec(),
        );
        let key = format!("{geometry:?} {input:?} {weight:?}");
        if let Some(&i) = seen.get(&key) {
            out[i].count += 1;
            continue;
        }
        let ins: Vec<&[usize]> = n.inputs.iter().map(|&t| graph.shape(t)).collect();
        let macs = n.op.macs(&ins, graph.shape(n.output));
        seen.insert(key, out.len());
        out.push(Shape {
            op: geometry,
            input,
            weight,
            first: n.name.clone(),
            count: 1,
            macs,
        });
    }
    out
}

/// `fasterrcnn_resnet50_fpn`'s 3x3 256->256 layers at an 800x1216 network input (batch
/// `batch`): FPN `layer_blocks` and the RPN head's conv on levels 0-3, the RPN conv on `pool`.
fn fpn_shapes(batch: usize) -> Vec<Shape> {
    let levels = [
        ("fpn/rpn stride 4", 200, 304, 2),
        ("fpn/rpn stride 8", 100, 152, 2),
        ("fpn/rpn stride 16", 50, 76, 2),
        ("fpn/rpn stride 32", 25, 38, 2),
        ("rpn pool", 13, 19, 1),
    ];
    levels
        .iter()
        .map(|&(first, h, w, count)| Shape {
            op: Op::Conv2d(Conv2d {
                stride: [1, 1],
                padding: [1; 4],
                dilation: [1, 1],
                groups: 1,
                bias: true,
                residual: false,
                act: Activation::Relu,
            }),
            input: vec![batch, 256, h, w],
            weight: vec![256, 256, 3, 3],
            first: first.to_string(),
            count,
            macs: (batch * 256 * h * w * 256 * 9) as u64,
        })
        .collect()
}

/// A one-node graph computing `shape` with rule weights.
fn single(shape: &Shape) -> Res<Graph> {
    let mut b = GraphBuilder::new();
    let x = b.input("input", &shape.input);
    let w = b.param("layer.weight", &shape.weight);
    let bias = b.param("layer.bias", &[shape.weight[0]]);
    let y = b.node("layer", shape.op.clone(), &[x, w, bias])?;
    b.output(y);
    let mut g = b.finish();
    g.bind(&RuleWeights::for_graph(&g))?;
    Ok(g)
}

/// CPU seconds used by this process so far (all threads), from `/proc/self/stat`; 0 where it
/// cannot be read.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// Wall and CPU seconds per launch of `plan`'s launches, repeated for at least `seconds`.
fn time(ctx: &Context, plan: &Plan, seconds: f64) -> Res<(f64, f64)> {
    let submit = |reps: usize| -> Res<()> {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for _ in 0..reps {
                for l in plan.launches() {
                    encode_launch(&mut pass, l);
                }
            }
        }
        ctx.queue.submit([encoder.finish()]);
        Ok(ctx.wait()?)
    };
    submit(1)?;
    // Size submissions to about a tenth of the budget from one timed launch.
    let t = Instant::now();
    submit(1)?;
    let one = t.elapsed().as_secs_f64().max(1e-6);
    let reps = ((seconds / 10.0 / one) as usize).clamp(1, 1000);
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let mut runs = 0;
    while runs == 0 || start.elapsed().as_secs_f64() < seconds {
        submit(reps)?;
        runs += reps;
    }
    Ok((
        start.elapsed().as_secs_f64() / runs as f64,
        (cpu_seconds() - cpu) / runs as f64,
    ))
}

/// Logical CPUs usable here, f32 lanes of the widest SIMD in `/proc/cpuinfo`, mean MHz, model.
fn cpu() -> (usize, usize, f64, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &'static str| {
        info.lines().filter_map(move |l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim())
        })
    };
    let flags: Vec<&str> = field("flags")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let lanes = if flags.contains(&"avx512f") {
        16
    } else if flags.contains(&"avx") || flags.contains(&"avx2") {
        8
    } else {
        4
    };
    let mhz: Vec<f64> = field("cpu MHz").filter_map(|v| v.parse().ok()).collect();
    let mhz = if mhz.is_empty() {
        0.0
    } else {
        mhz.iter().sum::<f64>() / mhz.len() as f64
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (
        cores,
        lanes,
        mhz,
        field("model name")
            .next()
            .unwrap_or("unknown CPU")
            .to_string(),
    )
}

/// The vector width in the adapter name (`llvmpipe (LLVM 15.0.6, 256 bits)`), if any.
fn adapter_bits(name: &str) -> Option<usize> {
    let before = name
        .split(" bits")
        .next()
        .filter(|_| name.contains(" bits"))?;
    before.rsplit([' ', ',', '(']).next()?.parse().ok()
}

fn main() -> Res<()> {
    let o = options()?;
    let (title, all) = if o.fpn {
        (
            format!("fasterrcnn_resnet50_fpn 800x1216 batch {}", o.batch),
            fpn_shapes(o.batch),
        )
    } else {
        let info = wgcnn_models::find(&o.model)?;
        let size = o.size.unwrap_or(info.default_resolution);
        let graph = info.graph(&BuildOptions {
            batch: o.batch,
            height: size,
            width: size,
            classes: info.classes,
        })?;
        (
            format!("{} {size}x{size} batch {}", info.name, o.batch),
            shapes(&passes::optimize(&graph)),
        )
    };
    let ctx = Arc::new(Context::new(&ContextOptions {
        variants: o.variants,
        ..Default::default()
    })?);

    let (cores, lanes, mhz, model) = cpu();
    let peak = |lanes: usize| cores as f64 * lanes as f64 * 2.0 * mhz / 1e3;
    println!(
        "cpu: {model}, {cores} logical CPUs usable, {mhz:.0} MHz, {} f32 lanes",
        lanes
    );
    println!(
        "peak estimate: {cores} x {lanes} lanes x 2 (FMA) x {:.2} GHz = {:.1} GFLOP/s",
        mhz / 1e3,
        peak(lanes)
    );
    println!(
        "  (one FMA pipe per core assumed; Zen 4/5 and recent Xeons have two: {:.1} GFLOP/s, and \
         boost clocks above the reported MHz raise it further)",
        2.0 * peak(lanes)
    );
    let driver_lanes = adapter_bits(&ctx.info.name).map(|b| b / 32);
    if let Some(l) = driver_lanes {
        println!(
            "  at the adapter's {}-bit vectors: {:.1} GFLOP/s",
            l * 32,
            peak(l)
        );
    }
    println!("adapter: {} ({})", ctx.info.name, ctx.info.driver_info);
    println!(
        "{title}: distinct conv/linear shapes, {:.1} s each, kernels {}",
        o.seconds,
        o.variants.name()
    );
    println!(
        "{:<24} {:<26} {:>5} {:>8} {:>9} {:>9} {:>11} {:>7}",
        "first layer", "shape", "count", "GFLOP", "ms", "GFLOP/s", "GFLOP/CPU-s", "% peak"
    );
    let reference = peak(driver_lanes.unwrap_or(lanes));
    let (mut net_ms, mut net_flops) = (0.0, 0.0);
    for s in all
        .iter()
        .filter(|s| s.describe().contains(&o.filter) || s.first.contains(&o.filter))
    {
        let plan = Plan::new(ctx.clone(), &single(s)?)?;
        let (secs, cpu) = time(&ctx, &plan, o.seconds)?;
        let flops = 2.0 * s.macs as f64;
        let rate = flops / secs / 1e9;
        println!(
            "{:<24} {:<26} {:>5} {:>8.3} {:>9.3} {:>9.2} {:>11.2} {:>6.1}%",
            s.first,
            s.describe(),
            s.count,
            flops / 1e9,
            secs * 1e3,
            rate,
            if cpu > 0.0 { flops / cpu / 1e9 } else { 0.0 },
            rate / reference * 100.0
        );
        net_ms += secs * 1e3 * s.count as f64;
        net_flops += flops * s.count as f64;
    }
    if net_ms > 0.0 {
        println!(
            "these layers as in the network: {:.1} ms, {:.2} GFLOP, {:.2} GFLOP/s ({:.1}% of {:.1})",
            net_ms,
            net_flops / 1e9,
            net_flops / net_ms / 1e6,
            net_flops / net_ms / 1e6 / reference * 100.0,
            reference
        );
    }
    Ok(())
}
