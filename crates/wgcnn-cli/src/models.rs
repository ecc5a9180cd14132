//! `wgcnn models`: the registered networks, and `wgcnn inspect FILE.onnx`.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::json;
use wgcnn::wgcnn_models;

#[derive(Args)]
pub struct ModelsArgs {
    /// Print one JSON object per model instead of a table.
    #[arg(long)]
    json: bool,
    /// Describe an ONNX file instead (same as `wgcnn inspect FILE`).
    #[arg(long, value_name = "FILE")]
    onnx: Option<PathBuf>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// The ONNX file to describe: inputs, outputs, opsets, op counts, unsupported ops.
    file: PathBuf,
}

pub fn run(args: &ModelsArgs) -> Result<()> {
    if let Some(file) = &args.onnx {
        return inspect(&InspectArgs { file: file.clone() });
    }
    if !args.json {
        println!(
            "{:<24} {:<12} {:>6} {:>12} {:>9} {:<12} preprocessing",
            "model", "family", "input", "params", "GFLOPs", "keys"
        );
    }
    for m in wgcnn_models::models() {
        let stats = m.stats().with_context(|| format!("building {}", m.name))?;
        let gflops = 2.0 * stats.macs as f64 / 1e9;
        let p = &m.preprocess;
        let prep = format!(
            "resize {} crop {} {:?} mean {:?} std {:?}",
            p.resize, p.crop, p.interpolation, p.mean, p.std
        );
        if args.json {
            let v = json!({
                "name": m.name, "family": m.family, "resolution": m.default_resolution,
                "channels": m.channels, "classes": m.classes, "params": stats.params,
                "gflops": gflops, "keys": m.key_naming.as_str(), "preprocess": {
                    "resize": p.resize, "crop": p.crop, "interpolation": format!("{:?}", p.interpolation),
                    "mean": p.mean, "std": p.std,
                },
            });
            println!("{v}");
        } else {
            let res = m.default_resolution;
            println!(
                "{:<24} {:<12} {:>6} {:>12} {:>9.2} {:<12} {prep}",
                m.name,
                m.family,
                format!("{res}x{res}"),
                group(stats.params),
                gflops,
                m.key_naming.as_str()
            );
        }
    }
    list_detectors(args.json)?;
    list_segmenters(args.json)?;
    list_mesh_models(args.json)
}

/// The segmenters, with parameters (aux head included, as the checkpoints hold it) and GFLOPs
/// at 520x693, where torchvision's preset resizes a 3:4 photo.
fn list_segmenters(json: bool) -> Result<()> {
    use wgcnn_models::segment::{SegmentBuildOptions, segmenters};
    if !json {
        println!();
        println!(
            "{:<40} {:>12} {:>9} {:<12} transform",
            "segmenter", "params", "GFLOPs", "keys"
        );
    }
    for s in segmenters() {
        let options = SegmentBuildOptions {
            aux: s.has_aux(),
            ..SegmentBuildOptions::new(1, 520, 693)
        };
        let graph = s
            .graph(&options)
            .with_context(|| format!("building {}", s.name))?;
        let stats = wgcnn_models::ModelStats::of(&graph);
        let gflops = 2.0 * stats.macs as f64 / 1e9;
        if json {
            let v = json!({"name": s.name, "task": "segmentation", "params": stats.params,
                "gflops_520x693": gflops, "keys": "torchvision", "resize": s.preprocess.resize,
                "classes": options.classes, "aux": s.has_aux()});
            println!("{v}");
        } else {
            println!(
                "{:<40} {:>12} {:>9.2} {:<12} shorter side {}, no crop, GFLOPs at 520x693",
                s.name,
                group(stats.params),
                gflops,
                "torchvision",
                s.preprocess.resize
            );
        }
    }
    Ok(())
}

/// The detectors, with parameters and GFLOPs at a 480x640 image resized by their own
/// transform (torchvision's `min_size`/`max_size`).
fn list_detectors(json: bool) -> Result<()> {
    use wgcnn_models::detect::{DetectBuildOptions, detectors};
    if !json {
        println!();
        println!(
            "{:<40} {:>12} {:>9} {:<12} transform",
            "detector", "params", "GFLOPs", "keys"
        );
    }
    for d in detectors() {
        let graph = d
            .graph(&DetectBuildOptions {
                batch: 1,
                height: 480,
                width: 640,
            })
            .with_context(|| format!("building {}", d.name))?;
        let stats = wgcnn_models::ModelStats::of(&graph);
        let gflops = 2.0 * stats.macs as f64 / 1e9;
        let c = &d.config;
        let transform = format!(
            "min_size {} max_size {}, GFLOPs at 480x640",
            c.min_size, c.max_size
        );
        if json {
            let v = json!({"name": d.name, "task": "detection", "params": stats.params, "gflops_480x640": gflops,
                "keys": "torchvision", "min_size": c.min_size, "max_size": c.max_size, "classes": c.num_classes});
            println!("{v}");
        } else {
            println!(
                "{:<40} {:>12} {:>9.2} {:<12} {transform}",
                d.name,
                group(stats.params),
                gflops,
                "torchvision"
            );
        }
    }
    list_face_detector(json)
}

