// face_output: MTCNN's final faces from the rows of its 'Min' NMS (nms_gather row_width 7,
// best first; score -1 marks unused rows, which follow the kept ones): faces[r] = (score, x1,
// y1, x2, y2, then the five landmarks (x, y) of the row's slot), unused rows zero with score -1;
// count[0] = the number of kept rows.
//
// Threads: one row each, 256 per workgroup.
//
// | binding | what                          | access     |
// |---------|-------------------------------|------------|
// | 0       | Params                        | uniform    |
// | 1       | rows [rows, 7]                | read       |
// | 2       | marks [slots, 10]             | read       |
// | 3       | faces [rows, 15]              | read_write |
// | 4       | count [1] u32                 | read_write |
//
// Params mirrors `FaceOutputParams` in crates/wgcnn-kernels/src/detect/faces.rs.

struct Params {
    rows: u32,
    slots: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rows: array<f32>;
@group(0) @binding(2) var<storage, read> marks: array<f32>;
@group(0) @binding(3) var<storage, read_write> faces: array<f32>;
@group(0) @binding(4) var<storage, read_write> count: array<u32>;

fn valid(score: f32) -> bool {
    return score >= 0.0 && (bitcast<u32>(score) & 0x7fffffffu) <= 0x7f800000u;
}

@compute @workgroup_size(256)
fn face_output(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.x * 256u + lid;
    if (r >= params.rows) {
        return;
    }
    let o = r * 15u;
    let score = rows[r * 7u + 4u];
    let kept = valid(score);
    // Kept rows are a prefix: its last row (or row 0 when none is kept) writes the count.
    if (kept && (r + 1u == params.rows || !valid(rows[(r + 1u) * 7u + 4u]))) {
        count[0] = r + 1u;
    }
    if (!kept) {
        if (r == 0u) {
            count[0] = 0u;
        }
        for (var k = 0u; k < 15u; k++) {
            faces[o + k] = 0.0;
        }
        faces[o] = -1.0;
        return;
    }
    faces[o] = score;
    for (var k = 0u; k < 4u; k++) {
        faces[o + 1u + k] = rows[r * 7u + k];
    }
    let slot = u32(max(rows[r * 7u + 6u], 0.0));
    for (var k = 0u; k < 10u; k++) {
        var v = 0.0;
        if (slot < params.slots) {
            v = marks[slot * 10u + k];
        }
        faces[o + 5u + k] = v;
    }
}
