//! torchvision's versioned detection keys: checkpoints saved before the FPN and the RPN head
//! wrapped their convs in `Conv2dNormActivation` (the COCO v1 checkpoints among them) spell
//! `backbone.fpn.inner_blocks.0.weight` and `rpn.head.conv.weight`; current modules, and these
//! graphs, use `backbone.fpn.inner_blocks.0.0.weight` and `rpn.head.conv.0.0.weight`.
//! Likewise `MaskRCNNHeads` version 1 (the COCO Mask R-CNN v1 checkpoint) names its convs
//! `roi_heads.mask_head.mask_fcn1` .. `mask_fcn4`, version 2 `roi_heads.mask_head.0.0` ..
//! `3.0`. torchvision upgrades them in `_load_from_state_dict`; [`LegacyDetectionKeys`] does
//! the same for any [`WeightSource`].

use std::collections::{BTreeMap, BTreeSet};

use wgcnn_graph::{Shape, WeightSource};

/// A [`WeightSource`] that shows a checkpoint's old-style detection keys under their current
/// names (`…fpn.inner_blocks.<i>.weight` → `…fpn.inner_blocks.<i>.0.weight`, likewise
/// `layer_blocks` and `bias`; `…rpn.head.conv.weight` → `…rpn.head.conv.0.0.weight`). Keys
/// already in the current layout pass through; an old key is only renamed when the source does
/// not also hold its new name.
pub struct LegacyDetectionKeys<'a> {
    source: &'a dyn WeightSource,
    /// Current name → the source's key.
    renamed: BTreeMap<String, String>,
    /// The source keys shown under another name.
    hidden: BTreeSet<String>,
}

impl<'a> LegacyDetectionKeys<'a> {
    /// Wraps `source`, renaming its old-style keys.
    pub fn new(source: &'a dyn WeightSource) -> Self {
        let keys = source.keys();
        let present: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        let mut renamed = BTreeMap::new();
        let mut hidden = BTreeSet::new();
        for key in &keys {
            if let Some(new) = upgrade_key(key)
                && !present.contains(new.as_str())
            {
                renamed.insert(new, key.clone());
                hidden.insert(key.clone());
            }
        }
        LegacyDetectionKeys {
            source,
            renamed,
            hidden,
        }
    }

    /// `(current name, source key)` of every renamed key.
    pub fn renamed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.renamed.iter().map(|(a, b)| (a.as_str(), b.as_str()))
    }

    fn source_key<'k>(&'k self, key: &'k str) -> Option<&'k str> {
        match self.renamed.get(key) {
            Some(old) => Some(old),
            None if self.hidden.contains(key) => None,
            None => Some(key),
        }
    }
}

/// The current name of an old-style FPN, RPN head or mask head key, if `key` is one.
pub fn upgrade_key(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    let n = parts.len();
    // `…mask_head.mask_fcn<k>.{weight,bias}` (k = 1..) → `…mask_head.<k-1>.0.{weight,bias}`.
    if n >= 3
        && parts[n - 3] == "mask_head"
        && matches!(parts[n - 1], "weight" | "bias")
        && let Some(k) = parts[n - 2]
            .strip_prefix("mask_fcn")
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|&k| k >= 1)
    {
        let head = parts[..n - 2].join(".");
        return Some(format!("{head}.{}.0.{}", k - 1, parts[n - 1]));
    }
    if n < 4 || !matches!(parts[n - 1], "weight" | "bias") {
        return None;
    }
    let (head, last) = (parts[..n - 1].join("."), parts[n - 1]);
    let fpn_block = parts[n - 4] == "fpn"
        && matches!(parts[n - 3], "inner_blocks" | "layer_blocks")
        && parts[n - 2].parse::<usize>().is_ok();
    if fpn_block {
        return Some(format!("{head}.0.{last}"));
    }
    if parts[n - 4] == "rpn" && parts[n - 3] == "head" && parts[n - 2] == "conv" {
        return Some(format!("{head}.0.0.{last}"));
    }
    None
}

impl WeightSource for LegacyDetectionKeys<'_> {
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .source
            .keys()
            .into_iter()
            .filter(|k| !self.hidden.contains(k))
            .collect();
        keys.extend(self.renamed.keys().cloned());
        keys
    }

    fn shape(&self, key: &str) -> Option<Shape> {
        self.source.shape(self.source_key(key)?)
    }

    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        match self.source_key(key) {
            Some(k) => self.source.load(k),
            None => Err(format!(
                "{key} is shown under its current name {:?}",
                upgrade_key(key)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_fpn_and_rpn_head_keys_get_their_current_names() {
        let cases = [
            (
                "backbone.fpn.inner_blocks.0.weight",
                Some("backbone.fpn.inner_blocks.0.0.weight"),
            ),
            (
                "backbone.fpn.layer_blocks.3.bias",
                Some("backbone.fpn.layer_blocks.3.0.bias"),
            ),
            ("rpn.head.conv.weight", Some("rpn.head.conv.0.0.weight")),
            ("rpn.head.conv.0.0.weight", None),
            ("backbone.fpn.inner_blocks.0.0.weight", None),
            ("backbone.fpn.inner_blocks.0.1.running_mean", None),
            ("rpn.head.cls_logits.weight", None),
            (
                "roi_heads.mask_head.mask_fcn1.weight",
                Some("roi_heads.mask_head.0.0.weight"),
            ),
            (
                "roi_heads.mask_head.mask_fcn4.bias",
                Some("roi_heads.mask_head.3.0.bias"),
            ),
            ("roi_heads.mask_head.mask_fcn0.weight", None),
            ("roi_heads.mask_head.0.0.weight", None),
            ("roi_heads.mask_predictor.conv5_mask.weight", None),
        ];
        for (old, new) in cases {
            assert_eq!(upgrade_key(old).as_deref(), new, "{old}");
        }
    }
}
