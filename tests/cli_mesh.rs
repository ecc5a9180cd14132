//! `wgcnn mesh` as a user runs it, on meshrcnn's `voxmesh_R50` with the fixtures' rule weights
//! (overridden by the fixture's `state.*`) written to a safetensors file, on the fixture's
//! 137x137 image: the OBJ must hold the fixture's final mesh (faces exactly, vertices within
//! `1e-3·max|want|`), `--json` its counts, and `--voxels` / `--render` their files. The same
//! weights in meshrcnn's released checkpoint container (`.pth`, both torch formats) give the
//! same mesh.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wgcnn::wgcnn_graph::{Tensor, WeightSource};
use wgcnn::wgcnn_io::{Fixture, fixtures_dir, rule_tensor, save_safetensors};
use wgcnn::wgcnn_models::BuildOptions;
use wgcnn::wgcnn_models::mesh::{mesh_head_keys, voxmesh_r50};

#[path = "../crates/wgcnn-io/src/pth/torch_writer.rs"]
mod torch_writer;

use torch_writer::{Pickler, torch_legacy, torch_zip};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Removes the files a test wrote when it ends, pass or fail.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgcnn-cli-mesh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn wgcnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgcnn"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("wgcnn runs")
}

/// The fixture, its image as a PNG and its weights as safetensors (every key of the model).
fn prepare() -> (Fixture, PathBuf, PathBuf) {
    let (fx, tensors, img) = prepare_tensors("safetensors");
    let w = temp("weights.safetensors");
    save_safetensors(&w, &tensors, None).expect("weights written");
    (fx, w, img)
}

/// The fixture, its weights (every key of the model, in meshrcnn's `state_dict` order) and its
/// image written as a PNG named after `test` (tests run at once and clean up their own files).
fn prepare_tensors(test: &str) -> (Fixture, Vec<(String, Tensor)>, PathBuf) {
    let fx = Fixture::open(fixtures_dir().join("mesh/voxmesh_r50.safetensors")).expect("fixture");
    let graph = voxmesh_r50(&BuildOptions::square(137, 1)).expect("graph");
    let weights = fx.weights_for(&graph);
    let mut tensors: Vec<(String, Tensor)> = graph
        .params()
        .map(|id| {
            let key = graph.tensor(id).name.clone();
            let t = weights
                .tensor(&key)
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            (key, t)
        })
        .collect();
    for (key, shape) in mesh_head_keys() {
        let t = match weights.shape(&key) {
            Some(_) => weights.tensor(&key).expect("stored"),
            None => Tensor::new(&shape, rule_tensor(&key, &shape).expect("rule")).expect("shape"),
        };
        tensors.push((key, t));
    }
    let u8s = fx.tensor("image_u8").expect("image");
    let pixels: Vec<u8> = u8s.data.iter().map(|&v| v as u8).collect();
    let img = temp(&format!("chelsea137.{test}.png"));
    image::RgbImage::from_raw(137, 137, pixels)
        .expect("137x137")
        .save(&img)
        .expect("png written");
    (fx, tensors, img)
}

fn parse_obj(text: &str) -> (Vec<f32>, Vec<u32>) {
    let (mut v, mut f) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut it = line.split_whitespace();
        match it.next() {
            Some("v") => v.extend(it.map(|x| x.parse::<f32>().expect("float"))),
            Some("f") => f.extend(it.map(|x| x.parse::<u32>().expect("index") - 1)),
            _ => {}
        }
    }
    (v, f)
}

