// conv2d_sg: conv2d.wgsl's computation, y = act(conv(x, w) + bias + residual) in NCHW f32 with
// any kernel size, stride, asymmetric padding, dilation and group count, for devices with
// subgroups of at least 8 lanes.
//
// Implicit GEMM as in conv2d.wgsl. Threads: a workgroup is 8 invocations (one subgroup of 8
// lanes on lavapipe; on wider subgroups only lanes 0..7 are read) owning one block of 16 output
// channels of one group and 32 output pixels; each lane keeps a 16-channel x 4-pixel register
// tile (4 neighbouring pixels in N*OH*OW order). Per reduction step the lanes load the 16
// weights as two 8-wide vectors (lane l: channels l and l + 8) and `subgroupBroadcast` hands
// each to every lane: on lavapipe every storage load inside a loop is a bounds-checked scalar
// load per lane, so a weight costs an eighth of the per-lane load conv2d.wgsl spends on it
// (measured on ResNet-50's layers: about 2x the GFLOP per CPU-second).
// Workgroup ids run pixel block fastest: id = pixel_block + pixel_blocks * (group * chan_blocks +
// chan_block), on a 2-D grid (linear id = wg.x + wg.y * nwg.x; ids past the end return).
//
// | binding | what                                      | access     |
// |---------|-------------------------------------------|------------|
// | 0       | Params                                    | uniform    |
// | 1       | x [N, C, H, W]                            | read       |
// | 2       | w [K, C/groups, kh, kw]                   | read       |
// | 3       | bias [K]                (if has_bias)     | read       |
// | 4       | residual [N, K, OH, OW] (if has_residual) | read       |
// | 5       | y [N, K, OH, OW] (channels out_c_offset.. of [N, out_c_total, OH, OW]) | read_write |
//
// Params mirrors `Conv2dParams` in crates/wgcnn-kernels/src/conv2d.rs (shared with
// conv2d.wgsl; here pixel_blocks = ceil(N*OH*OW / 32) and cb = 16); keep them in step.

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
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

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
fn conv2d_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lane: u32) {
    let id = wg.x + wg.y * nwg.x;
    if (id >= params.pixel_blocks * params.chan_blocks * params.groups) {
        return;
    }
    let pb = id % params.pixel_blocks;
    let gcb = id / params.pixel_blocks;
    let g = gcb / params.chan_blocks;
    let kg = params.out_c / params.groups;
    let cg = params.in_c / params.groups;
    let k_end = (g + 1u) * kg;
    let k0 = g * kg + (gcb % params.chan_blocks) * CB;
    let plane = params.out_h * params.out_w;
    let m = params.batch * plane;
    // Every lane runs the loops to the end (the broadcasts need all 8): lanes past the last
    // pixel compute on clamped pixels and store nothing.
    let first = pb * (LANES * PIXELS) + lane * PIXELS;

    // Per pixel: image, spatial index, top-left input corner (may be negative: padding) and
    // the offset of its image's first input channel of this group.
    var img: vec4<u32>;
    var sp: vec4<u32>;
    var iy0: vec4<i32>;
    var ix0: vec4<i32>;
    var base: vec4<u32>;
    var live: vec4<bool>;
    let in_plane = params.in_h * params.in_w;
    for (var i = 0u; i < PIXELS; i++) {
        let p = first + i;
        live[i] = p < m;
        let pc = min(p, m - 1u);
        img[i] = pc / plane;
        sp[i] = pc % plane;
        iy0[i] = i32((sp[i] / params.out_w) * params.stride_h) - i32(params.pad_top);
        ix0[i] = i32((sp[i] % params.out_w) * params.stride_w) - i32(params.pad_left);
        base[i] = (img[i] * params.in_c + g * cg) * in_plane;
    }

    // Weight rows of channels k0 + lane and k0 + 8 + lane, clamped to the group's last channel
    // in the tail block (their sums are computed and dropped).
    let khw = params.kernel_h * params.kernel_w;
    let wa0 = min(k0 + lane, k_end - 1u) * cg * khw;
    let wb0 = min(k0 + 8u + lane, k_end - 1u) * cg * khw;

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
    let h = i32(params.in_h);
    let wd = i32(params.in_w);
    for (var ky = 0u; ky < params.kernel_h; ky++) {
        let iy = iy0 + vec4<i32>(i32(ky * params.dil_h));
        let row_ok = (iy >= vec4<i32>(0)) & (iy < vec4<i32>(h));
        for (var kx = 0u; kx < params.kernel_w; kx++) {
            let ix = ix0 + vec4<i32>(i32(kx * params.dil_w));
            let ok = row_ok & (ix >= vec4<i32>(0)) & (ix < vec4<i32>(wd)) & live;
            // Input offsets of the 4 pixels in channel 0 (0 where padding; masked below).
            let off = select(vec4<u32>(0u), base + vec4<u32>(iy * vec4<i32>(wd) + ix), ok);
            let wi0 = ky * params.kernel_w + kx;
            var wa = wa0 + wi0;
            var wb = wb0 + wi0;
            var xo = 0u;
            for (var c = 0u; c < cg; c++) {
                let xv = select(vec4<f32>(0.0), vec4<f32>(x[off.x + xo], x[off.y + xo], x[off.z + xo], x[off.w + xo]), ok);
                let va = w[wa];
                let vb = w[wb];
                a0 += subgroupBroadcast(va, 0u) * xv;
                a1 += subgroupBroadcast(va, 1u) * xv;
                a2 += subgroupBroadcast(va, 2u) * xv;
                a3 += subgroupBroadcast(va, 3u) * xv;
                a4 += subgroupBroadcast(va, 4u) * xv;
                a5 += subgroupBroadcast(va, 5u) * xv;
                a6 += subgroupBroadcast(va, 6u) * xv;
                a7 += subgroupBroadcast(va, 7u) * xv;
                a8 += subgroupBroadcast(vb, 0u) * xv;
                a9 += subgroupBroadcast(vb, 1u) * xv;
                a10 += subgroupBroadcast(vb, 2u) * xv;
                a11 += subgroupBroadcast(vb, 3u) * xv;
                a12 += subgroupBroadcast(vb, 4u) * xv;
                a13 += subgroupBroadcast(vb, 5u) * xv;
                a14 += subgroupBroadcast(vb, 6u) * xv;
                a15 += subgroupBroadcast(vb, 7u) * xv;
                wa += khw;
                wb += khw;
                xo += in_plane;
            }
        }
    }

    // Epilogue: one loop over the block's channels (compact code: the activation switch is
    // compiled once, not 64 times).
    let acc = array<vec4<f32>, 16>(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
    let live_k = min(CB, k_end - k0);
    for (var r = 0u; r < live_k; r++) {
        let k = k0 + r;
        var b = 0.0;
        if (params.has_bias == 1u) {
            b = bias[k];
        }
        for (var i = 0u; i < PIXELS; i++) {
            if (live[i]) {
                let o = (img[i] * params.out_c + k) * plane + sp[i];
                let oy = (img[i] * params.out_c_total + params.out_c_offset + k) * plane + sp[i];
                var v = acc[r][i] + b;
                if (params.has_residual == 1u) {
                    v += residual[o];
                }
                y[oy] = act(v, params.act, params.p0, params.p1);
            }
        }
    }
}