/// The bundled MTCNN: parameters of its three nets, the pyramid's P-Net GFLOPs at 480x640
/// (R-Net and O-Net run on as many crops as the photo gives), licence and source.
fn list_face_detector(json: bool) -> Result<()> {
    use wgcnn_models::faces::{cascade, nets};
    let params: usize = [nets::pnet(1, 12, 12)?, nets::rnet(1)?, nets::onet(1)?]
        .iter()
        .map(|g| wgcnn_models::ModelStats::of(g).params)
        .sum();
    let levels: Vec<[usize; 2]> = cascade::pyramid_scales(480, 640, 20.0, 0.709)
        .iter()
        .map(|&s| cascade::level_size(480, 640, s))
        .collect();
    let gflops = 2.0 * nets::pyramid(480, 640, &levels)?.macs() as f64 / 1e9;
    let licence = "MIT, facenet-pytorch 2.6.0 (Tim Esler), bundled";
    if json {
        let v = json!({"name": wgcnn::FACE_MODEL, "task": "faces", "params": params,
            "gflops_pnet_480x640": gflops, "keys": "facenet-pytorch", "landmarks": wgcnn::FACE_LANDMARKS,
            "license": "MIT", "source": "facenet-pytorch 2.6.0 (PyPI), data/pnet.pt, rnet.pt, onet.pt", "bundled": true});
        println!("{v}");
    } else {
        println!(
            "{:<40} {:>12} {:>9.2} {:<12} faces + 5 landmarks; P-Net GFLOPs at 480x640; {licence}",
            wgcnn::FACE_MODEL,
            group(params),
            gflops,
            "facenet"
        );
    }
    Ok(())
}

/// Mesh R-CNN's ShapeNet model: parameters (the mesh head's included), the backbone and voxel
/// head's GFLOPs at 137x137 (the refinement's grow with the mesh), licence and source. Its
/// weights are not bundled: `--weights` takes meshrcnn's released checkpoint.
fn list_mesh_models(json: bool) -> Result<()> {
    use wgcnn_models::mesh::{mesh_head_keys, voxmesh_r50};
    let size = wgcnn::MESH_INPUT_SIZE;
    let graph = voxmesh_r50(&wgcnn_models::BuildOptions::square(size, 1))?;
    let stats = wgcnn_models::ModelStats::of(&graph);
    // `K` is a buffer (the camera intrinsics), not a parameter.
    let head: usize = mesh_head_keys()
        .iter()
        .filter(|(key, _)| key != "K")
        .map(|(_, shape)| shape.iter().product::<usize>())
        .sum();
    let params = stats.params + head;
    let gflops = 2.0 * stats.macs as f64 / 1e9;
    let licence = "BSD-3-Clause (facebookresearch/meshrcnn LICENSE), not bundled";
    let source = wgcnn::VOXMESH_R50_URL;
    if json {
        let v = json!({"name": wgcnn::MESH_MODEL, "task": "mesh", "params": params,
            "gflops_backbone_voxels_137x137": gflops, "keys": "meshrcnn", "input": size,
            "license": "BSD-3-Clause", "source": source, "bundled": false});
        println!("{v}");
    } else {
        println!();
        println!(
            "{:<40} {:>12} {:>9} {:<12} notes",
            "mesh model", "params", "GFLOPs", "keys"
        );
        println!(
            "{:<40} {:>12} {:>9.2} {:<12} {size}x{size} renders, GFLOPs of backbone + voxels; {licence}; weights: {source}",
            wgcnn::MESH_MODEL,
            group(params),
            gflops,
            "meshrcnn"
        );
    }
    Ok(())
}

pub fn inspect(args: &InspectArgs) -> Result<()> {
    let report = wgcnn::wgcnn_io::onnx::inspect_onnx(&args.file)?;
    print!("{report}");
    if !report.unsupported_ops.is_empty() || !report.import_problems.is_empty() {
        anyhow::bail!("{} cannot run as is (see above)", args.file.display());
    }
    Ok(())
}

/// `25557032` → `25,557,032`.
fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
