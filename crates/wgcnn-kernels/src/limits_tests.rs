//! CPU-only checks of every registered shader against WebGPU's default limits, so that a kernel
//! that only runs where an adapter grants more (lavapipe grants 32 KiB of workgroup memory)
//! fails here rather than on someone's browser or phone.

use wgpu::naga;

use crate::shaders::ALL;

/// WebGPU's default `maxComputeWorkgroupStorageSize`: the most any adapter must allow.
const DEFAULT_WORKGROUP_STORAGE: u32 = 16_384;

/// The workgroup memory a module declares: the WebGPU rule, each `var<workgroup>` rounded up
/// to 16 bytes and summed. Every shader has one entry point, so the module's variables are the
/// entry point's (an upper bound in any case: unused variables cost nothing).
fn workgroup_bytes(name: &str, src: &str) -> u32 {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .unwrap_or_else(|e| panic!("{name}.wgsl: layout: {e}"));
    module
        .global_variables
        .iter()
        .filter(|(_, v)| v.space == naga::AddressSpace::WorkGroup)
        .map(|(_, v)| layouter[v.ty].size.next_multiple_of(16))
        .sum()
}

#[test]
fn every_shader_fits_webgpu_default_workgroup_storage() {
    let mut over = Vec::new();
    for (name, src) in ALL {
        let bytes = workgroup_bytes(name, src);
        println!("{name}: {bytes} bytes of workgroup memory");
        if bytes > DEFAULT_WORKGROUP_STORAGE {
            over.push(format!("{name}: {bytes}"));
        }
    }
    assert!(
        over.is_empty(),
        "over WebGPU's default {DEFAULT_WORKGROUP_STORAGE} bytes of workgroup memory: {over:?}"
    );
}

/// WebGPU's default `maxComputeInvocationsPerWorkgroup` and per-axis workgroup sizes.
const DEFAULT_INVOCATIONS: u32 = 256;
const DEFAULT_WORKGROUP_SIZE: [u32; 3] = [256, 256, 64];
/// WebGPU's default `maxStorageBuffersPerShaderStage`.
const DEFAULT_STORAGE_BUFFERS: usize = 8;

#[test]
fn every_shader_fits_webgpu_default_workgroup_size_and_storage_buffer_count() {
    let mut over = Vec::new();
    for (name, src) in ALL {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
        for ep in &module.entry_points {
            let size = ep.workgroup_size;
            let invocations: u32 = size.iter().product();
            if invocations > DEFAULT_INVOCATIONS
                || size.iter().zip(DEFAULT_WORKGROUP_SIZE).any(|(s, m)| *s > m)
            {
                over.push(format!("{name}: workgroup size {size:?}"));
            }
        }
        let storage = module
            .global_variables
            .iter()
            .filter(|(_, v)| matches!(v.space, naga::AddressSpace::Storage { .. }))
            .count();
        if storage > DEFAULT_STORAGE_BUFFERS {
            over.push(format!("{name}: {storage} storage buffers"));
        }
    }
    assert!(over.is_empty(), "over WebGPU's default limits: {over:?}");
}

#[test]
fn workgroup_bytes_counts_each_variable_rounded_to_16() {
    // The counting itself: 2 + 3 u32s round to 16 + 16, plus an 8 KiB array.
    let src = "var<workgroup> a: array<u32, 2>;\n\
               var<workgroup> b: vec3<u32>;\n\
               var<workgroup> c: array<vec2<f32>, 1024>;\n\
               var<private> p: array<u32, 4096>;\n\
               @compute @workgroup_size(1) fn main() { a[0] = b.x + u32(c[0].x) + p[0]; }";
    assert_eq!(workgroup_bytes("inline", src), 16 + 16 + 8192);
}
