//! Golden tests of the classification issue's networks on the GPU (lavapipe in CI): small
//! resolution for all, full resolution for the heavier families, against PyTorch's outputs.

#[macro_use]
mod common;

use common::check_classifier_within;

golden! {
    googlenet_small_matches_torchvision => "googlenet", "small";
    googlenet_full_matches_torchvision => "googlenet", "full";
    inception_v3_small_matches_torchvision => "inception_v3", "small";
    resnext50_32x4d_small_matches_torchvision => "resnext50_32x4d", "small";
    wide_resnet50_2_small_matches_torchvision => "wide_resnet50_2", "small";
    densenet121_small_matches_torchvision => "densenet121", "small";
    densenet121_full_matches_torchvision => "densenet121", "full";
    mobilenet_v2_small_matches_torchvision => "mobilenet_v2", "small";
    mobilenet_v2_full_matches_torchvision => "mobilenet_v2", "full";
    mobilenet_v3_large_small_matches_torchvision => "mobilenet_v3_large", "small";
    mobilenet_v3_small_small_matches_torchvision => "mobilenet_v3_small", "small";
    efficientnet_b0_small_matches_torchvision => "efficientnet_b0", "small";
    efficientnet_lite0_small_matches_timm => "efficientnet_lite0", "small";
    tf_efficientnet_lite0_small_matches_timm => "tf_efficientnet_lite0", "small";
    tf_efficientnet_lite0_full_matches_timm => "tf_efficientnet_lite0", "full";
    seresnet50_small_matches_timm => "seresnet50", "small";
    seresnet50_full_matches_timm => "seresnet50", "full";
    inception_v4_small_matches_timm => "inception_v4", "small";
    inception_resnet_v2_small_matches_timm => "inception_resnet_v2", "small";
}

/// Inception-v4 at 299x299 is the one fixture the README's 1e-3 does not hold for in plain f32:
/// the CPU interpreter (f32, fixed order) measures 1.16e-3 against PyTorch and the GPU 1.42e-3,
/// while the small fixture agrees to 1e-4. The tolerance here is 2e-3; the error is printed.
#[test]
fn inception_v4_full_matches_timm_within_2e_3() {
    check_classifier_within("inception_v4", "full", 2e-3);
}
