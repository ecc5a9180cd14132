//! `voxmesh_r50` on the CPU interpreter against meshrcnn/pytorch3d's stage tensors
//! (`fixtures/mesh/voxmesh_r50.safetensors`, rule weights overridden by its `state.*`). Each mesh
//! stage is fed that stage's reference inputs; tolerances are the fixtures README's.

use std::error::Error;
use std::time::Instant;

use wgcnn_graph::mesh::{TriMesh, cubify, edges_packed, voxel_to_world};
use wgcnn_graph::{Tensor, WeightSource, interp};
use wgcnn_io::{Fixture, RuleWeights, fixture_path, rule_tensor};
use wgcnn_models::BuildOptions;
use wgcnn_models::mesh::{
    CleanKeys, GraphKeys, MeshHead, VOXEL_THRESHOLD, cubify_world, mesh_head_keys, voxmesh_r50,
};

type TestResult = Result<(), Box<dyn Error>>;

fn fixture() -> Result<Fixture, Box<dyn Error>> {
    Ok(Fixture::open(fixture_path("mesh/voxmesh_r50.safetensors"))?)
}

/// The fixture's weights: the rule for every graph and head key, overridden by `state.*`.
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

fn rows3(t: &Tensor) -> Vec<[f32; 3]> {
    t.data.chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
}

fn as_tensor(rows: &[[f32; 3]]) -> Tensor {
    Tensor {
        shape: vec![rows.len(), 3],
        data: rows.iter().flatten().copied().collect(),
    }
}

fn index_rows<const K: usize>(t: &Tensor) -> Vec<[u32; K]> {
    t.data
        .chunks(K)
        .map(|c| std::array::from_fn(|i| c[i] as u32))
        .collect()
}

/// `max |got - want| / max(1, |want|)` per coordinate (the README's vertex tolerance).
fn coord_error(got: &[[f32; 3]], want: &[[f32; 3]]) -> f32 {
    assert_eq!(got.len(), want.len(), "vertex counts");
    got.iter()
        .flatten()
        .zip(want.iter().flatten())
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .fold(0.0, f32::max)
}

fn check_rel(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let err = got.rel_error(want);
    println!("{what}: rel error {err:.2e}");
    assert_eq!(got.shape, want.shape, "{what}: shape");
    assert!(err <= tol, "{what}: rel error {err} > {tol}");
}

fn check_mesh(what: &str, mesh: &TriMesh, verts: &Tensor, faces: &Tensor) {
    let want_faces = index_rows::<3>(faces);
    assert_eq!(mesh.faces.len(), want_faces.len(), "{what}: face count");
    if let Some(i) = (0..want_faces.len()).find(|&i| mesh.faces[i] != want_faces[i]) {
        panic!(
            "{what}: face {i} {:?}, want {:?}",
            mesh.faces[i], want_faces[i]
        );
    }
    let err = coord_error(&mesh.verts, &rows3(verts));
    println!(
        "{what}: {} verts, {} faces, vertex error {err:.2e}",
        mesh.verts.len(),
        mesh.faces.len()
    );
    assert!(err <= 1e-6, "{what}: vertex error {err}");
}

#[test]
fn voxmesh_backbone_and_voxel_logits_match_meshrcnn() -> TestResult {
    let fx = fixture()?;
    let w = weights(&fx)?;
    let mut graph = voxmesh_r50(&BuildOptions::square(137, 1))?;
    graph.bind(&GraphKeys(&w))?;
    let start = Instant::now();
    let out = interp::run(&graph, &[fx.tensor("input")?])?;
    println!(
        "backbone + voxel head: {:.2?} on the interpreter",
        start.elapsed()
    );
    for (i, name) in [
        "backbone.res2",
        "backbone.res3",
        "backbone.res4",
        "backbone.res5",
        "voxel.logits",
    ]
    .iter()
    .enumerate()
    {
        let want = fx.tensor(name)?;
        check_rel(name, &out[i], &want, 1e-3);
        assert!(
            out[i].allclose_fixture(&want),
            "{name}: outside the fixture tolerance"
        );
    }
    // Occupancy must match exactly, so the whole mesh does.
    let (meshes, fired) = cubify_world(&out[4])?;
    assert_eq!(fired, [false], "the fallback must not fire on the fixture");
    check_mesh(
        "mesh from our logits",
        &meshes[0],
        &fx.tensor("mesh.world_verts.init")?,
        &fx.tensor("cubify.faces")?,
    );
    Ok(())
}

#[test]
fn voxmesh_cubify_world_and_edges_match_pytorch3d() -> TestResult {
    let fx = fixture()?;
    let logits = fx.tensor("voxel.logits")?;
    let (probs, _) = wgcnn_graph::mesh::occupancy_probs(&logits, VOXEL_THRESHOLD)?;
    let voxel_space = cubify(&probs, VOXEL_THRESHOLD)?;
    check_mesh(
        "cubify",
        &voxel_space[0],
        &fx.tensor("cubify.verts")?,
        &fx.tensor("cubify.faces")?,
    );
    let world: Vec<[f32; 3]> = voxel_space[0]
        .verts
        .iter()
        .map(|&p| voxel_to_world(p))
        .collect();
    let err = coord_error(&world, &rows3(&fx.tensor("mesh.world_verts.init")?));
    println!("voxel_to_world: error {err:.2e}");
    assert!(err <= 1e-6);
    let edges = edges_packed(&voxel_space[0].faces);
    assert_eq!(edges, index_rows::<2>(&fx.tensor("edges")?), "edges");
    println!("{} edges", edges.len());
    Ok(())
}

