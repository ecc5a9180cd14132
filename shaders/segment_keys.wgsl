// segment_keys: builds the (key, index) pairs that topk_sort orders, one padded segment per
// (image n, group g): pairs[n * dst_img_stride + dst_off_g + p] for p < padded_g.
//
//   p < len_g:  value = scores[n * src_img_stride + src_off_g + p * src_elem_stride]
//               key   = order-preserving u32 of value (larger float -> larger key), or 0 when
//                       value is NaN, or mode = 1 and !(value > thresh); pair = (key, p)
//   otherwise:  pair  = (0, 0xffffffff) (padding sorts last)
//
// Key transform: bits b of the f32; negative -> ~b, else b | 0x80000000. No float but NaN maps
// to 0 (NaN itself would map above +inf or below -inf), so key 0 is below every real score.
// NaN is dropped, not sorted: a NaN score is never a valid candidate (the CPU interpreter
// drops NaN rows too). The test is on the bit pattern, not `v != v`, which fast-math
// compilers (Metal) may fold to false.
//
// Threads: one pair each; workgroup y = segment s = n * groups + g, x = chunk of 256 positions.
//
// | binding | what                                               | access     |
// |---------|----------------------------------------------------|------------|
// | 0       | Params                                             | uniform    |
// | 1       | table [groups] vec4 (src_off, len, dst_off, padded) | read       |
// | 2       | scores (f32)                                       | read       |
// | 3       | pairs [.] vec2<u32> (key, index)                   | read_write |
//
// Params mirrors `SegmentKeysParams` in crates/wgcnn-kernels/src/segment_keys.rs.

struct Params {
    groups: u32,          // G
    src_img_stride: u32,  // elements of `scores` per image
    src_elem_stride: u32, // elements between consecutive positions of a segment
    dst_img_stride: u32,  // pairs per image
    mode: u32,            // 0: every value; 1: key 0 unless value > thresh
    _pad0: u32,
    _pad1: u32,
    thresh: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scores: array<f32>;
@group(0) @binding(3) var<storage, read_write> pairs: array<vec2<u32>>;

fn order_key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return 0u;
    }
    if ((b & 0x80000000u) != 0u) {
        return ~b;
    }
    return b | 0x80000000u;
}

@compute @workgroup_size(256)
fn segment_keys(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = wg.y;
    let g = s % params.groups;
    let n = s / params.groups;
    let e = table[g];
    let p = wg.x * 256u + lid;
    if (p >= e.w) {
        return;
    }
    let dst = n * params.dst_img_stride + e.z + p;
    if (p >= e.y) {
        pairs[dst] = vec2<u32>(0u, 0xffffffffu);
        return;
    }
    let v = scores[n * params.src_img_stride + e.x + p * params.src_elem_stride];
    var key = order_key(v);
    if (params.mode == 1u && !(v > params.thresh)) {
        key = 0u;
    }
    pairs[dst] = vec2<u32>(key, p);
}
