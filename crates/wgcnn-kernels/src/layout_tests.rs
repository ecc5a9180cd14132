//! CPU-only check that every kernel's `#[repr(C)]` params struct has the byte layout naga gives
//! the WGSL struct bound at `@group(0) @binding(0) var<uniform>` of each registered shader:
//! the same size, and for each member the same name, offset, size and scalar type. The params
//! are uploaded as raw bytes (`bytemuck`), so a field added on one side only, or a `u32` that is
//! an `f32` on the other, would otherwise only show as wrong numbers on the GPU.
//!
//! The test reads the composed sources of `crate::shaders::SHADERS`, so it does not care which
//! file (kernel or `shaders/lib/`) declares a struct. Every registered shader must have a row in
//! `rows()`, so a new kernel cannot skip the check.

use core::mem::size_of;

use wgpu::naga;

use crate::shaders::SHADERS;

/// The scalar type of a field, on either side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar {
    U32,
    I32,
    F32,
}

/// What a Rust field type holds: its scalar type and how many of them (arrays flatten).
trait FieldType {
    const SCALAR: Scalar;
    const COUNT: usize;
}

impl FieldType for u32 {
    const SCALAR: Scalar = Scalar::U32;
    const COUNT: usize = 1;
}

impl FieldType for i32 {
    const SCALAR: Scalar = Scalar::I32;
    const COUNT: usize = 1;
}

impl FieldType for f32 {
    const SCALAR: Scalar = Scalar::F32;
    const COUNT: usize = 1;
}

impl<T: FieldType, const N: usize> FieldType for [T; N] {
    const SCALAR: Scalar = T::SCALAR;
    const COUNT: usize = T::COUNT * N;
}

/// One Rust field and the WGSL members it stands for: its own name, or (for a Rust array that
/// WGSL spells as scalars, because uniform arrays have a 16-byte stride) several members that
/// split it evenly, listed in the table with `field => [member, ...]`.
#[derive(Debug)]
struct RustField {
    name: &'static str,
    offset: usize,
    size: usize,
    scalar: Scalar,
    count: usize,
    members: &'static [&'static str],
}

/// A Rust params type: its name, size and every field (the table's macro makes listing a field
/// twice or leaving one out a compile error).
#[derive(Debug)]
struct RustParams {
    name: &'static str,
    size: usize,
    fields: Vec<RustField>,
}

/// `(scalar, count, bytes)` of a Rust field's type, read through a projection so the macro needs
/// only the field's name.
fn field_type<T, F: FieldType>(_: fn(&T) -> &F) -> (Scalar, usize, usize) {
    (F::SCALAR, F::COUNT, size_of::<F>())
}

macro_rules! members {
    ($field:ident) => {
        &[stringify!($field)]
    };
    ($field:ident; $($member:ident),+) => {
        &[$(stringify!($member)),+]
    };
}

/// `params!(path::Type, [field, array_field => [m0, m1], ...])`: the layout of `Type`.
macro_rules! params {
    ($ty:path, [$($field:ident $(=> [$($member:ident),+ $(,)?])?),+ $(,)?]) => {{
        // Exhaustive: a Rust field missing from the list does not compile.
        let $ty { $($field: _),+ } = <$ty as bytemuck::Zeroable>::zeroed();
        RustParams {
            name: stringify!($ty),
            size: size_of::<$ty>(),
            fields: vec![$({
                let (scalar, count, size) = field_type(|p: &$ty| &p.$field);
                RustField {
                    name: stringify!($field),
                    offset: core::mem::offset_of!($ty, $field),
                    size,
                    scalar,
                    count,
                    members: members!($field $(; $($member),+)?),
                }
            }),+],
        }
    }};
}

