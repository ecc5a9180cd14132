//! Golden tests: every foundation network on the GPU (lavapipe in CI) against PyTorch's outputs
//! in `../shared/fixtures/classify`, weights rebuilt by the fixtures' weight rule. Each test
//! prints its measured relative error.

#[macro_use]
mod common;

golden! {
    lenet5_full_matches_pytorch => "lenet5", "full";
    alexnet_small_matches_torchvision => "alexnet", "small";
    alexnet_full_matches_torchvision => "alexnet", "full";
    vgg11_small_matches_torchvision => "vgg11", "small";
    vgg11_full_matches_torchvision => "vgg11", "full";
    vgg16_small_matches_torchvision => "vgg16", "small";
    vgg16_full_matches_torchvision => "vgg16", "full";
    vgg16_bn_small_matches_torchvision => "vgg16_bn", "small";
    vgg16_bn_full_matches_torchvision => "vgg16_bn", "full";
    vgg19_small_matches_torchvision => "vgg19", "small";
    vgg19_full_matches_torchvision => "vgg19", "full";
    resnet18_small_matches_torchvision => "resnet18", "small";
    resnet18_full_matches_torchvision => "resnet18", "full";
    resnet34_small_matches_torchvision => "resnet34", "small";
    resnet34_full_matches_torchvision => "resnet34", "full";
    resnet50_small_matches_torchvision => "resnet50", "small";
    resnet50_full_matches_torchvision => "resnet50", "full";
    resnet101_small_matches_torchvision => "resnet101", "small";
    resnet101_full_matches_torchvision => "resnet101", "full";
    resnet152_small_matches_torchvision => "resnet152", "small";
    resnet152_full_matches_torchvision => "resnet152", "full";
    squeezenet1_0_small_matches_torchvision => "squeezenet1_0", "small";
    squeezenet1_0_full_matches_torchvision => "squeezenet1_0", "full";
    squeezenet1_1_small_matches_torchvision => "squeezenet1_1", "small";
    squeezenet1_1_full_matches_torchvision => "squeezenet1_1", "full";
}
