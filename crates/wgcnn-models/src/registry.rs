//! The table of registered networks, in listing order. One line per network: see
//! [`ModelInfo::torchvision`], [`ModelInfo::timm`] and the `with_*` modifiers.

use crate::classify::{alexnet, lenet, resnet, squeezenet, vgg};
use crate::classify::{
    densenet, efficientnet, googlenet, inception, inception_resnet_v2, inception_v4, mobilenet,
    senet,
};
use crate::{ModelInfo, Preprocess};

/// Every registered network.
pub(crate) static MODELS: &[ModelInfo] = &[
    ModelInfo::torchvision("lenet5", "lenet", lenet::lenet5)
        .with_resolution(32)
        .with_classes(10)
        .with_channels(1)
        .with_preprocess(Preprocess::imagenet(32, 32).with_mean_std([0.5; 3], [0.5; 3])),
    ModelInfo::torchvision("alexnet", "alexnet", alexnet::alexnet),
    ModelInfo::torchvision("vgg11", "vgg", vgg::vgg11),
    ModelInfo::torchvision("vgg16", "vgg", vgg::vgg16),
    ModelInfo::torchvision("vgg16_bn", "vgg", vgg::vgg16_bn),
    ModelInfo::torchvision("vgg19", "vgg", vgg::vgg19),
    ModelInfo::torchvision("resnet18", "resnet", resnet::resnet18),
    ModelInfo::torchvision("resnet34", "resnet", resnet::resnet34),
    ModelInfo::torchvision("resnet50", "resnet", resnet::resnet50),
    ModelInfo::torchvision("resnet101", "resnet", resnet::resnet101),
    ModelInfo::torchvision("resnet152", "resnet", resnet::resnet152),
    ModelInfo::torchvision("resnext50_32x4d", "resnext", resnet::resnext50_32x4d),
    ModelInfo::torchvision("wide_resnet50_2", "wide_resnet", resnet::wide_resnet50_2),
    ModelInfo::torchvision("squeezenet1_0", "squeezenet", squeezenet::squeezenet1_0),
    ModelInfo::torchvision("squeezenet1_1", "squeezenet", squeezenet::squeezenet1_1),
    ModelInfo::torchvision("googlenet", "googlenet", googlenet::googlenet)
        .with_preprocess(googlenet::PREPROCESS),
    ModelInfo::torchvision("inception_v3", "inception", inception::inception_v3)
        .with_resolution(299)
        .with_preprocess(inception::PREPROCESS),
    ModelInfo::torchvision("densenet121", "densenet", densenet::densenet121),
    ModelInfo::torchvision("densenet161", "densenet", densenet::densenet161),
    ModelInfo::torchvision("densenet169", "densenet", densenet::densenet169),
    ModelInfo::torchvision("densenet201", "densenet", densenet::densenet201),
    ModelInfo::torchvision("mobilenet_v2", "mobilenet", mobilenet::mobilenet_v2),
    ModelInfo::torchvision(
        "mobilenet_v3_large",
        "mobilenet",
        mobilenet::mobilenet_v3_large,
    ),
    ModelInfo::torchvision(
        "mobilenet_v3_small",
        "mobilenet",
        mobilenet::mobilenet_v3_small,
    ),
    ModelInfo::torchvision(
        "efficientnet_b0",
        "efficientnet",
        efficientnet::efficientnet_b0,
    )
    .with_preprocess(efficientnet::B0_PREPROCESS),
    ModelInfo::timm(
        "efficientnet_lite0",
        "efficientnet",
        efficientnet::efficientnet_lite0,
    ),
    ModelInfo::timm(
        "tf_efficientnet_lite0",
        "efficientnet",
        efficientnet::tf_efficientnet_lite0,
    )
    .with_preprocess(efficientnet::TF_LITE0_PREPROCESS),
    ModelInfo::timm("seresnet50", "senet", senet::seresnet50).with_preprocess(senet::PREPROCESS),
    ModelInfo::timm("inception_v4", "inception", inception_v4::inception_v4)
        .with_resolution(299)
        .with_preprocess(inception_v4::PREPROCESS),
    ModelInfo::timm(
        "inception_resnet_v2",
        "inception",
        inception_resnet_v2::inception_resnet_v2,
    )
    .with_resolution(299)
    .with_preprocess(inception_resnet_v2::PREPROCESS),
];
