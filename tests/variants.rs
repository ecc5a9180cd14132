//! Every kernel family on every network shape it serves: the golden networks at small
//! resolution run once per forced kernel set (`EngineOptions::variants`), so the portable
//! fallback kernels (what a device without subgroups runs: Metal, many Vulkan drivers), the
//! subgroup kernels, Winograd and the cooperative reductions are each checked against PyTorch
//! on whatever adapter the tests run on (lavapipe in CI), not only the set `Auto` picks there.
//! A set whose kernels need a feature the adapter lacks is skipped with the reason printed.

mod common;

use wgcnn::{Engine, EngineOptions, Variants};

/// Small-resolution fixtures covering every layer kind: plain and grouped convs (ResNeXt),
/// 1x1 and strided 1x1, 3x3 stride 1 (Winograd's), depthwise and SE blocks, concat in place,
/// pre-activation BatchNorm (DenseNet), LRN-free pooling heads, large linear layers.
const NETWORKS: &[&str] = &[
    "lenet5.full",
    "alexnet.small",
    "vgg11.small",
    "resnet18.small",
    "resnet50.small",
    "resnext50_32x4d.small",
    "squeezenet1_1.small",
    "googlenet.small",
    "densenet121.small",
    "mobilenet_v2.small",
    "mobilenet_v3_small.small",
    "efficientnet_b0.small",
    "tf_efficientnet_lite0.small",
];

fn run_all(variants: Variants) {
    let engine = Engine::new(&EngineOptions {
        variants,
        ..Default::default()
    })
    .expect("a GPU adapter (lavapipe in CI)");
    let needs_subgroups = matches!(
        variants,
        Variants::Subgroup | Variants::Winograd | Variants::Winograd4
    );
    if needs_subgroups && !wgcnn::wgcnn_kernels::conv2d::subgroups_usable(engine.context()) {
        println!(
            "skipped: {} kernels need subgroups of >= 8 lanes; {} has none",
            variants.name(),
            engine.adapter_info().name
        );
        return;
    }
    for fixture in NETWORKS {
        let (name, res) = fixture.split_once('.').expect("name.resolution");
        common::check_classifier_on(&engine, name, res, 1e-3);
    }
}

#[test]
fn golden_networks_with_portable_kernels_only() {
    run_all(Variants::Portable);
}

#[test]
fn golden_networks_with_subgroup_kernels_forced() {
    run_all(Variants::Subgroup);
}

#[test]
fn golden_networks_with_winograd_forced() {
    run_all(Variants::Winograd);
}

#[test]
fn golden_networks_with_winograd4_forced() {
    // F(4x4, 3x3) on every 3x3 stride-1 layer, also the small ones `Auto` leaves to F(2x2):
    // its larger f32 error stays within the fixtures' tolerance through whole networks.
    run_all(Variants::Winograd4);
}

#[test]
fn golden_networks_with_cooperative_reductions_forced() {
    run_all(Variants::Cooperative);
}
