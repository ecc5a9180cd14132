//! TEMPORARY experiment harness (not part of the product): runs a WGSL conv kernel variant from
//! a file on one shape, checks it against a CPU loop, and times it.
//! conv_lab FILE ENTRY N,C,H,W,K,kh,kw,stride,pad PX CH [wlayout] [sg] [NAME=V ...]

use std::time::Instant;
use wgpu::util::DeviceExt;
use wgcnn_kernels::conv2d::{Conv2dParams, ConvDesc};

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let ticks: f64 = rest.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<f64>().ok()).sum();
    ticks / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = &args[1];
    let entry: &'static str = Box::leak(args[2].clone().into_boxed_str());
    let s: Vec<usize> = args[3].split(',').map(|v| v.parse().unwrap()).collect();
    let px: usize = args[4].parse().unwrap();
    let ch: usize = args[5].parse().unwrap();
    let mut wlayout = "kcrs".to_string();
    let mut sg = false;
    let mut consts: Vec<(String, f64)> = Vec::new();
    let mut secs = 1.0;
    let mut stride_w_override = None;
    for a in &args[6..] {
        if a == "sg" {
            sg = true;
        } else if let Some((k, v)) = a.split_once('=') {
            if k == "time" {
                secs = v.parse().unwrap();
            } else if k == "wlayout" {
                wlayout = v.to_string();
            } else if k == "sw" {
                stride_w_override = Some(v.parse::<usize>().unwrap());
            } else {
                consts.push((k.to_string(), v.parse().unwrap()));
            }
        }
    }
    let (n, c, h, w, k, kh, kw, stride, pad) = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8]);
    let mut desc = ConvDesc::new([n, c, h, w], [k, c, kh, kw], [stride, stride], [pad; 4], [1, 1], 1);
    if let Some(sw) = stride_w_override {
        desc.stride[1] = sw;
    }
    desc.bias = true;
    desc.act = (1, 0.0, 0.0);
    let out = desc.output().unwrap();
    let (oh, ow) = (out[2], out[3]);
    let mut p = Conv2dParams::new(&desc).unwrap();
    p.pixel_blocks = (n * oh * ow).div_ceil(px) as u32;
    p.chan_blocks = k.div_ceil(ch) as u32;
    p.cb = ch as u32;
    let groups_total = p.pixel_blocks * p.chan_blocks;

    // Data.
    let mut seed = 12345u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let x: Vec<f32> = (0..n * c * h * w).map(|_| rnd()).collect();
    let wt: Vec<f32> = (0..k * c * kh * kw).map(|_| rnd()).collect();
    let b: Vec<f32> = (0..k).map(|_| rnd()).collect();
    // CPU reference (only a sample of outputs for big shapes).
    let crs = c * kh * kw;
    let wgpu_w: Vec<f32> = match wlayout.as_str() {
        "kcrs" => wt.clone(),
        // [crs, K]: transposed.
        "crsk" => {
            let mut t = vec![0.0; wt.len()];
            for kk in 0..k {
                for j in 0..crs {
                    t[j * k + kk] = wt[kk * crs + j];
                }
            }
            t
        }
        // [K/ch][crs][ch] blocked, zero padded.
        "blk" => {
            let kb = k.div_ceil(ch);
            let mut t = vec![0.0; kb * crs * ch];
            for kk in 0..k {
                for j in 0..crs {
                    t[(kk / ch) * crs * ch + j * ch + kk % ch] = wt[kk * crs + j];
                }
            }
            t
        }
        other => panic!("wlayout {other}"),
    };

    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let mut features = wgpu::Features::empty();
    if sg {
        features |= wgpu::Features::SUBGROUP;
    }
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: None,
        required_features: features,
        required_limits: adapter.limits(),
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }))
    .unwrap();
    let src = std::fs::read_to_string(file).unwrap();
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor { label: None, source: wgpu::ShaderSource::Wgsl(src.into()) });
    let constants: Vec<(&str, f64)> = consts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: None,
        module: &module,
        entry_point: Some(entry),
        compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
        cache: None,
    });
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let mk = |d: &[f32]| device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytemuck::cast_slice(d), usage });
    let pb = device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytemuck::bytes_of(&p), usage: wgpu::BufferUsages::UNIFORM });
    let xb = mk(&x);
    let wb = mk(&wgpu_w);
    let bb = mk(&b);
    let rb = mk(&[0.0; 4]);
    let ylen = n * k * oh * ow;
    let yb = device.create_buffer(&wgpu::BufferDescriptor { label: None, size: (ylen * 4) as u64, usage, mapped_at_creation: false });
    let layout = pipeline.get_bind_group_layout(0);
    let all = [&pb, &xb, &wb, &bb, &rb, &yb];
    // Only bind what the shader uses (auto layout drops unused bindings): try all, skipping absent.
    let mut entries = Vec::new();
    for (i, buf) in all.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry { binding: i as u32, resource: buf.as_entire_binding() });
    }
    let bg = device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries });
    let gx = groups_total.min(65535);
    let gy = groups_total.div_ceil(gx);
    let run = |reps: usize| {
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bg, &[]);
            for _ in 0..reps {
                pass.dispatch_workgroups(gx, gy, 1);
            }
        }
        queue.submit([enc.finish()]);
        device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    };
    let t0 = Instant::now();
    run(1);
    let first = t0.elapsed().as_secs_f64();
    // Read back and check a sample.
    let staging = device.create_buffer(&wgpu::BufferDescriptor { label: None, size: (ylen * 4) as u64, usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(&yb, 0, &staging, 0, (ylen * 4) as u64);
    queue.submit([enc.finish()]);
    staging.map_async(wgpu::MapMode::Read, .., |_| {});
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    let got: Vec<f32> = bytemuck::cast_slice(&staging.get_mapped_range(..).unwrap()).to_vec();
    let step = (ylen / 20000).max(1);
    let mut worst = 0f32;
    let (sh, sw) = (desc.stride[0], desc.stride[1]);
    let mut idx = 0;
    while idx < ylen {
        let ox = idx % ow;
        let oy = (idx / ow) % oh;
        let kk = (idx / (ow * oh)) % k;
        let nn = idx / (ow * oh * k);
        let mut acc = b[kk];
        for cc in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    let iy = (oy * sh + ky) as isize - pad as isize;
                    let ix = (ox * sw + kx) as isize - pad as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                        acc += x[((nn * c + cc) * h + iy as usize) * w + ix as usize] * wt[((kk * c + cc) * kh + ky) * kw + kx];
                    }
                }
            }
        }
        let want = acc.max(0.0);
        worst = worst.max((got[idx] - want).abs());
        idx += step + (idx % 7);
    }
    let flops = 2.0 * (n * k * oh * ow * c * kh * kw) as f64;
    let t = Instant::now();
    run(1);
    let one = t.elapsed().as_secs_f64().max(1e-6);
    let reps = ((secs / 5.0 / one) as usize).clamp(1, 500);
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    let mut runs = 0;
    while runs == 0 || start.elapsed().as_secs_f64() < secs {
        run(reps);
        runs += reps;
    }
    let wall = start.elapsed().as_secs_f64() / runs as f64;
    let cpu = (cpu_seconds() - cpu0) / runs as f64;
    println!(
        "{entry} {:?} px{px} ch{ch} {consts:?}: first {:.2}s, {:.3} ms, {:.2} GFLOP/s, {:.2} GFLOP/CPU-s, max err {worst:.2e}",
        s,
        first,
        wall * 1e3,
        flops / wall / 1e9,
        flops / cpu / 1e9
    );
}
