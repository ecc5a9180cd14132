//! Mesh R-CNN `voxmesh_r50` on the GPU against meshrcnn/pytorch3d's tensors
//! (`fixtures/mesh/voxmesh_r50.safetensors`, rule weights overridden by its `state.*`):
//! cubify and edges exactly from the reference logits, each refinement stage on that stage's
//! reference inputs, then the whole model in one submission from the image, with per-step
//! times on whatever adapter runs the tests.

use std::error::Error;
use std::sync::OnceLock;
use std::time::Instant;

use wgcnn::wgcnn_graph::{Tensor, WeightSource};
use wgcnn::wgcnn_io::{Fixture, RuleWeights, fixture_path, rule_tensor};
use wgcnn::wgcnn_kernels::mesh::{
    CubifyGpu, FeatureMap, HeadWeightsGpu, LinearGpu, MeshInput, MeshLaunch, MeshParams, RefineGpu,
    StageWeightsGpu, args_buffer, direct, encode, flag, launch_on, read_u32, slot, specs,
};
use wgcnn::wgcnn_models::BuildOptions;
use wgcnn::wgcnn_models::mesh::{GraphKeys, MeshHead, mesh_head_keys, voxmesh_r50};
use wgcnn::{Engine, EngineOptions, MeshPredictor, MeshRequest, MeshStage};

type TestResult = Result<(), Box<dyn Error>>;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(&EngineOptions::default()).expect("a GPU adapter (lavapipe in CI)")
    })
}

fn fixture() -> Result<Fixture, Box<dyn Error>> {
    Ok(Fixture::open(fixture_path("mesh/voxmesh_r50.safetensors"))?)
}

/// The fixture's weights: the rule for every key, overridden by `state.*`.
fn weights(fx: &Fixture) -> Result<RuleWeights, Box<dyn Error>> {
    let graph = voxmesh_r50(&BuildOptions::square(137, 1))?;
    let mut w = fx.weights_for(&graph);
    for (key, shape) in mesh_head_keys() {
        if w.shape(&key).is_none() {
            let data = rule_tensor(&key, &shape).ok_or("rule leaves a head key alone")?;
            w.set(&key, Tensor::new(&shape, data)?);
        }
    }
    Ok(w)
}

fn rel(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let diff = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    println!("{what}: rel error {:.2e}", diff / scale);
    assert!(diff <= tol * scale, "{what}: rel error {}", diff / scale);
}

/// `max |got - want| / max(1, |want|)` (the README's vertex tolerance).
fn coord_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "vertex count");
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .fold(0.0, f32::max)
}

fn as_u32(t: &Tensor) -> Vec<u32> {
    t.data.iter().map(|&x| x as u32).collect()
}

fn columns(data: &[f32], rows: usize, ld: usize, from: usize, n: usize) -> Vec<f32> {
    (0..rows)
        .flat_map(|r| data[r * ld + from..r * ld + from + n].to_vec())
        .collect()
}

fn stage_weights(ctx: &wgcnn::wgcnn_kernels::Context, head: &MeshHead, s: usize) -> HeadWeightsGpu {
    let lin = |l: &wgcnn::wgcnn_models::mesh::LinearWeights| {
        LinearGpu::upload(
            ctx,
            "w",
            &l.weight.data,
            &l.bias.data,
            l.weight.shape[0],
            l.weight.shape[1],
        )
        .expect("upload")
    };
    let st = &head.stages[s];
    HeadWeightsGpu {
        k: head.k,
        stages: vec![StageWeightsGpu {
            bottleneck: lin(&st.bottleneck),
            gconvs: st.gconvs.iter().map(|g| (lin(&g.w0), lin(&g.w1))).collect(),
            vert_offset: lin(&st.vert_offset),
        }],
    }
}

fn submit(ctx: &wgcnn::wgcnn_kernels::Context, cub: &CubifyGpu, launches: &[&MeshLaunch]) {
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    cub.clear(&mut enc);
    encode_refs(&mut enc, launches, &cub.args);
    ctx.queue.submit([enc.finish()]);
    ctx.wait().expect("wait");
}

