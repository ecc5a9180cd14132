// nms_gather: merges the kept lists of an image's segments (levels or classes; each in
// descending score order) into the fixed-capacity output, best first, as a batched NMS returns
// them: kept candidate c of segment g lands at row
//   c + sum over other segments g' of #{kept of g' with score > its score (>= when g' < g)}
// (ties: lower segment first, then lower rank), dropped when the row is >= out_cap. Rows past
// the image's kept total are zero with score -1 (INVALID_SCORE). Row layout: (x1, y1, x2, y2,
// score) when row_width = 5, plus label = g + label_offset when row_width = 6, plus the
// candidate's slot s * kmax + i (an exact f32 below 2^24) when row_width = 7 (MTCNN reads the
// regression of the kept candidates from it).
//
// Threads: workgroup y < images * groups: segment y, x chunk of 256 kept ranks; workgroup
// y >= images * groups: image y - images * groups, x chunk of 256 rows to blank.
//
// | binding | what                                   | access     |
// |---------|----------------------------------------|------------|
// | 0       | Params                                 | uniform    |
// | 1       | cand_boxes [segments * kmax] vec4      | read       |
// | 2       | cand_scores [segments * kmax]          | read       |
// | 3       | kept [segments * cap] u32              | read       |
// | 4       | counts [segments] u32                  | read       |
// | 5       | out [images, out_cap, row_width]       | read_write |
//
// Params mirrors `NmsGatherParams` in crates/wgcnn-kernels/src/nms_gather.rs.

struct Params {
    groups: u32,
    images: u32,
    kmax: u32,
    cap: u32,
    out_cap: u32,
    row_width: u32,    // 5, 6 or 7
    label_offset: u32, // label = group + label_offset (row_width 6)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cand_boxes: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> cand_scores: array<f32>;
@group(0) @binding(3) var<storage, read> kept: array<u32>;
@group(0) @binding(4) var<storage, read> counts: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn kept_score(s: u32, c: u32) -> f32 {
    return cand_scores[s * params.kmax + kept[s * params.cap + c]];
}

@compute @workgroup_size(256)
fn nms_gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let x = wg.x * 256u + lid;
    let segments = params.images * params.groups;
    if (wg.y >= segments) {
        let n = wg.y - segments;
        if (x >= params.out_cap) {
            return;
        }
        var total = 0u;
        for (var g = 0u; g < params.groups; g++) {
            total += counts[n * params.groups + g];
        }
        if (x < total) {
            return;
        }
        let o = (n * params.out_cap + x) * params.row_width;
        for (var k = 0u; k < params.row_width; k++) {
            out[o + k] = 0.0;
        }
        out[o + 4u] = -1.0;
        return;
    }
    let s = wg.y;
    if (x >= counts[s]) {
        return;
    }
    let g = s % params.groups;
    let n = s / params.groups;
    let i = kept[s * params.cap + x];
    let score = cand_scores[s * params.kmax + i];
    var pos = x;
    for (var g2 = 0u; g2 < params.groups && pos < params.out_cap; g2++) {
        if (g2 == g) {
            continue;
        }
        let s2 = n * params.groups + g2;
        var lo = 0u;
        var hi = counts[s2];
        while (lo < hi) {
            let mid = (lo + hi) / 2u;
            let v = kept_score(s2, mid);
            if ((g2 < g && v >= score) || (g2 > g && v > score)) {
                lo = mid + 1u;
            } else {
                hi = mid;
            }
        }
        pos += lo;
    }
    if (pos >= params.out_cap) {
        return;
    }
    let b = cand_boxes[s * params.kmax + i];
    let o = (n * params.out_cap + pos) * params.row_width;
    out[o] = b.x;
    out[o + 1u] = b.y;
    out[o + 2u] = b.z;
    out[o + 3u] = b.w;
    out[o + 4u] = score;
    if (params.row_width >= 6u) {
        out[o + 5u] = f32(g + params.label_offset);
    }
    if (params.row_width == 7u) {
        out[o + 6u] = f32(s * params.kmax + i);
    }
}
