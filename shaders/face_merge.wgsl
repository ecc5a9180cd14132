// face_merge: the rows one NMS gathered (nms_gather with row_width 7: x1, y1, x2, y2, score,
// segment, slot; best first, unused rows score -1) as the candidates of the next NMS (MTCNN's
// NMS over all pyramid levels after the per-level one), each carrying the regression of the
// candidate it came from: cand_regs_out[r] = cand_regs_in[slot].
//
// Threads: one row each, 256 per workgroup.
//
// | binding | what                                   | access     |
// |---------|----------------------------------------|------------|
// | 0       | Params                                 | uniform    |
// | 1       | rows [count, 7]                        | read       |
// | 2       | cand_regs_in [.] vec4                  | read       |
// | 3       | cand_boxes [count] vec4                | read_write |
// | 4       | cand_scores [count]                    | read_write |
// | 5       | cand_regs [count] vec4                 | read_write |
//
// Params mirrors `FaceMergeParams` in crates/wgcnn-kernels/src/detect/faces.rs.

struct Params {
    count: u32,  // rows
    slots: u32,  // length of cand_regs_in (a slot past it is never read)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rows: array<f32>;
@group(0) @binding(2) var<storage, read> cand_regs_in: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> cand_boxes: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> cand_scores: array<f32>;
@group(0) @binding(5) var<storage, read_write> cand_regs: array<vec4<f32>>;

@compute @workgroup_size(256)
fn face_merge(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.x * 256u + lid;
    if (r >= params.count) {
        return;
    }
    let o = r * 7u;
    let score = rows[o + 4u];
    cand_boxes[r] = vec4<f32>(rows[o], rows[o + 1u], rows[o + 2u], rows[o + 3u]);
    cand_scores[r] = score;
    var reg = vec4<f32>(0.0);
    // Blank rows (score -1) carry slot 0 from their zeros; only kept rows name a real slot.
    let slot = u32(max(rows[o + 6u], 0.0));
    if (score >= 0.0 && slot < params.slots) {
        reg = cand_regs_in[slot];
    }
    cand_regs[r] = reg;
}