/// The Rust params type of each registered shader, by name. Kept as a table (one row per shader,
/// Rust fields in declaration order): `field => [m0, m1, ...]` maps a Rust array onto the WGSL
/// scalar members that spell it, since uniform arrays of scalars need a 16-byte stride.
#[rustfmt::skip]
fn rows() -> Vec<(&'static str, RustParams)> {
    let conv = || params!(crate::conv2d::Conv2dParams, [
        batch, in_c, in_h, in_w, out_c, out_h, out_w, groups, kernel_h, kernel_w, stride_h,
        stride_w, pad_top, pad_left, dil_h, dil_w, pixel_blocks, chan_blocks, has_bias,
        has_residual, act, p0, p1, cb, out_c_total, out_c_offset, _pad0, _pad1,
    ]);
    let winograd = || params!(crate::conv2d::winograd::WinogradParams, [
        batch, in_c, in_h, in_w, out_c, out_h, out_w, pad_top, pad_left, tiles_h, tiles_w, tiles,
        t_stride, t_blocks, k_blocks, has_bias, has_residual, act, p0, p1, out_c_total,
        out_c_offset, positions, tile_row0,
    ]);
    let dwconv = || params!(crate::dwconv2d::DwConv2dParams, [
        batch, in_c, in_h, in_w, out_c, out_h, out_w, multiplier, kernel_h, kernel_w, stride_h,
        stride_w, pad_top, pad_left, dil_h, dil_w, quads_w, plane_blocks, has_bias, has_residual,
        act, p0, p1, _pad,
    ]);
    let linear = || params!(crate::linear::LinearParams, [
        batch, in_features, out_features, row_offset, rows, row_blocks, has_bias, act, p0, p1,
        _pad0, _pad1,
    ]);
    let pool = || params!(crate::pool2d::Pool2dParams, [
        total, height, width, out_height, out_width, kernel_h, kernel_w, stride_h, stride_w,
        pad_top, pad_left, pad_bottom, pad_right, mode, count_include_pad, channels,
        out_c_total, out_c_offset, _pad => [_pad0, _pad1],
    ]);
    vec![
        ("conv2d", conv()),
        ("conv2d_sg", conv()),
        ("conv2d_1x1_sg", conv()),
        ("conv2d_winograd_input", winograd()),
        ("conv2d_winograd_gemm", winograd()),
        ("conv2d_winograd_output", winograd()),
        ("conv2d_winograd4_input", winograd()),
        ("conv2d_winograd4_output", winograd()),
        ("dwconv2d", dwconv()),
        ("dwconv2d_tile", dwconv()),
        ("linear", linear()),
        ("linear_sg", linear()),
        ("subsample", params!(crate::conv2d::strided::SubsampleParams, [
            channels, in_h, in_w, out_h, out_w, stride_h, stride_w, quads_w, batch,
            _pad => [_pad0, _pad1, _pad2],
        ])),
        ("unary", params!(crate::unary::UnaryParams, [
            len, channels, spatial, has_affine, act, p0, p1, _pad,
        ])),
        ("binary", params!(crate::binary::BinaryParams, [
            len, mode, op, channels, spatial, b_batched, act, p0, p1, _pad0, _pad1, _pad2,
        ])),
        ("preprocess", params!(crate::preprocess::PreprocessParams, [
            in_w, in_h, resized_w, resized_h, crop_left, crop_top, out_w, out_h, resample,
            channels, out_offset, in_offset, mean, inv_std,
        ])),
        ("pool2d", pool()),
        ("pool2d_tile", pool()),
        ("prelu", params!(crate::prelu::PreluParams, [spatial, channels, planes, single])),
        ("adaptive_avgpool2d", params!(crate::adaptive_avgpool2d::AdaptiveAvgPool2dParams, [
            total, height, width, out_height, out_width, cooperative, _pad0, _pad1,
        ])),
        ("copy_channels", params!(crate::copy_channels::CopyChannelsParams, [
            total, count, inner, src_channels, src_offset, dst_channels, dst_offset, _pad,
        ])),
        ("lrn", params!(crate::lrn::LrnParams, [
            total, channels, spatial, size, alpha, beta, k, _pad,
        ])),
        ("softmax", params!(crate::softmax::SoftmaxParams, [rows, axis_len, inner, cooperative])),
        ("pad", params!(crate::pad::PadParams, [
            total, height, width, out_height, out_width, top, left, value,
        ])),
        ("resize", params!(crate::resize::ResizeParams, [
            total, height, width, out_height, out_width, mode, align_corners, _pad0, scale_h,
            scale_w, _pad1, _pad2,
        ])),
        ("paste_masks", params!(crate::paste_masks::PasteMasksParams, [
            total, height, width, classes, mask, padding, scale, _pad,
        ])),
        ("mask_bits", params!(crate::paste_masks::MaskBitsParams, [
            total, pixels, words, threshold,
        ])),
        ("mesh_occupancy", mesh_params()),
        ("mesh_fallback", mesh_params()),
        ("mesh_cubify_count", mesh_params()),
        ("mesh_cubify_faces", mesh_params()),
        ("mesh_cubify_verts", mesh_params()),
        ("mesh_cubify_remap", mesh_params()),
        ("mesh_scan_local", mesh_params()),
        ("mesh_scan_sums", mesh_params()),
        ("mesh_scan_add", mesh_params()),
        ("mesh_edge_count", mesh_params()),
        ("mesh_edges", mesh_params()),
        ("mesh_project", mesh_params()),
        ("mesh_vert_align", mesh_params()),
        ("mesh_bottleneck", mesh_params()),
        ("mesh_gconv_linear", mesh_params()),
        ("mesh_gconv_gather", mesh_params()),
        ("mesh_offset", mesh_params()),
        ("mesh_dispatch_args", mesh_params()),
        ("keypoint_decode", params!(crate::keypoint_decode::KeypointDecodeParams, [
            groups, joints, height, width, scale_y, scale_x, _pad0, _pad1,
        ])),
        ("conv_transpose2d", params!(crate::conv_transpose2d::ConvTranspose2dParams, [
            total, channels, height, width, out_channels, out_height, out_width, group_in,
            group_out, kblocks, groups, kernel_h, kernel_w, stride_h, stride_w, dilation_h,
            dilation_w, pad_top, pad_left, has_bias, act, act_p0, act_p1, from_cols,
        ])),
        ("argmax2d", params!(crate::argmax2d::ArgMax2dParams, [
            total, channels, height, width, out_height, out_width, scale_h, scale_w,
        ])),
        ("permute", params!(crate::permute::PermuteParams, [
            total, dims => [d1, d2, d3, d4, d5], strides => [s0, s1, s2, s3, s4, s5],
        ])),
        ("scale_boxes", params!(crate::scale_boxes::ScaleBoxesParams, [
            rows, _pad, scale_x, scale_y,
        ])),
        ("roi_align", params!(crate::roi_align::RoiAlignParams, [
            total, rows, channels, out_h, out_w, sampling_ratio, aligned, level_base, level_count,
            levels, sizes => [h0, w0, h1, w1, h2, w2, h3, w3], box_stride, _pad,
            scales => [scale0, scale1, scale2, scale3], canonical_scale, canonical_level, k_min,
            k_max,
        ])),
        ("segment_keys", params!(crate::segment_keys::SegmentKeysParams, [
            groups, src_img_stride, src_elem_stride, dst_img_stride, mode, _pad => [_pad0, _pad1],
            thresh,
        ])),
        ("topk_sort", params!(crate::topk_sort::TopkSortParams, [
            entries, mode, _pad => [_pad0, _pad1],
        ])),
        ("box_decode", params!(crate::box_decode::BoxDecodeParams, [
            groups, kmax, pair_img_stride, score_img_stride, score_elem_stride, ref_img_stride,
            ref_row, sigmoid, strict, _pad0 => [_pad0, _pad1, _pad2], image_h, image_w, min_size,
            thresh, bbox_clip, weights => [wx, wy, ww, wh], _pad1 => [_pad3, _pad4, _pad5],
        ])),
        ("nms_offsets", params!(crate::nms_offsets::NmsOffsetsParams, [
            slots, _pad => [_pad0, _pad1, _pad2],
        ])),
        ("nms_mask", params!(crate::nms_mask::NmsMaskParams, [
            kmax, words, groups, group_offset, trick_max, mode, _pad, thresh,
        ])),
        ("nms_walk", params!(crate::nms_walk::NmsWalkParams, [segments, kmax, words, cap])),
        ("face_pyramid", params!(crate::detect::faces::FacePyramidParams, [
            height, width, out_height, out_width, row0, rows, split, _pad,
        ])),
        ("face_candidates", params!(crate::detect::faces::FaceCandidatesParams, [
            kmax, levels, _pad => [_pad0, _pad1],
        ])),
        ("face_merge", params!(crate::detect::faces::FaceMergeParams, [
            count, slots, _pad => [_pad0, _pad1],
        ])),
        ("face_boxes", params!(crate::detect::faces::FaceBoxesParams, [
            rows, cap, height, width, extra, _pad => [_pad0, _pad1, _pad2],
        ])),
        ("face_select", params!(crate::detect::faces::FaceSelectParams, [
            slots, count, _pad => [_pad0, _pad1],
        ])),
        ("face_landmarks", params!(crate::detect::faces::FaceLandmarksParams, [
            slots, count, _pad => [_pad0, _pad1],
        ])),
        ("face_output", params!(crate::detect::faces::FaceOutputParams, [
            rows, slots, _pad => [_pad0, _pad1],
        ])),
        ("face_dispatch", params!(crate::detect::faces::FaceDispatchParams, [
            entries, chunk, _pad => [_pad0, _pad1],
        ])),
        ("face_rows", params!(crate::detect::faces::FaceRowsParams, [first, rows, width, mode])),
        ("face_crops", params!(crate::detect::faces::FaceCropsParams, [
            height, width, size, rows, first, split, _pad => [_pad0, _pad1],
        ])),
        ("nms_gather", params!(crate::nms_gather::NmsGatherParams, [
            groups, images, kmax, cap, out_cap, row_width, label_offset, _pad,
        ])),
        ("detect_rows_args", params!(crate::detect::rows::RowsArgsParams, [
            total_rows, width, score_col, entries,
        ])),
    ]
}

