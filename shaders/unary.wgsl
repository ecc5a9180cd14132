// unary: y[i] = act(x[i] * scale[c] + shift[c]) over a flat NCHW tensor.
//
// One kernel for stand-alone activations (scale/shift off) and unfused inference BatchNorm
// (per-channel scale = gamma / sqrt(var + eps), shift = beta - mean * scale, folded on the CPU at
// plan time), so both share a pipeline.
//
// Threads: one element each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what                  | access     |
// |---------|-----------------------|------------|
// | 0       | Params                | uniform    |
// | 1       | x                     | read       |
// | 2       | scale[C], shift[C]    | read       |  (2*C floats; ignored when has_affine = 0)
// | 3       | y                     | read_write |
//
// Params mirrors `UnaryParams` in crates/wgcnn-kernels/src/unary.rs.

struct Params {
    len: u32,         // elements
    channels: u32,    // C
    spatial: u32,     // H * W (elements per channel plane)
    has_affine: u32,  // 1: apply scale/shift per channel first
    act: u32,         // activation code (wgcnn_graph::Activation::code)
    p0: f32,
    p1: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn act(v: f32, code: u32, p0: f32, p1: f32) -> f32 {
    switch code {
        case 1u: { return max(v, 0.0); }
        case 2u: { return clamp(v, p0, p1); }
        case 3u: { return 1.0 / (1.0 + exp(-v)); }
        case 4u: { return v / (1.0 + exp(-v)); }
        case 5u: { return clamp(p0 * v + p1, 0.0, 1.0); }
        case 6u: { return v * clamp(v / 6.0 + 0.5, 0.0, 1.0); }
        case 7u: { return tanh(v); }
        default: { return v; }
    }
}

@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.len) {
        return;
    }
    var v = x[i];
    if (params.has_affine == 1u) {
        let c = (i / params.spatial) % params.channels;
        v = v * affine[c] + affine[params.channels + c];
    }
    y[i] = act(v, params.act, params.p0, params.p1);
}
