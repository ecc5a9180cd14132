// face_select: R-Net's or O-Net's rows above the probability threshold as NMS candidates, in
// descending probability (ties by row: the sorted (key, row) pairs of segment_keys + topk_sort;
// key 0 marks rows at or below the threshold, NaN, padding). Rank r < count becomes slot r:
//   box = boxes[row] (x1, y1, x2, y2 of the crop box), score = prob[row * 2 + 1],
//   reg = reg[row * 4 ..][..4]
// Slots past count or of key 0 get score -1 (INVALID_SCORE) and zeros.
//
// Threads: one slot each, 256 per workgroup.
//
// | binding | what                               | access     |
// |---------|------------------------------------|------------|
// | 0       | Params                             | uniform    |
// | 1       | pairs [slots] vec2<u32> (key, row) | read       |
// | 2       | boxes [., 5] f32                   | read       |
// | 3       | prob [., 2] f32                    | read       |
// | 4       | reg [., 4] f32                     | read       |
// | 5       | cand_boxes [slots] vec4             | read_write |
// | 6       | cand_scores [slots]                 | read_write |
// | 7       | cand_regs [slots] vec4              | read_write |
//
// Params mirrors `FaceSelectParams` in crates/wgcnn-kernels/src/detect/faces.rs.

struct Params {
    slots: u32,  // candidate slots written
    count: u32,  // sorted ranks to read
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pairs: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> boxes: array<f32>;
@group(0) @binding(3) var<storage, read> prob: array<f32>;
@group(0) @binding(4) var<storage, read> reg: array<f32>;
@group(0) @binding(5) var<storage, read_write> cand_boxes: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> cand_scores: array<f32>;
@group(0) @binding(7) var<storage, read_write> cand_regs: array<vec4<f32>>;

@compute @workgroup_size(256)
fn face_select(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.x * 256u + lid;
    if (r >= params.slots) {
        return;
    }
    var score = -1.0;
    var bbox = vec4<f32>(0.0);
    var rg = vec4<f32>(0.0);
    if (r < params.count) {
        let pair = pairs[r];
        if (pair.x != 0u) {
            let i = pair.y;
            bbox = vec4<f32>(boxes[i * 5u], boxes[i * 5u + 1u], boxes[i * 5u + 2u],
                             boxes[i * 5u + 3u]);
            score = prob[i * 2u + 1u];
            rg = vec4<f32>(reg[i * 4u], reg[i * 4u + 1u], reg[i * 4u + 2u], reg[i * 4u + 3u]);
        }
    }
    cand_boxes[r] = bbox;
    cand_scores[r] = score;
    cand_regs[r] = rg;
}
