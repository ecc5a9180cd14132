//! The bundled default model (tf_efficientnet_lite0, real ImageNet weights) against PyTorch:
//! tensor in → logits out, and the whole path from the PNG file → the same top-5 classes.

mod common;

use common::engine;
use wgcnn::wgcnn_io::{Fixture, fixtures_dir};
use wgcnn::{Classifier, ClassifierOptions};

fn fixture(image: &str) -> Fixture {
    let path = fixtures_dir()
        .join("real")
        .join(format!("tf_efficientnet_lite0.{image}.safetensors"));
    Fixture::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn reference_top5(fx: &Fixture) -> Vec<usize> {
    let text = fx
        .metadata()
        .get("top5")
        .expect("top5 in the fixture metadata");
    serde_top5(text)
}

/// Parses `[282, 285, 281, 287, 904]`.
fn serde_top5(text: &str) -> Vec<usize> {
    text.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|s| s.trim().parse().expect("an index"))
        .collect()
}

fn classifier() -> Classifier {
    Classifier::new(engine(), &ClassifierOptions::default())
        .expect("the default model loads from assets/")
}

#[test]
fn default_model_logits_match_pytorch_on_both_photos() {
    let c = classifier();
    for image in ["chelsea", "coffee"] {
        let fx = fixture(image);
        let input = fx.tensor("input").expect("input");
        let want = fx.tensor("output").expect("output");
        let got = c.logits(&input).expect("run");
        let rel = got.rel_error(&want);
        println!("tf_efficientnet_lite0 {image}: logits relative error {rel:.3e}");
        assert!(
            got.allclose_fixture(&want),
            "{image}: relative error {rel:e}"
        );
    }
}

#[test]
fn default_model_top5_from_png_matches_pytorch() {
    let c = classifier();
    for image in ["chelsea", "coffee"] {
        let want = reference_top5(&fixture(image));
        let png = assets_dir().join(format!("{image}.png"));
        let top: Vec<usize> = c
            .classify_file(&png, 5)
            .expect("classify")
            .iter()
            .map(|p| p.index)
            .collect();
        println!("{image}: top-5 {top:?}, PyTorch {want:?}");
        assert_eq!(top[0], want[0], "{image}: top-1 differs from PyTorch");
        let common = top.iter().filter(|i| want.contains(i)).count();
        assert!(
            common >= 4,
            "{image}: top-5 {top:?} shares only {common} classes with PyTorch's {want:?}"
        );
    }
}

#[test]
fn preprocessing_on_gpu_matches_the_reference_input_tensor() {
    // The fixture's input is PIL resize + crop + (x*255 - 127)/128 of the same PNG: our GPU
    // preprocessing must reproduce it up to a few 8-bit rounding differences.
    let c = classifier();
    let fx = fixture("chelsea");
    let want = fx.tensor("input").expect("input");
    let img = wgcnn::RgbImage::open(assets_dir().join("chelsea.png")).expect("png");
    let got = c.preprocess(&img).expect("preprocess");
    let level = 1.0 / 128.0 * 1.01;
    let off = got
        .data
        .iter()
        .zip(&want.data)
        .filter(|(a, b)| (*a - *b).abs() > level)
        .count();
    let max = got.max_abs_diff(&want);
    println!(
        "preprocess: max diff {max:.4} ({:.2} levels), {off} of {} values off by more than one level",
        max * 128.0,
        want.numel()
    );
    assert!(
        off * 1000 <= want.numel(),
        "more than 0.1% of the input differs by more than one 8-bit level"
    );
}

/// The checkout's `assets/` (the sample photos; the model itself is built into the library).
fn assets_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}
