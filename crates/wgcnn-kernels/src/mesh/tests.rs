//! The mesh kernels against the CPU references of `wgcnn_graph::mesh`: cubify's faces, counts
//! and edges exactly (pytorch3d's order), the CSR adjacency exactly, vertices, vert_align,
//! GraphConv and whole refinement stages within the fixtures' tolerances.

use super::refine::{FeatureMap, MeshInput};
use super::*;
use crate::testing::{Rng, ctx};
use wgcnn_graph::mesh::{
    SamplePadding, TriMesh, cubify, edges_packed, graph_conv, occupancy_probs, project_vert,
    vert_align, voxel_to_world,
};
use wgcnn_graph::{Activation, Op, Tensor, interp};

/// Neighbours of every vertex, ascending, from unique edges.
fn csr(v: usize, edges: &[[u32; 2]]) -> (Vec<u32>, Vec<u32>) {
    let mut nb = vec![Vec::new(); v];
    for &[a, b] in edges {
        nb[a as usize].push(b);
        nb[b as usize].push(a);
    }
    let mut off = vec![0u32];
    let mut adj = Vec::new();
    for mut n in nb {
        n.sort_unstable();
        adj.extend(n);
        off.push(adj.len() as u32);
    }
    (off, adj)
}

struct GpuMesh {
    counts: MeshCounts,
    mesh: TriMesh,
    edges: Vec<[u32; 2]>,
    adj_offset: Vec<u32>,
    adj: Vec<u32>,
}

fn run_cubify(values: &Tensor, thresh: f32, flags: u32) -> GpuMesh {
    let ctx = ctx();
    let [d, h, w] = [values.shape[1], values.shape[2], values.shape[3]];
    let buf = ctx.upload("voxels", &values.data);
    let c = CubifyGpu::new(ctx, &buf, [d, h, w], thresh, flags).expect("record");
    c.run(ctx).expect("run");
    let counts = c.read_counts(ctx).expect("counts");
    let verts = ctx.read(&c.verts, counts.verts * 3).expect("verts");
    let faces = read_u32(ctx, &c.faces, counts.faces * 3).expect("faces");
    let edges = read_u32(ctx, &c.edges, counts.edges * 2).expect("edges");
    let adj_offset = read_u32(ctx, &c.adj_offset, counts.verts + 1).expect("adj_offset");
    let adj = read_u32(ctx, &c.adj, counts.adj).expect("adj");
    GpuMesh {
        counts,
        mesh: TriMesh {
            verts: verts.chunks(3).map(|p| [p[0], p[1], p[2]]).collect(),
            faces: faces.chunks(3).map(|f| [f[0], f[1], f[2]]).collect(),
        },
        edges: edges.chunks(2).map(|e| [e[0], e[1]]).collect(),
        adj_offset,
        adj,
    }
}

fn check_cubify(what: &str, values: &Tensor, thresh: f32, flags: u32) {
    let got = run_cubify(values, thresh, flags);
    let mut want = if flags & flag::SIGMOID != 0 {
        let (p, _) = occupancy_probs(values, thresh).expect("probs");
        cubify(&p, thresh).expect("cubify").remove(0)
    } else {
        cubify(values, thresh).expect("cubify").remove(0)
    };
    if flags & flag::WORLD != 0 {
        for p in &mut want.verts {
            *p = voxel_to_world(*p);
        }
    }
    assert_eq!(got.counts.faces, want.faces.len(), "{what}: face count");
    assert_eq!(got.counts.verts, want.verts.len(), "{what}: vertex count");
    if let Some(i) = (0..want.faces.len()).find(|&i| got.mesh.faces[i] != want.faces[i]) {
        panic!(
            "{what}: face {i} {:?}, want {:?}",
            got.mesh.faces[i], want.faces[i]
        );
    }
    let err = got
        .mesh
        .verts
        .iter()
        .flatten()
        .zip(want.verts.iter().flatten())
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .fold(0f32, f32::max);
    assert!(err <= 1e-6, "{what}: vertex error {err}");
    let edges = edges_packed(&want.faces);
    assert_eq!(got.edges, edges, "{what}: edges");
    let (off, adj) = csr(want.verts.len(), &edges);
    assert_eq!(got.adj_offset, off, "{what}: adjacency offsets");
    assert_eq!(got.adj, adj, "{what}: adjacency");
    println!(
        "{what}: V {} F {} E {}, vertex error {err:.1e}",
        want.verts.len(),
        want.faces.len(),
        edges.len()
    );
}

