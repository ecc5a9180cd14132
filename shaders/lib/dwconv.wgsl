// Shared pieces of the depthwise kernels (dwconv2d, dwconv2d_tile): their
// uniform params and the tile kernels' strip arithmetic. Values in, values out.

// dwconv2d.wgsl, dwconv2d_tile.wgsl: `DwConv2dParams` in
// crates/wgcnn-kernels/src/dwconv2d.rs. The tile kernels are specialized to one kernel size and
// stride (their overrides equal kernel_*/stride_*, dilation 1) and read quads_w as strips per
// row, plane_blocks as 16-row blocks per plane.
struct DwConvParams {
    batch: u32,        // N
    in_c: u32,         // C
    in_h: u32,         // H
    in_w: u32,         // W
    out_c: u32,        // K = multiplier * C
    out_h: u32,        // OH
    out_w: u32,        // OW
    multiplier: u32,   // K / C
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    dil_h: u32,
    dil_w: u32,
    quads_w: u32,      // ceil(OW / 4): quads (strips) per output row
    plane_blocks: u32, // workgroups (dwconv2d) or row blocks (tile kernels) per output plane
    has_bias: u32,
    has_residual: u32,
    act: u32,          // activation code (wgcnn_graph::Activation::code)
    p0: f32,
    p1: f32,
    _pad: u32,
}

// A tile kernel invocation's strip (dwconv2d_tile*): output channel kc (clamped to the last;
// live_k is false past K), output columns ox0.., rows oy_start..oy_end, the offsets of its input
// and output planes and the input column under its first output. Lane l of workgroup wg
// computes channel 8 * wg.x + l, strip wg.y, row block and image wg.z (nothing divides per lane).
struct DwStrip {
    live_k: bool,
    kc: u32,
    ox0: u32,
    oy_start: u32,
    oy_end: u32,
    row_base: u32,
    plane: u32,
    ix0: i32,
}

fn dw_strip(p: DwConvParams, wg: vec3<u32>, lane: u32, cols: u32, rows: u32, sw: u32) -> DwStrip {
    var s: DwStrip;
    let k = wg.x * 8u + lane;
    s.live_k = k < p.out_c;
    s.kc = min(k, p.out_c - 1u);
    s.ox0 = wg.y * cols;
    s.oy_start = (wg.z % p.plane_blocks) * rows;
    s.oy_end = min(s.oy_start + rows, p.out_h);
    let n = wg.z / p.plane_blocks;
    s.row_base = (n * p.in_c + s.kc / p.multiplier) * p.in_h * p.in_w;
    s.plane = (n * p.out_c + s.kc) * p.out_h * p.out_w;
    s.ix0 = i32(s.ox0 * sw) - i32(p.pad_left);
    return s;
}

// Index in x of input column ix of input row iy (of the plane at row_base), or -1 in the padding.
fn dw_input_index(p: DwConvParams, row_base: u32, iy: i32, ix: i32) -> i32 {
    let ok = iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w);
    return select(-1, i32(row_base) + iy * i32(p.in_w) + ix, ok);
}

// One output row's 4 outputs: bias plus the KH x KW taps over win, the KH input row segments
// under the row (segment column b = input column ix0 + b; output q starts at column q * sw).
fn dw_window_dot(win: array<array<f32, 11>, 5>, wk: array<f32, 25>, bias: f32, kh: u32, kw: u32,
                 sw: u32) -> vec4<f32> {
    var out = vec4<f32>(bias);
    for (var j = 0u; j < kh; j++) {
        for (var kx = 0u; kx < kw; kx++) {
            let wv = wk[j * kw + kx];
            out += wv * vec4<f32>(win[j][kx], win[j][sw + kx], win[j][2u * sw + kx], win[j][3u * sw + kx]);
        }
    }
    return out;
}

// The window one output row down: rows j + sh move to j for the `carry` rows kept.
fn dw_window_shift(win: array<array<f32, 11>, 5>, carry: u32, sh: u32) -> array<array<f32, 11>, 5> {
    var next = win;
    for (var j = 0u; j < carry; j++) {
        next[j] = win[j + sh];
    }
    return next;
}
