// pool2d_tile: max or average pooling as pool2d.wgsl computes it (PyTorch's MaxPool2d /
// AvgPool2d: asymmetric padding, ceil_mode, count_include_pad, NCHW f32), specialized by override
// constants to one window size, stride and mode (KH x KW up to 5x5, stride SH x SW up to 2) so
// the inner loops have constant trip counts, unroll, and keep their arrays in registers.
//
// Threads: one invocation per strip of 4 output columns x up to 16 output rows of one channel
// plane, walking down the strip with the last KH input rows' segments (3 * SW + KW values each)
// in registers: each output row loads only the SH input rows it adds, each input value once.
// For SqueezeNet's 3x3 stride-2 pools that is 4.5 loads per output against pool2d's 9, and no
// integer division per lane (lavapipe divides one lane at a time and makes every storage load a
// bounds-checked scalar load per lane: those, not the compares, are what pooling costs there).
// Measured against pool2d on lavapipe (median per-layer GPU time, 2 cores): SqueezeNet 1.1's
// three 3x3/2 ceil pools 3.2-3.6x faster (9.98 -> 3.31 ms together), GoogLeNet's pools 2.8x
// (27.9 -> 10.1 ms), ResNet-50's 3x3/2 pool 3.2x (5.8 -> 1.8 ms).
// Workgroups of 8 invocations on a 3-D grid (ceil(C / 8), strips per row, row blocks * N):
// lane l pools channel 8 * wg.x + l (channels past C pool the last one and store nothing), so
// the rows and columns an invocation touches, and thus every padding test, are the same across
// the workgroup.
// Out-of-bounds positions read as POOL_LOWEST for a max (they never win: every window holds an
// input position, PyTorch's ceil_mode rule sees to that) and 0 for an average, whose divisor is
// pool2d's: the window clipped to [-pad_begin, extent + pad_end) with count_include_pad, the
// in-bounds positions without.
//
// | binding | what                                                   | access     |
// |---------|--------------------------------------------------------|------------|
// | 0       | Params                                                 | uniform    |
// | 1       | x [N, C, H, W]                                         | read       |
// | 2       | y [N, C, OH, OW] (channels out_c_offset.. of [N, out_c_total, OH, OW]) | read_write |
// | 3       | y again, as vec4s (the same buffer)                    | read_write |
//
// Stores: with the override VEC4 (output widths that are a multiple of 4: every strip is full
// and 16-byte aligned; the Rust side checks) each strip's row goes out as one vec4 through
// binding 3, else one value at a time through binding 2 (as in dwconv2d_tile.wgsl; each
// pipeline uses one view).
//
// Params: `PoolParams` (lib/pool.wgsl, mirrors `Pool2dParams` in
// crates/wgcnn-kernels/src/pool2d.rs, shared with pool2d.wgsl; mode and the window are in the
// overrides too). Composed with lib/pool.wgsl.

@group(0) @binding(0) var<uniform> params: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

// Window and stride of this pipeline (at most 5 and 2: the array sizes below).
override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 2u;
override SW: u32 = 2u;
// Max (true) or average (false).
override MAX: bool = true;
// Store through y4 (binding 3) as vec4s: OW % 4 == 0.
override VEC4: bool = false;

// Output columns per strip, output rows per block.
const T: u32 = 4u;
const ROWS: u32 = 16u;

// The (3 * SW + KW)-value segment of input row `iy` of the plane at `row_base`, starting at
// column `ix0`; `fill` outside the input. A row outside the input is not read at all (the test
// is the same for the whole workgroup).
fn segment(row_base: u32, iy: i32, ix0: i32, fill: f32) -> array<f32, 11> {
    var s: array<f32, 11>;
    for (var b = 0u; b < 11u; b++) {
        s[b] = fill;
    }
    if (iy < 0 || iy >= i32(params.height)) {
        return s;
    }
    let row = i32(row_base) + iy * i32(params.width);
    for (var b = 0u; b < (T - 1u) * SW + KW; b++) {
        let ix = ix0 + i32(b);
        let ok = ix >= 0 && ix < i32(params.width);
        s[b] = select(fill, x[select(row, row + ix, ok)], ok);
    }
    return s;
}

@compute @workgroup_size(8)
fn pool2d_tile(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let ch = wg.x * 8u + lane;
    let live = ch < params.channels;
    let c = min(ch, params.channels - 1u);
    let row_blocks = (params.out_height + ROWS - 1u) / ROWS;
    let n = wg.z / row_blocks;
    let oy_start = (wg.z % row_blocks) * ROWS;
    let oy_end = min(oy_start + ROWS, params.out_height);
    let ox0 = wg.y * T;
    let ix0 = i32(ox0 * SW) - i32(params.pad_left);
    let row_base = (n * params.channels + c) * params.height * params.width;
    let plane = (n * params.out_c_total + params.out_c_offset + c) * params.out_height
        * params.out_width;
    let fill = select(0.0, POOL_LOWEST, MAX);

    // Average: the divisor's column factor of each of the 4 outputs (the same on every row).
    let h = i32(params.height);
    let wd = i32(params.width);
    let x0 = vec4<i32>(ix0) + vec4<i32>(0, 1, 2, 3) * i32(SW);
    let x1 = x0 + vec4<i32>(i32(KW));
    var cols: vec4<i32>;
    if (params.count_include_pad == 1u) {
        cols = min(x1, vec4<i32>(wd + i32(params.pad_right))) - x0;
    } else {
        cols = max(min(x1, vec4<i32>(wd)) - max(x0, vec4<i32>(0)), vec4<i32>(0));
    }

    // win[j] holds input row (oy * SH + j - pad_top) for the current output row oy. Between
    // rows the window moves down SH rows: rows carried over shift up, the rest are loaded.
    let carry = select(0u, KH - SH, KH > SH);
    var win: array<array<f32, 11>, 5>;
    for (var j = 0u; j < carry; j++) {
        win[j] = segment(row_base, i32(oy_start * SH) - i32(params.pad_top) + i32(j), ix0, fill);
    }
    for (var oy = oy_start; oy < oy_end; oy++) {
        let y0 = i32(oy * SH) - i32(params.pad_top);
        for (var j = carry; j < KH; j++) {
            win[j] = segment(row_base, y0 + i32(j), ix0, fill);
        }
        var out = vec4<f32>(fill);
        for (var j = 0u; j < KH; j++) {
            for (var kx = 0u; kx < KW; kx++) {
                let v = vec4<f32>(win[j][kx], win[j][SW + kx], win[j][2u * SW + kx],
                    win[j][3u * SW + kx]);
                if (MAX) {
                    out = max(out, v);
                } else {
                    out += v;
                }
            }
        }
        if (!MAX) {
            let y1 = y0 + i32(KH);
            var rows: i32;
            if (params.count_include_pad == 1u) {
                rows = min(y1, h + i32(params.pad_bottom)) - y0;
            } else {
                rows = max(min(y1, h) - max(y0, 0), 0);
            }
            out /= vec4<f32>(max(vec4<i32>(rows) * cols, vec4<i32>(1)));
        }
        var next = win;
        for (var j = 0u; j < carry; j++) {
            next[j] = win[j + SH];
        }
        win = next;

        let o = plane + oy * params.out_width + ox0;
        if (VEC4) {
            // The strip is full and o is a multiple of 4.
            if (live) {
                y4[o / 4u] = out;
            }
        } else {
            for (var q = 0u; q < T; q++) {
                if (live && ox0 + q < params.out_width) {
                    y[o + q] = out[q];
                }
            }
        }
    }
}
