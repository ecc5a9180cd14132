//! The registry of WGSL sources: every file in `shaders/` is included here exactly once, and a
//! CPU-only test validates each with naga and fails on a file no entry uses.

macro_rules! shaders {
    ($($konst:ident = $file:literal;)*) => {
        $(pub const $konst: &str = include_str!(concat!("../../../shaders/", $file, ".wgsl"));)*
        /// `(file stem, source)` of every shader.
        pub const ALL: &[(&str, &str)] = &[$(($file, $konst)),*];
    };
}

shaders! {
    UNARY = "unary";
    CONV2D = "conv2d";
    CONV2D_SG = "conv2d_sg";
    CONV2D_SG4 = "conv2d_sg4";
    CONV2D_1X1_SG = "conv2d_1x1_sg";
    CONV2D_WINOGRAD_INPUT = "conv2d_winograd_input";
    CONV2D_WINOGRAD_GEMM = "conv2d_winograd_gemm";
    CONV2D_WINOGRAD_OUTPUT = "conv2d_winograd_output";
    DWCONV2D = "dwconv2d";
    DWCONV2D_TILE = "dwconv2d_tile";
    DWCONV2D_TILE4 = "dwconv2d_tile4";
    LINEAR = "linear";
    LINEAR_SG = "linear_sg";
    PREPROCESS = "preprocess";
    POOL2D = "pool2d";
    ADAPTIVE_AVGPOOL2D = "adaptive_avgpool2d";
    BINARY = "binary";
    COPY_CHANNELS = "copy_channels";
    LRN = "lrn";
    SOFTMAX = "softmax";
    PAD = "pad";
    SUBSAMPLE = "subsample";
    RESIZE = "resize";
    PERMUTE = "permute";
    SCALE_BOXES = "scale_boxes";
    ROI_ALIGN = "roi_align";
    SEGMENT_KEYS = "segment_keys";
    TOPK_SORT = "topk_sort";
    BOX_DECODE = "box_decode";
    NMS_OFFSETS = "nms_offsets";
    NMS_MASK = "nms_mask";
    NMS_WALK = "nms_walk";
    NMS_GATHER = "nms_gather";
}

#[cfg(test)]
mod tests {
    use super::ALL;

    #[test]
    fn every_shader_parses_and_validates_with_naga() {
        use wgpu::naga;
        for (name, src) in ALL {
            let module = naga::front::wgsl::parse_str(src)
                .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::all(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {e:?}"));
            assert!(
                module.entry_points.iter().any(|e| e.name == *name),
                "{name}.wgsl must have an entry point named {name}"
            );
        }
    }

    #[test]
    fn every_shader_file_is_registered() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders");
        for entry in std::fs::read_dir(dir).expect("shaders/ exists") {
            let path = entry.expect("readable entry").path();
            if path.extension().is_some_and(|e| e == "wgsl") {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                assert!(
                    ALL.iter().any(|(n, _)| *n == stem),
                    "{stem}.wgsl is not in the registry (shaders.rs)"
                );
            }
        }
    }
}