/// One WGSL struct member as naga lays it out.
#[derive(Debug)]
struct WgslMember {
    name: String,
    offset: u32,
    size: u32,
    /// `None` for a type no Rust field can mirror (bool, matrices of f16, ...).
    scalar: Option<(Scalar, usize)>,
}

/// The uniform struct of a module: its type name, span and members.
#[derive(Debug)]
struct WgslParams {
    name: String,
    span: u32,
    members: Vec<WgslMember>,
}

/// `(scalar, count)` of a WGSL type, arrays and vectors flattened.
fn wgsl_scalar(module: &naga::Module, ty: naga::Handle<naga::Type>) -> Option<(Scalar, usize)> {
    let scalar = |s: naga::Scalar| match (s.kind, s.width) {
        (naga::ScalarKind::Uint, 4) => Some(Scalar::U32),
        (naga::ScalarKind::Sint, 4) => Some(Scalar::I32),
        (naga::ScalarKind::Float, 4) => Some(Scalar::F32),
        _ => None,
    };
    match &module.types[ty].inner {
        naga::TypeInner::Scalar(s) => Some((scalar(*s)?, 1)),
        naga::TypeInner::Vector { size, scalar: s } => Some((scalar(*s)?, *size as usize)),
        naga::TypeInner::Matrix {
            columns,
            rows,
            scalar: s,
        } => Some((scalar(*s)?, *columns as usize * *rows as usize)),
        naga::TypeInner::Array {
            base,
            size: naga::ArraySize::Constant(n),
            ..
        } => {
            let (s, count) = wgsl_scalar(module, *base)?;
            Some((s, count * n.get() as usize))
        }
        _ => None,
    }
}

