//! The `wgcnn` command line.

use anyhow::Result;
use clap::{ArgAction, Parser, Subcommand};

mod bench;
mod classify;
mod detect;
mod faces;
mod info;
mod inputs;
mod logging;
mod mesh;
mod models;
mod progress;
mod segment;
mod serve;

/// Convolutional networks on WebGPU: classify and detect on images with any Vulkan, Metal or
/// DX12 GPU, or on Mesa's software Vulkan (lavapipe) where there is none.
#[derive(Parser)]
#[command(
    name = "wgcnn",
    version,
    after_help = "Examples:\n  \
    wgcnn classify assets/chelsea.png                        # bundled EfficientNet-Lite0 (ImageNet)\n  \
    wgcnn classify --model resnet50 --weights resnet50.pth photos/ --batch 8 --json\n  \
    wgcnn classify --model net.onnx --size 224 image.jpg     # an ONNX classifier\n  \
    wgcnn detect photo.jpg --output faces.png --crops faces/ # bundled MTCNN: faces, 5 landmarks\n  \
    wgcnn detect --model fasterrcnn_resnet50_fpn --weights fasterrcnn_resnet50_fpn_coco-258fb6c6.pth --output out.png photo.jpg\n  \
    wgcnn models                                             # networks and detectors wgcnn builds\n  \
    wgcnn bench --model resnet50 --profile                   # speed, per-layer GPU times\n  \
    wgcnn info                                               # which GPU (or lavapipe) is used\n\n\
Output:\n  \
    Results (text or --json) go to stdout; progress, summaries, errors and logs to stderr.\n  \
    On a terminal long runs show a progress bar; piped or in CI, a plain line every few seconds.\n  \
    -v logs what wgcnn does (device, plan: launches, buffers, weights), -vv adds debug detail\n  \
    (weight binding, per-stage timings), -vvv everything; -q prints errors only.\n  \
    RUST_LOG (e.g. RUST_LOG=wgcnn_exec=debug) overrides -v/-q for the log filter."
)]
struct Cli {
    /// Adapter to use: a case-insensitive substring of its name (see `wgcnn info`).
    /// Defaults to $WGCNN_ADAPTER, then the high-performance adapter.
    #[arg(long, global = true, value_name = "NAME")]
    adapter: Option<String>,
    /// Neither read nor write the on-disk pipeline cache (`~/.cache/wgcnn` on Linux, or
    /// $WGCNN_CACHE_DIR); `WGCNN_NO_CACHE=1` does the same.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Kernel families to use: auto (per layer and device), portable (no subgroups, no
    /// Winograd: what devices without subgroups run), subgroup, winograd (F(2x2, 3x3)
    /// everywhere it fits), winograd4 (F(4x4, 3x3) everywhere it fits), cooperative. For
    /// comparing speed and working around a driver bug; $WGCNN_KERNELS does the same.
    #[arg(
        long,
        global = true,
        value_name = "SET",
        env = "WGCNN_KERNELS",
        default_value = "auto"
    )]
    kernels: wgcnn::Variants,
    /// More log detail on stderr: -v info, -vv debug (plan builds, weight binding, stage
    /// timings), -vvv trace. RUST_LOG, when set, wins.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    verbose: u8,
    /// Errors only on stderr: no progress bars, summaries, notes or warnings (wins over -v).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Top-k classes of images: `wgcnn classify assets/chelsea.png` uses the bundled
    /// EfficientNet-Lite0; `--model resnet50 --weights resnet50.pth` or `--model net.onnx` another.
    Classify(classify::ClassifyArgs),
    /// Faces with five landmarks (bundled MTCNN, the default), or objects with a torchvision
    /// Faster R-CNN checkpoint (`--model`, `--weights`): boxes, labels, scores;
    /// `--output annotated.png` draws them.
    Detect(detect::DetectArgs),
    /// The class of every pixel with a torchvision FCN / DeepLabV3 / LR-ASPP checkpoint:
    /// `--mask` writes the class map, `--output` paints it over the photo, `--json` the shares.
    Segment(segment::SegmentArgs),
    /// List the built-in networks: parameters, GFLOPs at their resolution, checkpoint key naming.
    Models(models::ModelsArgs),
    /// Describe an ONNX file: inputs, outputs, opsets, op counts, and whether wgcnn runs every op.
    Inspect(models::InspectArgs),
    /// Show the GPU adapters wgpu sees, the one wgcnn picks, and the limits it relies on.
    Info(info::InfoArgs),
    /// Time a network with random weights: plan build, first run, median/min/p90 latency,
    /// images/s, GFLOP/s; `--profile` adds per-layer GPU times.
    Bench(bench::BenchArgs),
    /// Serve models over the Open Inference Protocol (KServe V2): REST on --http-port, gRPC on
    /// --grpc-port, with dynamic batching and Prometheus metrics at /metrics.
    Serve(serve::ServeArgs),
    /// A 3D mesh from one image with Mesh R-CNN's ShapeNet model (meshrcnn voxmesh_R50):
    /// `--output shape.obj|.ply`, `--render preview.png`, `--voxels voxels.npy`, `--json`.
    Mesh(mesh::MeshArgs),
}

