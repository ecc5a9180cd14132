//! The subgroup kernels' lane layouts on golden networks (PyTorch's outputs): the wide form
//! (`conv2d_sg`, `conv2d_1x1_sg`, `linear_sg` in workgroups of several 8-lane groups sharing
//! weights by `subgroupShuffle`) forced with 4 groups on this adapter; and, in child processes
//! of this test binary, lavapipe at 16-lane subgroups (`LP_NATIVE_VECTOR_WIDTH=512`: the form
//! the engine picks there, and the wide form forced with 2 groups, one subgroup holding groups
//! at lane bases 0 and 8, the real check of the shuffle lanes) and at 4-lane ones (`=128`: the
//! portable kernels). The variable is read when the Vulkan instance is made, hence the child
//! processes.

mod common;
#[path = "../crates/wgcnn-kernels/src/testing/lanes.rs"]
mod lanes;

use wgcnn::wgcnn_kernels::conv2d::{SubgroupForm, subgroup_form, subgroups_usable};
use wgcnn::{Engine, EngineOptions, Variants};

/// Networks whose layers take every subgroup kernel: 3x3 and strided convs (`conv2d_sg` with
/// `Variants::Subgroup`, which also keeps Winograd off), 1x1 layers (`conv2d_1x1_sg`), an 11x11
/// stride-4 stem and large linear layers (`linear_sg`).
const NETWORKS: &[&str] = &["resnet18.small", "mobilenet_v2.small", "alexnet.small"];

fn run_networks(engine: &Engine) {
    for fixture in NETWORKS {
        let (name, res) = fixture.split_once('.').expect("name.resolution");
        common::check_classifier_on(engine, name, res, 1e-3);
    }
}

fn engine(variants: Variants, subgroup_groups: Option<u32>) -> Engine {
    Engine::new(&EngineOptions {
        variants,
        subgroup_groups,
        ..Default::default()
    })
    .expect("a GPU adapter (lavapipe in CI)")
}

#[test]
fn golden_networks_with_the_wide_subgroup_form_forced_to_4_groups() {
    let engine = engine(Variants::Subgroup, Some(4));
    if !subgroups_usable(engine.context()) {
        println!(
            "skipped: {} has no usable subgroups",
            engine.adapter_info().name
        );
        return;
    }
    assert_eq!(
        subgroup_form(engine.context()),
        SubgroupForm::Wide { groups: 4 }
    );
    run_networks(&engine);
}

/// Also the child of [`golden_networks_at_16_and_4_lavapipe_lanes`]: where
/// `WGCNN_TEST_SUBGROUP_LANES` is set, the adapter (lavapipe) must report subgroups of that
/// size and the engine pick the form that size implies; at 16 lanes the wide form forced with
/// 2 groups runs too.
#[test]
fn golden_networks_in_the_adapters_own_subgroup_form() {
    let lanes = lanes::child_lanes();
    let mut runs = vec![(Variants::Auto, None), (Variants::Subgroup, None)];
    if lanes == Some(16) {
        runs.push((Variants::Subgroup, Some(2)));
    }
    for (variants, groups) in runs {
        let engine = engine(variants, groups);
        let ctx = engine.context();
        println!(
            "{}: subgroups {}..{} lanes, usable {}, form {:?}, kernels {}",
            ctx.info.name,
            ctx.info.subgroup_min_size,
            ctx.info.subgroup_max_size,
            subgroups_usable(ctx),
            subgroup_form(ctx),
            variants.name()
        );
        if let Some(lanes) = lanes {
            assert_eq!(
                (ctx.info.subgroup_min_size, ctx.info.subgroup_max_size),
                (lanes, lanes)
            );
            match lanes {
                // lavapipe is a CPU adapter: the broadcast form unless one is forced.
                16 => assert_eq!(
                    subgroup_form(ctx),
                    groups.map_or(SubgroupForm::Broadcast, SubgroupForm::forced)
                ),
                4 => assert!(
                    !subgroups_usable(ctx),
                    "4 lanes must take the portable kernels"
                ),
                _ => {}
            }
        }
        if variants == Variants::Subgroup && !subgroups_usable(ctx) {
            // Forcing the subgroup kernels changes nothing where there are none.
            continue;
        }
        run_networks(&engine);
    }
}

#[test]
fn golden_networks_at_16_and_4_lavapipe_lanes() {
    let name = wgcnn::adapters()
        .into_iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ");
    if !name.to_lowercase().contains("llvmpipe") {
        println!("{name}: not lavapipe, the lane count cannot be set");
        return;
    }
    lanes::run_at_16_and_4_lavapipe_lanes("golden_networks_in_the_adapters_own_subgroup_form");
}
