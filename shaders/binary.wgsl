// binary: y = act(a (+|*) b), or PReLU y = a >= 0 ? a : a * b, with b broadcast to a's shape,
// over flat f32 tensors.
//
// Broadcast modes (classified on the host, `binary::Broadcast`):
// - 0 same shape:  b[i];
// - 1 per channel: b has shape [N|1, C, 1, ...]: b[n * C + c] when b_batched = 1, else b[c],
//                  with c = (i / spatial) % C and n = i / (C * spatial);
// - 2 scalar:      b[0].
// Residual adds (ResNet), squeeze-excitation channel scales (SE, MobileNetV3, EfficientNet) and
// scalar scales all share one pipeline; the activation codes are those of `unary.wgsl`.
//
// Threads: one element each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what | access     |
// |---------|------|------------|
// | 0       | Params | uniform  |
// | 1       | a    | read       |
// | 2       | b    | read       |
// | 3       | y    | read_write |  (same shape as a)
//
// Params mirrors `BinaryParams` in crates/wgcnn-kernels/src/binary.rs. Composed with
// lib/index.wgsl (element id) and lib/activation.wgsl (the activation codes).

struct Params {
    len: u32,        // elements of a and y
    mode: u32,       // 0 same shape, 1 per channel, 2 scalar
    op: u32,         // 0 add, 1 multiply, 2 PReLU (b = the slopes)
    channels: u32,   // C (mode 1)
    spatial: u32,    // elements per channel plane (mode 1)
    b_batched: u32,  // mode 1: 1 when b has one row of C values per batch item
    act: u32,        // activation code (wgcnn_graph::Activation::code)
    p0: f32,
    p1: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// The element of b that a's element i meets: the one scalar (mode 2), i itself (mode 0), or
// its channel's (mode 1; with b_batched b is [N, C], whose row-major index is a's plane index).
// Branches, not selects: the common modes 0 and 2 then spend no division.
fn b_index(i: u32) -> u32 {
    if (params.mode == 0u) {
        return i;
    }
    if (params.mode == 1u) {
        let plane = i / params.spatial;
        return select(plane % params.channels, plane, params.b_batched == 1u);
    }
    return 0u;
}

@compute @workgroup_size(256)
fn binary(ids: IdxIds) {
    let i = idx_element(ids);
    if (i >= params.len) { return; }
    let bi = b_index(i);
    var v: f32;
    if (params.op == 1u) {
        v = a[i] * b[bi];
    } else if (params.op == 2u) {
        let x = a[i];
        v = select(x * b[bi], x, x >= 0.0);
    } else {
        v = a[i] + b[bi];
    }
    y[i] = act_apply(v, params.act, params.p0, params.p1);
}