/// Parses `src` and lays out the struct of its `@group(0) @binding(0) var<uniform>`.
fn wgsl_params(name: &str, src: &str) -> Result<WgslParams, String> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| format!("{name}: {}", e.emit_to_string(src)))?;
    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .map_err(|e| format!("{name}: layout: {e}"))?;
    let binding0 = naga::ResourceBinding {
        group: 0,
        binding: 0,
    };
    let mut uniforms = module
        .global_variables
        .iter()
        .filter(|(_, v)| v.space == naga::AddressSpace::Uniform && v.binding == Some(binding0));
    let (_, var) = uniforms
        .next()
        .ok_or_else(|| format!("{name}: no var<uniform> at @group(0) @binding(0)"))?;
    let ty = &module.types[var.ty];
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        return Err(format!("{name}: the uniform at binding 0 is not a struct"));
    };
    Ok(WgslParams {
        name: ty.name.clone().unwrap_or_default(),
        span: *span,
        members: members
            .iter()
            .map(|m| WgslMember {
                name: m.name.clone().unwrap_or_default(),
                offset: m.offset,
                size: layouter[m.ty].size,
                scalar: wgsl_scalar(&module, m.ty),
            })
            .collect(),
    })
}

/// Every difference between `rust` and the WGSL struct of `shader`, one line each.
fn mismatches(shader: &str, wgsl: &WgslParams, rust: &RustParams) -> Vec<String> {
    let at = format!("{shader}: WGSL {} vs Rust {}", wgsl.name, rust.name);
    let mut out = Vec::new();
    if rust.size != wgsl.span as usize {
        out.push(format!(
            "{at}: size: WGSL {} bytes, Rust {} bytes",
            wgsl.span, rust.size
        ));
    }
    // Downlevel devices (wgpu's BUFFER_BINDINGS_NOT_16_BYTE_ALIGNED missing: WebGL) reject a
    // uniform binding whose type is not a multiple of 16 bytes.
    if !wgsl.span.is_multiple_of(16) {
        out.push(format!(
            "{at}: size {} bytes is not a multiple of 16",
            wgsl.span
        ));
    }
    let mut covered = vec![false; wgsl.members.len()];
    for field in &rust.fields {
        let parts = field.members.len();
        if !field.count.is_multiple_of(parts) {
            out.push(format!(
                "{at}: Rust `{}` holds {} scalars, which do not split into {parts} members",
                field.name, field.count
            ));
            continue;
        }
        let (part_size, part_count) = (field.size / parts, field.count / parts);
        for (i, member) in field.members.iter().enumerate() {
            let rust_offset = field.offset + i * part_size;
            let what = if parts == 1 {
                format!("`{}`", field.name)
            } else {
                format!("`{}[{i}]` (WGSL `{member}`)", field.name)
            };
            let Some(index) = wgsl.members.iter().position(|m| m.name == *member) else {
                out.push(format!(
                    "{at}: Rust {what} at offset {rust_offset}: WGSL has no member `{member}`"
                ));
                continue;
            };
            if covered[index] {
                out.push(format!("{at}: WGSL `{member}` is mapped twice"));
            }
            covered[index] = true;
            let m = &wgsl.members[index];
            if m.offset as usize != rust_offset {
                out.push(format!(
                    "{at}: member `{member}`: WGSL offset {}, Rust {what} offset {rust_offset}",
                    m.offset
                ));
            }
            if m.size as usize != part_size {
                out.push(format!(
                    "{at}: member `{member}`: WGSL size {}, Rust {what} size {part_size}",
                    m.size
                ));
            }
            if m.scalar != Some((field.scalar, part_count)) {
                out.push(format!(
                    "{at}: member `{member}`: WGSL type {:?}, Rust {what} {:?} x {part_count}",
                    m.scalar, field.scalar
                ));
            }
        }
    }
    for (m, _) in wgsl.members.iter().zip(&covered).filter(|(_, c)| !**c) {
        out.push(format!(
            "{at}: WGSL member `{}` (offset {}) has no Rust field in the table",
            m.name, m.offset
        ));
    }
    out
}

