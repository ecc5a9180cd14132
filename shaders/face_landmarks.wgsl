// face_landmarks: O-Net's rows above the probability threshold as the candidates of MTCNN's
// final 'Min' NMS, in descending probability (ties by row: the sorted (key, row) pairs of
// segment_keys + topk_sort; key 0 marks rows at or below the threshold, NaN, padding). Rank
// r < count becomes slot r, from crop box b = boxes[row] and w = b.x2 - b.x1 + 1,
// h = b.y2 - b.y1 + 1:
//   box   = bbreg(b, reg[row])    (x1 + r0 w, y1 + r1 h, x2 + r2 w, y2 + r3 h)
//   score = prob[row * 2 + 1]
//   marks[r] = (w l_k + x1 - 1, h l_(5+k) + y1 - 1) for k < 5, l = landmarks[row] (10 values:
//              five x then five y, relative to the box before regression)
// Slots past count or of key 0 get score -1 (INVALID_SCORE) and zeros.
//
// Threads: one slot each, 256 per workgroup.
//
// | binding | what                                   | access     |
// |---------|----------------------------------------|------------|
// | 0       | Params                                 | uniform    |
// | 1       | pairs [slots] vec2<u32> (key, row)     | read       |
// | 2       | boxes [., 5] f32                       | read       |
// | 3       | prob [., 2] f32                        | read       |
// | 4       | reg [., 4] f32                         | read       |
// | 5       | landmarks [., 10] f32                  | read       |
// | 6       | cand_boxes [slots] vec4                 | read_write |
// | 7       | cand_scores [slots]                     | read_write |
// | 8       | marks [slots, 10] f32 (x, y pairs)      | read_write |
//
// Params mirrors `FaceLandmarksParams` in crates/wgcnn-kernels/src/detect/faces.rs.

struct Params {
    slots: u32,
    count: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pairs: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> boxes: array<f32>;
@group(0) @binding(3) var<storage, read> prob: array<f32>;
@group(0) @binding(4) var<storage, read> reg: array<f32>;
@group(0) @binding(5) var<storage, read> landmarks: array<f32>;
@group(0) @binding(6) var<storage, read_write> cand_boxes: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> cand_scores: array<f32>;
@group(0) @binding(8) var<storage, read_write> marks: array<f32>;

@compute @workgroup_size(256)
fn face_landmarks(@builtin(workgroup_id) wg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let r = wg.x * 256u + lid;
    if (r >= params.slots) {
        return;
    }
    var score = -1.0;
    var bbox = vec4<f32>(0.0);
    for (var k = 0u; k < 10u; k++) {
        marks[r * 10u + k] = 0.0;
    }
    if (r < params.count) {
        let pair = pairs[r];
        if (pair.x != 0u) {
            let i = pair.y;
            let x1 = boxes[i * 5u];
            let y1 = boxes[i * 5u + 1u];
            let x2 = boxes[i * 5u + 2u];
            let y2 = boxes[i * 5u + 3u];
            let w = x2 - x1 + 1.0;
            let h = y2 - y1 + 1.0;
            bbox = vec4<f32>(x1 + reg[i * 4u] * w, y1 + reg[i * 4u + 1u] * h,
                             x2 + reg[i * 4u + 2u] * w, y2 + reg[i * 4u + 3u] * h);
            score = prob[i * 2u + 1u];
            for (var k = 0u; k < 5u; k++) {
                marks[r * 10u + 2u * k] = w * landmarks[i * 10u + k] + x1 - 1.0;
                marks[r * 10u + 2u * k + 1u] = h * landmarks[i * 10u + 5u + k] + y1 - 1.0;
            }
        }
    }
    cand_boxes[r] = bbox;
    cand_scores[r] = score;
}
