// roi_align: torchvision's MultiScaleRoIAlign. Each box is pooled from one feature level chosen
// by the FPN level mapper, with roi_align(output, spatial_scale, sampling_ratio, aligned).
//
//   level = clamp(floor(canonical_level + log2(sqrt(area) / canonical_scale) + 1e-6),
//                 k_min, k_max) - k_min                       (torchvision's LevelMapper)
//   out[b, c, ph, pw] = mean over a grid_h x grid_w sample grid inside bin (ph, pw) of the
//                       bilinear value of feature[level][n, c] (torchvision's CPU kernel rules:
//                       samples beyond [-1, extent] read 0, coordinates clamped at 0 and at the
//                       last row/column)
//
// With a single level every box uses it (torchvision calls roi_align directly). Boxes are rows
// (x1, y1, x2, y2, score) of [N, R, 5], or detections (x1, y1, x2, y2, score, label) of
// [N, R, 6] (box_stride says which); a row with score -1 (INVALID_SCORE) is unused and its
// output is zero, as is a box mapped past the last level (possible only when the scales do not
// halve level by level). One launch binds up to four levels (level_base .. level_base +
// level_count); boxes whose level falls outside return at once (another launch writes them);
// zero outputs are written by the launch with level_base 0. The adaptive sampling grid
// (sampling_ratio 0) is capped at 1024 per axis.
//
// NaN coordinates follow the CPU interpreter: a NaN level maps to the first level, a NaN
// extent becomes 1 (not aligned, as f32::max) or an empty grid (aligned), a NaN sample point
// reads 0. They are tested on the bit pattern: fast math (Metal) may fold `x != x`, and
// min/max/clamp/u32() of NaN differ between vendors (a NaN grid size could loop for ever).
//
// Threads: one output bin (box, ph, pw) for a group of CPG = 16 channels each: the sampling
// taps are computed once and applied to the group's channels (each channel sums its samples in
// torchvision's order). Invocation id ((b * groups + g) * OH + ph) * OW + pw, 256 per
// workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what                     | access     |
// |---------|--------------------------|------------|
// | 0       | Params                   | uniform    |
// | 1       | boxes [N, R, box_stride] | read       |
// | 2..5    | feature level_base + 0..3 [N, C, H_l, W_l] (unused: any buffer) | read |
// | 6       | out [N * R, C, OH, OW]   | read_write |
//
// Params mirrors `RoiAlignParams` in crates/wgcnn-kernels/src/roi_align.rs.

