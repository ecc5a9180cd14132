//! torchvision's `FeaturePyramidNetwork` with `LastLevelMaxPool` (`backbone.fpn.*`).

use wgcnn_graph::{GraphBuilder, GraphError, Op, ResizeMode, TensorId};

use super::{batchnorm_as, conv_as};
use crate::layers::{self, Conv, Pool2d};

/// The key prefix of the FPN's parameters.
pub const FPN: &str = "backbone.fpn";

/// The FPN's output channels in every torchvision detector.
pub const FPN_CHANNELS: usize = 256;

/// The FPN on the backbone's returned layers `inputs` (finest first): per level a 1x1 lateral
/// conv (`inner_blocks.<i>`), the top-down sum with the coarser level resized by nearest
/// neighbour, a 3x3 conv (`layer_blocks.<i>`); then `max_pool2d(kernel 1, stride 2)` of the
/// last result. Each block is `Conv2dNormActivation` without activation: with `norm_eps`
/// (torchvision's `norm_layer=nn.BatchNorm2d`) the conv has no bias and a BatchNorm follows
/// (`<block>.1`); without, the conv has a bias.
///
/// Returns the outputs, named `features.0` … `features.<L-1>` and `features.pool`.
pub fn fpn(
    b: &mut GraphBuilder,
    inputs: &[TensorId],
    norm_eps: Option<f32>,
) -> Result<Vec<TensorId>, GraphError> {
    let Some((&coarsest, _)) = inputs.split_last() else {
        return Err(GraphError::Invalid(format!("{FPN}: no input feature maps")));
    };
    let last = inputs.len() - 1;
    let mut results = vec![None; inputs.len()];
    let mut last_inner = block(b, "inner_blocks", last, coarsest, 1, norm_eps, None)?;
    results[last] = Some(block(
        b,
        "layer_blocks",
        last,
        last_inner,
        3,
        norm_eps,
        Some(format!("features.{last}")),
    )?);
    for idx in (0..last).rev() {
        let lateral = block(b, "inner_blocks", idx, inputs[idx], 1, norm_eps, None)?;
        let size = match b.shape(lateral) {
            &[_, _, h, w] => [h, w],
            s => {
                return Err(GraphError::Invalid(format!(
                    "{FPN}.inner_blocks.{idx}: output {s:?} is not NCHW"
                )));
            }
        };
        let top_down = if b.shape(last_inner)[2..] == size {
            last_inner
        } else {
            let op = Op::Resize {
                size,
                mode: ResizeMode::Nearest,
            };
            b.node(&format!("{FPN}.top_down.{idx}"), op, &[last_inner])?
        };
        last_inner = layers::add(b, &format!("{FPN}.add.{idx}"), lateral, top_down)?;
        let name = format!("features.{idx}");
        results[idx] = Some(block(
            b,
            "layer_blocks",
            idx,
            last_inner,
            3,
            norm_eps,
            Some(name),
        )?);
    }
    let mut results: Vec<TensorId> = results.into_iter().flatten().collect();
    let pool = Pool2d::new(1, 2, 0, false);
    let coarsest_out = results[results.len() - 1];
    results.push(layers::max_pool(b, "features.pool", coarsest_out, pool)?);
    Ok(results)
}

/// One `Conv2dNormActivation` block `{FPN}.{kind}.{i}` (kernel `k`, padding `k / 2`); its last
/// node is named `output` when given.
fn block(
    b: &mut GraphBuilder,
    kind: &str,
    i: usize,
    x: TensorId,
    k: usize,
    norm_eps: Option<f32>,
    output: Option<String>,
) -> Result<TensorId, GraphError> {
    let key = format!("{FPN}.{kind}.{i}");
    let conv = Conv::new(FPN_CHANNELS, k)
        .pad(k / 2)
        .bias(norm_eps.is_none());
    let conv_key = format!("{key}.0");
    match norm_eps {
        None => conv_as(
            b,
            output.as_deref().unwrap_or(&conv_key),
            &conv_key,
            x,
            conv,
        ),
        Some(eps) => {
            let y = conv_as(b, &conv_key, &conv_key, x, conv)?;
            let bn_key = format!("{key}.1");
            batchnorm_as(b, output.as_deref().unwrap_or(&bn_key), &bn_key, y, eps)
        }
    }
}