/// Every mismatch between `shaders` (`(name, composed source)`) and the table `rows`,
/// including a shader without a row and a row naming no shader.
fn check(shaders: &[(&str, &str)], rows: &[(&'static str, RustParams)]) -> Vec<String> {
    let mut errors = Vec::new();
    for (shader, source) in shaders {
        let Some((_, rust)) = rows.iter().find(|(name, _)| name == shader) else {
            errors.push(format!(
                "{shader}: no row in layout_tests.rs names its Rust params type"
            ));
            continue;
        };
        match wgsl_params(shader, source) {
            Ok(wgsl) => {
                println!(
                    "{shader}: {} = {} ({} bytes, {} members)",
                    wgsl.name,
                    rust.name,
                    wgsl.span,
                    wgsl.members.len()
                );
                errors.extend(mismatches(shader, &wgsl, rust));
            }
            Err(e) => errors.push(e),
        }
    }
    for (name, _) in rows {
        if !shaders.iter().any(|(s, _)| s == name) {
            errors.push(format!(
                "{name}: a row in layout_tests.rs names no registered shader"
            ));
        }
    }
    errors
}

fn registered() -> Vec<(&'static str, &'static str)> {
    SHADERS.iter().map(|s| (s.name, s.source)).collect()
}

#[test]
fn every_params_struct_matches_its_wgsl_uniform_layout() {
    let errors = check(&registered(), &rows());
    assert!(
        errors.is_empty(),
        "params layout mismatches:\n{}",
        errors.join("\n")
    );
}

#[test]
fn layout_check_reports_a_shader_without_a_row_and_a_row_without_a_shader() {
    let mut rows = rows();
    rows.retain(|(name, _)| *name != "softmax");
    rows.push(("no_such_kernel", params!(Probe, [a, b, c])));
    let errors = check(&registered(), &rows);
    assert_eq!(
        errors,
        [
            "softmax: no row in layout_tests.rs names its Rust params type",
            "no_such_kernel: a row in layout_tests.rs names no registered shader",
        ],
    );
}

/// A params struct for the checker's own tests.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Probe {
    a: u32,
    b: f32,
    c: [u32; 2],
}

/// `Probe`'s layout compared with a WGSL struct of the given members.
fn probe_mismatches(members: &str) -> Vec<String> {
    let src = format!(
        "struct P {{ {members} }}\n@group(0) @binding(0) var<uniform> params: P;\n\
         @compute @workgroup_size(1) fn main() {{ _ = params.a; }}"
    );
    let wgsl = wgsl_params("probe", &src).expect("probe source lays out");
    mismatches("probe", &wgsl, &params!(Probe, [a, b, c => [c0, c1]]))
}

#[test]
fn layout_check_accepts_a_matching_struct_with_an_array_split_into_members() {
    assert_eq!(
        probe_mismatches("a: u32, b: f32, c0: u32, c1: u32"),
        Vec::<String>::new()
    );
}

#[test]
fn layout_check_reports_swapped_members_by_offset() {
    let errors = probe_mismatches("b: f32, a: u32, c0: u32, c1: u32");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("member `a`: WGSL offset 4, Rust `a` offset 0")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("member `b`: WGSL offset 0, Rust `b` offset 4")),
        "{errors:?}"
    );
}