fn grid(rng: &mut Rng, dims: [usize; 3], f: impl Fn(&mut Rng, [usize; 3]) -> f32) -> Tensor {
    let [d, h, w] = dims;
    let mut data = Vec::with_capacity(d * h * w);
    for z in 0..d {
        for y in 0..h {
            for x in 0..w {
                data.push(f(rng, [z, y, x]));
            }
        }
    }
    Tensor::new(&[1, d, h, w], data).expect("grid")
}

#[test]
fn cubify_gpu_faces_vertices_edges_and_adjacency_equal_pytorch3d_order() {
    let mut rng = Rng::new(5);
    let uniform = |r: &mut Rng, _: [usize; 3]| r.uniform(0.5) + 0.5;
    for dims in [[2, 2, 2], [3, 4, 5], [5, 3, 2], [7, 6, 9], [1, 3, 3]] {
        let g = grid(&mut rng, dims, uniform);
        check_cubify(&format!("random {dims:?}"), &g, 0.5, 0);
    }
    let full = grid(&mut rng, [3, 3, 3], |_, _| 1.0);
    check_cubify("full 3x3x3", &full, 0.5, 0);
    let empty = grid(&mut rng, [3, 3, 3], |_, _| 0.0);
    check_cubify("empty 3x3x3", &empty, 0.5, 0);
    let shell = grid(&mut rng, [4, 5, 6], |_, [z, y, x]| {
        let inner = (1..3).contains(&z) && (1..4).contains(&y) && (1..5).contains(&x);
        if inner { 0.0 } else { 1.0 }
    });
    check_cubify("hollow 4x5x6", &shell, 0.5, 0);
    let at_thresh = grid(&mut rng, [2, 3, 2], |r, _| [0.25, 0.5, 0.75][r.range(0, 2)]);
    check_cubify("values at the threshold", &at_thresh, 0.5, 0);
    // A 48^3 blob: merged vertices at model size.
    let blob = grid(&mut rng, [48, 48, 48], |r, [z, y, x]| {
        let c = |i: usize| (i as f32 - 23.5) / 24.0;
        let d2 = c(z) * c(z) * 1.3 + c(y) * c(y) + c(x) * c(x) * 0.8;
        (1.0 - d2) * 0.4 + r.uniform(0.05)
    });
    check_cubify("48^3 blob", &blob, 0.2, 0);
}

#[test]
fn cubify_gpu_logits_fallback_and_world_coordinates_match_meshrcnn() {
    let mut rng = Rng::new(9);
    let logits = grid(&mut rng, [8, 8, 8], |r, _| r.uniform(3.0) - 2.0);
    check_cubify(
        "logits 8^3, world",
        &logits,
        0.2,
        flag::SIGMOID | flag::FALLBACK | flag::WORLD,
    );
    // Nothing above the threshold: meshrcnn fills the centre block [S/4, S/4 + S/2).
    let none = grid(&mut rng, [8, 8, 8], |_, _| -5.0);
    let got = run_cubify(&none, 0.2, flag::SIGMOID | flag::FALLBACK);
    assert!(!got.counts.any, "no probability is above the threshold");
    check_cubify("fallback 8^3", &none, 0.2, flag::SIGMOID | flag::FALLBACK);
    assert_eq!(got.counts.faces, 6 * 4 * 4 * 2, "one 4^3 cube's surface");
}

