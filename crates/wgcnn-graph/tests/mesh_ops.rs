//! The mesh operators against pytorch3d/meshrcnn (`fixtures/mesh/ops.safetensors`): cubify's
//! vertices and faces exactly in pytorch3d's order, edges exactly, vert_align and GraphConv within
//! `1e-4·max|want|`, the coordinate transforms within `1e-6·max(1, |want|)`.

use std::error::Error;

use wgcnn_graph::Tensor;
use wgcnn_graph::mesh::{
    SamplePadding, cubify, edges_packed, graph_conv, project_vert, vert_align, voxel_to_world,
};
use wgcnn_io::{Fixture, fixture_path};

type TestResult = Result<(), Box<dyn Error>>;

fn ops() -> Result<Fixture, Box<dyn Error>> {
    Ok(Fixture::open(fixture_path("mesh/ops.safetensors"))?)
}

fn rows3(t: &Tensor) -> Vec<[f32; 3]> {
    t.data.chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
}

fn index_rows<const K: usize>(t: &Tensor) -> Vec<[u32; K]> {
    t.data
        .chunks(K)
        .map(|c| std::array::from_fn(|i| c[i] as u32))
        .collect()
}

/// Largest `|got - want| / max(1, |want|)` over matching coordinates.
fn coord_error(got: &[[f32; 3]], want: &[[f32; 3]]) -> f32 {
    got.iter()
        .flatten()
        .zip(want.iter().flatten())
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .fold(0.0, f32::max)
}

#[test]
fn cubify_matches_pytorch3d_vertices_and_faces_in_order() -> TestResult {
    let f = ops()?;
    for case in 0..10 {
        let p = format!("cubify.case{case}");
        let voxels = f.tensor(&format!("{p}.voxels"))?;
        let thresh = f.tensor(&format!("{p}.thresh"))?.data[0];
        let meshes = cubify(&voxels, thresh)?;
        let nv: Vec<usize> = meshes.iter().map(|m| m.verts.len()).collect();
        let nf: Vec<usize> = meshes.iter().map(|m| m.faces.len()).collect();
        let want_nv: Vec<usize> = f
            .tensor(&format!("{p}.num_verts"))?
            .data
            .iter()
            .map(|&x| x as usize)
            .collect();
        let want_nf: Vec<usize> = f
            .tensor(&format!("{p}.num_faces"))?
            .data
            .iter()
            .map(|&x| x as usize)
            .collect();
        assert_eq!(nv, want_nv, "{p}: vertex counts");
        assert_eq!(nf, want_nf, "{p}: face counts");
        let verts: Vec<[f32; 3]> = meshes.iter().flat_map(|m| m.verts.clone()).collect();
        let faces: Vec<[u32; 3]> = meshes.iter().flat_map(|m| m.faces.clone()).collect();
        let want_verts = rows3(&f.tensor(&format!("{p}.verts"))?);
        let want_faces = index_rows::<3>(&f.tensor(&format!("{p}.faces"))?);
        let err = coord_error(&verts, &want_verts);
        println!("{p}: {nv:?} verts, {nf:?} faces, vertex error {err:.2e}");
        assert!(err <= 1e-6, "{p}: vertex error {err}");
        if let Some(i) = (0..faces.len()).find(|&i| faces[i] != want_faces[i]) {
            panic!(
                "{p}: face {i} is {:?}, pytorch3d has {:?}",
                faces[i], want_faces[i]
            );
        }
        if f.contains(&format!("{p}.edges")) {
            let edges = edges_packed(&meshes[0].faces);
            let want = index_rows::<2>(&f.tensor(&format!("{p}.edges"))?);
            println!("{p}: {} edges", edges.len());
            assert_eq!(edges, want, "{p}: edges");
        }
    }
    Ok(())
}

#[test]
fn edges_packed_matches_pytorch3d_unique_sorted_edges() -> TestResult {
    let f = ops()?;
    for case in 0..2 {
        let p = format!("graphconv.case{case}");
        let faces = index_rows::<3>(&f.tensor(&format!("{p}.faces"))?);
        let want = index_rows::<2>(&f.tensor(&format!("{p}.edges"))?);
        assert_eq!(edges_packed(&faces), want, "{p}: edges");
    }
    Ok(())
}

