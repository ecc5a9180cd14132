// conv2d_1x1_sg: a 1x1, stride-1, unpadded, ungrouped convolution (a GEMM of the [K, C] weight
// and each image's [C, H*W] input), y = act(W x + bias + residual), for layers with C and
// H*W multiples of 4, on devices with subgroups of at least 8 lanes.
//
// Threads as in conv2d_sg.wgsl: a workgroup of 8 invocations (one subgroup of 8 lanes on
// lavapipe) owns 16 output channels and 32 output pixels, each lane a 16-channel x 4-pixel
// register tile. With H*W a multiple of 4 a lane's 4 pixels are neighbours in one image, so
// each input channel's 4 values are one vec4 load; per 4 input channels the lanes load the 16
// channels' weights as two 8-wide vectors of vec4 and `subgroupBroadcast` hands each to every
// lane. Per 4 input channels: 6 per-lane vec4 loads for 256 multiply-adds per lane, against 24
// scalar loads in conv2d_sg (on lavapipe a per-lane vec4 load costs about what a scalar one
// does); measured on ResNet-50's and MobileNetV2's 1x1 layers, 1.15-1.7x conv2d_sg's GFLOP per
// CPU-second, and up to 2x more from the vec4 stores below where C is small.
// Workgroup ids: id = pixel_block + pixel_blocks * chan_block, on a 2-D grid (linear id = wg.x +
// wg.y * nwg.x; ids past the end return).
//
// | binding | what                                      | access     |
// |---------|-------------------------------------------|------------|
// | 0       | Params                                    | uniform    |
// | 1       | x [N, C, H, W] as vec4s                   | read       |
// | 2       | w [K, C] as vec4s                         | read       |
// | 3       | bias [K]                (if has_bias)     | read       |
// | 4       | residual [N, K, H, W] as vec4s (if any)   | read       |
// | 5       | y [N, K, H, W] as vec4s (a channel slice, see Params) | read_write |
//
// Params mirrors `Conv2dParams` in crates/wgcnn-kernels/src/conv2d.rs (as conv2d_sg.wgsl uses
// it: pixel_blocks = ceil(N*H*W / 32), cb = 16); keep them in step.