#[test]
fn mesh_cli_writes_the_fixture_mesh_as_obj_with_json_voxels_and_render() {
    let (fx, weights, img) = prepare();
    let (obj, npy, png) = (temp("shape.obj"), temp("voxels.npy"), temp("preview.png"));
    let _cleanup = Cleanup(vec![
        weights.clone(),
        img.clone(),
        obj.clone(),
        npy.clone(),
        png.clone(),
    ]);
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let out = wgcnn(&[
        "mesh",
        &s(&img),
        "--weights",
        &s(&weights),
        "--output",
        &s(&obj),
        "--voxels",
        &s(&npy),
        "--render",
        &s(&png),
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wgcnn mesh failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(json["vertices"], 1194);
    assert_eq!(json["faces"], 1796);
    assert_eq!(json["edges"], 2694);
    assert_eq!(json["fallback"], false);
    assert_fixture_mesh(&fx, &obj);
    let npy_len = std::fs::metadata(&npy).expect("npy").len();
    assert_eq!(
        npy_len,
        128 + 48 * 48 * 48 * 4,
        "npy header + [48, 48, 48] f32"
    );
    let preview = image::open(&png).expect("preview png");
    assert_eq!((preview.width(), preview.height()), (548, 548));
}

/// The OBJ at `obj` holds the fixture's final mesh: faces exactly, vertices within
/// `1e-3·max|want|`.
fn assert_fixture_mesh(fx: &Fixture, obj: &Path) {
    let (verts, faces) = parse_obj(&std::fs::read_to_string(obj).expect("obj"));
    let want_faces: Vec<u32> = fx
        .tensor("output.faces")
        .expect("faces")
        .data
        .iter()
        .map(|&x| x as u32)
        .collect();
    assert_eq!(faces, want_faces, "faces");
    let want = fx.tensor("output.verts").expect("verts");
    let diff = verts
        .iter()
        .zip(&want.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    println!("OBJ vertices: rel error {:.2e}", diff / scale);
    assert_eq!(verts.len(), want.data.len());
    assert!(diff <= 1e-3 * scale, "vertices: rel error {}", diff / scale);
}

/// `tensors` in meshrcnn's released checkpoint container: `torch.save` of its `Checkpoint`'s
/// `to_dict(include_states=True)` (`shapenet/utils/checkpoint.py`), the model trained under
/// DistributedDataParallel so every key starts with `module.`; here the head's keys carry a
/// second one, which only meshrcnn's per-key `clean_state_dict` removes. `best_states_ts` holds
/// the state dict again, as meshrcnn's `store_state` writes it.
fn meshrcnn_checkpoint(tensors: &[(String, Tensor)], legacy: bool) -> Vec<u8> {
    let keys: Vec<String> = tensors
        .iter()
        .map(|(k, _)| match k.starts_with("mesh_head.") {
            true => format!("module.module.{k}"),
            false => format!("module.{k}"),
        })
        .collect();
    let mut p = Pickler::new(legacy);
    p.dict().str("t").int(1_200_000).str("epoch").int(25);
    p.str("metrics")
        .dict()
        .str("loss")
        .list()
        .float(0.125)
        .appends();
    p.set_items()
        .str("early_stop_metric")
        .str("val_F1@0.300000");
    p.str("restarts").list().appends();
    p.str("best_states").dict().str("model");
    let entries = keys.iter().zip(tensors);
    let slot = p.state_dict(entries.map(|(k, (_, t))| (k.as_str(), &t.shape[..], &t.data[..])));
    p.str("optim").dict().str("state").dict().set_items();
    p.str("param_groups").list().appends().set_items();
    p.set_items();
    p.str("best_states_ts")
        .dict()
        .str("model")
        .get(slot)
        .set_items();
    p.set_items();
    if legacy {
        torch_legacy(p)
    } else {
        torch_zip(p)
    }
}

#[test]
fn mesh_cli_loads_meshrcnns_released_checkpoint_container_in_both_torch_formats() {
    let (fx, tensors, img) = prepare_tensors("pth");
    let obj = temp("from_pth.obj");
    let mut cleanup = Cleanup(vec![img.clone(), obj.clone()]);
    for legacy in [true, false] {
        let pth = temp(&format!(
            "voxmesh_R50.{}.pth",
            ["zip", "legacy"][legacy as usize]
        ));
        cleanup.0.push(pth.clone());
        std::fs::write(&pth, meshrcnn_checkpoint(&tensors, legacy)).expect("pth written");
        let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
        let out = wgcnn(&[
            "mesh",
            &s(&img),
            "--weights",
            &s(&pth),
            "--output",
            &s(&obj),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "wgcnn mesh on {pth:?} failed: {stderr}"
        );
        print!(
            "{}: {}",
            pth.display(),
            String::from_utf8_lossy(&out.stdout)
        );
        assert_fixture_mesh(&fx, &obj);
        let _ = std::fs::remove_file(&obj);
    }
}

#[test]
fn mesh_cli_without_weights_says_where_the_checkpoint_comes_from() {
    let out = wgcnn(&["mesh", "assets/chelsea.png"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("https://dl.fbaipublicfiles.com/meshrcnn/shapenet/voxmesh_R50.pth"),
        "{stderr}"
    );
}

#[test]
fn models_lists_voxmesh_r50_with_params_licence_and_checkpoint_source() {
    let out = wgcnn(&["models"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("voxmesh_r50 "))
        .expect("voxmesh_r50 listed");
    println!("{line}");
    // ResNet-50 without fc 23,508,032 + voxel head 6,763,824 + mesh head 1,845,796.
    assert!(line.contains("32,117,652"), "{line}");
    assert!(line.contains("BSD-3-Clause"), "{line}");
    assert!(line.contains(wgcnn::VOXMESH_R50_URL), "{line}");
    let out = wgcnn(&["models", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["name"] == "voxmesh_r50")
        .expect("voxmesh_r50 in --json");
    assert_eq!(
        (&v["task"], &v["license"], &v["params"]),
        (&"mesh".into(), &"BSD-3-Clause".into(), &32_117_652.into())
    );
}
