// conv2d: y = act(conv(x, w) + bias + residual), NCHW f32, any kernel size, stride, asymmetric
// padding, dilation and group count (depthwise has its own kernel, dwconv2d.wgsl).
//
// Implicit GEMM: rows are the N*OH*OW output pixels, columns the K/groups output channels of one
// group, and the reduction runs over (C/groups) x kh x kw without building an im2col matrix.
//
// Threads: a workgroup owns one block of CB output channels of one group and 256 output pixels;
// each of its 64 invocations keeps a CB-channel x 4-pixel register tile (4 neighbouring output
// pixels in N*OH*OW order). The channel block, and so every weight address, depends only on the
// workgroup id: weight loads are uniform across the workgroup (a GPU can serve them with one load
// per subgroup; Mesa 25.0's lavapipe does not: it only scalarizes loads whose address is a
// compile-time or push constant, so inside the loops every load, uniform or not, is a
// bounds-checked scalar load per lane, as its generated code shows), input loads are per lane,
// and each input value feeds CB multiply-adds. Register blocking rather than workgroup-memory
// tiles, because that is what is fastest on lavapipe (see DESIGN.md); the loop body stays small
// so LLVM compiles it quickly. Devices with subgroups of 8 lanes or more take conv2d_sg.wgsl and
// its siblings instead (see `conv2d::variant`), which share the weights by subgroup broadcast.
//
// `override CB`: 16 (the default; measured on lavapipe, 4 px x {4, 8, 16, 32} channels gave
// about {7, 9.5, 11, 9} GFLOP per CPU-second on ResNet-50's 3x3 64->64 layer) or 4, for
// grouped convolutions with few channels per group (ResNeXt: 4), where a 16-channel block
// would mostly compute dropped sums. The Rust side picks it per layer (`channel_block`).
// Workgroup ids run pixel block fastest: id = pixel_block + pixel_blocks * (group * chan_blocks +
// chan_block), on a 2-D grid (linear id = wg.x + wg.y * nwg.x; ids past the end return).
//
// | binding | what                                      | access     |
// |---------|-------------------------------------------|------------|
// | 0       | Params                                    | uniform    |
// | 1       | x [N, C, H, W]                            | read       |
// | 2       | w [K, C/groups, kh, kw]                   | read       |
// | 3       | bias [K]                (if has_bias)     | read       |
// | 4       | residual [N, K, OH, OW] (if has_residual) | read       |
// | 5       | y [N, K, OH, OW] (channels out_c_offset.. of [N, out_c_total, OH, OW]) | read_write |
//
// Params: `ConvParams` (lib/conv.wgsl, mirrors `Conv2dParams` in crates/wgcnn-kernels/src/conv2d.rs);
// pixel_blocks = ceil(N*OH*OW / 256), chan_blocks = ceil((K/groups) / CB). Composed with
// lib/conv.wgsl (block, pixel and tap arithmetic) and lib/activation.wgsl.

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

const LANES: u32 = 64u;
const PIXELS: u32 = 4u;
// Output channels per workgroup: 16 or 4 (see the header).
override CB: u32 = 16u;

@compute @workgroup_size(64)
fn conv2d(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let blk = conv_block(params, wg.x + wg.y * nwg.x, CB, LANES * PIXELS);
    let first = blk.pixel0 + lid * PIXELS;
    if (!blk.ok || first >= params.batch * params.out_h * params.out_w) {
        return;
    }
    let px = conv_pixels(params, first, blk.g);
    let cg = blk.cg;
    let k0 = blk.k0;
    let k_end = blk.k_end;
    let in_plane = params.in_h * params.in_w;

    // Weight rows of the CB channels, clamped to the group's last channel in the tail block
    // (their sums are computed and dropped, which keeps the weight loads uniform).
    let khw = params.kernel_h * params.kernel_w;
    let w0 = min(k0, k_end - 1u) * cg * khw;
    let w1 = min(k0 + 1u, k_end - 1u) * cg * khw;
    let w2 = min(k0 + 2u, k_end - 1u) * cg * khw;
    let w3 = min(k0 + 3u, k_end - 1u) * cg * khw;
    let w4 = min(k0 + 4u, k_end - 1u) * cg * khw;
    let w5 = min(k0 + 5u, k_end - 1u) * cg * khw;
    let w6 = min(k0 + 6u, k_end - 1u) * cg * khw;
    let w7 = min(k0 + 7u, k_end - 1u) * cg * khw;
    let w8 = min(k0 + 8u, k_end - 1u) * cg * khw;
    let w9 = min(k0 + 9u, k_end - 1u) * cg * khw;
    let w10 = min(k0 + 10u, k_end - 1u) * cg * khw;
    let w11 = min(k0 + 11u, k_end - 1u) * cg * khw;
    let w12 = min(k0 + 12u, k_end - 1u) * cg * khw;
    let w13 = min(k0 + 13u, k_end - 1u) * cg * khw;
    let w14 = min(k0 + 14u, k_end - 1u) * cg * khw;
    let w15 = min(k0 + 15u, k_end - 1u) * cg * khw;

    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0);
    var a9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0);
    var a13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0);
    var a15 = vec4<f32>(0.0);
    for (var ky = 0u; ky < params.kernel_h; ky++) {
        for (var kx = 0u; kx < params.kernel_w; kx++) {
            // Input offsets of the 4 pixels in channel 0 (0 where padding; masked below).
            let tap = conv_tap(params, px, ky, kx);
            var wi = ky * params.kernel_w + kx;
            var xo = 0u;
            for (var c = 0u; c < cg; c++) {
                let xv = select(vec4<f32>(0.0), vec4<f32>(x[tap.off.x + xo], x[tap.off.y + xo], x[tap.off.z + xo], x[tap.off.w + xo]), tap.ok);
                a0 += w[w0 + wi] * xv;
                a1 += w[w1 + wi] * xv;
                a2 += w[w2 + wi] * xv;
                a3 += w[w3 + wi] * xv;
                if (CB == 16u) {
                    a4 += w[w4 + wi] * xv;
                    a5 += w[w5 + wi] * xv;
                    a6 += w[w6 + wi] * xv;
                    a7 += w[w7 + wi] * xv;
                    a8 += w[w8 + wi] * xv;
                    a9 += w[w9 + wi] * xv;
                    a10 += w[w10 + wi] * xv;
                    a11 += w[w11 + wi] * xv;
                    a12 += w[w12 + wi] * xv;
                    a13 += w[w13 + wi] * xv;
                    a14 += w[w14 + wi] * xv;
                    a15 += w[w15 + wi] * xv;
                }
                wi += khw;
                xo += in_plane;
            }
        }
    }

    // One loop over the block's channels rather than 16 inlined stores: the same speed, and the
    // pipeline compiles 10x faster (measured on lavapipe, cold: 2.7 s -> 0.27 s).
    let acc = array<vec4<f32>, 16>(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
    for (var r = 0u; r < min(CB, k_end - k0); r++) {
        store(k0 + r, acc[r], px);
    }
}

// Writes output channel k's 4 pixels (those that exist) through the epilogue.
fn store(k: u32, acc: vec4<f32>, px: ConvPixels) {
    var v = acc;
    if (params.has_bias == 1u) { v += vec4<f32>(bias[k]); }
    for (var i = 0u; i < PIXELS; i++) {
        let o = conv_out_planes(params, px.img[i], k) + vec2<u32>(px.sp[i]);
        if (px.live[i] && params.has_residual == 1u) { v[i] += residual[o.x]; }
        if (px.live[i]) { y[o.y] = act_apply(v[i], params.act, params.p0, params.p1); }
    }
}
