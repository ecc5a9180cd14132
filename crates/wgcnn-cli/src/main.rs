//! The `wgcnn` command line.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod info;

/// Convolutional networks on WebGPU: classify and detect on images with any Vulkan, Metal or
/// DX12 GPU, or on Mesa's software Vulkan (lavapipe) where there is none.
#[derive(Parser)]
#[command(name = "wgcnn", version, about, long_about = None)]
struct Cli {
    /// Adapter to use: a case-insensitive substring of its name (see `wgcnn info`).
    /// Defaults to $WGCNN_ADAPTER, then the high-performance adapter.
    #[arg(long, global = true, value_name = "NAME")]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the GPU adapters wgpu sees, the one wgcnn picks, and the limits it relies on.
    Info(info::InfoArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match &cli.command {
        Command::Info(args) => info::run(args, cli.adapter.as_deref()),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
