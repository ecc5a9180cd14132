// dwconv2d_tile4: dwconv2d_tile.wgsl (read that file's header first: same algorithm, params,
// override constants and grid) with y bound as vec4<f32> and each strip's 4 outputs of a row
// stored as one vec4, for output widths that are a multiple of 4 (every strip is full and
// 16-byte aligned; the caller checks). On lavapipe a vec4 store costs about what a scalar one
// does, so this cuts the per-row stores from 4 to 1 (previous measurement: about +25% on the
// stride-1 MobileNetV2 layers).
//
// Threads: one invocation per strip of 4 output columns x up to 16 output rows of one output
// channel. It loads its KH*KW weights once and walks down the strip keeping the last KH input
// rows' segments (3 * SW + KW values each) in registers: each output row loads only the SH rows
// it adds, each input value is loaded once (for 3x3 stride 1: 1.5 loads per output against 4.5
// for dwconv2d's row quads; on lavapipe every per-lane load is a bounds-checked scalar load per
// lane, which is what costs).
// Workgroups of 8 invocations on a 3-D grid (ceil(K / 8), strips per row, row blocks * N):
// lane l computes output channel 8 * wg.x + l (channels past K compute on the last one and store
// nothing), so nothing divides per lane (lavapipe divides integers one lane at a time).
//
// | binding | what                                      | access     |
// |---------|-------------------------------------------|------------|
// | 0       | Params                                    | uniform    |
// | 1       | x [N, C, H, W]                            | read       |
// | 2       | w [K, 1, KH, KW]                          | read       |
// | 3       | bias [K]                (if has_bias)     | read       |
// | 4       | residual [N, K, OH, OW] (if has_residual) | read       |
// | 5       | y [N, K, OH, OW / 4] (vec4)               | read_write |
//
// Params mirrors `DwConv2dParams` in crates/wgcnn-kernels/src/dwconv2d.rs (shared with
// dwconv2d.wgsl; here quads_w = ceil(OW / 4) is the strips per row and plane_blocks =
// ceil(OH / 16) the row blocks per plane); keep them in step.

struct Params {
    batch: u32,        // N
    in_c: u32,         // C
    in_h: u32,         // H
    in_w: u32,         // W
    out_c: u32,        // K = multiplier * C
    out_h: u32,        // OH
    out_w: u32,        // OW
    multiplier: u32,   // K / C
    kernel_h: u32,     // = KH
    kernel_w: u32,     // = KW
    stride_h: u32,     // = SH
    stride_w: u32,     // = SW
    pad_top: u32,
    pad_left: u32,
    dil_h: u32,        // 1
    dil_w: u32,        // 1
    quads_w: u32,      // ceil(OW / 4): strips per row
    plane_blocks: u32, // ceil(OH / 16): row blocks per plane
    has_bias: u32,
    has_residual: u32,
    act: u32,          // activation code (wgcnn_graph::Activation::code)
    p0: f32,
    p1: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;

// Kernel size and stride of this pipeline (at most 5x5 and 2: the array sizes below).
override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;

// Output columns per strip, output rows per block.
const T: u32 = 4u;
const ROWS: u32 = 16u;

// Same codes and formulas as `act()` in unary.wgsl, on 4 values.
fn act(v: vec4<f32>, code: u32, p0: f32, p1: f32) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    let one = vec4<f32>(1.0);
    switch code {
        case 1u: { return max(v, zero); }
        case 2u: { return clamp(v, vec4<f32>(p0), vec4<f32>(p1)); }
        case 3u: { return one / (one + exp(-v)); }
        case 4u: { return v / (one + exp(-v)); }
        case 5u: { return clamp(p0 * v + p1, zero, one); }
        case 6u: { return v * clamp(v / 6.0 + 0.5, zero, one); }
        case 7u: { return tanh(v); }
        default: { return v; }
    }
}

// The (3 * SW + KW)-value segment of input row `iy` starting at column `ix0` (zeros outside).
fn segment(row_base: u32, iy: i32, ix0: i32) -> array<f32, 11> {
    var s: array<f32, 11>;
    let row_ok = iy >= 0 && iy < i32(params.in_h);
    let row = row_base + u32(select(0, iy, row_ok)) * params.in_w;
    for (var b = 0u; b < (T - 1u) * SW + KW; b++) {
        let ix = ix0 + i32(b);
        let ok = row_ok && ix >= 0 && ix < i32(params.in_w);
        s[b] = select(0.0, x[row + u32(select(0, ix, ok))], ok);
    }
    return s;
}

@compute @workgroup_size(8)
fn dwconv2d_tile4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let k = wg.x * 8u + lane;
    let live_k = k < params.out_c;
    let kc = min(k, params.out_c - 1u);
    let ox0 = wg.y * T;
    let oy_start = (wg.z % params.plane_blocks) * ROWS;
    let oy_end = min(oy_start + ROWS, params.out_h);
    let n = wg.z / params.plane_blocks;
    let row_base = (n * params.in_c + kc / params.multiplier) * params.in_h * params.in_w;
    let plane = (n * params.out_c + kc) * params.out_h * params.out_w;
    let ix0 = i32(ox0 * SW) - i32(params.pad_left);
    let iy_first = i32(oy_start * SH) - i32(params.pad_top);

    var wk: array<f32, 25>;
    for (var i = 0u; i < KH * KW; i++) {
        wk[i] = w[kc * KH * KW + i];
    }
    var bv = 0.0;
    if (params.has_bias == 1u) {
        bv = bias[kc];
    }

    // win[j] holds input row (oy * SH + j - pad_top) for the current output row oy. Between
    // rows the window moves down SH rows: rows carried over shift up, the rest are loaded.
    let carry = select(0u, KH - SH, KH > SH);
    var win: array<array<f32, 11>, 5>;
    for (var j = 0u; j < carry; j++) {
        win[j] = segment(row_base, iy_first + i32(j), ix0);
    }
    for (var oy = oy_start; oy < oy_end; oy++) {
        let iy = i32(oy * SH) - i32(params.pad_top);
        for (var j = carry; j < KH; j++) {
            win[j] = segment(row_base, iy + i32(j), ix0);
        }
        var out = vec4<f32>(bv);
        for (var j = 0u; j < KH; j++) {
            for (var kx = 0u; kx < KW; kx++) {
                let wv = wk[j * KW + kx];
                out += wv * vec4<f32>(win[j][kx], win[j][SW + kx], win[j][2u * SW + kx], win[j][3u * SW + kx]);
            }
        }
        for (var j = 0u; j < carry; j++) {
            win[j] = win[j + SH];
        }
        // OW % 4 == 0: the strip is full and o is a multiple of 4.
        let o = plane + oy * params.out_w + ox0;
        if (live_k) {
            var v = out;
            if (params.has_residual == 1u) {
                v += vec4<f32>(residual[o], residual[o + 1u], residual[o + 2u], residual[o + 3u]);
            }
            y[o / 4u] = act(v, params.act, params.p0, params.p1);
        }
    }
}