struct Params {
    batch: u32,        // N
    in_c: u32,         // C
    in_h: u32,         // H
    in_w: u32,         // W
    out_c: u32,        // K
    out_h: u32,        // OH
    out_w: u32,        // OW
    groups: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    dil_h: u32,
    dil_w: u32,
    pixel_blocks: u32, // ceil(N*OH*OW / 32)
    chan_blocks: u32,  // ceil((K/groups) / 16), per group
    has_bias: u32,
    has_residual: u32,
    act: u32,          // activation code (wgcnn_graph::Activation::code)
    p0: f32,
    p1: f32,
    cb: u32,           // 16 (not read here)
    out_c_total: u32,  // channels of the tensor y is (out_c unless y is a concatenation)
    out_c_offset: u32, // first channel of y written (a channel slice of a concatenation)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;

const LANES: u32 = 8u;
const PIXELS: u32 = 4u;
const CB: u32 = 16u;

// Same codes and formulas as `act()` in unary.wgsl.
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

@compute @workgroup_size(8)
fn conv2d_1x1_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lane: u32) {
    let id = wg.x + wg.y * nwg.x;
    if (id >= params.pixel_blocks * params.chan_blocks * params.groups) {
        return;
    }
    let pb = id % params.pixel_blocks;
    let k0 = (id / params.pixel_blocks) * CB;
    let k_end = params.out_c;
    let c_n = params.in_c;
    let plane = params.out_h * params.out_w;
    let m = params.batch * plane;
    // Every lane runs the loop to the end (the broadcasts need all 8): lanes past the last
    // pixel read the last 4 pixels and store nothing.
    let first = min(pb * (LANES * PIXELS) + lane * PIXELS, m - PIXELS);
    // With H*W (so N*H*W) a multiple of 4 a lane's 4 pixels are all in range or all past it.
    let live = pb * (LANES * PIXELS) + lane * PIXELS < m;
    let img = first / plane;
    let sp0 = first % plane;
    let sp = vec4<u32>(sp0) + vec4<u32>(0u, 1u, 2u, 3u);
    let plane4 = plane / 4u;
    var xi = (img * c_n * plane + sp0) / 4u;

    // Weight rows of channels k0 + lane and k0 + 8 + lane, clamped to the last channel in the
    // tail block (their sums are computed and dropped), as vec4 indices.
    let wa0 = min(k0 + lane, k_end - 1u) * (c_n / 4u);
    let wb0 = min(k0 + 8u + lane, k_end - 1u) * (c_n / 4u);

    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0);
    var a9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0);
    var a13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0);
    var a15 = vec4<f32>(0.0);
    for (var c4 = 0u; c4 < c_n / 4u; c4++) {
        let x0 = x[xi];
        let x1 = x[xi + plane4];
        let x2 = x[xi + 2u * plane4];
        let x3 = x[xi + 3u * plane4];
        let va = w[wa0 + c4];
        let vb = w[wb0 + c4];
        let b0 = subgroupBroadcast(va, 0u);
        a0 += b0.x * x0 + b0.y * x1 + b0.z * x2 + b0.w * x3;
        let b1 = subgroupBroadcast(va, 1u);
        a1 += b1.x * x0 + b1.y * x1 + b1.z * x2 + b1.w * x3;
        let b2 = subgroupBroadcast(va, 2u);
        a2 += b2.x * x0 + b2.y * x1 + b2.z * x2 + b2.w * x3;
        let b3 = subgroupBroadcast(va, 3u);
        a3 += b3.x * x0 + b3.y * x1 + b3.z * x2 + b3.w * x3;
        let b4 = subgroupBroadcast(va, 4u);
        a4 += b4.x * x0 + b4.y * x1 + b4.z * x2 + b4.w * x3;
        let b5 = subgroupBroadcast(va, 5u);
        a5 += b5.x * x0 + b5.y * x1 + b5.z * x2 + b5.w * x3;
        let b6 = subgroupBroadcast(va, 6u);
        a6 += b6.x * x0 + b6.y * x1 + b6.z * x2 + b6.w * x3;
        let b7 = subgroupBroadcast(va, 7u);
        a7 += b7.x * x0 + b7.y * x1 + b7.z * x2 + b7.w * x3;
        let b8 = subgroupBroadcast(vb, 0u);
        a8 += b8.x * x0 + b8.y * x1 + b8.z * x2 + b8.w * x3;
        let b9 = subgroupBroadcast(vb, 1u);
        a9 += b9.x * x0 + b9.y * x1 + b9.z * x2 + b9.w * x3;
        let b10 = subgroupBroadcast(vb, 2u);
        a10 += b10.x * x0 + b10.y * x1 + b10.z * x2 + b10.w * x3;
        let b11 = subgroupBroadcast(vb, 3u);
        a11 += b11.x * x0 + b11.y * x1 + b11.z * x2 + b11.w * x3;
        let b12 = subgroupBroadcast(vb, 4u);
        a12 += b12.x * x0 + b12.y * x1 + b12.z * x2 + b12.w * x3;
        let b13 = subgroupBroadcast(vb, 5u);
        a13 += b13.x * x0 + b13.y * x1 + b13.z * x2 + b13.w * x3;
        let b14 = subgroupBroadcast(vb, 6u);
        a14 += b14.x * x0 + b14.y * x1 + b14.z * x2 + b14.w * x3;
        let b15 = subgroupBroadcast(vb, 7u);
        a15 += b15.x * x0 + b15.y * x1 + b15.z * x2 + b15.w * x3;
        xi += 4u * plane4;
    }

    // Epilogue: one loop over the block's channels (compact code: the activation switch is
    // compiled once, not 64 times). A lane's 4 pixels are neighbours in one plane, so each
    // channel's 4 outputs (and residuals) are one vec4 store (load): a quarter of the per-lane
    // stores, which for the small-C layers (MobileNet's 16-channel expansions) cost as much as the
    // multiply-adds.
    let acc = array<vec4<f32>, 16>(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
    let live_k = select(0u, min(CB, k_end - k0), live);
    for (var r = 0u; r < live_k; r++) {
        let k = k0 + r;
        var v = acc[r];
        if (params.has_bias == 1u) {
            v += vec4<f32>(bias[k]);
        }
        let o = ((img * params.out_c + k) * plane + sp0) / 4u;
        let oy = ((img * params.out_c_total + params.out_c_offset + k) * plane + sp0) / 4u;
        if (params.has_residual == 1u) {
            v += residual[o];
        }
        y[oy] = vec4<f32>(
            act(v.x, params.act, params.p0, params.p1),
            act(v.y, params.act, params.p0, params.p1),
            act(v.z, params.act, params.p0, params.p1),
            act(v.w, params.act, params.p0, params.p1),
        );
    }
}
