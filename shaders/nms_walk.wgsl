// nms_walk: the sequential part of NMS, one invocation per segment (as torchvision's CUDA NMS
// does on the host): walks the candidates in score order, keeps each valid one not yet
// suppressed, ORs its mask row into the suppressed set, and stops after `cap` kept.
// Writes the kept ranks in order and their count.
//
// Threads: one segment each, 64 per workgroup, 2-D grid (linear id = x + y * nwg.x).
// kmax <= 2048 (64 words of suppressed bits per invocation).
//
// | binding | what                                  | access     |
// |---------|---------------------------------------|------------|
// | 0       | Params                                | uniform    |
// | 1       | cand_scores [segments * kmax]         | read       |
// | 2       | mask [segments * kmax * words] u32    | read       |
// | 3       | kept [segments * cap] u32 (ranks)     | read_write |
// | 4       | counts [segments] u32                 | read_write |
//
// Params mirrors `NmsWalkParams` in crates/wgcnn-kernels/src/nms_walk.rs.

struct Params {
    segments: u32,
    kmax: u32,
    words: u32,  // ceil(kmax / 32) <= 64
    cap: u32,    // the most candidates kept per segment
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cand_scores: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> kept: array<u32>;
@group(0) @binding(4) var<storage, read_write> counts: array<u32>;

// A candidate is valid when its score is >= 0 and not NaN (box_decode writes -1 for invalid
// ones and never a NaN; the bit test guards against fast-math compilers folding NaN compares).
fn valid(score: f32) -> bool {
    return score >= 0.0 && (bitcast<u32>(score) & 0x7fffffffu) <= 0x7f800000u;
}

@compute @workgroup_size(64)
fn nms_walk(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let s = (wg.x + wg.y * nwg.x) * 64u + lid;
    if (s >= params.segments) {
        return;
    }
    var removed: array<u32, 64>;
    for (var w = 0u; w < 64u; w++) {
        removed[w] = 0u;
    }
    let base = s * params.kmax;
    var count = 0u;
    for (var i = 0u; i < params.kmax && count < params.cap; i++) {
        if (!valid(cand_scores[base + i]) || (removed[i / 32u] & (1u << (i % 32u))) != 0u) {
            continue;
        }
        kept[s * params.cap + count] = i;
        count += 1u;
        let row = (base + i) * params.words;
        for (var w = i / 32u; w < params.words; w++) {
            removed[w] |= mask[row + w];
        }
    }
    counts[s] = count;
}
