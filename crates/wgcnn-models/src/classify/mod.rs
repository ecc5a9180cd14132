//! Image classification networks, one file per architecture family. Each exposes one
//! `pub fn <name>(&BuildOptions) -> Result<Graph, ModelError>` per registered variant.

pub mod alexnet;
pub mod densenet;
pub mod efficientnet;
pub mod googlenet;
pub mod inception;
pub mod inception_resnet_v2;
pub mod inception_v4;
pub mod lenet;
pub mod mobilenet;
pub mod resnet;
pub mod senet;
pub mod squeezenet;
pub mod vgg;

/// Builds each `(name, builder, params)` at 224x224 for 1000 classes and checks its learned
/// parameter count (the graph also holds BatchNorm running statistics, counted apart), printing
/// both.
#[cfg(test)]
pub(crate) fn assert_param_counts(cases: &[(&str, crate::BuildFn, usize)]) {
    for &(name, build, params) in cases {
        let g = match build(&crate::BuildOptions::square(224, 1000)) {
            Ok(g) => g,
            Err(e) => panic!("{name}: build failed: {e}"),
        };
        let stats = crate::ModelStats::of(&g);
        println!(
            "{name}: params {} (+{} running statistics)",
            stats.params, stats.buffers
        );
        assert_eq!(stats.params, params, "{name}");
    }
}
