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
// Params mirrors `PadParams` in crates/wgcnn-kernels/src/pad.rs.

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
fn pad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    let ox = i % params.out_width;
    let oy = (i / params.out_width) % params.out_height;
    let plane = i / (params.out_width * params.out_height);
    let iy = i32(oy) - i32(params.top);
    let ix = i32(ox) - i32(params.left);
    var v = params.value;
    if (iy >= 0 && iy < i32(params.height) && ix >= 0 && ix < i32(params.width)) {
        v = x[(plane * params.height + u32(iy)) * params.width + u32(ix)];
    }
    y[i] = v;
}
