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
// Params mirrors `UnaryParams` in crates/wgcnn-kernels/src/unary.rs. Composed with
// lib/index.wgsl (element id, channel of an element) and lib/activation.wgsl (the codes).

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

@compute @workgroup_size(256)
fn unary(ids: IdxIds) {
    let i = idx_element(ids);
    if (i >= params.len) { return; }
    var v = x[i];
    if (params.has_affine == 1u) {
        // Scale and shift of i's channel: affine holds C scales, then C shifts.
        let c = idx_split3(i, params.channels, params.spatial).y;
        v = v * affine[c] + affine[params.channels + c];
    }
    y[i] = act_apply(v, params.act, params.p0, params.p1);
}
