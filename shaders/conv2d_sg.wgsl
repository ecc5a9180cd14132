enable subgroups;

// conv2d_sg: conv2d.wgsl's computation, y = act(conv(x, w) + bias + residual) in NCHW f32 with
// any kernel size, stride, asymmetric padding, dilation and group count, for devices with
// subgroups of at least 8 lanes.
//
// Implicit GEMM as in conv2d.wgsl. Threads: a workgroup is 8 invocations (one subgroup of 8
// lanes on lavapipe; on wider subgroups only lanes 0..7 are read) owning one block of 16 output
// channels of one group and 32 output pixels; each lane keeps a 16-channel x 4-pixel register
// tile (4 neighbouring pixels in N*OH*OW order). Lanes are numbered by the subgroup lane id
// (the id the broadcasts address), not the workgroup index: drivers need not make them equal.
// Per reduction step the lanes load the 16 channels' weights as two 8-wide vectors (lane l:
// output channels l and l + 8) and `subgroupBroadcast` hands each to every lane: on lavapipe
// every storage load inside a loop is a bounds-checked scalar load per lane, so a weight costs
// an eighth of the per-lane load conv2d.wgsl spends on it (measured on ResNet-50's layers:
// about 2x the GFLOP per CPU-second).
//
// `override SG4` picks the reduction step (the Rust side, `conv2d::variant`, per layer):
// - false: one input channel per step, weights in the plain [K, C/groups, kh, kw] layout, read
//   as scalars out of the vec4 binding (`w[i >> 2][i & 3]`; the uploaded weights are padded to
//   a multiple of 4 values, see `conv2d::prepare_weights`). Any C/groups.
// - true: 4 input channels per step, for C/groups a multiple of 4, weights in the
//   [K, kh, kw, C/groups] layout (made at plan time by `conv2d::prepare_weights`) so one vec4
//   load brings 4 input channels' weights: a quarter of the weight loads (a per-lane vec4 load
//   costs about what a scalar one does on lavapipe) and a quarter of the accumulator writes
//   (every register write in a loop is a masked blend there), 1.0-1.4x the GFLOP per
//   CPU-second of the scalar step on ResNet-50's layers (1.2x typical).
// The override is a pipeline constant, so each pipeline holds only its own step.
//
// `override GROUPS` picks the lane layout (the Rust side, `conv2d::subgroup_form`, per device):
// - 0: the 8-invocation workgroup above, weights handed out by `subgroupBroadcast` from lanes
//   0..7 (the fastest on lavapipe's 8-lane subgroups; correct on any subgroup of >= 8 lanes,
//   where it fills only 8 of them).
// - G >= 1 (the wide form, for subgroups of 16+ lanes): a workgroup of 8 * G invocations, each
//   group of 8 lanes of a subgroup (lanes base..base+7, base = lane & ~7) owning its own block
//   exactly as an 8-invocation workgroup does, the weights shared in the group by
//   `subgroupShuffle(v, base | j)`. Block id = workgroup id * G + the group's index in the
//   workgroup (numbered by `subgroup_id`, see `sg_group_in_workgroup`); the grid is
//   ceil(blocks / G) workgroups.
// Block ids run pixel block fastest: id = pixel_block + pixel_blocks * (group * chan_blocks +
// chan_block), on a 2-D grid (linear id = wg.x + wg.y * nwg.x; ids past the end return).
//
// | binding | what                                                         | access     |
// |---------|--------------------------------------------------------------|------------|
// | 0       | Params                                                       | uniform    |
// | 1       | x [N, C, H, W]                                               | read       |
// | 2       | w as vec4s: [K, C/groups, kh, kw] (SG4 false), [K, kh, kw, C/groups] (true) | read |
// | 3       | bias [K]                (if has_bias)                        | read       |
// | 4       | residual [N, K, OH, OW] (if has_residual)                    | read       |
// | 5       | y [N, K, OH, OW] (channels out_c_offset.. of [N, out_c_total, OH, OW]) | read_write |
//
// Params: `ConvParams` (lib/conv.wgsl, mirrors `Conv2dParams` in crates/wgcnn-kernels/src/conv2d.rs);
// here pixel_blocks = ceil(N*OH*OW / 32), chan_blocks = ceil((K/groups) / 16), cb = 16.
// Composed with lib/conv.wgsl, lib/subgroup.wgsl (the broadcast steps) and lib/activation.wgsl.

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// 4 input channels per reduction step (see the header).
override SG4: bool = false;
// 0: 8-lane broadcast form; G >= 1: wide form, G groups of 8 lanes a workgroup (see the header).
override GROUPS: u32 = 0u;
const LANES: u32 = 8u;
const PIXELS: u32 = 4u;
const CB: u32 = 16u;

