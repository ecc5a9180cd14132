// face_boxes: MTCNN's step from P-Net's (R-Net's) kept candidates to R-Net's (O-Net's) crop
// boxes, in order: for each gathered row r (nms_gather row_width 7, best first; score -1 marks
// unused rows)
//   box = rerec(regress(box, cand_regs[r]))     regress: x1 += r0 w, y1 += r1 h, x2 += r2 w,
//                                                        y2 += r3 h with w = x2 - x1 + e,
//                                                        h = y2 - y1 + e; e = 0 after P-Net,
//                                                        1 after R-Net (`bbreg`)
//                                               rerec: the square of side max(w, h) about the
//                                                      centre
// and keeps it when `pad`'s integer crop is not empty: x1, y1 truncated toward zero and clamped
// to >= 1, x2 <= width, y2 <= height, empty when y2 <= y1 - 1 or x2 <= x1 - 1 (the CPU's
// `cascade::crop_rect`; NaN truncates to 0). The kept boxes are compacted in row order into
// out [cap, 5] (x1, y1, x2, y2, score; the rest zero with score -1) and their number into
// count[0].
//
// Threads: one workgroup of 256; thread t owns rows [t * per, (t + 1) * per), per = ceil(rows /
// 256); a prefix sum of the per-thread kept counts in workgroup memory places them.
//
// | binding | what                         | access     |
// |---------|------------------------------|------------|
// | 0       | Params                       | uniform    |
// | 1       | rows [rows, 7]               | read       |
// | 2       | cand_regs [rows] vec4         | read       |
// | 3       | out [cap, 5]                 | read_write |
// | 4       | count [1] u32                | read_write |
//
// Params mirrors `FaceBoxesParams` in crates/wgcnn-kernels/src/detect/faces.rs.

struct Params {
    rows: u32,
    cap: u32,
    height: f32,  // the photo's size, in pixels
    width: f32,
    extra: f32,   // e: 0 (P-Net's regression) or 1 (bbreg)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rows: array<f32>;
@group(0) @binding(2) var<storage, read> cand_regs: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> count: array<u32>;

var<workgroup> sums: array<u32, 256>;

fn valid(score: f32) -> bool {
    return score >= 0.0 && (bitcast<u32>(score) & 0x7fffffffu) <= 0x7f800000u;
}

// Python's int() of a float as the CPU's `as i64` does: toward zero, NaN to 0, saturating
// (here at +-2^30, far outside any photo).
fn trunc_i(v: f32) -> i32 {
    if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
        return 0;
    }
    return i32(clamp(trunc(v), -1073741824.0, 1073741824.0));
}

fn square(r: u32) -> vec4<f32> {
    let o = r * 7u;
    let reg = cand_regs[r];
    let x1 = rows[o];
    let y1 = rows[o + 1u];
    let x2 = rows[o + 2u];
    let y2 = rows[o + 3u];
    let w = x2 - x1 + params.extra;
    let h = y2 - y1 + params.extra;
    let b = vec4<f32>(x1 + reg.x * w, y1 + reg.y * h, x2 + reg.z * w, y2 + reg.w * h);
    let bw = b.z - b.x;
    let bh = b.w - b.y;
    let l = max(bw, bh);
    let sx = b.x + bw * 0.5 - l * 0.5;
    let sy = b.y + bh * 0.5 - l * 0.5;
    return vec4<f32>(sx, sy, sx + l, sy + l);
}

fn keeps(b: vec4<f32>) -> bool {
    let x1 = max(trunc_i(b.x), 1);
    let y1 = max(trunc_i(b.y), 1);
    let x2 = min(trunc_i(b.z), i32(params.width));
    let y2 = min(trunc_i(b.w), i32(params.height));
    return !(y2 <= y1 - 1 || x2 <= x1 - 1);
}

@compute @workgroup_size(256)
fn face_boxes(@builtin(local_invocation_index) lid: u32) {
    let per = (params.rows + 255u) / 256u;
    let first = lid * per;
    let last = min(first + per, params.rows);
    var n = 0u;
    for (var r = first; r < last; r++) {
        if (valid(rows[r * 7u + 4u]) && keeps(square(r))) {
            n += 1u;
        }
    }
    sums[lid] = n;
    workgroupBarrier();
    // Inclusive Hillis-Steele scan.
    for (var d = 1u; d < 256u; d <<= 1u) {
        var add = 0u;
        if (lid >= d) {
            add = sums[lid - d];
        }
        workgroupBarrier();
        sums[lid] += add;
        workgroupBarrier();
    }
    var pos = sums[lid] - n;
    for (var r = first; r < last; r++) {
        let score = rows[r * 7u + 4u];
        if (valid(score)) {
            let b = square(r);
            if (keeps(b) && pos < params.cap) {
                let o = pos * 5u;
                out[o] = b.x;
                out[o + 1u] = b.y;
                out[o + 2u] = b.z;
                out[o + 3u] = b.w;
                out[o + 4u] = score;
                pos += 1u;
            }
        }
    }
    let total = min(sums[255], params.cap);
    for (var k = total + lid; k < params.cap; k += 256u) {
        let o = k * 5u;
        out[o] = 0.0;
        out[o + 1u] = 0.0;
        out[o + 2u] = 0.0;
        out[o + 3u] = 0.0;
        out[o + 4u] = -1.0;
    }
    if (lid == 0u) {
        count[0] = total;
    }
}
