// face_pyramid: one MTCNN pyramid level (or a strip of its rows) straight from the 8-bit photo:
// PyTorch's `interpolate(mode="area")` (adaptive average pooling) of the RGB photo to
// out_height x out_width, normalized (v - 127.5) * 0.0078125, written as [1, 3, rows, out_width]
// for output rows [row0, row0 + rows) (P-Net's row strips of a level too large for one binding).
//
// Output (c, oy, ox) averages photo rows [floor(oy * H / OH), ceil((oy + 1) * H / OH)) and
// columns [floor(ox * W / OW), ceil((ox + 1) * W / OW)). The window sums are exact (u32 sums of
// 8-bit values), so the mean is the correctly rounded f32 of the true mean.
//
// Threads: one output pixel (all three channels) each, 64 per workgroup, 2-D grid (linear id =
// x + y * nwg.x).
//
// | binding | what                                              | access     |
// |---------|---------------------------------------------------|------------|
// | 0       | Params                                            | uniform    |
// | 1       | image rows [0, split) as [split * W] u32 (R | G << 8 | B << 16, pack_rgb8) | read |
// | 2       | image_hi: rows [split, H) (a photo over one binding)        | read       |
// | 3       | y [1, 3, rows, OW] f32                                      | read_write |
//
// Params mirrors `FacePyramidParams` in crates/wgcnn-kernels/src/detect/faces.rs.

struct Params {
    height: u32,      // H
    width: u32,       // W
    out_height: u32,  // OH (the whole level)
    out_width: u32,   // OW
    row0: u32,        // first output row written
    rows: u32,        // output rows written
    split: u32,       // photo rows in `image`; the rest are in `image_hi`
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> image: array<u32>;
@group(0) @binding(2) var<storage, read> image_hi: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// Photo pixel (row, col) from whichever binding holds its row.
fn pixel(row: u32, col: u32) -> u32 {
    if (row < params.split) {
        return image[row * params.width + col];
    }
    return image_hi[(row - params.split) * params.width + col];
}

@compute @workgroup_size(64)
fn face_pyramid(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 64u + lid;
    let plane = params.rows * params.out_width;
    if (i >= plane) {
        return;
    }
    let ox = i % params.out_width;
    let oy = params.row0 + i / params.out_width;
    let h = params.height;
    let w = params.width;
    let oh = params.out_height;
    let ow = params.out_width;
    let y0 = (oy * h) / oh;
    let y1 = ((oy + 1u) * h + oh - 1u) / oh;
    let x0 = (ox * w) / ow;
    let x1 = ((ox + 1u) * w + ow - 1u) / ow;
    var r = 0u;
    var g = 0u;
    var b = 0u;
    for (var py = y0; py < y1; py++) {
        for (var px = x0; px < x1; px++) {
            let v = pixel(py, px);
            r += v & 0xffu;
            g += (v >> 8u) & 0xffu;
            b += (v >> 16u) & 0xffu;
        }
    }
    let n = f32((y1 - y0) * (x1 - x0));
    y[i] = (f32(r) / n - 127.5) * 0.0078125;
    y[plane + i] = (f32(g) / n - 127.5) * 0.0078125;
    y[2u * plane + i] = (f32(b) / n - 127.5) * 0.0078125;
}
