// dwconv2d_tile: depthwise convolution as dwconv2d.wgsl computes it (y = act(dwconv(x, w) +
// bias + residual), NCHW f32, groups == C, K = multiplier * C), specialized by override
// constants to one kernel size and stride (KH x KW, stride SH x SW, dilation 1) so the inner
// loops have constant trip counts, unroll, and keep their arrays in registers.
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
// | 5       | y [N, K, OH, OW]                          | read_write |
// | 6       | y again, as vec4s (the same buffer)       | read_write |
// | 7       | x again, as vec4s (the same buffer)       | read       |
//
// Loads: with the override XVEC4 (input widths that are a multiple of 4, so every input row
// starts 16-byte aligned; the Rust side checks) a row segment is read as the 3 or 4 aligned
// vec4s that cover it through binding 7 and picked apart by the constant XOFF (the segment's
// first column within its vec4: -pad_left mod 4, the same for every strip since strips start
// at multiples of 4 * SW): a 3x3 stride-2 row segment is 3 vec4 loads instead of 9 scalar
// ones, stride 1 is 2 or 3 instead of 6. A vec4 lies in one row, so the padding test is per
// vec4 and the same across the workgroup. Measured on lavapipe (MobileNetV2 at 448x448,
// median per-layer GPU time, 6 interleaved runs): stride-2 layers 1.2-1.4x, stride-1 layers
// 1.05-1.1x, the 17 depthwise layers together 1.14-1.17x; the whole run's CPU time -2%. Each
// per-lane load is a bounds-checked scalar access per lane there whatever its width, but a
// vec4 one checks once per lane for 4 values.
//
// Stores: with the override VEC4 (output widths that are a multiple of 4: every strip is full and
// 16-byte aligned; the Rust side checks) each strip's 4 outputs of a row go out as one vec4
// through binding 6, else one by one through binding 5. On lavapipe a vec4 store costs about what
// a scalar one does, so that cuts the per-row stores from 4 to 1 (about +25% on the stride-1
// MobileNetV2 layers). WGSL fixes a binding's type, hence the two views of y; the dead branch
// folds away when the pipeline is made, and each pipeline uses one view.
//
// Params: `DwConvParams` (lib/dwconv.wgsl, mirrors `DwConv2dParams` in
// crates/wgcnn-kernels/src/dwconv2d.rs, shared with dwconv2d.wgsl); here quads_w = ceil(OW / 4)
// is the strips per row and plane_blocks = ceil(OH / 16) the row blocks per plane. Composed with
// lib/dwconv.wgsl (strip arithmetic, the window's taps) and lib/activation.wgsl.


@group(0) @binding(0) var<uniform> params: DwConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> x4: array<vec4<f32>>;

// Kernel size and stride of this pipeline (at most 5x5 and 2: the array sizes below).
override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
// Store through y4 (binding 6) as vec4s: OW % 4 == 0.
override VEC4: bool = false;
// Load through x4 (binding 7) as vec4s: W % 4 == 0; XOFF = (4 - pad_left % 4) % 4.
override XVEC4: bool = false;
override XOFF: u32 = 0u;

// Output columns per strip, output rows per block.
const T: u32 = 4u;
const ROWS: u32 = 16u;

// The (3 * SW + KW)-value segment of input row `iy` starting at column `ix0` (zeros outside).
fn segment(row_base: u32, iy: i32, ix0: i32) -> array<f32, 11> {
    var s: array<f32, 11>;
    if (XVEC4) {
        return segment4(row_base, iy, ix0);
    }
    for (var b = 0u; b < (T - 1u) * SW + KW; b++) {
        let i = dw_input_index(params, row_base, iy, ix0 + i32(b));
        s[b] = select(0.0, x[max(i, 0)], i >= 0);
    }
    return s;
}

// segment() through x4: the vec4s covering columns ix0 - XOFF.. (a multiple of 4), a vec4
// outside the row read as zeros (it lies wholly outside: W is a multiple of 4), then the
// segment's values picked at constant positions.
fn segment4(row_base: u32, iy: i32, ix0: i32) -> array<f32, 11> {
    var s: array<f32, 11>;
    if (iy < 0 || iy >= i32(params.in_h)) {
        return s;
    }
    let row = row_base + u32(iy) * params.in_w;
    let a0 = ix0 - i32(XOFF);
    let len = (T - 1u) * SW + KW;
    var v: array<vec4<f32>, 4>;
    for (var i = 0u; i < (XOFF + len + 3u) / 4u; i++) {
        let col = a0 + 4 * i32(i);
        let ok = col >= 0 && col < i32(params.in_w);
        v[i] = select(vec4<f32>(0.0), x4[select(row, row + u32(col), ok) / 4u], ok);
    }
    for (var b = 0u; b < len; b++) {
        s[b] = v[(XOFF + b) / 4u][(XOFF + b) % 4u];
    }
    return s;
}

@compute @workgroup_size(8)
fn dwconv2d_tile(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let st = dw_strip(params, wg, lane, T, ROWS, SW);
    var wk: array<f32, 25>;
    for (var i = 0u; i < KH * KW; i++) {
        wk[i] = w[st.kc * KH * KW + i];
    }
    var bv = 0.0;
    if (params.has_bias == 1u) {
        bv = bias[st.kc];
    }

    // win[j] holds input row (oy * SH + j - pad_top) for the current output row oy. Between
    // rows the window moves down SH rows: rows carried over shift up, the rest are loaded.
    let carry = select(0u, KH - SH, KH > SH);
    var win: array<array<f32, 11>, 5>;
    for (var j = 0u; j < carry; j++) {
        win[j] = segment(st.row_base, i32(st.oy_start * SH) - i32(params.pad_top) + i32(j), st.ix0);
    }
    for (var oy = st.oy_start; oy < st.oy_end; oy++) {
        let iy = i32(oy * SH) - i32(params.pad_top);
        for (var j = carry; j < KH; j++) {
            win[j] = segment(st.row_base, iy + i32(j), st.ix0);
        }
        let out = dw_window_dot(win, wk, bv, KH, KW, SW);
        win = dw_window_shift(win, carry, SH);
        let o = st.plane + oy * params.out_w + st.ox0;
        if (VEC4) {
            // The strip is full and o is a multiple of 4.
            if (st.live_k) {
                var v = out;
                if (params.has_residual == 1u) {
                    v += vec4<f32>(residual[o], residual[o + 1u], residual[o + 2u], residual[o + 3u]);
                }
                y4[o / 4u] = act_apply4(v, params.act, params.p0, params.p1);
            }
        } else {
            for (var q = 0u; q < T; q++) {
                if (st.live_k && st.ox0 + q < params.out_w) {
                    var v = out[q];
                    if (params.has_residual == 1u) {
                        v += residual[o + q];
                    }
                    y[o + q] = act_apply(v, params.act, params.p0, params.p1);
                }
            }
        }
    }
}
