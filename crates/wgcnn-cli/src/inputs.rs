//! What a command works on: images (files as given, directories expanded) and checkpoints.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp", "gif"];

/// Expands directories (not recursively) into their image files, sorted; files stay as given
/// (a non-image file is reported when it fails to decode, not skipped silently).
pub fn collect(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    })
                })
                .collect();
            files.sort();
            if files.is_empty() {
                crate::progress::note(&format!(
                    "warning: {} holds no image files ({})",
                    p.display(),
                    IMAGE_EXTENSIONS.join(", ")
                ));
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The error of a command that needs a checkpoint and got none: where torchvision's come from.
/// `command` is `detect`/`segment`, `what` names the checkpoints (`COCO`), `model` the one chosen.
pub fn no_weights(
    command: &str,
    what: &str,
    model: &str,
    checkpoints: &[(&str, &str)],
) -> anyhow::Error {
    let width = checkpoints.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut msg = format!(
        "`wgcnn {command}` needs a checkpoint: --weights FILE.\n\ntorchvision's {what} checkpoints ({model} is the one selected):\n"
    );
    for (name, url) in checkpoints {
        msg.push_str(&format!("  {name:<width$} {url}\n"));
    }
    msg.push_str("\nDownload one (e.g. with curl -LO URL) and pass it as is: wgcnn reads .pth files without Python.");
    anyhow::anyhow!(msg)
}