#[test]
fn layout_check_reports_a_scalar_type_mismatch() {
    let errors = probe_mismatches("a: u32, b: u32, c0: u32, c1: u32");
    assert!(
        errors.len() == 1 && errors[0].contains("member `b`: WGSL type Some((U32, 1))"),
        "{errors:?}"
    );
}

#[test]
fn layout_check_reports_renamed_extra_and_unaligned_members() {
    // `c1` renamed, one member more: 20 bytes, so also not a multiple of 16.
    let errors = probe_mismatches("a: u32, b: f32, c0: u32, d: u32, e: u32");
    for want in [
        "size: WGSL 20 bytes, Rust 16 bytes",
        "size 20 bytes is not a multiple of 16",
        "Rust `c[1]` (WGSL `c1`) at offset 12: WGSL has no member `c1`",
        "WGSL member `d` (offset 12) has no Rust field",
        "WGSL member `e` (offset 16) has no Rust field",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{want}: {errors:?}"
        );
    }
}

/// The one params struct of every `mesh_*` kernel (`shaders/lib/mesh.wgsl`).
#[rustfmt::skip]
fn mesh_params() -> RustParams {
    params!(crate::mesh::MeshParams, [
        n, count_slot, flags, act, dim_d, dim_h, dim_w, thresh, in_f, out_f, ld_x, ld_y, col_x,
        col_y, map_c, map_h, map_w, col_map, n_deltas, slot2, aux0, aux1,
        deltas => [d0, d1, d2, d3, d4, d5, d6, d7, d8],
        _pad => [_pad0, _pad1, _pad2, _pad3, _pad4],
        k => [k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12, k13, k14, k15],
    ])
}
