enable subgroups;

// conv2d_1x1_sg: a 1x1, stride-1, unpadded, ungrouped convolution (a GEMM of the [K, C] weight
// and each image's [C, H*W] input), y = act(W x + bias + residual), for layers with C and
// H*W multiples of 4, on devices with subgroups of at least 8 lanes.
//
// Threads as in conv2d_sg.wgsl: a workgroup of 8 invocations (one subgroup of 8 lanes on lavapipe)
// owns 16 output channels and 32 output pixels, each lane a 16-channel x 4-pixel register tile
// (lanes by subgroup lane id). With H*W a multiple of 4 a lane's 4 pixels are neighbours in one
// image, so each input channel's 4 values are one vec4 load; per 4 input channels the lanes load
// the 16 channels' weights as two 8-wide vectors of vec4 and `subgroupBroadcast` hands each to
// every lane. Per 4 input channels: 6 per-lane vec4 loads for 256 multiply-adds per lane, against
// 24 scalar loads in conv2d_sg (on lavapipe a per-lane vec4 load costs about what a scalar one
// does); measured on ResNet-50's and MobileNetV2's 1x1 layers, 1.15-1.7x conv2d_sg's GFLOP per
// CPU-second, and up to 2x more from the vec4 stores below where C is small. Workgroup ids: id =
// pixel_block + pixel_blocks * chan_block, on a 2-D grid (linear id = wg.x + wg.y * nwg.x; ids past
// the end return).
//
// `override GROUPS`: 0 the 8-invocation broadcast form above; G >= 1 the wide form for
// subgroups of 16+ lanes (workgroups of 8 * G, each group of 8 lanes owning a block, weights
// shared by `subgroupShuffle`; block id = workgroup id * G + group): see conv2d_sg.wgsl.
//
// | binding | what                                      | access     |
// |---------|-------------------------------------------|------------|
// | 0       | Params                                    | uniform    |
// | 1       | x [N, C, H, W] as vec4s                   | read       |
// | 2       | w [K, C] as vec4s                         | read       |
// | 3       | bias [K]                (if has_bias)     | read       |
// | 4       | residual [N, K, H, W] as vec4s (if any)   | read       |
// | 5       | y [N, K, H, W] as vec4s (a channel slice, see Params) | read_write |
//
// Params: `ConvParams` (lib/conv.wgsl, mirrors `Conv2dParams` in
// crates/wgcnn-kernels/src/conv2d.rs); as conv2d_sg.wgsl uses it: pixel_blocks = ceil(N*H*W / 32),
// cb = 16. Composed with lib/conv.wgsl, lib/subgroup.wgsl (the broadcast step) and
// lib/activation.wgsl.

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;

// 0: 8-lane broadcast form; G >= 1: wide form, G groups of 8 lanes per workgroup.
override GROUPS: u32 = 0u;
const LANES: u32 = 8u;
const PIXELS: u32 = 4u;
const CB: u32 = 16u;

@compute @workgroup_size(8u * max(GROUPS, 1u))
fn conv2d_1x1_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32,
                 @builtin(subgroup_size) sg_size: u32) {
    let wide = GROUPS > 0u;
    // Wide form: lane l of the group at lanes base..base+7 owns block id * G + its group.
    let base = sg_lane & ~7u;
    let lane = select(sg_lane, sg_lane & 7u, wide);
    let wg_id = wg.x + wg.y * nwg.x;
    let id = select(wg_id, wg_id * GROUPS + sg_group_in_workgroup(sg_id, sg_size, sg_lane), wide);
    // One group: the block's channels start at k0 and end at K.
    let blk = conv_block(params, id, CB, LANES * PIXELS);
    if (!blk.ok) {
        return;
    }
    let k0 = blk.k0;
    let k_end = params.out_c;
    let c_n = params.in_c;
    let plane = params.out_h * params.out_w;
    let m = params.batch * plane;
    // Every lane runs the loop to the end (the broadcasts need all 8 of its group): lanes past the last
    // pixel read the last 4 pixels and store nothing.
    let first = min(blk.pixel0 + lane * PIXELS, m - PIXELS);
    // With H*W (so N*H*W) a multiple of 4 a lane's 4 pixels are all in range or all past it.
    let live = blk.pixel0 + lane * PIXELS < m;
    let img = first / plane;
    let sp0 = first % plane;
    let plane4 = plane / 4u;
    var xi = (img * c_n * plane + sp0) / 4u;

    // Weight rows of channels k0 + lane and k0 + 8 + lane, clamped to the last channel in the
    // tail block (their sums are computed and dropped), as vec4 indices.
    let wa0 = min(k0 + lane, k_end - 1u) * (c_n / 4u);
    let wb0 = min(k0 + 8u + lane, k_end - 1u) * (c_n / 4u);

    var acc: array<vec4<f32>, 16>;
    for (var c4 = 0u; c4 < c_n / 4u; c4++) {
        if (wide) {
            sg_fma16x4_wide(&acc, w[wa0 + c4], w[wb0 + c4], x[xi], x[xi + plane4], x[xi + 2u * plane4], x[xi + 3u * plane4], base);
        } else {
            sg_fma16x4(&acc, w[wa0 + c4], w[wb0 + c4], x[xi], x[xi + plane4], x[xi + 2u * plane4], x[xi + 3u * plane4]);
        }
        xi += 4u * plane4;
    }

    // Epilogue: one loop over the block's channels (compact code: the activation switch is
    // compiled once, not 64 times), indexing a copy so the accumulators stay registers. A
    // lane's 4 pixels are neighbours in one plane, so each channel's 4 outputs (and residuals)
    // are one vec4 store (load): a quarter of the per-lane stores, which for the small-C layers
    // (MobileNet's 16-channel expansions) cost as much as the multiply-adds.
    let out = acc;
    let live_k = select(0u, min(CB, k_end - k0), live);
    for (var r = 0u; r < live_k; r++) {
        let k = k0 + r;
        var v = out[r];
        if (params.has_bias == 1u) {
            v += vec4<f32>(bias[k]);
        }
        let o = (conv_out_planes(params, img, k) + vec2<u32>(sp0)) / 4u;
        if (params.has_residual == 1u) {
            v += residual[o.x];
        }
        y[o.y] = act_apply4(v, params.act, params.p0, params.p1);
    }
}
