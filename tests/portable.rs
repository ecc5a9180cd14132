//! The release binary stands alone: copied into an empty folder and run from another working
//! directory with an empty HOME, it classifies with the model, labels and font built into it,
//! and it holds no path of the checkout it was built in.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("checkout root")
}

/// A fresh empty folder under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wgcnn-portable-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_copied_binary_classifies_from_another_folder_with_an_empty_home() {
    let bin_dir = Scratch::new("bin");
    let work = Scratch::new("work");
    let home = Scratch::new("home");
    let exe = bin_dir.0.join("wgcnn");
    std::fs::copy(env!("CARGO_BIN_EXE_wgcnn"), &exe).expect("binary copied");
    let photo = work.0.join("photo.png");
    std::fs::copy(root().join("assets/chelsea.png"), &photo).expect("photo copied");
    let mut cmd = Command::new(&exe);
    cmd.args(["classify", "--json", "photo.png"])
        .current_dir(&work.0)
        .env_clear()
        .env("HOME", &home.0);
    // Only what finds the Vulkan driver passes through.
    for var in [
        "PATH",
        "VK_ICD_FILENAMES",
        "VK_DRIVER_FILES",
        "LD_LIBRARY_PATH",
    ] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    let out = cmd.output().expect("binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}", out.status);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let top: Vec<u64> = v["top"]
        .as_array()
        .expect("top list")
        .iter()
        .map(|p| p["index"].as_u64().expect("index"))
        .collect();
    // PyTorch's top-5 for this photo with these weights (fixtures/real).
    assert_eq!(top, [282, 285, 281, 287, 904]);
    assert_eq!(v["top"][0]["label"], "tiger cat");
}

#[test]
fn the_binary_holds_no_path_of_the_checkout() {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_wgcnn")).expect("binary readable");
    let root = root();
    for dir in ["crates", "assets", "shaders"] {
        let needle = root.join(dir);
        let needle = needle.to_string_lossy();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the binary contains {needle}: a copied or installed binary would look there"
        );
    }
}
