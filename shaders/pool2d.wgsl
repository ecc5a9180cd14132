// pool2d: max or average pooling over NCHW f32 (PyTorch's MaxPool2d / AvgPool2d).
//
// Output (n, c, oy, ox) pools the window starting at (oy * stride_h - pad_top,
// ox * stride_w - pad_left) of kernel_h x kernel_w positions, clipped to the input.
// - mode 0 (max): the largest in-bounds value; padded positions never win.
// - mode 1 (avg): the sum of in-bounds values divided by
//     count_include_pad = 1: the window clipped to [-pad_begin, extent + pad_end) (PyTorch's
//                            divisor: padding counts, the ceil_mode overhang does not);
//     count_include_pad = 0: the number of in-bounds positions.
// The output extents (ceil_mode included) are computed on the host.
//
// Threads: one output each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what                 | access     |
// |---------|----------------------|------------|
// | 0       | Params               | uniform    |
// | 1       | x [N, C, H, W]       | read       |
// | 2       | y [N, C, OH, OW] (channels out_c_offset.. of [N, out_c_total, OH, OW]) | read_write |
//
// Params: `PoolParams` (lib/pool.wgsl, mirrors `Pool2dParams` in
// crates/wgcnn-kernels/src/pool2d.rs). Kernels up to 5x5 with strides up to 2 take
// pool2d_tile.wgsl instead (see its header for why and how much faster). Composed with
// lib/pool.wgsl.

@group(0) @binding(0) var<uniform> params: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn pool2d(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    let ox = i % params.out_width;
    let oy = (i / params.out_width) % params.out_height;
    let plane = i / (params.out_width * params.out_height);
    // Where the output goes: channel (plane % C) of image (plane / C), in y's channel slice.
    let yi = ((plane / params.channels) * params.out_c_total + params.out_c_offset
        + plane % params.channels) * params.out_height * params.out_width
        + i % (params.out_width * params.out_height);
    let h = i32(params.height);
    let w = i32(params.width);

    // Window in padded coordinates, then clipped to the input.
    let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
    let x0 = i32(ox * params.stride_w) - i32(params.pad_left);
    let y1 = y0 + i32(params.kernel_h);
    let x1 = x0 + i32(params.kernel_w);
    let ys = max(y0, 0);
    let xs = max(x0, 0);
    let ye = min(y1, h);
    let xe = min(x1, w);
    let base = plane * params.height * params.width;

    if (params.mode == 0u) {
        var best = POOL_LOWEST;
        for (var yy = ys; yy < ye; yy++) {
            let row = base + u32(yy) * params.width;
            for (var xx = xs; xx < xe; xx++) {
                best = max(best, x[row + u32(xx)]);
            }
        }
        y[yi] = best;
        return;
    }

    var sum = 0.0;
    for (var yy = ys; yy < ye; yy++) {
        let row = base + u32(yy) * params.width;
        for (var xx = xs; xx < xe; xx++) {
            sum += x[row + u32(xx)];
        }
    }
    var count: i32;
    if (params.count_include_pad == 1u) {
        let ph = min(y1, h + i32(params.pad_bottom)) - y0;
        let pw = min(x1, w + i32(params.pad_right)) - x0;
        count = ph * pw;
    } else {
        count = max(ye - ys, 0) * max(xe - xs, 0);
    }
    y[yi] = sum / f32(max(count, 1));
}