#[test]
fn voxmesh_gpu_cubify_edges_and_each_stage_match_meshrcnn_on_reference_inputs() -> TestResult {
    let fx = fixture()?;
    let ctx = engine().context();
    let head = MeshHead::load(&weights(&fx)?)?;
    let logits = ctx.upload("logits", &fx.tensor("voxel.logits")?.data);
    let cub = CubifyGpu::new(
        ctx,
        &logits,
        [48, 48, 48],
        0.2,
        flag::SIGMOID | flag::FALLBACK | flag::WORLD,
    )?;
    cub.run(ctx)?;
    let counts = cub.read_counts(ctx)?;
    println!("cubify on the GPU: {counts:?}");
    assert!(counts.any, "the fixture's grid is not empty");
    assert_eq!(
        read_u32(ctx, &cub.faces, counts.faces * 3)?,
        as_u32(&fx.tensor("cubify.faces")?),
        "faces"
    );
    assert_eq!(
        read_u32(ctx, &cub.edges, counts.edges * 2)?,
        as_u32(&fx.tensor("edges")?),
        "edges"
    );
    let err = coord_error(
        &ctx.read(&cub.verts, counts.verts * 3)?,
        &fx.tensor("mesh.world_verts.init")?.data,
    );
    println!("world vertices: error {err:.2e}");
    assert!(err <= 1e-6);

    let feats: Vec<Tensor> = (2..=5)
        .map(|i| fx.tensor(&format!("backbone.res{i}")))
        .collect::<Result<_, _>>()?;
    let fbufs: Vec<_> = feats.iter().map(|t| ctx.upload("feat", &t.data)).collect();
    let fm: Vec<FeatureMap<'_>> = fbufs
        .iter()
        .zip(&feats)
        .map(|(b, t)| FeatureMap {
            buffer: b,
            chw: [t.shape[1], t.shape[2], t.shape[3]],
        })
        .collect();
    let v = counts.verts;
    for s in 0..3 {
        let verts_in = fx.tensor(&if s == 0 {
            "mesh.world_verts.init".to_string()
        } else {
            format!("stage{}.verts", s - 1)
        })?;
        let vbuf = ctx.upload("verts", &verts_in.data);
        let w = stage_weights(ctx, &head, s);
        let input = MeshInput {
            counts: &cub.counts,
            args: &cub.args,
            verts: &vbuf,
            adj_offset: &cub.adj_offset,
            adj: &cub.adj,
            vert_cap: cub.lattice,
        };
        let refine = RefineGpu::new(ctx, input, &fm, &w, s > 0)?;
        if s > 0 {
            // The previous stage's features go where its last GraphConv would have put them.
            let prev = fx.tensor(&format!("stage{}.gconv2", s - 1))?;
            let mut x0 = vec![0f32; v * 259];
            for r in 0..v {
                x0[r * 259 + 131..r * 259 + 259]
                    .copy_from_slice(&prev.data[r * 128..(r + 1) * 128]);
            }
            ctx.queue.write_buffer(&refine.x0, 0, bytemuck_cast(&x0));
        }
        // Cubify again (it clears the counts), then the stage, in one submission.
        let all: Vec<&MeshLaunch> = cub.launches.iter().chain(&refine.launches).collect();
        submit(ctx, &cub, &all);
        let p = format!("stage{s}");
        let x0 = ctx.read(&refine.x0, v * 259)?;
        let err = coord_error(
            &columns(&x0, v, 259, 128, 3),
            &fx.tensor(&format!("{p}.proj"))?.data,
        );
        println!("{p}.proj: error {err:.2e}");
        assert!(err <= 1e-5, "{p}.proj");
        rel(
            &format!("{p}.bottleneck"),
            &columns(&x0, v, 259, 0, 128),
            &fx.tensor(&format!("{p}.bottleneck"))?.data,
            1e-4,
        );
        let h2 = ctx.read(&refine.h2, v * 131)?;
        rel(
            &format!("{p}.gconv1"),
            &columns(&h2, v, 131, 0, 128),
            &fx.tensor(&format!("{p}.gconv1"))?.data,
            1e-4,
        );
        rel(
            &format!("{p}.gconv2"),
            &columns(&x0, v, 259, 131, 128),
            &fx.tensor(&format!("{p}.gconv2"))?.data,
            1e-4,
        );
        rel(
            &format!("{p}.offsets"),
            &ctx.read(&refine.stage_offsets[0], v * 3)?,
            &fx.tensor(&format!("{p}.offsets"))?.data,
            1e-4,
        );
        rel(
            &format!("{p}.verts"),
            &ctx.read(&refine.stage_verts[0], v * 3)?,
            &fx.tensor(&format!("{p}.verts"))?.data,
            1e-4,
        );
    }
    Ok(())
}

