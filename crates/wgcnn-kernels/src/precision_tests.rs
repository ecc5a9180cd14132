//! The f16 rewrite on snippets (exact text, and naga's verdict on it) and on every kernel an f16
//! plan can use.

use super::{F16_KERNELS, Precision, current, scope, to_f16};
use crate::KernelError;
use crate::shaders::{Needs, SHADERS};
use wgpu::naga;

/// Parses and validates f16 WGSL with the f16 capability (and subgroups where `needs` says).
fn validate(what: &str, src: &str, needs: Needs) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{what}: {}\n{src}", e.emit_to_string(src)));
    let mut caps = naga::valid::Capabilities::SHADER_FLOAT16;
    if needs == Needs::Subgroups {
        caps |= naga::valid::Capabilities::SUBGROUP;
    }
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{what}: {}\n{src}", e.emit_to_string(src)));
}

const HEADER: &str = "
struct Params { n: u32, x: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> y4: array<vec4<f32>>;
var<workgroup> tile: array<f32, 64>;
";

/// The rewritten body of a kernel `main` holding `body` (after the header's declarations).
fn body(body: &str) -> String {
    let src = format!("{HEADER}@compute @workgroup_size(1)\nfn main() {{\n{body}\n}}\n");
    let out = to_f16("main", &src).unwrap_or_else(|e| panic!("{e}"));
    validate("snippet", &out, Needs::Core);
    let start = out.find("fn main() {\n").expect("main") + "fn main() {\n".len();
    out[start..out.len() - 3].to_string()
}

fn refused(body: &str) -> KernelError {
    let src = format!("{HEADER}@compute @workgroup_size(1)\nfn main() {{\n{body}\n}}\n");
    to_f16("main", &src).expect_err("refused")
}

#[test]
fn f16_rewrite_retypes_float_storage_and_leaves_the_rest() {
    let src = format!("{HEADER}@compute @workgroup_size(1)\nfn main() {{}}\n");
    let out = to_f16("main", &src).expect("rewrites");
    assert!(out.starts_with("enable f16; \n"), "{out}");
    assert!(out.contains("var<storage, read> x: array<f16>;"), "{out}");
    assert!(
        out.contains("var<storage, read> w: array<vec4<f16>>;"),
        "{out}"
    );
    assert!(out.contains("var<storage, read> idx: array<u32>;"), "{out}");
    assert!(
        out.contains("var<storage, read_write> y4: array<vec4<f16>>;"),
        "{out}"
    );
    assert!(
        out.contains("var<workgroup> tile: array<f32, 64>;"),
        "{out}"
    );
    assert!(out.contains("struct Params { n: u32, x: u32 }"), "{out}");
    // The directive shares the first line: line numbers still match the source.
    assert_eq!(out.lines().count(), src.lines().count());
    validate("header", &out, Needs::Core);
}

#[test]
fn f16_rewrite_widens_reads_and_narrows_stores() {
    assert_eq!(
        body("    let i = params.n;\n    y[i] = x[i] * 2.0 + x[idx[i]];"),
        "    let i = params.n;\n    y[i] = f16(f32(x[i]) * 2.0 + f32(x[idx[i]]));"
    );
    // Reads touching the store: the read's wrapper closes before the store's.
    assert_eq!(body("    y[0]=x[1];"), "    y[0]=f16(f32(x[1]));");
    assert_eq!(
        body("    y4[0] = w[1] + vec4<f32>(x[0]);"),
        "    y4[0] = vec4<f16>(vec4<f32>(w[1]) + vec4<f32>(f32(x[0])));"
    );
}

#[test]
fn f16_rewrite_types_component_accesses() {
    assert_eq!(
        body("    let i = 5u;\n    y[i] = w[i >> 2u][i & 3u];"),
        "    let i = 5u;\n    y[i] = f16(f32(w[i >> 2u][i & 3u]));"
    );
    assert_eq!(
        body("    y4[0].x = w[0].y;\n    let v: vec2<f32> = w[1].zw;"),
        "    y4[0].x = f16(f32(w[0].y));\n    let v: vec2<f32> = vec2<f32>(w[1].zw);"
    );
}

#[test]
fn f16_rewrite_expands_compound_stores() {
    assert_eq!(
        body("    y[2] += x[0] * 3.0;"),
        "    y[2] = f16(f32(y[2]) + (f32(x[0]) * 3.0));"
    );
    assert_eq!(
        body("    y4[1] *= w[0];"),
        "    y4[1] = vec4<f16>(vec4<f32>(y4[1]) * (vec4<f32>(w[0])));"
    );
}

#[test]
fn f16_rewrite_keeps_comparisons_array_length_members_and_comments() {
    assert_eq!(
        body(
            "    // x[0] = y[0]; in a comment\n    if (x[0] == 1.0 && x[1] <= y[0] && arrayLength(&x) > params.x) { tile[0] = 1.0; }"
        ),
        "    // x[0] = y[0]; in a comment\n    if (f32(x[0]) == 1.0 && f32(x[1]) <= f32(y[0]) && arrayLength(&x) > params.x) { tile[0] = 1.0; }"
    );
    // A store inside a for header ends at its `)`.
    assert_eq!(
        body("    for (var i = 0u; i < 4u; y[i] = 0.0) { }"),
        "    for (var i = 0u; i < 4u; y[i] = f16(0.0)) { }"
    );
}

#[test]
fn f16_rewrite_refuses_pointers_increments_and_compound_stores_indexed_by_f16() {
    for (code, what) in [
        ("    let p = &y[0];", "pointer"),
        ("    y[0]++;", "++"),
        ("    y[u32(x[0])] += 1.0;", "another f16 binding"),
    ] {
        let e = refused(code);
        let text = e.to_string();
        assert!(
            text.contains("main") && text.contains(what),
            "{code}: {text}"
        );
        assert!(matches!(e, KernelError::F16 { .. }), "{code}: {e:?}");
    }
}

#[test]
fn f16_rewrite_leaves_locals_and_parameters_that_shadow_a_binding() {
    // A local hides the binding to the end of its block, a for header's var over the loop, a
    // parameter over its function.
    assert_eq!(
        body("    {\n        let x = 1.0;\n        y[0] = x;\n    }\n    y[1] = x[0];"),
        "    {\n        let x = 1.0;\n        y[0] = f16(x);\n    }\n    y[1] = f16(f32(x[0]));"
    );
    assert_eq!(
        body("    for (var x = 0u; x < 2u; x++) { y[x] = 0.0; }\n    y[2] = x[2];"),
        "    for (var x = 0u; x < 2u; x++) { y[x] = f16(0.0); }\n    y[2] = f16(f32(x[2]));"
    );
    let src = format!(
        "{HEADER}fn f(x: f32) -> f32 {{ return x; }}\n@compute @workgroup_size(1)\nfn main() {{ y[0] = f(x[0]); }}\n"
    );
    let out = to_f16("k", &src).expect("rewrites");
    assert!(out.contains("fn f(x: f32) -> f32 { return x; }"), "{out}");
    assert!(out.contains("y[0] = f16(f(f32(x[0])));"), "{out}");
    validate("parameter", &out, Needs::Core);
}

#[test]
fn every_f16_kernel_rewrites_and_validates_with_naga() {
    for name in F16_KERNELS {
        let shader = SHADERS
            .iter()
            .find(|s| s.name == *name)
            .unwrap_or_else(|| panic!("F16_KERNELS names {name}, which the registry lacks"));
        let out = to_f16(name, shader.source).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !out.contains("array<f32>") && !out.contains("array<vec4<f32>>"),
            "{name}: an f32 storage array survived"
        );
        validate(&format!("{name} (f16)"), &out, shader.needs);
    }
}