#[test]
fn vert_align_gpu_matches_grid_sample_zeros_border_and_flip() {
    let ctx = ctx();
    let mut rng = Rng::new(17);
    let maps = [[3, 5, 7], [4, 3, 4], [2, 1, 3]];
    let n = 40;
    let mut pts: Vec<f32> = (0..n * 3).map(|_| rng.uniform(1.3)).collect();
    // Corners and far outside.
    pts[..12].copy_from_slice(&[
        -1.0, -1.0, 0.0, 1.0, 1.0, 0.0, 1.05, -1.0001, 0.0, 3.0, -2.5, 0.0,
    ]);
    let points = Tensor::new(&[1, n, 3], pts.clone()).expect("points");
    let feats: Vec<Tensor> = maps
        .iter()
        .map(|&[c, h, w]| rng.tensor(&[1, c, h, w], 1.0))
        .collect();
    let total: usize = maps.iter().map(|m| m[0]).sum();
    for (padding, pflag) in [
        (SamplePadding::Zeros, 0),
        (SamplePadding::Border, flag::BORDER),
    ] {
        for flip in [false, true] {
            let mut cpu_pts = points.clone();
            if flip {
                for p in cpu_pts.data.chunks_mut(3) {
                    p[1] = -p[1];
                }
            }
            let refs: Vec<&Tensor> = feats.iter().collect();
            let want = vert_align(&refs, &cpu_pts, padding).expect("cpu");
            let pb = ctx.upload("points", &pts);
            let out = ctx.storage("out", (n * total * 4) as u64);
            let counts = ctx.storage("counts", 32);
            let bufs: Vec<wgpu::Buffer> =
                feats.iter().map(|f| ctx.upload("map", &f.data)).collect();
            let mut launches = Vec::new();
            let mut col = 0;
            for (b, &[c, h, w]) in bufs.iter().zip(&maps) {
                let p = MeshParams {
                    flags: pflag | if flip { flag::FLIP_Y } else { 0 },
                    map_c: c as u32,
                    map_h: h as u32,
                    map_w: w as u32,
                    ld_y: total as u32,
                    col_y: col as u32,
                    ..MeshParams::elements(n)
                };
                launches.push(direct(
                    ctx,
                    "vert_align",
                    &specs::VERT_ALIGN,
                    &p,
                    &[&pb, b, &counts, &out],
                    n * c,
                ));
                col += c;
            }
            let args = args_buffer(ctx, 1);
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            encode(&mut enc, &launches, &args);
            ctx.queue.submit([enc.finish()]);
            let got =
                Tensor::new(&want.shape, ctx.read(&out, n * total).expect("read")).expect("shape");
            let err = got.rel_error(&want);
            println!("vert_align {padding:?} flip {flip}: rel error {err:.2e}");
            assert!(err <= 1e-5, "vert_align {padding:?} flip {flip}: {err}");
        }
    }
}

/// One refinement stage on the CPU from the `wgcnn_graph::mesh` references.
struct CpuStage {
    pos: Vec<f32>,
    bottleneck: Tensor,
    gconvs: Vec<Tensor>,
    offsets: Vec<f32>,
    verts: Vec<f32>,
}

struct CpuLinear {
    w: Tensor,
    b: Tensor,
}

fn linear(x: &Tensor, l: &CpuLinear, act: Activation) -> Tensor {
    interp::eval_op(&Op::Linear { bias: true, act }, &[x, &l.w, &l.b]).expect("linear")
}

fn cat(parts: &[&Tensor]) -> Tensor {
    let v = parts[0].shape[0];
    let width: usize = parts.iter().map(|p| p.shape[1]).sum();
    let mut data = Vec::new();
    for i in 0..v {
        for p in parts {
            let c = p.shape[1];
            data.extend_from_slice(&p.data[i * c..(i + 1) * c]);
        }
    }
    Tensor::new(&[v, width], data).expect("cat")
}

#[allow(clippy::too_many_arguments)]
fn cpu_stage(
    k: &[f32; 16],
    feats: &[Tensor],
    verts: &[f32],
    prev: Option<&Tensor>,
    edges: &[[u32; 2]],
    bottleneck: &CpuLinear,
    gconvs: &[(CpuLinear, CpuLinear)],
    offset: &CpuLinear,
) -> CpuStage {
    let v = verts.len() / 3;
    let pos: Vec<f32> = verts
        .chunks(3)
        .flat_map(|p| project_vert([p[0], p[1], p[2]], k))
        .collect();
    let flipped: Vec<f32> = pos.chunks(3).flat_map(|p| [p[0], -p[1], p[2]]).collect();
    let refs: Vec<&Tensor> = feats.iter().collect();
    let al = vert_align(
        &refs,
        &Tensor::new(&[1, v, 3], flipped).expect("pts"),
        SamplePadding::Zeros,
    )
    .expect("align");
    let al = Tensor::new(&[v, al.shape[2]], al.data).expect("al");
    let bn = linear(&al, bottleneck, Activation::Relu);
    let post = Tensor::new(&[v, 3], pos.clone()).expect("pos");
    let mut h = match prev {
        Some(p) => cat(&[&bn, &post, p]),
        None => cat(&[&bn, &post]),
    };
    let mut outs = Vec::new();
    for (w0, w1) in gconvs {
        let mut y = graph_conv(&h, edges, (&w0.w, &w0.b), (&w1.w, &w1.b)).expect("gconv");
        y.data.iter_mut().for_each(|x| *x = x.max(0.0));
        h = cat(&[&y, &post]);
        outs.push(y);
    }
    let off = linear(&h, offset, Activation::Tanh);
    let new_verts = verts.iter().zip(&off.data).map(|(a, b)| a + b).collect();
    CpuStage {
        pos,
        bottleneck: bn,
        gconvs: outs,
        offsets: off.data,
        verts: new_verts,
    }
}