#[test]
fn vert_align_matches_grid_sample_zeros_and_border() -> TestResult {
    let f = ops()?;
    let feats: Vec<Tensor> = (0..3)
        .map(|i| f.tensor(&format!("vert_align.feats.{i}")))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&Tensor> = feats.iter().collect();
    let verts = f.tensor("vert_align.verts")?;
    for (padding, key) in [
        (SamplePadding::Zeros, "zeros"),
        (SamplePadding::Border, "border"),
    ] {
        let got = vert_align(&refs, &verts, padding)?;
        let want = f.tensor(&format!("vert_align.{key}"))?;
        let err = got.rel_error(&want);
        println!("vert_align {key}: rel error {err:.2e}");
        assert_eq!(got.shape, want.shape);
        assert!(err <= 1e-4, "vert_align {key}: rel error {err}");
    }
    Ok(())
}

#[test]
fn graph_conv_matches_pytorch3d_with_degree_scaled_bias() -> TestResult {
    let f = ops()?;
    for case in 0..2 {
        let p = format!("graphconv.case{case}");
        let t = |k: &str| f.tensor(&format!("{p}.{k}"));
        let edges = index_rows::<2>(&t("edges")?);
        let (w0, b0, w1, b1) = (
            t("w0.weight")?,
            t("w0.bias")?,
            t("w1.weight")?,
            t("w1.bias")?,
        );
        let got = graph_conv(&t("x")?, &edges, (&w0, &b0), (&w1, &b1))?;
        let want = t("output")?;
        let err = got.rel_error(&want);
        println!("{p}: rel error {err:.2e}");
        assert!(err <= 1e-4, "{p}: rel error {err}");
    }
    Ok(())
}

#[test]
fn voxel_to_world_and_project_verts_match_meshrcnn() -> TestResult {
    let f = ops()?;
    let verts = rows3(&f.tensor("coords.voxel_to_world.verts")?);
    let want = rows3(&f.tensor("coords.voxel_to_world.output")?);
    let got: Vec<[f32; 3]> = verts.iter().map(|&v| voxel_to_world(v)).collect();
    let err = coord_error(&got, &want);
    println!("voxel_to_world: error {err:.2e}");
    assert!(err <= 1e-6, "voxel_to_world error {err}");

    let verts = rows3(&f.tensor("coords.project_verts.verts")?);
    let p: [f32; 16] = f
        .tensor("coords.project_verts.P")?
        .data
        .as_slice()
        .try_into()?;
    let want = rows3(&f.tensor("coords.project_verts.output")?);
    let got: Vec<[f32; 3]> = verts.iter().map(|&v| project_vert(v, &p)).collect();
    let err = coord_error(&got, &want);
    println!("project_verts: error {err:.2e}");
    assert!(err <= 1e-6, "project_verts error {err}");
    Ok(())
}

#[test]
fn occupancy_fallback_fills_meshrcnns_centre_block_only_when_nothing_is_above_threshold()
-> TestResult {
    use wgcnn_graph::mesh::occupancy_probs;
    // Nothing above 0.2: the block [S/4, S/4 + S/2) = [2, 6) of an 8^3 grid becomes 1.
    let empty = Tensor::new(&[1, 8, 8, 8], vec![-5.0; 512])?;
    let (probs, fired) = occupancy_probs(&empty, 0.2)?;
    assert_eq!(fired, [true]);
    let ones = probs.data.iter().filter(|&&p| p == 1.0).count();
    assert_eq!(ones, 4 * 4 * 4);
    let mesh = cubify(&probs, 0.2)?.remove(0);
    assert_eq!(
        (mesh.verts.len(), mesh.faces.len()),
        (98, 192),
        "one 4^3 cube's surface"
    );
    // One voxel above: no fallback, the sigmoid values pass through.
    let mut one = vec![-5.0; 512];
    one[100] = 0.0;
    let (probs, fired) = occupancy_probs(&Tensor::new(&[1, 8, 8, 8], one)?, 0.2)?;
    assert_eq!(fired, [false]);
    assert_eq!(probs.data[100], 0.5);
    assert!(probs.data.iter().filter(|&&p| p >= 0.2).count() == 1);
    Ok(())
}
