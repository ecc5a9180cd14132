// box_decode: candidates for NMS in sorted order. For segment s = n * groups + g and rank r,
// reads the r-th sorted pair of the segment, decodes its box against its reference box
// (torchvision's BoxCoder.decode_single), clips it to the image, and writes the candidate:
//
//   item   = item_off_g + pairs[n * pair_img_stride + pair_off_g + r].index
//   si     = n * score_img_stride + item * score_elem_stride + class_g
//   score  = sigmoid(scores[si]) (RPN objectness) or scores[si] (class probabilities)
//   deltas = deltas[4 si .. 4 si + 4] / (wx, wy, ww, wh), dw and dh clamped at bbox_clip
//   ref    = refs[n * ref_img_stride + item * ref_row ..] (x1, y1, x2, y2[, score])
//   box    = decode(ref, deltas), x clamped to [0, image_w], y to [0, image_h]
//   valid  = r < count_g, pair key != 0 (segment_keys' mark of an unwanted or NaN score, or
//            padding), ref score neither -1 nor NaN (ref_row 5), no NaN among the score, the
//            deltas, the reference box and the decoded box before clipping, width and height
//            >= min_size, score >= thresh (or > thresh when strict)
//
// NaN is tested on the bit pattern: fast-math compilers (Metal) may fold `x != x` to false,
// and min/clamp may turn a NaN into a finite bound (a NaN box would become a valid one).
//
// Invalid candidates get score -1 and a zero box; NMS skips them.
//
// Threads: one candidate each; workgroup y = segment, x = chunk of 256 ranks (< kmax).
//
// | binding | what                                                    | access     |
// |---------|---------------------------------------------------------|------------|
// | 0       | Params                                                  | uniform    |
// | 1       | table [groups] vec4 (item_off, count, pair_off, class)  | read       |
// | 2       | pairs vec2<u32> (key, index), sorted per segment        | read       |
// | 3       | scores (logits or probabilities)                        | read       |
// | 4       | deltas (4 per score)                                    | read       |
// | 5       | refs (anchors [A, 4] or proposals [N, R, 5])            | read       |
// | 6       | cand_boxes [segments * kmax] vec4                       | read_write |
// | 7       | cand_scores [segments * kmax]                           | read_write |
//
// Params mirrors `BoxDecodeParams` in crates/wgcnn-kernels/src/box_decode.rs.

struct Params {
    groups: u32,
    kmax: u32,
    pair_img_stride: u32,
    score_img_stride: u32,
    score_elem_stride: u32,
    ref_img_stride: u32,
    ref_row: u32,       // 4: anchors; 5: proposals whose score < 0 marks an unused row
    sigmoid: u32,       // 1: score = sigmoid(raw)
    strict: u32,        // 1: keep score > thresh, 0: score >= thresh
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    image_h: f32,
    image_w: f32,
    min_size: f32,
    thresh: f32,
    bbox_clip: f32,
    wx: f32,
    wy: f32,
    ww: f32,
    wh: f32,
    _pad3: u32,
    _pad4: u32,
    _pad5: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> pairs: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> scores: array<f32>;
@group(0) @binding(4) var<storage, read> deltas: array<f32>;
@group(0) @binding(5) var<storage, read> refs: array<f32>;
@group(0) @binding(6) var<storage, read_write> cand_boxes: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> cand_scores: array<f32>;

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn any_nan(v: vec4<f32>) -> bool {
    return any((bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u));
}

@compute @workgroup_size(256)
fn box_decode(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = wg.y;
    let g = s % params.groups;
    let n = s / params.groups;
    let r = wg.x * 256u + lid;
    if (r >= params.kmax) {
        return;
    }
    let out = s * params.kmax + r;
    let e = table[g];
    cand_boxes[out] = vec4<f32>(0.0);
    cand_scores[out] = -1.0;
    if (r >= e.y) {
        return;
    }
    let pair = pairs[n * params.pair_img_stride + e.z + r];
    if (pair.x == 0u) {
        return;
    }
    let item = e.x + pair.y;
    let si = n * params.score_img_stride + item * params.score_elem_stride + e.w;
    var score = scores[si];
    if (params.sigmoid == 1u) {
        score = 1.0 / (1.0 + exp(-score));
    }
    let ri = n * params.ref_img_stride + item * params.ref_row;
    if (params.ref_row == 5u && (refs[ri + 4u] == -1.0 || is_nan(refs[ri + 4u]))) {
        return;
    }
    let r4 = vec4<f32>(refs[ri], refs[ri + 1u], refs[ri + 2u], refs[ri + 3u]);
    let d4 = vec4<f32>(deltas[4u * si], deltas[4u * si + 1u], deltas[4u * si + 2u],
                       deltas[4u * si + 3u]);
    if (is_nan(score) || any_nan(r4) || any_nan(d4)) {
        return;
    }
    let widths = r4.z - r4.x;
    let heights = r4.w - r4.y;
    let ctr_x = r4.x + 0.5 * widths;
    let ctr_y = r4.y + 0.5 * heights;
    let dx = d4.x / params.wx;
    let dy = d4.y / params.wy;
    let dw = min(d4.z / params.ww, params.bbox_clip);
    let dh = min(d4.w / params.wh, params.bbox_clip);
    let pcx = dx * widths + ctr_x;
    let pcy = dy * heights + ctr_y;
    let half_w = 0.5 * (exp(dw) * widths);
    let half_h = 0.5 * (exp(dh) * heights);
    // inf - inf or 0 * inf (a degenerate reference box) give NaN here, as in torchvision,
    // where the NaN box then fails remove_small_boxes.
    let raw = vec4<f32>(pcx - half_w, pcy - half_h, pcx + half_w, pcy + half_h);
    if (any_nan(raw)) {
        return;
    }
    let x1 = clamp(raw.x, 0.0, params.image_w);
    let y1 = clamp(raw.y, 0.0, params.image_h);
    let x2 = clamp(raw.z, 0.0, params.image_w);
    let y2 = clamp(raw.w, 0.0, params.image_h);
    var keep = x2 - x1 >= params.min_size && y2 - y1 >= params.min_size;
    if (params.strict == 1u) {
        keep = keep && score > params.thresh;
    } else {
        keep = keep && score >= params.thresh;
    }
    if (keep) {
        cand_boxes[out] = vec4<f32>(x1, y1, x2, y2);
        cand_scores[out] = score;
    }
}
