// keypoint_decode: Keypoint R-CNN's heatmaps_to_keypoints + resize_keypoints. Per detection
// row (x1, y1, x2, y2, score, label) of [N, D, 6] and joint j of its heatmaps [J, H, W]:
//   w = max(x2 - x1, 1), h = max(y2 - y1, 1); the heatmap bicubically resized (A = -0.75,
//   align_corners=False, PyTorch's upsample_bicubic2d taps: index floor(in / out * (dst + 0.5)
//   - 0.5) capped at in - 1, fraction clamped to [0, 1], taps floor - 1 ..= floor + 2 clamped
//   to the input, horizontal sums first) to ceil(h) x ceil(w); at its first maximum (row-major)
//   (x_int, y_int):
//   out[row, j] = (((x_int + 0.5) * w / ceil(w) + x1) * scale_x,
//                  ((y_int + 0.5) * h / ceil(h) + y1) * scale_y, the resized value there).
//   Unused rows (score -1) and boxes wider or taller than 32768 (or NaN) give (0, 0, 0).
//
// The resized map is never materialized: each invocation takes strips of one column and up to
// STRIP rows, keeps the four horizontally resized source rows its current output row reads and
// reuses them while the vertical taps stay (upsampling) or shifts them by one row.
//
// Threads: one workgroup of 256 per (row, joint), 2-D grid (linear workgroup id = x + y * nwg.x);
// the best (value, index) of each invocation is reduced in workgroup memory, the larger value
// winning and the lower index on ties.
//
// | binding | what                         | access     |
// |---------|------------------------------|------------|
// | 0       | Params                       | uniform    |
// | 1       | heatmaps [N * D, J, H, W]    | read       |
// | 2       | detections [N, D, 6]         | read       |
// | 3       | out [N, D, J, 3]             | read_write |
//
// Params mirrors `KeypointDecodeParams` in crates/wgcnn-kernels/src/keypoint_decode.rs.