fn bytemuck_cast(x: &[f32]) -> &[u8] {
    wgcnn::wgcnn_kernels::mesh::as_bytes(x)
}

#[test]
fn voxmesh_gpu_end_to_end_mesh_equals_meshrcnn_output_in_one_submission() -> TestResult {
    let fx = fixture()?;
    let w = weights(&fx)?;
    let start = Instant::now();
    let predictor = MeshPredictor::from_source(engine(), &w, 137)?;
    println!(
        "build (bind, plan, record, compile): {:.2?}",
        start.elapsed()
    );
    let input = fx.tensor("input")?;
    let want_faces = as_u32(&fx.tensor("output.faces")?);
    for run in 0..2 {
        let out = predictor.predict_input(&input, &MeshRequest::default())?;
        println!(
            "run {run}: V {} F {} E {}, gpu {:.2?}, read {:.2?}",
            out.verts.len(),
            out.faces.len(),
            out.edges,
            out.timings.gpu,
            out.timings.read
        );
        assert!(!out.fallback);
        let faces: Vec<u32> = out.faces.iter().flatten().copied().collect();
        assert_eq!(faces, want_faces, "faces");
        let verts: Vec<f32> = out.verts.iter().flatten().copied().collect();
        rel(
            "output.verts",
            &verts,
            &fx.tensor("output.verts")?.data,
            1e-3,
        );
    }
    for (stage, key) in [
        (MeshStage::Cubified, "mesh.world_verts.init"),
        (MeshStage::Refined(0), "stage0.verts"),
        (MeshStage::Refined(1), "stage1.verts"),
    ] {
        let out = predictor.predict_input(
            &input,
            &MeshRequest {
                stage,
                voxels: false,
            },
        )?;
        let verts: Vec<f32> = out.verts.iter().flatten().copied().collect();
        rel(key, &verts, &fx.tensor(key)?.data, 1e-3);
    }
    // Per-step times: the same work split into three submissions.
    let ctx = engine().context();
    let mut graph = voxmesh_r50(&BuildOptions::square(137, 1))?;
    graph.bind(&GraphKeys(&w))?;
    let plan = engine().plan(&graph)?;
    let head = MeshHead::load(&w)?;
    let cub = CubifyGpu::new(
        ctx,
        plan.output_buffer(4).ok_or("logits")?,
        [48, 48, 48],
        0.2,
        flag::SIGMOID | flag::FALLBACK | flag::WORLD,
    )?;
    let shapes = plan.output_shapes();
    let fm: Vec<FeatureMap<'_>> = (0..4)
        .map(|i| FeatureMap {
            buffer: plan.output_buffer(i).expect("map"),
            chw: [shapes[i][1], shapes[i][2], shapes[i][3]],
        })
        .collect();
    let hw = HeadWeightsGpu {
        k: head.k,
        stages: (0..3)
            .map(|s| stage_weights(ctx, &head, s).stages.remove(0))
            .collect(),
    };
    let input_mesh = MeshInput {
        counts: &cub.counts,
        args: &cub.args,
        verts: &cub.verts,
        adj_offset: &cub.adj_offset,
        adj: &cub.adj,
        vert_cap: cub.lattice,
    };
    let refine = RefineGpu::new(ctx, input_mesh, &fm, &hw, false)?;
    ctx.queue.write_buffer(
        plan.input_buffer(0).ok_or("input")?,
        0,
        bytemuck_cast(&input.data),
    );
    for round in 0..3 {
        let t = Instant::now();
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        plan.encode(&mut enc);
        ctx.queue.submit([enc.finish()]);
        ctx.wait()?;
        let backbone = t.elapsed();
        let t = Instant::now();
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        cub.encode(&mut enc);
        ctx.queue.submit([enc.finish()]);
        ctx.wait()?;
        let cubify = t.elapsed();
        // The dispatch-args launches, then each stage's own (labels `mesh_head.stages.{s}.*`),
        // split after the bottleneck (project + fused vert_align/bottleneck, then the rest).
        let mut times = Vec::new();
        for part in [
            "mesh.",
            "mesh_head.stages.0.",
            "mesh_head.stages.1.",
            "mesh_head.stages.2.",
        ] {
            let group: Vec<&MeshLaunch> = refine
                .launches
                .iter()
                .filter(|l| l.launch.label.starts_with(part))
                .collect();
            let split = group
                .iter()
                .rposition(|l| l.launch.label.ends_with("bottleneck"))
                .map_or(0, |i| i + 1);
            for launches in [&group[..split], &group[split..]] {
                let t = Instant::now();
                let mut enc = ctx.device.create_command_encoder(&Default::default());
                encode_refs(&mut enc, launches, &cub.args);
                ctx.queue.submit([enc.finish()]);
                ctx.wait()?;
                times.push(t.elapsed());
            }
        }
        let stage = |s: usize| format!("{:.1?} + {:.1?}", times[2 * s], times[2 * s + 1]);
        println!(
            "round {round} on {}: backbone + voxel head {backbone:.2?}, cubify + edges + adjacency {cubify:.2?}, refinement stages (bottleneck + rest) {} / {} / {}",
            ctx.info.name,
            stage(1),
            stage(2),
            stage(3)
        );
    }
    let verts = ctx.read(&refine.stage_verts[2], 1194 * 3)?;
    rel(
        "split-submission output.verts",
        &verts,
        &fx.tensor("output.verts")?.data,
        1e-3,
    );
    Ok(())
}