/// `--no-cache`, set in `main` before any subcommand opens an engine.
static NO_CACHE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// `--kernels`, set in `main` likewise.
static KERNELS: std::sync::OnceLock<wgcnn::Variants> = std::sync::OnceLock::new();

/// Engine options from the global flags and, where a flag is absent, the environment (the
/// library reads none): `WGCNN_ADAPTER`, `WGCNN_NO_CACHE`, `WGCNN_CACHE_DIR`.
pub(crate) fn engine_options(adapter: Option<&str>) -> wgcnn::EngineOptions {
    use wgcnn::wgcnn_kernels::pipeline_cache::{cache_dir_from_env, no_cache_from_env};
    let adapter = adapter.map(str::to_string).or_else(|| {
        std::env::var("WGCNN_ADAPTER")
            .ok()
            .filter(|a| !a.trim().is_empty())
    });
    wgcnn::EngineOptions {
        adapter,
        no_cache: NO_CACHE.load(std::sync::atomic::Ordering::Relaxed) || no_cache_from_env(),
        cache_dir: cache_dir_from_env(),
        variants: KERNELS.get().copied().unwrap_or_default(),
        // Forces the subgroup kernels' lane layout (0: 8-lane broadcast, G: G groups of 8
        // lanes per workgroup), for measurements and driver checks.
        subgroup_groups: subgroup_groups_from_env(),
        ..Default::default()
    }
}

/// `WGCNN_SUBGROUP_GROUPS`: a number (0..=8) forces the subgroup kernels' lane layout; anything
/// else is reported once and ignored (the engine then picks the layout for the adapter).
fn subgroup_groups_from_env() -> Option<u32> {
    let raw = std::env::var("WGCNN_SUBGROUP_GROUPS").ok()?;
    match raw.trim().parse::<u32>() {
        Ok(g) if g <= 8 => Some(g),
        _ => {
            tracing::warn!(
                "WGCNN_SUBGROUP_GROUPS={raw:?} ignored: give 0 (8-lane layout) or 1..=8 (groups \
                 of 8 lanes per workgroup)"
            );
            None
        }
    }
}

/// `wgcnn ... | head` closes stdout early: end quietly, as Unix tools do, instead of reporting
/// a panic from `println!` or an error from a write.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    NO_CACHE.store(cli.no_cache, std::sync::atomic::Ordering::Relaxed);
    let _ = KERNELS.set(cli.kernels);
    progress::set_quiet(cli.quiet);
    logging::init(cli.verbose, cli.quiet);
    let result: Result<()> = match &cli.command {
        Command::Classify(args) => classify::run(args, cli.adapter.as_deref()),
        Command::Detect(args) => detect::run(args, cli.adapter.as_deref()),
        Command::Segment(args) => segment::run(args, cli.adapter.as_deref()),
        Command::Models(args) => models::run(args),
        Command::Inspect(args) => models::inspect(args),
        Command::Info(args) => info::run(args, cli.adapter.as_deref()),
        Command::Bench(args) => bench::run(args, cli.adapter.as_deref()),
        Command::Serve(args) => serve::run(args, cli.adapter.as_deref()),
        Command::Mesh(args) => mesh::run(args, cli.adapter.as_deref()),
    };
    if let Err(e) = result {
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            std::process::exit(0);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