// The 4 pixels' values at offset o past the tap's offsets (o = c * in_plane: input channel c
// of the group), 0 in the padding.
fn load_x(tap: ConvTap, o: u32) -> vec4<f32> {
    let v = vec4<f32>(x[tap.off.x + o], x[tap.off.y + o], x[tap.off.z + o], x[tap.off.w + o]);
    return select(vec4<f32>(0.0), v, tap.ok);
}

// Scalar step: weight i of the plain layout.
fn w1(i: u32) -> f32 {
    return w[i >> 2u][i & 3u];
}

@compute @workgroup_size(8u * max(GROUPS, 1u))
fn conv2d_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32,
             @builtin(subgroup_size) sg_size: u32) {
    let wide = GROUPS > 0u;
    // Wide form: lane l of the group at lanes base..base+7 owns block id * G + its group.
    let base = sg_lane & ~7u;
    let lane = select(sg_lane, sg_lane & 7u, wide);
    let wg_id = wg.x + wg.y * nwg.x;
    let id = select(wg_id, wg_id * GROUPS + sg_group_in_workgroup(sg_id, sg_size, sg_lane), wide);
    let blk = conv_block(params, id, CB, LANES * PIXELS);
    if (!blk.ok) {
        return;
    }
    // Every lane runs the loops to the end (the broadcasts need all 8 of its group): lanes past
    // the last pixel compute on clamped pixels and store nothing.
    let px = conv_pixels(params, blk.pixel0 + lane * PIXELS, blk.g);
    let in_plane = params.in_h * params.in_w;

    // Weight rows of channels k0 + lane and k0 + 8 + lane, clamped to the group's last channel
    // in the tail block (their sums are computed and dropped): scalar indices, or vec4 indices
    // with SG4 (a row is khw * cg values either way).
    let khw = params.kernel_h * params.kernel_w;
    let row = khw * select(blk.cg, blk.cg / 4u, SG4);
    let wa0 = min(blk.k0 + lane, blk.k_end - 1u) * row;
    let wb0 = min(blk.k0 + 8u + lane, blk.k_end - 1u) * row;

    var acc: array<vec4<f32>, 16>;
    for (var ky = 0u; ky < params.kernel_h; ky++) {
        for (var kx = 0u; kx < params.kernel_w; kx++) {
            let tap = conv_tap(params, px, ky, kx);
            let wi0 = ky * params.kernel_w + kx;
            if (SG4) {
                // Input channels 4 c4.. : their weights are one vec4 at (ky, kx).
                var wi = wi0 * (blk.cg / 4u);
                var o0 = 0u;
                for (var c4 = 0u; c4 < blk.cg / 4u; c4++) {
                    let o1 = o0 + in_plane;
                    let o2 = o1 + in_plane;
                    let o3 = o2 + in_plane;
                    let x0 = load_x(tap, o0);
                    let x1 = load_x(tap, o1);
                    let x2 = load_x(tap, o2);
                    let x3 = load_x(tap, o3);
                    if (wide) {
                        sg_fma16x4_wide(&acc, w[wa0 + wi], w[wb0 + wi], x0, x1, x2, x3, base);
                    } else {
                        sg_fma16x4(&acc, w[wa0 + wi], w[wb0 + wi], x0, x1, x2, x3);
                    }
                    wi += 1u;
                    o0 = o3 + in_plane;
                }
            } else {
                // Input channel c: its weight at (ky, kx) is khw values after channel c - 1's.
                var wa = wa0 + wi0;
                var wb = wb0 + wi0;
                var xo = 0u;
                for (var c = 0u; c < blk.cg; c++) {
                    if (wide) {
                        sg_fma16_wide(&acc, w1(wa), w1(wb), load_x(tap, xo), base);
                    } else {
                        sg_fma16(&acc, w1(wa), w1(wb), load_x(tap, xo));
                    }
                    wa += khw;
                    wb += khw;
                    xo += in_plane;
                }
            }
        }
    }

    // Epilogue: one loop over the block's channels (compact code: the activation switch is
    // compiled once, not 64 times), indexing a copy so the accumulators stay registers.
    let out = acc;
    for (var r = 0u; r < min(CB, blk.k_end - blk.k0); r++) {
        store(blk.k0 + r, out[r], px);
    }
}

// Writes output channel k's 4 pixels (those that exist) through the epilogue. Offsets per
// live pixel inside the loop: computing the 4 pixels' offsets up front (a lib struct) measured
// 5-14% slower on ResNeXt's grouped layers (lavapipe), where the epilogue weighs most.
fn store(k: u32, acc: vec4<f32>, px: ConvPixels) {
    var v = acc;
    if (params.has_bias == 1u) { v += vec4<f32>(bias[k]); }
    for (var i = 0u; i < PIXELS; i++) {
        let o = conv_out_planes(params, px.img[i], k) + vec2<u32>(px.sp[i]);
        if (px.live[i] && params.has_residual == 1u) { v[i] += residual[o.x]; }
        if (px.live[i]) { y[o.y] = act_apply(v[i], params.act, params.p0, params.p1); }
    }
}