fn rel(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let diff = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    println!("{what}: rel error {:.2e}", diff / scale);
    assert!(diff <= tol * scale, "{what}: rel error {}", diff / scale);
}

/// Columns `from..from + n` of a `[rows, ld]` buffer's first `rows` rows.
fn columns(data: &[f32], rows: usize, ld: usize, from: usize, n: usize) -> Vec<f32> {
    (0..rows)
        .flat_map(|r| data[r * ld + from..r * ld + from + n].to_vec())
        .collect()
}

#[test]
fn refinement_stages_gpu_match_cpu_reference_on_a_cubified_mesh() {
    let k = [
        2.1875, 0.0, 0.0, 0.0, 0.0, 2.1875, 0.0, 0.0, 0.0, 0.0, -1.002002, -0.2002002, 0.0, 0.0,
        -1.0, 0.0,
    ];
    let (v, outside) = check_refinement(k);
    println!("blender K: {v} vertices, {outside} projected outside the maps");
}

#[test]
fn refinement_stages_gpu_match_cpu_reference_with_vertices_projected_outside_the_maps() {
    // A 4x longer focal length pushes most vertices outside [-1, 1]: the bottleneck's zero
    // padding (taps outside the map weigh nothing) on both of each thread's vertices.
    let k = [
        8.75, 0.0, 0.0, 0.0, 0.0, 8.75, 0.0, 0.0, 0.0, 0.0, -1.002002, -0.2002002, 0.0, 0.0, -1.0,
        0.0,
    ];
    let (v, outside) = check_refinement(k);
    println!("wide K: {v} vertices, {outside} projected outside the maps");
    assert!(outside > v / 4 && outside < v, "{outside} of {v} outside");
}

