// dwconv2d: depthwise convolution, y = act(dwconv(x, w) + bias + residual), NCHW f32.
//
// groups == C and K = multiplier * C: output channel k reads input channel k / multiplier with
// its own kh x kw filter. Any kernel size, stride, asymmetric padding and dilation.
//
// Threads: a workgroup owns 64 "quads" of one (image, output channel) plane; a quad is 4
// neighbouring outputs of one row, computed by one invocation. The plane, and so every weight
// address, depends only on the workgroup id: weight loads are uniform across the workgroup
// (lavapipe still makes them per-lane loads: see conv2d.wgsl), input loads per lane. Kernels up
// to 5x5 with strides up to 2 take dwconv2d_tile.wgsl instead (2x faster on lavapipe).
// With horizontal stride and dilation 1 (most MobileNet/EfficientNet layers) the quad slides a
// 4-column window along each input row, one load per tap instead of four (measured on lavapipe,
// MobileNetV2's 3x3 144-channel layer at 56x56: 2.9 -> 2.3 ms).
// Workgroup id = plane_block + plane_blocks * (n * K + k), on a 2-D grid (linear id = wg.x +
// wg.y * nwg.x; ids past the end return).
//
// | binding | what                                      | access     |
// |---------|-------------------------------------------|------------|
// | 0       | Params                                    | uniform    |
// | 1       | x [N, C, H, W]                            | read       |
// | 2       | w [K, 1, kh, kw]                          | read       |
// | 3       | bias [K]                (if has_bias)     | read       |
// | 4       | residual [N, K, OH, OW] (if has_residual) | read       |
// | 5       | y [N, K, OH, OW]                          | read_write |
//
// Params: `DwConvParams` (lib/dwconv.wgsl, mirrors `DwConv2dParams` in
// crates/wgcnn-kernels/src/dwconv2d.rs). Composed with lib/dwconv.wgsl and lib/activation.wgsl.

@group(0) @binding(0) var<uniform> params: DwConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// x[row + col], or 0 where `col` falls in the left/right padding.
fn load(row: u32, col: i32, width: i32) -> f32 {
    let ok = col >= 0 && col < width;
    return select(0.0, x[row + u32(select(0, col, ok))], ok);
}

@compute @workgroup_size(64)
fn dwconv2d(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let id = wg.x + wg.y * nwg.x;
    if (id >= params.plane_blocks * params.batch * params.out_c) {
        return;
    }
    let plane = id / params.plane_blocks;          // n * K + k
    let quad = (id % params.plane_blocks) * 64u + lid;
    if (quad >= params.out_h * params.quads_w) {
        return;
    }
    let k = plane % params.out_c;
    let n = plane / params.out_c;
    let oy = quad / params.quads_w;
    let ox0 = (quad % params.quads_w) * 4u;
    let live = vec4<u32>(ox0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.out_w);

    let h = i32(params.in_h);
    let wd = i32(params.in_w);
    let xbase = (n * params.in_c + k / params.multiplier) * params.in_h * params.in_w;
    let wbase = k * params.kernel_h * params.kernel_w;
    let iy0 = i32(oy * params.stride_h) - i32(params.pad_top);
    let ix0 = vec4<i32>(vec4<u32>(ox0) + vec4<u32>(0u, 1u, 2u, 3u)) * i32(params.stride_w) - vec4<i32>(i32(params.pad_left));

    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < params.kernel_h; ky++) {
        let iy = iy0 + i32(ky * params.dil_h);
        if (iy < 0 || iy >= h) {
            continue;
        }
        let row = xbase + u32(iy) * params.in_w;
        let wrow = wbase + ky * params.kernel_w;
        if (params.stride_w == 1u && params.dil_w == 1u) {
            // The 4 outputs read 4 neighbouring columns: slide a window one column per tap,
            // one new load per tap instead of four.
            let c0 = ix0.x;
            var win = vec4<f32>(0.0, load(row, c0, wd), load(row, c0 + 1, wd), load(row, c0 + 2, wd));
            for (var kx = 0u; kx < params.kernel_w; kx++) {
                win = vec4<f32>(win.yzw, load(row, c0 + i32(kx) + 3, wd));
                acc += w[wrow + kx] * win;
            }
        } else {
            for (var kx = 0u; kx < params.kernel_w; kx++) {
                let ix = ix0 + vec4<i32>(i32(kx * params.dil_w));
                let ok = (ix >= vec4<i32>(0)) & (ix < vec4<i32>(wd));
                let off = select(vec4<u32>(row), vec4<u32>(row) + vec4<u32>(ix), ok);
                let xv = vec4<f32>(x[off.x], x[off.y], x[off.z], x[off.w]);
                acc += w[wrow + kx] * select(vec4<f32>(0.0), xv, ok);
            }
        }
    }

    var b = 0.0;
    if (params.has_bias == 1u) {
        b = bias[k];
    }
    let o = (plane * params.out_h + oy) * params.out_w + ox0;
    for (var i = 0u; i < 4u; i++) {
        if (live[i]) {
            var v = acc[i] + b;
            if (params.has_residual == 1u) {
                v += residual[o + i];
            }
            y[o + i] = act_apply(v, params.act, params.p0, params.p1);
        }
    }
}