#[test]
fn cubify_gpu_matches_pytorch3d_on_every_ops_fixture_case() -> TestResult {
    let fx = Fixture::open(fixture_path("mesh/ops.safetensors"))?;
    let ctx = engine().context();
    for case in 0..10 {
        let p = format!("cubify.case{case}");
        let voxels = fx.tensor(&format!("{p}.voxels"))?;
        let thresh = fx.tensor(&format!("{p}.thresh"))?.data[0];
        let nv = as_u32(&fx.tensor(&format!("{p}.num_verts"))?);
        let nf = as_u32(&fx.tensor(&format!("{p}.num_faces"))?);
        let want_v = fx.tensor(&format!("{p}.verts"))?.data;
        let want_f = as_u32(&fx.tensor(&format!("{p}.faces"))?);
        let [n, d, h, w] = <[usize; 4]>::try_from(voxels.shape.as_slice())?;
        let (mut vo, mut fo) = (0, 0);
        for b in 0..n {
            let per = d * h * w;
            let buf = ctx.upload("voxels", &voxels.data[b * per..(b + 1) * per]);
            let cub = CubifyGpu::new(ctx, &buf, [d, h, w], thresh, 0)?;
            cub.run(ctx)?;
            let c = cub.read_counts(ctx)?;
            let (v, f) = (nv[b] as usize, nf[b] as usize);
            assert_eq!((c.verts, c.faces), (v, f), "{p} mesh {b}: counts");
            let faces = read_u32(ctx, &cub.faces, f * 3)?;
            assert_eq!(faces, want_f[fo * 3..(fo + f) * 3], "{p} mesh {b}: faces");
            let verts = ctx.read(&cub.verts, v * 3)?;
            let err = coord_error(&verts, &want_v[vo * 3..(vo + v) * 3]);
            assert!(err <= 1e-6, "{p} mesh {b}: vertex error {err}");
            if fx.contains(&format!("{p}.edges")) {
                let edges = read_u32(ctx, &cub.edges, c.edges * 2)?;
                assert_eq!(
                    edges,
                    as_u32(&fx.tensor(&format!("{p}.edges"))?),
                    "{p}: edges"
                );
            }
            println!(
                "{p} mesh {b}: V {v} F {f} E {}, vertex error {err:.1e}",
                c.edges
            );
            vo += v;
            fo += f;
        }
    }
    Ok(())
}