/// Runs two refinement stages on the GPU and the CPU references with camera `k`; returns the
/// vertex count and how many of them stage 0 projects outside the feature maps.
fn check_refinement(k: [f32; 16]) -> (usize, usize) {
    let ctx = ctx();
    let mut rng = Rng::new(23);
    // A mesh from random logits in the camera frame, as the model makes it.
    let logits = grid(&mut rng, [10, 10, 10], |r, _| r.uniform(3.0) - 2.0);
    let vox = ctx.upload("logits", &logits.data);
    let cub = CubifyGpu::new(
        ctx,
        &vox,
        [10, 10, 10],
        0.2,
        flag::SIGMOID | flag::FALLBACK | flag::WORLD,
    )
    .expect("cubify");
    let (probs, _) = occupancy_probs(&logits, 0.2).expect("probs");
    let mut mesh = cubify(&probs, 0.2).expect("cubify").remove(0);
    mesh.verts.iter_mut().for_each(|p| *p = voxel_to_world(*p));
    let edges = edges_packed(&mesh.faces);
    let v = mesh.verts.len();
    let hidden = 32;
    let maps = [[8, 9, 9], [8, 5, 5], [16, 3, 3], [8, 2, 2]];
    let feats: Vec<Tensor> = maps
        .iter()
        .map(|&[c, h, w]| rng.tensor(&[1, c, h, w], 1.0))
        .collect();
    let total: usize = maps.iter().map(|m| m[0]).sum();
    let mut cpu_lin = |out: usize, inp: usize, scale: f32| CpuLinear {
        w: rng.tensor(&[out, inp], scale / (inp as f32).sqrt()),
        b: rng.tensor(&[out], 0.1),
    };
    let mut stages_cpu = Vec::new();
    for s in 0..2 {
        let in0 = if s == 0 { hidden + 3 } else { 2 * hidden + 3 };
        let bn = cpu_lin(hidden, total, 2.0);
        let gc: Vec<(CpuLinear, CpuLinear)> = (0..3)
            .map(|g| {
                let inp = if g == 0 { in0 } else { hidden + 3 };
                (cpu_lin(hidden, inp, 1.0), cpu_lin(hidden, inp, 0.3))
            })
            .collect();
        let off = cpu_lin(3, hidden + 3, 1.0);
        stages_cpu.push((bn, gc, off));
    }
    let up = |l: &CpuLinear, name: &str| {
        LinearGpu::upload(ctx, name, &l.w.data, &l.b.data, l.w.shape[0], l.w.shape[1])
            .expect("upload")
    };
    let weights = HeadWeightsGpu {
        k,
        stages: stages_cpu
            .iter()
            .map(|(bn, gc, off)| StageWeightsGpu {
                bottleneck: up(bn, "bn"),
                gconvs: gc.iter().map(|(a, b)| (up(a, "w0"), up(b, "w1"))).collect(),
                vert_offset: up(off, "off"),
            })
            .collect(),
    };
    let fbufs: Vec<wgpu::Buffer> = feats.iter().map(|f| ctx.upload("feat", &f.data)).collect();
    let fm: Vec<FeatureMap<'_>> = fbufs
        .iter()
        .zip(&maps)
        .map(|(b, &chw)| FeatureMap { buffer: b, chw })
        .collect();
    let input = MeshInput {
        counts: &cub.counts,
        args: &cub.args,
        verts: &cub.verts,
        adj_offset: &cub.adj_offset,
        adj: &cub.adj,
        vert_cap: cub.lattice,
    };
    let refine = RefineGpu::new(ctx, input, &fm, &weights, false).expect("refine");
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    cub.clear(&mut enc);
    let mut all: Vec<&MeshLaunch> = cub.launches.iter().collect();
    all.extend(refine.launches.iter());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for l in all {
            pass.set_pipeline(&l.launch.kernel.pipeline);
            pass.set_bind_group(0, &l.launch.bind_group, &[]);
            match l.indirect {
                Some(o) => pass.dispatch_workgroups_indirect(&cub.args, o),
                None => pass.dispatch_workgroups(
                    l.launch.workgroups[0],
                    l.launch.workgroups[1],
                    l.launch.workgroups[2],
                ),
            }
        }
    }
    ctx.queue.submit([enc.finish()]);
    assert_eq!(cub.read_counts(ctx).expect("counts").verts, v);
    let mut verts: Vec<f32> = mesh.verts.iter().flatten().copied().collect();
    let mut prev: Option<Tensor> = None;
    let mut outside = 0;
    for (s, (bn, gc, off)) in stages_cpu.iter().enumerate() {
        let want = cpu_stage(&k, &feats, &verts, prev.as_ref(), &edges, bn, gc, off);
        if s == 0 {
            let out = |p: &[f32]| p[0].abs() > 1.0 || p[1].abs() > 1.0;
            outside = want.pos.chunks(3).filter(|p| out(p)).count();
        }
        let got_verts = ctx.read(&refine.stage_verts[s], v * 3).expect("verts");
        let got_off = ctx.read(&refine.stage_offsets[s], v * 3).expect("offsets");
        rel(&format!("stage {s} offsets"), &got_off, &want.offsets, 1e-4);
        rel(&format!("stage {s} verts"), &got_verts, &want.verts, 1e-4);
        if s + 1 == stages_cpu.len() {
            let ld0 = 2 * hidden + 3;
            let x0 = ctx.read(&refine.x0, v * ld0).expect("x0");
            rel(
                "last stage pos",
                &columns(&x0, v, ld0, hidden, 3),
                &want.pos,
                1e-5,
            );
            rel(
                "last stage bottleneck",
                &columns(&x0, v, ld0, 0, hidden),
                &want.bottleneck.data,
                1e-4,
            );
            rel(
                "last stage gconv2 (prev)",
                &columns(&x0, v, ld0, hidden + 3, hidden),
                &want.gconvs[2].data,
                1e-4,
            );
            let h2 = ctx.read(&refine.h2, v * (hidden + 3)).expect("h2");
            rel(
                "last stage gconv1",
                &columns(&h2, v, hidden + 3, 0, hidden),
                &want.gconvs[1].data,
                1e-4,
            );
        }
        verts = want.verts;
        prev = want.gconvs.last().cloned();
    }
    (v, outside)
}