#[test]
fn every_registered_kernel_is_either_f16_or_refused_at_f16() {
    // A new kernel must be put on one side: in F16_KERNELS (its float buffers hold only real
    // numbers; the test above then validates its rewrite) or here (its float buffers carry
    // indices, counts or bit patterns, used only by ops an f16 plan refuses).
    const DETECTION: &[&str] = &[
        "scale_boxes",
        "roi_align",
        "segment_keys",
        "topk_sort",
        "box_decode",
        "nms_offsets",
        "nms_mask",
        "nms_walk",
        "nms_gather",
        "detect_rows_args",
        "paste_masks",
        "mask_bits",
        "keypoint_decode",
    ];
    for s in SHADERS {
        let refused = DETECTION.contains(&s.name)
            || s.name.starts_with("mesh_")
            || s.name.starts_with("face_");
        assert!(
            refused != F16_KERNELS.contains(&s.name),
            "{}: list it in precision::F16_KERNELS or among the kernels refused at f16",
            s.name
        );
    }
}

#[test]
fn precision_scope_nests_and_restores() {
    assert_eq!(current(), Precision::F32);
    {
        let _a = scope(Precision::F16);
        assert_eq!(current(), Precision::F16);
        {
            let _b = scope(Precision::F32);
            assert_eq!(current(), Precision::F32);
        }
        assert_eq!(current(), Precision::F16);
    }
    assert_eq!(current(), Precision::F32);
    assert_eq!("F16".parse::<Precision>(), Ok(Precision::F16));
    assert!("f64".parse::<Precision>().is_err());
}

#[test]
fn f16_bits_round_to_nearest_and_back() {
    let v = [0.0f32, 1.0, -2.5, 65504.0, 1e5, 1.0 + 1.0 / 4096.0];
    let mut back = Vec::new();
    super::from_f16_bits(&super::to_f16_bits(&v), &mut back);
    assert_eq!(&back[..4], &v[..4]);
    assert!(back[4].is_infinite());
    // 1 + 2^-12 is halfway between two halves: rounds to even (1.0).
    assert_eq!(back[5], 1.0);
}
