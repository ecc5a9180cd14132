// nms_mask: the suppression bitmask of non-maximum suppression, as torchvision's CUDA NMS
// builds it. Candidates of each segment are in descending score order (box_decode); for row i
// and word w >= i / 32 (nms_walk reads no other word of row i), bit b is set when candidate
// j = 32 w + b comes after i (j > i), both are valid (score >= 0, not NaN), and
// IoU(i, j) > thresh (a NaN IoU never suppresses; mode 1 replaces IoU by MTCNN's 'Min' overlap,
// inter / min(area_i, area_j) with +1 pixel widths), with IoU computed as torchvision's CPU
// kernel does:
//   inter = max(0, min(x2) - max(x1)) * max(0, min(y2) - max(y1))
//   iou   = inter / (area_i + area_j - inter),  area = (x2 - x1) * (y2 - y1)
// Rows of invalid candidates are left unwritten (nms_walk never reads them).
// When the image has at most trick_max valid candidates (nms_offsets), both boxes are first
// shifted by (g + group_offset) * (max_coordinate + 1), g = segment % groups, as torchvision's
// coordinate trick does (it only changes the f32 rounding).
//
// Threads: one mask row each (its words in turn); workgroup y = segment, x = chunk of 256 rows.
//
// | binding | what                                      | access     |
// |---------|-------------------------------------------|------------|
// | 0       | Params                                    | uniform    |
// | 1       | cand_boxes [segments * kmax] vec4         | read       |
// | 2       | cand_scores [segments * kmax]             | read       |
// | 3       | stats [images] vec2<u32> (nms_offsets)    | read       |
// | 4       | mask [segments * kmax * words] u32        | read_write |
//
// Params mirrors `NmsMaskParams` in crates/wgcnn-kernels/src/nms_mask.rs.

struct Params {
    kmax: u32,         // candidates per segment
    words: u32,        // ceil(kmax / 32)
    groups: u32,       // segments per image
    group_offset: u32, // group id = segment % groups + group_offset
    trick_max: u32,    // the most valid candidates of an image for the coordinate trick
    mode: u32,         // 0: IoU; 1: 'Min' (intersection over the smaller box, +1 pixel widths)
    _pad: u32,
    thresh: f32,       // IoU threshold (the host rounds it so that f32 > matches f64 >)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cand_boxes: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> cand_scores: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read_write> mask: array<u32>;

// A candidate is valid when its score is >= 0 and not NaN (box_decode writes -1 for invalid
// ones and never a NaN; the bit test guards against fast-math compilers folding NaN compares).
fn valid(score: f32) -> bool {
    return score >= 0.0 && (bitcast<u32>(score) & 0x7fffffffu) <= 0x7f800000u;
}

@compute @workgroup_size(256)
fn nms_mask(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = wg.y;
    let i = wg.x * 256u + lid;
    if (i >= params.kmax) {
        return;
    }
    let base = s * params.kmax;
    if (!valid(cand_scores[base + i])) {
        return;
    }
    let st = stats[s / params.groups];
    var off = 0.0;
    if (st.x <= params.trick_max) {
        off = f32(s % params.groups + params.group_offset) * (bitcast<f32>(st.y) + 1.0);
    }
    let a = cand_boxes[base + i] + off;
    let area_a = (a.z - a.x) * (a.w - a.y);
    // 'Min' (MTCNN's `nms_numpy(..., 'Min')`): areas and overlaps count pixels (+1), and the
    // threshold is compared as given (numpy compares in f32).
    let min_mode = params.mode == 1u;
    let pixels_a = (a.z - a.x + 1.0) * (a.w - a.y + 1.0);
    for (var w = i / 32u; w < params.words; w++) {
        var bits = 0u;
        let first = max(w * 32u, i + 1u);
        let last = min(w * 32u + 32u, params.kmax);
        for (var j = first; j < last; j++) {
            if (!valid(cand_scores[base + j])) {
                continue;
            }
            let b = cand_boxes[base + j] + off;
            var iou: f32;
            if (min_mode) {
                let iw = max(0.0, min(a.z, b.z) - max(a.x, b.x) + 1.0);
                let ih = max(0.0, min(a.w, b.w) - max(a.y, b.y) + 1.0);
                iou = iw * ih / min(pixels_a, (b.z - b.x + 1.0) * (b.w - b.y + 1.0));
            } else {
                let iw = max(0.0, min(a.z, b.z) - max(a.x, b.x));
                let ih = max(0.0, min(a.w, b.w) - max(a.y, b.y));
                let inter = iw * ih;
                let area_b = (b.z - b.x) * (b.w - b.y);
                iou = inter / (area_a + area_b - inter);
            }
            // Two empty boxes give 0 / 0: NaN never suppresses (as `>` on the CPU), tested on
            // the bits so that fast math cannot make it suppress.
            let iou_nan = (bitcast<u32>(iou) & 0x7fffffffu) > 0x7f800000u;
            if (!iou_nan && iou > params.thresh) {
                bits |= 1u << (j - w * 32u);
            }
        }
        mask[(base + i) * params.words + w] = bits;
    }
}