#[test]
fn vert_align_and_graph_conv_gpu_match_pytorch3d_ops_fixture() -> TestResult {
    let fx = Fixture::open(fixture_path("mesh/ops.safetensors"))?;
    let ctx = engine().context();
    let feats: Vec<Tensor> = (0..3)
        .map(|i| fx.tensor(&format!("vert_align.feats.{i}")))
        .collect::<Result<_, _>>()?;
    let verts = fx.tensor("vert_align.verts")?;
    let (n, v) = (verts.shape[0], verts.shape[1]);
    let total: usize = feats.iter().map(|f| f.shape[1]).sum();
    let counts = ctx.storage("counts", 32);
    let args = args_buffer(ctx, 1);
    for (key, pflag) in [("zeros", 0), ("border", flag::BORDER)] {
        let want = fx.tensor(&format!("vert_align.{key}"))?;
        let mut got = Vec::new();
        for b in 0..n {
            let pts = ctx.upload("points", &verts.data[b * v * 3..(b + 1) * v * 3]);
            let out = ctx.storage("out", (v * total * 4) as u64);
            let maps: Vec<_> = feats
                .iter()
                .map(|f| {
                    let per = f.shape[1] * f.shape[2] * f.shape[3];
                    ctx.upload("map", &f.data[b * per..(b + 1) * per])
                })
                .collect();
            let mut launches = Vec::new();
            let mut col = 0;
            for (m, f) in maps.iter().zip(&feats) {
                let p = MeshParams {
                    flags: pflag,
                    map_c: f.shape[1] as u32,
                    map_h: f.shape[2] as u32,
                    map_w: f.shape[3] as u32,
                    ld_y: total as u32,
                    col_y: col as u32,
                    ..MeshParams::elements(v)
                };
                launches.push(direct(
                    ctx,
                    "vert_align",
                    &specs::VERT_ALIGN,
                    &p,
                    &[&pts, m, &counts, &out],
                    v * f.shape[1],
                ));
                col += f.shape[1];
            }
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            encode(&mut enc, &launches, &args);
            ctx.queue.submit([enc.finish()]);
            got.extend(ctx.read(&out, v * total)?);
        }
        rel(&format!("vert_align {key}"), &got, &want.data, 1e-4);
    }

    // GraphConv cases 0 (4 -> 3) and 1 (259 -> 128) through the model's two kernels and a CSR
    // from their edges. The kernels make 16 output features per workgroup column: case 0's
    // weights are zero-padded to 16 rows and the first 3 columns of each row compared.
    for case in 0..2 {
        graph_conv_case(ctx, &fx, case, &counts, &args)?;
    }
    Ok(())
}

fn graph_conv_case(
    ctx: &wgcnn::wgcnn_kernels::Context,
    fx: &Fixture,
    case: usize,
    counts: &wgpu::Buffer,
    args: &wgpu::Buffer,
) -> TestResult {
    let p = format!("graphconv.case{case}");
    let t = |k: &str| fx.tensor(&format!("{p}.{k}"));
    let x = t("x")?;
    let (v, din) = (x.shape[0], x.shape[1]);
    let dout = t("w0.weight")?.shape[0];
    let dp = dout.next_multiple_of(16);
    let padded = |k: &str| -> Result<Vec<f32>, Box<dyn std::error::Error>> {
        let mut d = t(k)?.data;
        d.resize(d.len() / dout * dp, 0.0);
        Ok(d)
    };
    let edges = as_u32(&t("edges")?);
    let mut nb = vec![Vec::new(); v];
    for e in edges.chunks(2) {
        nb[e[0] as usize].push(e[1]);
        nb[e[1] as usize].push(e[0]);
    }
    let mut off = vec![0u32];
    let mut adj = Vec::new();
    for mut l in nb {
        l.sort_unstable();
        adj.extend(l);
        off.push(adj.len() as u32);
    }
    let bits = |d: &[u32]| -> Vec<f32> { d.iter().map(|&u| f32::from_bits(u)).collect() };
    let (w0, w1) = (
        LinearGpu::upload(
            ctx,
            "w0",
            &padded("w0.weight")?,
            &padded("w0.bias")?,
            dp,
            din,
        )?,
        LinearGpu::upload(
            ctx,
            "w1",
            &padded("w1.weight")?,
            &padded("w1.bias")?,
            dp,
            din,
        )?,
    );
    let xb = ctx.upload("x", &x.data);
    let (y0, y1) = (
        ctx.storage("y0", (v * dp * 4) as u64),
        ctx.storage("y1", (v * dp * 4) as u64),
    );
    // The CSR holds no edges in case 0's empty rows; a binding must not be empty.
    adj.resize(adj.len().max(1), 0);
    let (offb, adjb) = (
        ctx.upload("off", &bits(&off)),
        ctx.upload("adj", &bits(&adj)),
    );
    let pos = ctx.storage("pos", (v * 12) as u64);
    let (out, out2) = (
        ctx.storage("out", (v * dp * 4) as u64),
        ctx.storage("out2", 4),
    );
    let lp = MeshParams {
        in_f: din as u32,
        out_f: dp as u32,
        ld_x: din as u32,
        ..MeshParams::elements(v)
    };
    let gp = MeshParams {
        out_f: dp as u32,
        ld_y: dp as u32,
        ..MeshParams::elements(v)
    };
    assert_eq!(lp.count_slot, slot::NONE);
    let launches = vec![
        MeshLaunch {
            launch: launch_on(
                ctx,
                "gconv.linear",
                &specs::GCONV_LINEAR,
                &lp,
                &[
                    &xb,
                    &w0.weight_t,
                    &w0.bias,
                    &w1.weight_t,
                    &w1.bias,
                    counts,
                    &y0,
                    &y1,
                ],
                [v.div_ceil(256) as u32, (dp / 16) as u32, 1],
            ),
            indirect: None,
        },
        direct(
            ctx,
            "gconv.gather",
            &specs::GCONV_GATHER,
            &gp,
            &[&y0, &y1, &offb, &adjb, &pos, counts, &out, &out2],
            v * dp,
        ),
    ];
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    encode(&mut enc, &launches, args);
    ctx.queue.submit([enc.finish()]);
    let got: Vec<f32> = ctx
        .read(&out, v * dp)?
        .chunks(dp)
        .flat_map(|row| row[..dout].to_vec())
        .collect();
    rel(&p, &got, &t("output")?.data, 1e-4);
    Ok(())
}

