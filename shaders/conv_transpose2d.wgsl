// conv_transpose2d: PyTorch's ConvTranspose2d over NCHW f32 (any kernel, stride, padding,
// output_padding, dilation, groups), epilogue act(sum + bias), written as a gather:
//   y[n, co, oy, ox] = sum over ci of the group, taps (ky, kx) with
//     oy + pad_top - ky * dilation_h = iy * stride_h, 0 <= iy < H (the same along x)
//   of x[n, ci, iy, ix] * w[ci, co - g * Kg, ky, kx].
//
// Threads: one output pixel and 16 consecutive output channels of one group each (the block
// co = 16 * cb .. 16 * cb + 15 of group g; channels past Kg are computed from zero weights and
// not written), 256 per workgroup, 2-D grid (linear id = x + y * nwg.x). Neighbouring
// invocations take neighbouring output columns of the same channel block. Per input channel one
// scalar load of x and four vec4 loads of the 16 channels' weights: the weights are reordered
// at plan time (`conv_transpose2d::prepare_weights`) to [groups, kh, kw, Cg, kblocks, 4] vec4s,
// zero-padded past Kg. (lavapipe, Mask R-CNN's conv5_mask over 100 RoIs: 4 channels per
// invocation 4.5 s, 16 channels 1.7 s, the from_cols form after a 1x1 conv 0.33 s.)
//
// | binding | what                                           | access     |
// |---------|------------------------------------------------|------------|
// | 0       | Params                                         | uniform    |
// | 1       | x [N, C, H, W], or cols [N, K * kh * kw, H, W] | read       |
// | 2       | w [groups, kh, kw, Cg, kblocks, 4] of vec4     | read       |
// | 3       | bias [K] (a dummy when has_bias is 0)          | read       |
// | 4       | y [N, K, OH, OW]                               | read_write |
//
// With from_cols (groups 1) the multiply-adds were done before by a 1x1 convolution on the
// GEMM kernels, cols = W^T x, and this kernel only gathers each output's taps from cols
// (col2im) and applies the epilogue.
//
// Params mirrors `ConvTranspose2dParams` in crates/wgcnn-kernels/src/conv_transpose2d.rs.
// Composed with lib/activation.wgsl.

struct Params {
    total: u32,        // N * groups * kblocks * OH * OW invocations
    channels: u32,     // C
    height: u32,       // H
    width: u32,        // W
    out_channels: u32, // K = groups * Kg
    out_height: u32,   // OH
    out_width: u32,    // OW
    group_in: u32,     // Cg = C / groups
    group_out: u32,    // Kg = K / groups
    kblocks: u32,      // ceil(Kg / 16)
    groups: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    dilation_h: u32,
    dilation_w: u32,
    pad_top: u32,
    pad_left: u32,
    has_bias: u32,
    act: u32,          // activation code (lib/activation.wgsl)
    act_p0: f32,
    act_p1: f32,
    from_cols: u32,    // 1: x holds cols (see below), w is unused; groups 1 only
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// The input index along one axis that tap k sends to output o, or -1 when none does:
// o + pad - k * dilation must be a non-negative multiple of the stride below the extent.
fn source_index(o: u32, pad: u32, k: u32, dilation: u32, stride: u32, extent: u32) -> i32 {
    let t = i32(o + pad) - i32(k * dilation);
    if (t < 0 || u32(t) % stride != 0u) {
        return -1;
    }
    let i = u32(t) / stride;
    return select(-1, i32(i), i < extent);
}

// Channel `co` of cols at `base` (clamped: channels past K are computed, never written).
fn col(base: u32, step: u32, co: u32) -> f32 {
    return x[base + min(co, params.out_channels - 1u) * step];
}

@compute @workgroup_size(256)
fn conv_transpose2d(@builtin(workgroup_id) wg: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    let ox = i % params.out_width;
    var rest = i / params.out_width;
    let oy = rest % params.out_height;
    rest = rest / params.out_height;
    let cb = rest % params.kblocks;
    rest = rest / params.kblocks;
    let g = rest % params.groups;
    let n = rest / params.groups;

    let plane = params.height * params.width;
    let x_group = (n * params.channels + g * params.group_in) * plane;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < params.kernel_h; ky++) {
        let iy = source_index(oy, params.pad_top, ky, params.dilation_h, params.stride_h,
                              params.height);
        if (iy < 0) {
            continue;
        }
        for (var kx = 0u; kx < params.kernel_w; kx++) {
            let ix = source_index(ox, params.pad_left, kx, params.dilation_w, params.stride_w,
                                  params.width);
            if (ix < 0) {
                continue;
            }
            if (params.from_cols == 1u) {
                // x is cols [N, K * kh * kw, H, W] = W^T x (a 1x1 conv, groups 1): channel
                // co * kh * kw + ky * kw + kx is tap (ky, kx)'s share of output channel co.
                let step = params.kernel_h * params.kernel_w * plane;
                let base = (n * params.out_channels * params.kernel_h + ky) * params.kernel_w
                    * plane + kx * plane + u32(iy) * params.width + u32(ix);
                let c = cb * 16u;
                acc0 += vec4<f32>(col(base, step, c), col(base, step, c + 1u),
                                  col(base, step, c + 2u), col(base, step, c + 3u));
                acc1 += vec4<f32>(col(base, step, c + 4u), col(base, step, c + 5u),
                                  col(base, step, c + 6u), col(base, step, c + 7u));
                acc2 += vec4<f32>(col(base, step, c + 8u), col(base, step, c + 9u),
                                  col(base, step, c + 10u), col(base, step, c + 11u));
                acc3 += vec4<f32>(col(base, step, c + 12u), col(base, step, c + 13u),
                                  col(base, step, c + 14u), col(base, step, c + 15u));
                continue;
            }
            var xi = x_group + u32(iy) * params.width + u32(ix);
            let tap = (g * params.kernel_h + ky) * params.kernel_w + kx;
            var wi = (tap * params.group_in * params.kblocks + cb) * 4u;
            for (var ci = 0u; ci < params.group_in; ci++) {
                let xv = x[xi];
                acc0 += xv * w[wi];
                acc1 += xv * w[wi + 1u];
                acc2 += xv * w[wi + 2u];
                acc3 += xv * w[wi + 3u];
                xi += plane;
                wi += params.kblocks * 4u;
            }
        }
    }

    let co0 = cb * 16u;
    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    let out_plane = params.out_height * params.out_width;
    let pixel = oy * params.out_width + ox;
    let k_base = n * params.out_channels + g * params.group_out;
    for (var j = 0u; j < 16u; j++) {
        let co = co0 + j;
        if (co >= params.group_out) {
            break;
        }
        var v = acc[j / 4u][j % 4u];
        if (params.has_bias == 1u) {
            v += bias[g * params.group_out + co];
        }
        y[(k_base + co) * out_plane + pixel] = act_apply(v, params.act, params.act_p0,
                                                         params.act_p1);
    }
}
