// pad: constant padding of the two spatial axes of NCHW f32:
//   y[n, c, oy, ox] = x[n, c, oy - top, ox - left] inside the input, else `value`.
//
// Threads: one output each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what                                      | access     |
// |---------|-------------------------------------------|------------|
// | 0       | Params                                    | uniform    |
// | 1       | x [N, C, H, W]                            | read       |
// | 2       | y [N, C, top + H + bottom, left + W + right] | read_write |
//
// Params mirrors `PadParams` in crates/wgcnn-kernels/src/pad.rs. Composed with lib/index.wgsl
// (element id, index splitting).

struct Params {
    total: u32,       // N * C * OH * OW
    height: u32,      // H
    width: u32,       // W
    out_height: u32,  // OH = top + H + bottom
    out_width: u32,   // OW = left + W + right
    top: u32,
    left: u32,
    value: f32,       // the fill value
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn pad(ids: IdxIds) {
    let i = idx_element(ids);
    if (i >= params.total) { return; }
    // (output column, output row, plane), moved to the input's corner.
    let e = idx_split3(i, params.out_height, params.out_width);
    let iy = i32(e.y) - i32(params.top);
    let ix = i32(e.x) - i32(params.left);
    let inside = iy >= 0 && iy < i32(params.height) && ix >= 0 && ix < i32(params.width);
    var v = params.value;
    if (inside) {
        v = x[idx_flat3(e.z, u32(iy), u32(ix), params.height, params.width)];
    }
    y[i] = v;
}
