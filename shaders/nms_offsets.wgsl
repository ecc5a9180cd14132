// nms_offsets: per image, what torchvision's batched_nms needs to choose between its two
// paths: the number of valid candidates (score >= 0) and the largest coordinate among them
// (boxes are clipped, so coordinates are >= 0 and 0 is a safe start). With at most
// `trick_max` candidates torchvision shifts each box by group * (max + 1) before NMS (the
// coordinate trick), which changes the f32 rounding of the IoUs; nms_mask repeats that.
//
// Threads: one workgroup of 256 per image, each striding over the image's candidate slots
// (segments_per_image * kmax); a tree reduction in workgroup memory.
//
// | binding | what                                        | access     |
// |---------|---------------------------------------------|------------|
// | 0       | Params                                      | uniform    |
// | 1       | cand_boxes [segments * kmax] vec4           | read       |
// | 2       | cand_scores [segments * kmax]               | read       |
// | 3       | stats [images] vec2<u32> (count, f32 bits of the max coordinate) | read_write |
//
// Params mirrors `NmsOffsetsParams` in crates/wgcnn-kernels/src/nms_offsets.rs.

struct Params {
    slots: u32,   // candidate slots per image: segments_per_image * kmax
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cand_boxes: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> cand_scores: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec2<u32>>;

var<workgroup> counts: array<u32, 256>;
var<workgroup> maxima: array<f32, 256>;

// A candidate is valid when its score is >= 0 and not NaN (box_decode writes -1 for invalid
// ones and never a NaN; the bit test guards against fast-math compilers folding NaN compares).
fn valid(score: f32) -> bool {
    return score >= 0.0 && (bitcast<u32>(score) & 0x7fffffffu) <= 0x7f800000u;
}

@compute @workgroup_size(256)
fn nms_offsets(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.x;
    let base = n * params.slots;
    var count = 0u;
    var m = 0.0;
    for (var i = lid; i < params.slots; i += 256u) {
        if (valid(cand_scores[base + i])) {
            let b = cand_boxes[base + i];
            count += 1u;
            m = max(m, max(max(b.x, b.y), max(b.z, b.w)));
        }
    }
    counts[lid] = count;
    maxima[lid] = m;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (lid < half) {
            counts[lid] += counts[lid + half];
            maxima[lid] = max(maxima[lid], maxima[lid + half]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        stats[n] = vec2<u32>(counts[0], bitcast<u32>(maxima[0]));
    }
}
