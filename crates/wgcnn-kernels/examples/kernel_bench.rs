//! Throughput of the compute-heavy kernels on typical layers, run by hand:
//! `cargo run --release -p wgcnn-kernels --example kernel_bench [filter]`.
//! Prints GFLOP/s (2 x multiply-adds per second of wall time, several launches per submission,
//! after one warm-up run that also compiles the pipeline). A measurement, never an assertion.

use std::time::Instant;

use wgcnn_kernels::conv2d::{self, Conv2dParams, ConvDesc};
use wgcnn_kernels::dwconv2d::{self, DwConv2dParams};
use wgcnn_kernels::linear::{self, LinearDesc};
use wgcnn_kernels::{Context, ContextOptions, KernelError, Launch};

/// Deterministic values in [-1, 1).
fn fill(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// CPU seconds this process has used so far, all threads (lavapipe runs kernels on its own
/// threads), from `/proc/self/stat`; 0 where that is not readable. Less disturbed than wall time
/// when other work shares the cores.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum::<f64>() / 100.0
}

/// Runs `launches` once to warm up (and compile), then repeatedly for at least a second;
/// returns (wall seconds, CPU seconds) per launch.
fn time(ctx: &Context, launches: &[Launch]) -> Result<(f64, f64), KernelError> {
    ctx.run(launches)?;
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let mut runs = 0;
    while runs < 2 || start.elapsed().as_secs_f64() < 1.0 {
        ctx.run(launches)?;
        runs += launches.len();
    }
    Ok((
        start.elapsed().as_secs_f64() / runs as f64,
        (cpu_seconds() - cpu) / runs as f64,
    ))
}

fn conv(ctx: &Context, name: &str, d: ConvDesc, depthwise: bool) -> Result<(), KernelError> {
    let out = d.output()?;
    let x = ctx.upload("x", &fill(d.input.iter().product(), 1));
    let w = ctx.upload("w", &fill(d.weight.iter().product(), 2));
    let b = ctx.upload("b", &fill(d.weight[0], 3));
    let y = ctx.storage("y", out.iter().product::<usize>() as u64 * 4);
    let launches: Vec<Launch> = (0..4)
        .map(|_| {
            if depthwise {
                DwConv2dParams::new(&d).map(|p| dwconv2d::launch(ctx, name, &p, &x, &w, &b, &b, &y))
            } else {
                Conv2dParams::new(&d).map(|p| conv2d::launch(ctx, name, &p, &x, &w, &b, &b, &y))
            }
        })
        .collect::<Result<_, _>>()?;
    let (secs, cpu) = time(ctx, &launches)?;
    let flops = d.flops()?;
    println!(
        "{name:<36} {:>8.2} ms {:>7.2} GFLOP/s {:>7.2} GFLOP/CPU-s",
        secs * 1e3,
        flops / secs / 1e9,
        flops / cpu / 1e9
    );
    Ok(())
}

fn fc(ctx: &Context, name: &str, d: LinearDesc) -> Result<(), KernelError> {
    let chunks = linear::row_chunks(d.out_features, d.in_features, ctx.max_binding())?;
    let buffers: Vec<wgpu::Buffer> = chunks
        .iter()
        .map(|r| ctx.upload("w", &fill(r.len() * d.in_features, r.start as u32)))
        .collect();
    let pairs: Vec<_> = chunks.iter().cloned().zip(buffers.iter()).collect();
    let x = ctx.upload("x", &fill(d.batch * d.in_features, 5));
    let b = ctx.upload("b", &fill(d.out_features, 6));
    let y = ctx.storage("y", (d.batch * d.out_features) as u64 * 4);
    let launches = linear::launches(ctx, name, &d, &x, &pairs, &b, &y)?;
    let (secs, cpu) = time(ctx, &launches)?;
    let (secs, cpu) = (secs * launches.len() as f64, cpu * launches.len() as f64);
    let flops = 2.0 * (d.batch * d.in_features * d.out_features) as f64;
    let gbs = (d.in_features * d.out_features * 4) as f64 / secs / 1e9;
    println!(
        "{name:<36} {:>8.2} ms {:>7.2} GFLOP/s {:>7.2} GFLOP/CPU-s {gbs:>6.2} GB/s of weights",
        secs * 1e3,
        flops / secs / 1e9,
        flops / cpu / 1e9
    );
    Ok(())
}

fn main() -> Result<(), KernelError> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let ctx = Context::new(&ContextOptions::default())?;
    println!("adapter: {} ({:?})", ctx.info.name, ctx.info.backend);
    let c = |input, weight, stride, pad, groups| ConvDesc {
        bias: true,
        act: (1, 0.0, 0.0),
        ..ConvDesc::new(input, weight, [stride; 2], [pad; 4], [1, 1], groups)
    };
    let convs = [
        (
            "resnet50 layer1 3x3 64->64 @56",
            c([1, 64, 56, 56], [64, 64, 3, 3], 1, 1, 1),
            false,
        ),
        (
            "resnet50 layer1 1x1 64->256 @56",
            c([1, 64, 56, 56], [256, 64, 1, 1], 1, 0, 1),
            false,
        ),
        (
            "resnet50 layer1 1x1 256->64 @56",
            c([1, 256, 56, 56], [64, 256, 1, 1], 1, 0, 1),
            false,
        ),
        (
            "resnet50 layer4 3x3 512->512 @7",
            c([1, 512, 7, 7], [512, 512, 3, 3], 1, 1, 1),
            false,
        ),
        (
            "resnet50 conv1 7x7/2 3->64 @224",
            c([1, 3, 224, 224], [64, 3, 7, 7], 2, 3, 1),
            false,
        ),
        (
            "resnext50 3x3 g32 128->128 @56",
            c([1, 128, 56, 56], [128, 4, 3, 3], 1, 1, 32),
            false,
        ),
        (
            "mobilenetv2 dw 3x3 144 @56",
            c([1, 144, 56, 56], [144, 1, 3, 3], 1, 1, 144),
            true,
        ),
        (
            "mobilenetv2 dw 3x3/2 96 @112",
            c([1, 96, 112, 112], [96, 1, 3, 3], 2, 1, 96),
            true,
        ),
    ];
    for (name, d, dw) in convs {
        if name.contains(&filter) {
            conv(&ctx, name, d, dw)?;
        }
    }
    let fcs = [
        (
            "vgg16 fc6 25088->4096 (split)",
            LinearDesc {
                batch: 1,
                in_features: 25088,
                out_features: 4096,
                bias: true,
                act: (1, 0.0, 0.0),
            },
        ),
        (
            "vgg16 fc7 4096->4096",
            LinearDesc {
                batch: 1,
                in_features: 4096,
                out_features: 4096,
                bias: true,
                act: (1, 0.0, 0.0),
            },
        ),
        (
            "resnet50 fc 2048->1000 batch 3",
            LinearDesc {
                batch: 3,
                in_features: 2048,
                out_features: 1000,
                bias: true,
                act: (0, 0.0, 0.0),
            },
        ),
    ];
    for (name, d) in fcs {
        if name.contains(&filter) {
            fc(&ctx, name, d)?;
        }
    }
    Ok(())
}