struct Params {
    groups: u32,   // N * D * J
    joints: u32,   // J
    height: u32,   // H
    width: u32,    // W
    scale_y: f32,  // resize_keypoints' ratio_h
    scale_x: f32,  // resize_keypoints' ratio_w
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> heatmaps: array<f32>;
@group(0) @binding(2) var<storage, read> dets: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
// Output rows one invocation walks down a column before taking its next strip.
const STRIP: u32 = 32u;
const NONE: u32 = 0xffffffffu;
const CUBIC_A: f32 = -0.75;
// The largest box side decoded (as `interp::keypoint_decode::MAX_EXTENT`).
const MAX_EXTENT: f32 = 32768.0;

var<workgroup> best_value: array<f32, 256>;
var<workgroup> best_index: array<u32, 256>;

// PyTorch's bicubic source index along an axis: (floor, fraction) as `guard_index_and_lambda`.
fn cubic_source(dst: u32, input: u32, output: u32) -> vec2<f32> {
    let scale = f32(input) / f32(output);
    let real = scale * (f32(dst) + 0.5) - 0.5;
    let i = min(floor(real), f32(input) - 1.0);
    let t = clamp(real - i, 0.0, 1.0);
    return vec2<f32>(i, t);
}

fn conv1(x: f32) -> f32 {
    return ((CUBIC_A + 2.0) * x - (CUBIC_A + 3.0)) * x * x + 1.0;
}

fn conv2(x: f32) -> f32 {
    return ((CUBIC_A * x - 5.0 * CUBIC_A) * x + 8.0 * CUBIC_A) * x - 4.0 * CUBIC_A;
}

fn cubic_weights(t: f32) -> vec4<f32> {
    return vec4<f32>(conv2(t + 1.0), conv1(t), conv1(1.0 - t), conv2(2.0 - t));
}

// Tap k (0..3) of floor i, clamped to [0, n - 1].
fn tap_index(i: i32, k: i32, n: u32) -> u32 {
    return u32(clamp(i - 1 + k, 0, i32(n) - 1));
}

// Source row r of the plane at `base`, resized horizontally at the column whose taps are
// `cols` with weights `wx`: the products summed in PyTorch's order.
fn across(base: u32, r: u32, cols: vec4<u32>, wx: vec4<f32>) -> f32 {
    let row = base + r * params.width;
    var s = heatmaps[row + cols.x] * wx.x;
    s += heatmaps[row + cols.y] * wx.y;
    s += heatmaps[row + cols.z] * wx.z;
    s += heatmaps[row + cols.w] * wx.w;
    return s;
}

// Whether candidate (v, i) beats (bv, bi): larger, or equal and earlier.
fn beats(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return bi == NONE || v > bv || (v == bv && i < bi);
}

@compute @workgroup_size(256)
fn keypoint_decode(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let group = wg.x + wg.y * nwg.x;
    if (group >= params.groups) {
        return;
    }
    let row = group / params.joints;
    let d = row * 6u;
    let x1 = dets[d];
    let y1 = dets[d + 1u];
    let bw = max(dets[d + 2u] - x1, 1.0);
    let bh = max(dets[d + 3u] - y1, 1.0);
    // Unused rows and boxes past MAX_EXTENT (or NaN: the comparison fails) visit nothing.
    let valid = dets[d + 4u] != -1.0 && bw <= MAX_EXTENT && bh <= MAX_EXTENT;
    var cols = 0u;
    var rows = 0u;
    if (valid) {
        cols = u32(ceil(bw));
        rows = u32(ceil(bh));
    }
    let h = params.height;
    let w = params.width;
    let base = group * h * w;
    let strips = (rows + STRIP - 1u) / STRIP;
    var bv = 0.0;
    var bi = NONE;
    for (var item = lid; item < cols * strips; item += WG) {
        let x = item % cols;
        let y0 = (item / cols) * STRIP;
        let y_end = min(y0 + STRIP, rows);
        let sx = cubic_source(x, w, cols);
        let ix = i32(sx.x);
        let cx = vec4<u32>(tap_index(ix, 0, w), tap_index(ix, 1, w), tap_index(ix, 2, w),
                           tap_index(ix, 3, w));
        let wx = cubic_weights(sx.y);
        // The horizontally resized source rows of the vertical taps of floor `held`.
        var held = -2147483647;
        var r = vec4<f32>(0.0);
        for (var y = y0; y < y_end; y++) {
            let sy = cubic_source(y, h, rows);
            let iy = i32(sy.x);
            if (iy == held + 1) {
                r = vec4<f32>(r.y, r.z, r.w, across(base, tap_index(iy, 3, h), cx, wx));
            } else if (iy != held) {
                r = vec4<f32>(across(base, tap_index(iy, 0, h), cx, wx),
                              across(base, tap_index(iy, 1, h), cx, wx),
                              across(base, tap_index(iy, 2, h), cx, wx),
                              across(base, tap_index(iy, 3, h), cx, wx));
            }
            held = iy;
            let wy = cubic_weights(sy.y);
            var v = r.x * wy.x;
            v += r.y * wy.y;
            v += r.z * wy.z;
            v += r.w * wy.w;
            let i = y * cols + x;
            if (beats(v, i, bv, bi)) {
                bv = v;
                bi = i;
            }
        }
    }
    best_value[lid] = bv;
    best_index[lid] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let v = best_value[lid + s];
            let i = best_index[lid + s];
            if (i != NONE && beats(v, i, best_value[lid], best_index[lid])) {
                best_value[lid] = v;
                best_index[lid] = i;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let o = group * 3u;
        if (best_index[0] == NONE) {
            out[o] = 0.0;
            out[o + 1u] = 0.0;
            out[o + 2u] = 0.0;
        } else {
            let i = best_index[0];
            let xi = f32(i % cols);
            let yi = f32(i / cols);
            out[o] = ((xi + 0.5) * (bw / f32(cols)) + x1) * params.scale_x;
            out[o + 1u] = ((yi + 0.5) * (bh / f32(rows)) + y1) * params.scale_y;
            out[o + 2u] = best_value[0];
        }
    }
}