struct Params {
    total: u32,          // N * R * ceil(C / CPG) * OH * OW invocations
    rows: u32,           // R (boxes per image)
    channels: u32,       // C
    out_h: u32,          // OH
    out_w: u32,          // OW
    sampling_ratio: u32, // 0: adaptive ceil(roi / out)
    aligned: u32,        // 1: half-pixel offset, no minimum size of 1
    level_base: u32,     // first level bound here
    level_count: u32,    // levels bound here (1..4)
    levels: u32,         // levels of the op in all
    h0: u32, w0: u32, h1: u32, w1: u32, h2: u32, w2: u32, h3: u32, w3: u32,
    box_stride: u32,     // values per box row: 5 or 6
    _pad: u32,
    scale0: f32, scale1: f32, scale2: f32, scale3: f32,
    canonical_scale: f32,
    canonical_level: f32,
    k_min: f32,          // -log2(scale of level 0)
    k_max: f32,          // -log2(scale of the last level)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> boxes: array<f32>;
@group(0) @binding(2) var<storage, read> f0: array<f32>;
@group(0) @binding(3) var<storage, read> f1: array<f32>;
@group(0) @binding(4) var<storage, read> f2: array<f32>;
@group(0) @binding(5) var<storage, read> f3: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

// Channels per invocation.
const CPG: u32 = 16u;

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// Samples of the adaptive grid along one axis: ceil(v) in [0, 1024], NaN -> 0.
fn cells(v: f32) -> u32 {
    let c = ceil(v);
    if (is_nan(c) || c <= 0.0) {
        return 0u;
    }
    return u32(min(c, 1024.0));
}

fn fetch(slot: u32, i: u32) -> f32 {
    switch slot {
        case 0u: { return f0[i]; }
        case 1u: { return f1[i]; }
        case 2u: { return f2[i]; }
        default: { return f3[i]; }
    }
}

// One bilinear sample: the four plane offsets and their weights (all zero outside).
struct Tap {
    pos: vec4<u32>,
    w: vec4<f32>,
}

// torchvision's bilinear_interpolate / pre_calc_for_bilinear_interpolate on an h x w map.
fn tap(h: u32, w: u32, y_in: f32, x_in: f32) -> Tap {
    var t: Tap;
    t.pos = vec4<u32>(0u);
    t.w = vec4<f32>(0.0);
    let hf = f32(h);
    let wf = f32(w);
    let inside = y_in >= -1.0 && y_in <= hf && x_in >= -1.0 && x_in <= wf;
    if (!inside || is_nan(y_in) || is_nan(x_in)) {
        return t;
    }
    var y = max(y_in, 0.0);
    var x = max(x_in, 0.0);
    var y_low = u32(y);
    var x_low = u32(x);
    var y_high: u32;
    var x_high: u32;
    if (y_low >= h - 1u) {
        y_low = h - 1u;
        y_high = y_low;
        y = f32(y_low);
    } else {
        y_high = y_low + 1u;
    }
    if (x_low >= w - 1u) {
        x_low = w - 1u;
        x_high = x_low;
        x = f32(x_low);
    } else {
        x_high = x_low + 1u;
    }
    let ly = y - f32(y_low);
    let lx = x - f32(x_low);
    let hy = 1.0 - ly;
    let hx = 1.0 - lx;
    t.pos = vec4<u32>(y_low * w + x_low, y_low * w + x_high, y_high * w + x_low, y_high * w + x_high);
    t.w = vec4<f32>(hy * hx, hy * lx, ly * hx, ly * lx);
    return t;
}

@compute @workgroup_size(256)
fn roi_align(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    let groups = (params.channels + CPG - 1u) / CPG;
    let pw = i % params.out_w;
    let ph = (i / params.out_w) % params.out_h;
    let g = (i / (params.out_w * params.out_h)) % groups;
    let b = i / (params.out_w * params.out_h * groups);
    let n = b / params.rows;
    let c0 = g * CPG;
    let c_end = min(c0 + CPG, params.channels);
    let plane_out = params.out_h * params.out_w;
    let first_out = (b * params.channels + c0) * plane_out + ph * params.out_w + pw;
    let x1 = boxes[b * params.box_stride];
    let y1 = boxes[b * params.box_stride + 1u];
    let x2 = boxes[b * params.box_stride + 2u];
    let y2 = boxes[b * params.box_stride + 3u];
    var level = 0u;
    if (params.levels > 1u) {
        let s = sqrt((x2 - x1) * (y2 - y1));
        let k = floor(params.canonical_level + log2(s / params.canonical_scale) + 1e-6);
        // NaN (a negative area, a NaN coordinate) maps to the first level.
        if (!is_nan(k) && k >= params.k_min) {
            level = u32(min(k, params.k_max) - params.k_min);
        }
    }
    if (boxes[b * params.box_stride + 4u] == -1.0 || level >= params.levels) {
        if (params.level_base == 0u) {
            for (var c = c0; c < c_end; c++) {
                out[first_out + (c - c0) * plane_out] = 0.0;
            }
        }
        return;
    }
    if (level < params.level_base || level >= params.level_base + params.level_count) {
        return;
    }
    let slot = level - params.level_base;
    var h: u32;
    var w: u32;
    var scale: f32;
    switch slot {
        case 0u: { h = params.h0; w = params.w0; scale = params.scale0; }
        case 1u: { h = params.h1; w = params.w1; scale = params.scale1; }
        case 2u: { h = params.h2; w = params.w2; scale = params.scale2; }
        default: { h = params.h3; w = params.w3; scale = params.scale3; }
    }
    var offset = 0.0;
    if (params.aligned == 1u) {
        offset = 0.5;
    }
    let start_w = x1 * scale - offset;
    let start_h = y1 * scale - offset;
    var roi_w = x2 * scale - offset - start_w;
    var roi_h = y2 * scale - offset - start_h;
    if (params.aligned == 0u) {
        // max(roi, 1) with NaN -> 1, as f32::max (WGSL's max of NaN is vendor-defined).
        if (is_nan(roi_w) || roi_w < 1.0) {
            roi_w = 1.0;
        }
        if (is_nan(roi_h) || roi_h < 1.0) {
            roi_h = 1.0;
        }
    }
    let bin_h = roi_h / f32(params.out_h);
    let bin_w = roi_w / f32(params.out_w);
    var grid_h = params.sampling_ratio;
    var grid_w = params.sampling_ratio;
    if (params.sampling_ratio == 0u) {
        grid_h = cells(roi_h / f32(params.out_h));
        grid_w = cells(roi_w / f32(params.out_w));
    }
    let count = max(f32(grid_h * grid_w), 1.0);
    let plane = h * w;
    let base = (n * params.channels + c0) * plane;
    var acc: array<f32, 16>;
    for (var k = 0u; k < CPG; k++) {
        acc[k] = 0.0;
    }
    for (var iy = 0u; iy < grid_h; iy++) {
        let y = start_h + f32(ph) * bin_h + (f32(iy) + 0.5) * bin_h / f32(grid_h);
        for (var ix = 0u; ix < grid_w; ix++) {
            let x = start_w + f32(pw) * bin_w + (f32(ix) + 0.5) * bin_w / f32(grid_w);
            let t = tap(h, w, y, x);
            for (var c = c0; c < c_end; c++) {
                let p = base + (c - c0) * plane;
                acc[c - c0] += t.w.x * fetch(slot, p + t.pos.x) + t.w.y * fetch(slot, p + t.pos.y)
                    + t.w.z * fetch(slot, p + t.pos.z) + t.w.w * fetch(slot, p + t.pos.w);
            }
        }
    }
    for (var c = c0; c < c_end; c++) {
        out[first_out + (c - c0) * plane_out] = acc[c - c0] / count;
    }
}