#[test]
fn voxmesh_refinement_stages_match_meshrcnn_on_reference_inputs() -> TestResult {
    let fx = fixture()?;
    let head = MeshHead::load(&weights(&fx)?)?;
    let feats: Vec<Tensor> = (2..=5)
        .map(|i| fx.tensor(&format!("backbone.res{i}")))
        .collect::<Result<_, _>>()?;
    let feats: Vec<&Tensor> = feats.iter().collect();
    let edges = index_rows::<2>(&fx.tensor("edges")?);
    for s in 0..3 {
        let verts = rows3(&fx.tensor(&if s == 0 {
            "mesh.world_verts.init".to_string()
        } else {
            format!("stage{}.verts", s - 1)
        })?);
        let prev = if s == 0 {
            None
        } else {
            Some(fx.tensor(&format!("stage{}.gconv2", s - 1))?)
        };
        let start = Instant::now();
        let t = head.stage(s, &feats, &verts, prev.as_ref(), &edges)?;
        println!("stage {s}: {:.2?} on the CPU", start.elapsed());
        let p = format!("stage{s}");
        let err = coord_error(&t.proj, &rows3(&fx.tensor(&format!("{p}.proj"))?));
        println!("{p}.proj: error {err:.2e}");
        assert!(err <= 1e-6, "{p}.proj error {err}");
        let first64 = Tensor::new(&[64, 3840], t.aligned.data[..64 * 3840].to_vec())?;
        check_rel(
            &format!("{p}.vert_align.first64"),
            &first64,
            &fx.tensor(&format!("{p}.vert_align.first64"))?,
            1e-4,
        );
        check_rel(
            &format!("{p}.bottleneck"),
            &t.bottleneck,
            &fx.tensor(&format!("{p}.bottleneck"))?,
            1e-4,
        );
        for (g, y) in t.gconvs.iter().enumerate() {
            check_rel(
                &format!("{p}.gconv{g}"),
                y,
                &fx.tensor(&format!("{p}.gconv{g}"))?,
                1e-4,
            );
        }
        check_rel(
            &format!("{p}.offsets"),
            &as_tensor(&t.offsets),
            &fx.tensor(&format!("{p}.offsets"))?,
            1e-4,
        );
        check_rel(
            &format!("{p}.verts"),
            &as_tensor(&t.verts),
            &fx.tensor(&format!("{p}.verts"))?,
            1e-4,
        );
    }
    Ok(())
}

#[test]
fn voxmesh_end_to_end_mesh_matches_meshrcnn_output() -> TestResult {
    let fx = fixture()?;
    let w = weights(&fx)?;
    let head = MeshHead::load(&w)?;
    let mut graph = voxmesh_r50(&BuildOptions::square(137, 1))?;
    graph.bind(&GraphKeys(&w))?;
    let start = Instant::now();
    let out = interp::run(&graph, &[fx.tensor("input")?])?;
    let backbone = start.elapsed();
    let (meshes, _) = cubify_world(&out[4])?;
    let edges = edges_packed(&meshes[0].faces);
    let feats: Vec<&Tensor> = out[..4].iter().collect();
    let traces = head.refine(&feats, &meshes[0].verts, &edges)?;
    println!(
        "end to end: backbone + voxels {backbone:.2?}, total {:.2?}; V {} F {} E {}",
        start.elapsed(),
        meshes[0].verts.len(),
        meshes[0].faces.len(),
        edges.len()
    );
    let last = traces.last().ok_or("no stages")?;
    check_rel(
        "output.verts",
        &as_tensor(&last.verts),
        &fx.tensor("output.verts")?,
        1e-3,
    );
    assert_eq!(
        meshes[0].faces,
        index_rows::<3>(&fx.tensor("output.faces")?),
        "output faces"
    );
    Ok(())
}

/// A checkpoint saved from wrapped modules: key `i` gets `i % 3` leading `module.` prefixes, so
/// some keys have none, one or two (what meshrcnn's `clean_state_dict` undoes).
struct Wrapped<'a>(&'a dyn WeightSource);

fn unwrap_key(key: &str) -> &str {
    let mut k = key;
    while let Some(rest) = k.strip_prefix("module.") {
        k = rest;
    }
    k
}

impl WeightSource for Wrapped<'_> {
    fn keys(&self) -> Vec<String> {
        let keys = self.0.keys().into_iter().enumerate();
        keys.map(|(i, k)| format!("{}{k}", "module.".repeat(i % 3)))
            .collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.0.shape(unwrap_key(key))
    }

    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        self.0.load(unwrap_key(key))
    }
}

#[test]
fn voxmesh_keys_with_mixed_module_prefixes_bind_and_load_through_clean_keys() -> TestResult {
    let fx = fixture()?;
    let w = weights(&fx)?;
    let wrapped = Wrapped(&w);
    let prefixed = wrapped
        .keys()
        .iter()
        .filter(|k| k.starts_with("module."))
        .count();
    let clean = CleanKeys::new(&wrapped);
    assert_eq!(clean.keys(), w.keys(), "keys cleaned, order kept");
    assert!(clean.shape("module.K").is_none(), "only cleaned keys exist");
    let head_keys = mesh_head_keys();
    for (key, shape) in &head_keys {
        assert_eq!(clean.shape(key).as_ref(), Some(shape), "{key}");
        assert_eq!(clean.load(key)?, w.load(key)?, "{key}");
    }
    MeshHead::load(&clean)?;
    let mut graph = voxmesh_r50(&BuildOptions::square(137, 1))?;
    graph.bind(&GraphKeys(&clean))?;
    println!(
        "{prefixed} of {} keys wrapped in module. prefixes; graph bound, {} head keys loaded",
        w.keys().len(),
        head_keys.len()
    );
    assert!(prefixed > 100);
    Ok(())
}
