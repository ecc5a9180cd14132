// face_candidates: MTCNN's `generateBoundingBox` on the GPU. For each pyramid level g, ranks
// r < count_g of its sorted (key, cell) pairs (segment_keys + topk_sort: P-Net face
// probabilities >= the threshold, descending, ties by cell index) become candidate slot
// g * kmax + r:
//   cell i = row * width + col:  box = floor(((2 col + 1) / s, (2 row + 1) / s,
//                                              (2 col + 12) / s, (2 row + 12) / s))
//   score = prob[prob_off + i],  reg = regs[4 prob_off + k * plane + i], k = 0..3
// Slots past count_g, and pairs of key 0 (below the threshold, NaN, padding), get score -1
// (INVALID_SCORE: NMS skips them) and a zero box.
//
// Threads: one slot each; workgroup y = level, x = chunk of 256 ranks.
//
// | binding | what                                                        | access     |
// |---------|-------------------------------------------------------------|------------|
// | 0       | Params                                                      | uniform    |
// | 1       | table [2 levels] vec4<u32>: (pair_off, prob_off, width, count), | read       |
// |         |   (plane = height * width, f32 bits of s, 0, 0)                |            |
// | 2       | pairs vec2<u32> (key, cell)                                     | read       |
// | 3       | probs (every level's face-probability plane, concatenated)      | read       |
// | 4       | regs (every level's 4 regression planes at 4 prob_off)          | read       |
// | 5       | cand_boxes [levels * kmax] vec4                                  | read_write |
// | 6       | cand_scores [levels * kmax]                                      | read_write |
// | 7       | cand_regs [levels * kmax] vec4                                   | read_write |
//
// Params mirrors `FaceCandidatesParams` in crates/wgcnn-kernels/src/detect/faces.rs.

struct Params {
    kmax: u32,
    levels: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> pairs: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> probs: array<f32>;
@group(0) @binding(4) var<storage, read> regs: array<f32>;
@group(0) @binding(5) var<storage, read_write> cand_boxes: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> cand_scores: array<f32>;
@group(0) @binding(7) var<storage, read_write> cand_regs: array<vec4<f32>>;

@compute @workgroup_size(256)
fn face_candidates(@builtin(workgroup_id) wg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let g = wg.y;
    let r = wg.x * 256u + lid;
    if (g >= params.levels || r >= params.kmax) {
        return;
    }
    let slot = g * params.kmax + r;
    let t = table[2u * g];
    let u = table[2u * g + 1u];
    var score = -1.0;
    var bbox = vec4<f32>(0.0);
    var reg = vec4<f32>(0.0);
    if (r < t.w) {
        let pair = pairs[t.x + r];
        if (pair.x != 0u) {
            let i = pair.y;
            let col = f32(i % t.z);
            let row = f32(i / t.z);
            let s = bitcast<f32>(u.y);
            bbox = floor(vec4<f32>(2.0 * col + 1.0, 2.0 * row + 1.0, 2.0 * col + 12.0,
                                   2.0 * row + 12.0) / s);
            score = probs[t.y + i];
            let p = u.x;
            reg = vec4<f32>(regs[4u * t.y + i], regs[4u * t.y + p + i],
                            regs[4u * t.y + 2u * p + i], regs[4u * t.y + 3u * p + i]);
        }
    }
    cand_boxes[slot] = bbox;
    cand_scores[slot] = score;
    cand_regs[slot] = reg;
}