/// Encodes borrowed launches (some indirect, from `args`) in one compute pass.
fn encode_refs(enc: &mut wgpu::CommandEncoder, launches: &[&MeshLaunch], args: &wgpu::Buffer) {
    let mut pass = enc.begin_compute_pass(&Default::default());
    for l in launches {
        pass.set_pipeline(&l.launch.kernel.pipeline);
        pass.set_bind_group(0, &l.launch.bind_group, &[]);
        match l.indirect {
            Some(o) => pass.dispatch_workgroups_indirect(args, o),
            None => {
                let [x, y, z] = l.launch.workgroups;
                pass.dispatch_workgroups(x, y, z)
            }
        }
    }
}

#[test]
fn voxmesh_gpu_empty_voxels_fall_back_to_meshrcnns_cube_and_match_the_cpu_model() -> TestResult {
    let fx = fixture()?;
    let mut w = weights(&fx)?;
    // Every logit far below the threshold: meshrcnn cubifies the block [12, 36)^3 instead.
    w.set(
        "voxel_head.predictor.bias",
        Tensor::new(&[48], vec![-100.0; 48])?,
    );
    let predictor = MeshPredictor::from_source(engine(), &w, 137)?;
    let input = fx.tensor("input")?;
    let out = predictor.predict_input(&input, &MeshRequest::default())?;
    println!(
        "fallback: V {} F {} E {}, gpu {:.2?}",
        out.verts.len(),
        out.faces.len(),
        out.edges,
        out.timings.gpu
    );
    assert!(out.fallback, "the fallback must be reported");
    assert_eq!(
        (out.verts.len(), out.faces.len()),
        (25 * 25 * 25 - 23 * 23 * 23, 6 * 24 * 24 * 2)
    );

    // The same on the CPU: interpreter backbone, cubify_world, MeshHead::refine.
    let mut graph = voxmesh_r50(&BuildOptions::square(137, 1))?;
    graph.bind(&GraphKeys(&w))?;
    let maps = wgcnn::wgcnn_graph::interp::run(&graph, &[input])?;
    let (meshes, fired) = wgcnn::wgcnn_models::mesh::cubify_world(&maps[4])?;
    assert_eq!(fired, [true]);
    let faces: Vec<[u32; 3]> = meshes[0].faces.clone();
    assert_eq!(out.faces, faces, "fallback faces");
    let edges = wgcnn::wgcnn_graph::mesh::edges_packed(&faces);
    assert_eq!(out.edges, edges.len());
    let head = MeshHead::load(&w)?;
    let feats: Vec<&Tensor> = maps[..4].iter().collect();
    let traces = head.refine(&feats, &meshes[0].verts, &edges)?;
    let want: Vec<f32> = traces[2].verts.iter().flatten().copied().collect();
    let got: Vec<f32> = out.verts.iter().flatten().copied().collect();
    rel("fallback mesh vs the CPU model", &got, &want, 1e-3);
    Ok(())
}
