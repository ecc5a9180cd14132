//! `wgcnn mesh`: a 3D mesh from one image with Mesh R-CNN's ShapeNet model (meshrcnn
//! `voxmesh_R50`) on the GPU: voxels, cubify and graph-convolution refinement in one submission.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde_json::json;
use wgcnn::{
    Engine, MESH_MODEL, MeshOutput, MeshPredictor, MeshPredictorOptions, MeshRequest, MeshStage,
    RgbImage, VOXMESH_R50_URL,
};

use crate::progress;

#[derive(Args)]
pub struct MeshArgs {
    /// The image (meshrcnn's ShapeNet renders are 137x137; other sizes are centre-cropped to a
    /// square and resized).
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
    /// The model: voxmesh_r50 (meshrcnn's configs/shapenet/voxmesh_R50.yaml).
    #[arg(long, short, default_value = MESH_MODEL, value_name = "NAME")]
    model: String,
    /// meshrcnn's checkpoint as released (.pth: `best_states.model`, `module.` prefixes) or a
    /// .safetensors with the same keys. Run without it to see where it comes from.
    #[arg(long, short, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Write the mesh: Wavefront OBJ, or PLY when the name ends in .ply.
    #[arg(long, short, default_value = "shape.obj", value_name = "FILE")]
    output: PathBuf,
    /// Write the mesh after refinement stage N (0, 1, 2) instead of the last one, or `cubify`
    /// for the mesh before refinement.
    #[arg(long, value_name = "N|cubify")]
    stage: Option<String>,
    /// Write the 48x48x48 occupancy probabilities ([z, y, x], f32) as a NumPy .npy file.
    #[arg(long, value_name = "FILE")]
    voxels: Option<PathBuf>,
    /// Draw the mesh's edges over the input image (4x, shaded by depth) into a PNG.
    #[arg(long, value_name = "FILE")]
    render: Option<PathBuf>,
    /// One JSON object on stdout: counts, bounds, stage, fallback, timings and the files written.
    #[arg(long)]
    json: bool,
}

fn parse_stage(s: Option<&str>) -> Result<MeshStage> {
    Ok(match s {
        None => MeshStage::Final,
        Some("cubify") | Some("cubified") => MeshStage::Cubified,
        Some(n) => match n.parse::<usize>() {
            Ok(k) if k < 3 => MeshStage::Refined(k),
            _ => bail!("--stage takes 0, 1, 2 or cubify, got {n:?}"),
        },
    })
}

fn no_weights() -> anyhow::Error {
    anyhow::anyhow!(
        "`wgcnn mesh` needs a checkpoint: --weights FILE.\n\nmeshrcnn's ShapeNet model zoo \
         ({MESH_MODEL} is the model wgcnn runs):\n  {MESH_MODEL}  {VOXMESH_R50_URL}\n\nDownload it \
         (e.g. with curl -LO URL) and pass it as is: wgcnn reads .pth files without Python."
    )
}

pub fn run(args: &MeshArgs, adapter: Option<&str>) -> Result<()> {
    let stage = parse_stage(args.stage.as_deref())?;
    let weights = args.weights.clone().ok_or_else(no_weights)?;
    let image = RgbImage::open(&args.image)?;
    let started = Instant::now();
    let engine = Engine::new(&crate::engine_options(adapter))?;
    let options = MeshPredictorOptions {
        model: args.model.clone(),
        weights: Some(weights),
        ..Default::default()
    };
    let predictor = MeshPredictor::new(&engine, &options)?;
    let load = started.elapsed();
    let request = MeshRequest {
        stage,
        voxels: args.voxels.is_some(),
    };
    let mesh = predictor.predict(&image, &request)?;
    if mesh.fallback {
        progress::note(
            "note: no voxel is above the 0.2 threshold; meshrcnn's fallback cube was refined instead",
        );
    }
    mesh.save(&args.output)?;
    let mut written = vec![args.output.clone()];
    if let (Some(path), Some(vox)) = (&args.voxels, &mesh.voxels) {
        write_npy(path, &vox.shape, &vox.data)?;
        written.push(path.clone());
    }
    if let Some(path) = &args.render {
        let canvas = wgcnn::render_wireframe(&image, predictor.size(), &mesh, 4);
        canvas.save(path)?;
        written.push(path.clone());
    }
    report(args, &mesh, load, &written);
    Ok(())
}

fn stage_name(stage: MeshStage) -> String {
    match stage {
        MeshStage::Cubified => "cubify".into(),
        MeshStage::Refined(n) => n.to_string(),
        MeshStage::Final => "2".into(),
    }
}

fn report(args: &MeshArgs, mesh: &MeshOutput, load: std::time::Duration, written: &[PathBuf]) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let bounds = mesh.bounds();
    if args.json {
        let v = json!({
            "image": args.image.display().to_string(),
            "model": args.model,
            "stage": stage_name(mesh.stage),
            "vertices": mesh.verts.len(),
            "faces": mesh.faces.len(),
            "edges": mesh.edges,
            "fallback": mesh.fallback,
            "bounds": bounds.map(|(lo, hi)| json!({"min": lo, "max": hi})),
            "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "timings_ms": {
                "load": ms(load),
                "preprocess": ms(mesh.timings.preprocess),
                "gpu": ms(mesh.timings.gpu),
                "read": ms(mesh.timings.read),
            },
        });
        println!("{v}");
        return;
    }
    println!(
        "{}: {} vertices, {} faces, {} edges (stage {})",
        args.image.display(),
        mesh.verts.len(),
        mesh.faces.len(),
        mesh.edges,
        stage_name(mesh.stage)
    );
    if let Some((lo, hi)) = bounds {
        println!(
            "  bounds x {:.3}..{:.3}  y {:.3}..{:.3}  z {:.3}..{:.3} (camera frame, looking down -z)",
            lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]
        );
    }
    for p in written {
        println!("  wrote {}", p.display());
    }
    progress::note(&format!(
        "load {:.0} ms, preprocess {:.1} ms, GPU {:.0} ms (one submission), read {:.1} ms",
        ms(load),
        ms(mesh.timings.preprocess),
        ms(mesh.timings.gpu),
        ms(mesh.timings.read)
    ));
}

/// A little-endian f32 `.npy` (format 1.0) of `shape`.
fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut f =
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(&out)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
