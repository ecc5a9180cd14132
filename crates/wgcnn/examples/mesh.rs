//! A 3D mesh from one image with Mesh R-CNN's ShapeNet model:
//! `cargo run --release -p wgcnn --example mesh -- voxmesh_R50.pth image.png shape.obj`
//! (meshrcnn's checkpoint from https://dl.fbaipublicfiles.com/meshrcnn/shapenet/voxmesh_R50.pth,
//! or a .safetensors with its keys).

use wgcnn::{Engine, EngineOptions, MeshPredictor, MeshPredictorOptions, MeshRequest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(weights), Some(image)) = (args.next(), args.next()) else {
        eprintln!("usage: mesh WEIGHTS IMAGE [OUTPUT.obj|.ply]");
        std::process::exit(2);
    };
    let output = args.next().unwrap_or_else(|| "shape.obj".into());
    let engine = Engine::new(&EngineOptions::default())?;
    let options = MeshPredictorOptions {
        weights: Some(weights.into()),
        ..Default::default()
    };
    let predictor = MeshPredictor::new(&engine, &options)?;
    let mesh = predictor.predict_file(&image, &MeshRequest::default())?;
    if mesh.fallback {
        println!("no voxel above the threshold: meshrcnn's fallback cube was refined");
    }
    mesh.save(&output)?;
    println!(
        "{image}: {} vertices, {} faces -> {output} (GPU {:.0} ms)",
        mesh.verts.len(),
        mesh.faces.len(),
        mesh.timings.gpu.as_secs_f64() * 1e3
    );
    Ok(())
}
