// face_crops: MTCNN's crops for R-Net (24x24) and O-Net (48x48) straight from the 8-bit photo.
// Box r = boxes[first + r] (x1, y1, x2, y2, score) becomes `pad`'s integer pixel ranges
// (x1, y1 truncated toward zero and clamped to >= 1, x2 <= width, y2 <= height; rows
// [y1 - 1, y2), columns [x1 - 1, x2)), area-resampled (adaptive average pooling) to size x size
// and normalized (v - 127.5) * 0.0078125: y[r] = [3, size, size]. Rows r >= valid =
// min(max(count - first, 0), rows) (the box count the previous stage left on the GPU), and
// boxes whose crop is empty, are zero.
//
// Threads: one output pixel (all three channels) each, 64 per workgroup, 2-D grid (linear id =
// x + y * nwg.x) over rows * size * size.
//
// | binding | what                                              | access     |
// |---------|---------------------------------------------------|------------|
// | 0       | Params                                            | uniform    |
// | 1       | image rows [0, split) as [split * W] u32 (R | G << 8 | B << 16, pack_rgb8) | read |
// | 2       | image_hi: rows [split, H) (a photo over one binding)        | read       |
// | 3       | boxes [., 5] f32                                            | read       |
// | 4       | count [1] u32 (boxes)                                       | read       |
// | 5       | y [rows, 3, size, size] f32                                 | read_write |
//
// Params mirrors `FaceCropsParams` in crates/wgcnn-kernels/src/detect/faces.rs.

struct Params {
    height: u32,  // H
    width: u32,   // W
    size: u32,    // output side
    rows: u32,    // rows of y
    first: u32,   // box of row 0
    split: u32,   // photo rows in `image`; the rest are in `image_hi`
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> image: array<u32>;
@group(0) @binding(2) var<storage, read> image_hi: array<u32>;
@group(0) @binding(3) var<storage, read> boxes: array<f32>;
@group(0) @binding(4) var<storage, read> count: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// Photo pixel (row, col) from whichever binding holds its row.
fn pixel(row: u32, col: u32) -> u32 {
    if (row < params.split) {
        return image[row * params.width + col];
    }
    return image_hi[(row - params.split) * params.width + col];
}

// Python's int() as the CPU's `as i64`: toward zero, NaN to 0, saturating (at +-2^30 here).
fn trunc_i(v: f32) -> i32 {
    if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
        return 0;
    }
    return i32(clamp(trunc(v), -1073741824.0, 1073741824.0));
}

@compute @workgroup_size(64)
fn face_crops(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 64u + lid;
    let s = params.size;
    let plane = s * s;
    if (i >= params.rows * plane) {
        return;
    }
    let r = i / plane;
    let p = i % plane;
    let o = r * 3u * plane + p;
    y[o] = 0.0;
    y[o + plane] = 0.0;
    y[o + 2u * plane] = 0.0;
    let boxes_left = count[0];
    if (boxes_left <= params.first || r >= boxes_left - params.first) {
        return;
    }
    let b = (params.first + r) * 5u;
    let x1 = max(trunc_i(boxes[b]), 1);
    let y1 = max(trunc_i(boxes[b + 1u]), 1);
    let x2 = min(trunc_i(boxes[b + 2u]), i32(params.width));
    let y2 = min(trunc_i(boxes[b + 3u]), i32(params.height));
    if (y2 <= y1 - 1 || x2 <= x1 - 1) {
        return;
    }
    let top = u32(y1 - 1);
    let left = u32(x1 - 1);
    let ch = u32(y2) - top;
    let cw = u32(x2) - left;
    let oy = p / s;
    let ox = p % s;
    let r0 = top + (oy * ch) / s;
    let r1 = top + ((oy + 1u) * ch + s - 1u) / s;
    let c0 = left + (ox * cw) / s;
    let c1 = left + ((ox + 1u) * cw + s - 1u) / s;
    var red = 0u;
    var green = 0u;
    var blue = 0u;
    for (var py = r0; py < r1; py++) {
        for (var px = c0; px < c1; px++) {
            let v = pixel(py, px);
            red += v & 0xffu;
            green += (v >> 8u) & 0xffu;
            blue += (v >> 16u) & 0xffu;
        }
    }
    let n = f32((r1 - r0) * (c1 - c0));
    y[o] = (f32(red) / n - 127.5) * 0.0078125;
    y[o + plane] = (f32(green) / n - 127.5) * 0.0078125;
    y[o + 2u * plane] = (f32(blue) / n - 127.5) * 0.0078125;
}
