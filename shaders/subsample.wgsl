// subsample: y[n, c, oy, ox] = x[n, c, oy * SH, ox * SW] (every SH-th row and SW-th column of
// an NCHW f32 tensor): the input of a strided 1x1 convolution run as a stride-1 one, see
// crates/wgcnn-kernels/src/conv2d/strided.rs.
//
// Threads: one invocation per 4 neighbouring outputs of a row (quads_w = ceil(OW / 4) per
// row), 64 per workgroup over an output plane's (row, quad) pairs: grid (ceil(OH * quads_w /
// 64), C, N). One integer division per invocation (lavapipe divides one lane at a time), 4
// loads and 4 stores; the generic pool2d kernel costs several times more per element.
//
// | binding | what              | access     |
// |---------|-------------------|------------|
// | 0       | Params            | uniform    |
// | 1       | x [N, C, H, W]    | read       |
// | 2       | y [N, C, OH, OW]  | read_write |
//
// Params mirrors `SubsampleParams` in crates/wgcnn-kernels/src/conv2d/strided.rs; keep them
// in step.

struct Params {
    channels: u32, // C
    in_h: u32,     // H
    in_w: u32,     // W
    out_h: u32,    // OH = ceil(H / SH)
    out_w: u32,    // OW = ceil(W / SW)
    stride_h: u32, // SH
    stride_w: u32, // SW
    quads_w: u32,  // ceil(OW / 4)
    batch: u32,    // N (the grid's z extent; not read here)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn subsample(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let i = gid.x;
    if (i >= params.out_h * params.quads_w) {
        return;
    }
    let oy = i / params.quads_w;
    let ox0 = (i - oy * params.quads_w) * 4u;
    let plane = wg.z * params.channels + wg.y;
    let src = (plane * params.in_h + oy * params.stride_h) * params.in_w + ox0 * params.stride_w;
    let dst = (plane * params.out_h + oy) * params.out_w + ox0;
    for (var q = 0u; q < 4u; q++) {
        if (ox0 + q < params.out_w) {
            y[dst + q] = x[src + q * params.stride_w];
        }
    }
}
