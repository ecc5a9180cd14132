//! The registry of WGSL sources: every kernel file in `shaders/` is included here exactly once,
//! composed at compile time with the library files it uses from `shaders/lib/` (the kernel first,
//! so its directives stay on top), and declares what it needs from the device. A CPU-only test
//! validates each composed kernel and each library file with naga, with only the capabilities
//! the entry declares, and fails on a file no entry uses.
//!
//! The paths are `../shaders/..`: the crate carries a link `shaders -> ../../shaders`, so the
//! packaged crate holds its WGSL.

/// What a shader needs beyond core WebGPU. The file says it: a kernel or library file that uses
/// a subgroup builtin starts with WGSL's `enable subgroups;` (Tint rejects the builtins without
/// it), and [`needs`] reads that line, so the directive is the one source of truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Core,
    /// `subgroupBroadcast` and `subgroup_invocation_id`: the device's subgroups feature.
    Subgroups,
}

/// A registered kernel: its file stem (= entry point = pipeline label), the composed source,
/// the library files appended to it and what it needs.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    pub libs: &'static [&'static str],
    pub needs: Needs,
}

/// The directive a subgroup shader's file starts with.
const ENABLE_SUBGROUPS: &str = "enable subgroups;";

/// Whether `src` starts with `prefix` (`str::starts_with` is not `const`).
const fn starts_with(src: &str, prefix: &str) -> bool {
    let (s, p) = (src.as_bytes(), prefix.as_bytes());
    if s.len() < p.len() {
        return false;
    }
    let mut i = 0;
    while i < p.len() {
        if s[i] != p[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// What a shader file needs: [`Needs::Subgroups`] iff it starts with `enable subgroups;`.
pub const fn needs(file: &str) -> Needs {
    if starts_with(file, ENABLE_SUBGROUPS) {
        Needs::Subgroups
    } else {
        Needs::Core
    }
}

/// `file` without its leading `enable subgroups;` (the line break stays, so naga's line numbers
/// still match the file). naga 30 (wgpu 30) rejects the directive as not yet implemented while
/// accepting the builtins; the `enable_subgroups_is_still_rejected_by_naga` test says when this
/// can go.
const fn strip_enable(file: &'static str) -> &'static str {
    if starts_with(file, ENABLE_SUBGROUPS) {
        file.split_at(ENABLE_SUBGROUPS.len()).1
    } else {
        file
    }
}

/// Total length of `parts`.
const fn joined_len(parts: &[&str]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// The bytes of `parts` one after another; `N` is [`joined_len`] of them.
const fn join<const N: usize>(parts: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < parts.len() {
        let bytes = parts[i].as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            out[at] = bytes[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

/// The `&'static str` of `parts` joined, built by the compiler (`concat!` takes only literals,
/// and the files' directives must go before joining).
macro_rules! compose {
    ($($part:expr),*) => {{
        const PARTS: &[&str] = &[$($part),*];
        const BYTES: [u8; joined_len(PARTS)] = join(PARTS);
        match core::str::from_utf8(&BYTES) {
            Ok(s) => s,
            Err(_) => panic!("WGSL sources are UTF-8"),
        }
    }};
}

/// A kernel file's text, as written.
macro_rules! kernel_file {
    ($file:literal) => {
        include_str!(concat!("../shaders/", $file, ".wgsl"))
    };
}

/// A library file's text, as written.
macro_rules! lib_file {
    ($file:literal) => {
        include_str!(concat!("../shaders/lib/", $file, ".wgsl"))
    };
}

macro_rules! libs {
    ($($file:literal,)*) => {
        /// `(file stem, source, needs)` of every library file in `shaders/lib/`.
        pub const LIBS: &[(&str, &str, Needs)] = &[$((
            $file,
            strip_enable(lib_file!($file)),
            needs(lib_file!($file)),
        )),*];
    };
}

macro_rules! shaders {
    ($($konst:ident = $file:literal $(, $lib:literal)*;)*) => {
        $(pub const $konst: &str = compose!(
            strip_enable(kernel_file!($file))
            $(, "\n", strip_enable(lib_file!($lib)))*
        );)*
        /// `(file stem, composed source)` of every kernel.
        pub const ALL: &[(&str, &str)] = &[$(($file, $konst)),*];
        /// Every kernel with its library files and needs.
        pub const SHADERS: &[Shader] = &[$(Shader {
            name: $file,
            source: $konst,
            libs: &[$($lib),*],
            needs: needs(kernel_file!($file)),
        }),*];
    };
}

libs! {
    "activation",
    "conv",
    "winograd",
    "dwconv",
    "linear",
    "subgroup",
    "index",
    "sample",
    "mesh",
    "pool",
}

shaders! {
    UNARY = "unary", "index", "activation";
    CONV2D = "conv2d", "conv", "activation";
    CONV2D_SG = "conv2d_sg", "conv", "subgroup", "activation";
    CONV2D_1X1_SG = "conv2d_1x1_sg", "conv", "subgroup", "activation";
    CONV2D_WINOGRAD_INPUT = "conv2d_winograd_input", "winograd";
    CONV2D_WINOGRAD_GEMM = "conv2d_winograd_gemm", "winograd", "subgroup";
    CONV2D_WINOGRAD_OUTPUT = "conv2d_winograd_output", "winograd", "activation";
    CONV2D_WINOGRAD4_INPUT = "conv2d_winograd4_input", "winograd";
    CONV2D_WINOGRAD4_OUTPUT = "conv2d_winograd4_output", "winograd", "activation";
    DWCONV2D = "dwconv2d", "dwconv", "activation";
    DWCONV2D_TILE = "dwconv2d_tile", "dwconv", "activation";
    LINEAR = "linear", "linear", "activation";
    LINEAR_SG = "linear_sg", "linear", "subgroup", "activation";
    PREPROCESS = "preprocess";
    POOL2D = "pool2d", "pool";
    POOL2D_TILE = "pool2d_tile", "pool";
    ADAPTIVE_AVGPOOL2D = "adaptive_avgpool2d";
    BINARY = "binary", "index", "activation";
    PRELU = "prelu";
    COPY_CHANNELS = "copy_channels", "index";
    LRN = "lrn", "index";
    SOFTMAX = "softmax";
    PAD = "pad", "index";
    SUBSAMPLE = "subsample";
    RESIZE = "resize", "index", "sample";
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
    DETECT_ROWS_ARGS = "detect_rows_args";
    ARGMAX2D = "argmax2d", "index", "sample";
    CONV_TRANSPOSE2D = "conv_transpose2d", "activation";
    PASTE_MASKS = "paste_masks", "activation";
    MASK_BITS = "mask_bits";
    MESH_OCCUPANCY = "mesh_occupancy", "index", "mesh";
    MESH_FALLBACK = "mesh_fallback", "index", "mesh";
    MESH_CUBIFY_COUNT = "mesh_cubify_count", "index", "mesh";
    MESH_CUBIFY_FACES = "mesh_cubify_faces", "index", "mesh";
    MESH_CUBIFY_VERTS = "mesh_cubify_verts", "index", "mesh";
    MESH_CUBIFY_REMAP = "mesh_cubify_remap", "index", "mesh";
    MESH_SCAN_LOCAL = "mesh_scan_local", "mesh";
    MESH_SCAN_SUMS = "mesh_scan_sums", "mesh";
    MESH_SCAN_ADD = "mesh_scan_add", "index", "mesh";
    MESH_EDGE_COUNT = "mesh_edge_count", "index", "mesh";
    MESH_EDGES = "mesh_edges", "index", "mesh";
    MESH_PROJECT = "mesh_project", "index", "mesh";
    MESH_VERT_ALIGN = "mesh_vert_align", "index", "mesh";
    MESH_BOTTLENECK = "mesh_bottleneck", "mesh", "activation";
    MESH_GCONV_LINEAR = "mesh_gconv_linear", "mesh";
    MESH_GCONV_GATHER = "mesh_gconv_gather", "index", "mesh", "activation";
    MESH_OFFSET = "mesh_offset", "index", "mesh", "activation";
    MESH_DISPATCH_ARGS = "mesh_dispatch_args", "mesh";
    KEYPOINT_DECODE = "keypoint_decode";
    FACE_PYRAMID = "face_pyramid";
    FACE_CANDIDATES = "face_candidates";
    FACE_MERGE = "face_merge";
    FACE_BOXES = "face_boxes";
    FACE_CROPS = "face_crops";
    FACE_SELECT = "face_select";
    FACE_LANDMARKS = "face_landmarks";
    FACE_OUTPUT = "face_output";
    FACE_DISPATCH = "face_dispatch";
    FACE_ROWS = "face_rows";
}

#[cfg(test)]
mod tests {
    use super::{LIBS, Needs, SHADERS};
    use wgpu::naga;

    /// Parses and validates `src` with only the capabilities `needs` grants.
    fn validate(what: &str, src: &str, needs: Needs) -> naga::Module {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(src)));
        let caps = match needs {
            Needs::Core => naga::valid::Capabilities::empty(),
            Needs::Subgroups => naga::valid::Capabilities::SUBGROUP,
        };
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{what} (needs {needs:?}): {}", e.emit_to_string(src)));
        module
    }

    #[test]
    fn every_library_file_validates_on_its_own() {
        for (name, src, needs) in LIBS {
            let module = validate(&format!("lib/{name}.wgsl"), src, *needs);
            assert!(
                module.entry_points.is_empty() && module.global_variables.is_empty(),
                "lib/{name}.wgsl must hold only fn, struct and const (bindings belong to kernels)"
            );
        }
    }

    #[test]
    fn every_shader_parses_and_validates_with_naga() {
        for shader in SHADERS {
            let name = shader.name;
            // A kernel needs at least what its library files need.
            for lib in shader.libs {
                let (_, _, needs) = LIBS
                    .iter()
                    .find(|(n, _, _)| n == lib)
                    .unwrap_or_else(|| panic!("{name}: lib/{lib}.wgsl is not in LIBS"));
                assert!(
                    *needs == Needs::Core || *needs == shader.needs,
                    "{name} uses lib/{lib}.wgsl, which needs {needs:?}, but declares {:?}",
                    shader.needs
                );
            }
            let module = validate(
                &format!("{name}.wgsl (composed)"),
                shader.source,
                shader.needs,
            );
            assert!(
                module.entry_points.iter().any(|e| e.name == name),
                "{name}.wgsl must have an entry point named {name}"
            );
        }
    }

    #[test]
    fn a_subgroup_shader_fails_validation_without_the_capability() {
        // The check above is only meaningful if the missing capability is an error.
        for shader in SHADERS.iter().filter(|s| s.needs == Needs::Subgroups) {
            let module = naga::front::wgsl::parse_str(shader.source).expect("parses");
            let core = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module);
            assert!(core.is_err(), "{} validates without subgroups", shader.name);
        }
    }

    #[test]
    fn enable_subgroups_is_still_rejected_by_naga() {
        // The registry strips the directive only because naga rejects it; once naga takes it,
        // the sources can go to wgpu as written.
        let src = "enable subgroups;\n@compute @workgroup_size(1) fn main() {}";
        assert!(
            naga::front::wgsl::parse_str(src).is_err(),
            "naga now accepts `enable subgroups;`: remove the stripping in shaders.rs"
        );
    }

    /// `src` without its `//` comments: what the compiler reads.
    fn code(src: &str) -> String {
        src.lines()
            .map(|l| l.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A file's text as written, from the crate's `shaders` link.
    fn file(path: &str) -> String {
        let path = format!("{}/shaders/{path}.wgsl", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn subgroup_needs_match_the_enable_directive_and_the_builtins_used() {
        // Needs comes from the directive; hold the directive to the code. A file that uses a
        // subgroup builtin must say `enable subgroups;` (Tint refuses the builtin otherwise), and
        // a kernel needs subgroups iff its composed code (library calls included) uses one.
        for (path, needs) in SHADERS.iter().map(|s| (s.name.to_string(), s.needs)).chain(
            LIBS.iter()
                .map(|(n, _, needs)| (format!("lib/{n}"), *needs)),
        ) {
            let text = file(&path);
            assert_eq!(
                needs,
                super::needs(&text),
                "{path}.wgsl: the registry's needs disagree with the file's first line"
            );
            let uses = code(&text).contains("subgroup");
            assert_eq!(
                uses,
                text.starts_with("enable subgroups;"),
                "{path}.wgsl: starts with `enable subgroups;` iff its code uses a subgroup builtin"
            );
            assert!(
                !code(&text).contains("enable subgroups;") || text.starts_with("enable subgroups;"),
                "{path}.wgsl: `enable subgroups;` goes on the first line, where the registry strips it"
            );
        }
        for shader in SHADERS {
            let uses = code(shader.source).contains("subgroup");
            assert_eq!(
                uses,
                shader.needs == Needs::Subgroups,
                "{}: needs {:?}, but its composed code {} subgroup builtins",
                shader.name,
                shader.needs,
                if uses { "uses" } else { "uses no" }
            );
            assert!(
                !code(shader.source).contains("enable subgroups"),
                "{}: the composed source still holds a directive naga rejects",
                shader.name
            );
        }
    }

    /// The `.wgsl` stems in `dir`.
    fn stems(dir: &str) -> Vec<String> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = entry.expect("readable entry").path();
            if path.extension().is_some_and(|e| e == "wgsl") {
                out.push(
                    path.file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
        out
    }

    #[test]
    fn every_shader_file_is_registered() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
        for stem in stems(dir) {
            assert!(
                SHADERS.iter().any(|s| s.name == stem),
                "{stem}.wgsl is not in the registry (shaders.rs)"
            );
        }
        for stem in stems(&format!("{dir}/lib")) {
            assert!(
                LIBS.iter().any(|(n, _, _)| *n == stem),
                "lib/{stem}.wgsl is not in LIBS (shaders.rs)"
            );
            assert!(
                SHADERS.iter().any(|s| s.libs.contains(&stem.as_str())),
                "lib/{stem}.wgsl is used by no kernel"
            );
        }
    }
}
