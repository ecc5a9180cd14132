// mask_bits: binary masks bit-packed for reading back. Input masks [R, P] (R masks of P = H * W
// pixels, row-major); output words [R, ceil(P / 32)]: bit b of word w of mask r is
// masks[r, 32 w + b] > threshold (pixels past P give 0). A Mask R-CNN photo reads back 1 bit a
// pixel instead of a 4-byte probability.
//
// Threads: one output word each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what           | access     |
// |---------|----------------|------------|
// | 0       | Params         | uniform    |
// | 1       | masks [R, P]   | read       |
// | 2       | words [R, W]   | read_write |
//
// Params mirrors `MaskBitsParams` in crates/wgcnn-kernels/src/paste_masks.rs.

struct Params {
    total: u32,     // R * W words
    pixels: u32,    // P
    words: u32,     // W = ceil(P / 32)
    threshold: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> masks: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn mask_bits(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    let r = i / params.words;
    let first = (i % params.words) * 32u;
    let n = min(32u, params.pixels - first);
    let base = r * params.pixels + first;
    var bits = 0u;
    for (var b = 0u; b < n; b++) {
        bits |= select(0u, 1u << b, masks[base + b] > params.threshold);
    }
    out[i] = bits;
}
