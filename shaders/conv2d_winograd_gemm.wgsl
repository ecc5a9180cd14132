// conv2d_winograd_gemm: the middle stage of a Winograd F(2x2, 3x3) convolution, 16 independent GEMMs
// M[pos][k][t] = sum_c U[pos][k][c] * V[pos][c][t] (U: the transformed weights, made once on
// the CPU; V: conv2d_winograd_input.wgsl's output; M: conv2d_winograd_output.wgsl's input).
//
// Threads: a workgroup is 8 invocations, one subgroup of 8 lanes on lavapipe (any subgroup of
// at least 8 lanes works: only lanes 0..7 are ever read). It owns one pos, a block of 16
// output channels and a block of 32 tiles; each lane keeps a 16-channel x 4-tile register tile.
// Per 4 input channels, the lanes load the 16 channels' weights as two 8-wide vectors of vec4
// (lane l loads output channels l and l + 8, input channels c..c+3; C is a multiple of 4) and
// `subgroupBroadcast` hands each to every lane, so a weight costs a thirty-second of a per-lane
// vec4 load; V is read as vec4s (4 neighbouring tiles). On lavapipe per-lane loads are what
// costs (each is a bounds-checked load per lane; a vec4 load costs about as much as a scalar
// one), and 4 channels per iteration also write each accumulator a quarter as often (every
// register write in a loop is a masked blend there): 1.15-1.3x faster than 1 channel per step.
// Workgroup id = t_block + t_blocks * (k_block + k_blocks * pos), on a 2-D grid (linear id =
// wg.x + wg.y * nwg.x; ids past the end return).
//
// | binding | what                       | access     |
// |---------|----------------------------|------------|
// | 0       | Params                     | uniform    |
// | 1       | U [16, K, C]               | read       |
// | 2       | V [16, C, t_stride]        | read       |
// | 3       | M [16, K, t_stride]        | read_write |
//
// Params mirrors `WinogradParams` in crates/wgcnn-kernels/src/conv2d/winograd.rs (see
// conv2d_winograd_input.wgsl for the fields).

struct Params {
    batch: u32,
    in_c: u32,
    in_h: u32,
    in_w: u32,
    out_c: u32,
    out_h: u32,
    out_w: u32,
    pad_top: u32,
    pad_left: u32,
    tiles_h: u32,
    tiles_w: u32,
    tiles: u32,
    t_stride: u32,
    t_blocks: u32,
    k_blocks: u32,
    has_bias: u32,
    has_residual: u32,
    act: u32,
    p0: f32,
    p1: f32,
    out_c_total: u32,  // channels of the tensor y is (out_c unless y is a concatenation)
    out_c_offset: u32, // first channel of y written (a channel slice of a concatenation)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> u: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;

@compute @workgroup_size(8)
fn conv2d_winograd_gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lane: u32) {
    let id = wg.x + wg.y * nwg.x;
    if (id >= params.t_blocks * params.k_blocks * 16u) {
        return;
    }
    let tb = id % params.t_blocks;
    let rest = id / params.t_blocks;
    let k0 = (rest % params.k_blocks) * 16u;
    let pos = rest / params.k_blocks;
    let c_n = params.in_c;
    let k_n = params.out_c;
    let row4 = params.t_stride / 4u;
    // This lane's 4 tiles, as a vec4 index into a row of V or M.
    let t4 = tb * 8u + lane;
    // Weight rows of channels k0 + lane and k0 + 8 + lane (clamped; their sums are dropped), as
    // vec4 indices: C is a multiple of 4 and each load brings 4 input channels' weights.
    let ua = (pos * k_n + min(k0 + lane, k_n - 1u)) * (c_n / 4u);
    let ub = (pos * k_n + min(k0 + 8u + lane, k_n - 1u)) * (c_n / 4u);
    var vi = pos * c_n * row4 + t4;

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
    for (var c4 = 0u; c4 < c_n / 4u; c4++) {
        let x0 = v[vi];
        let x1 = v[vi + row4];
        let x2 = v[vi + 2u * row4];
        let x3 = v[vi + 3u * row4];
        let wa = u[ua + c4];
        let wb = u[ub + c4];
        let b0 = subgroupBroadcast(wa, 0u);
        a0 += b0.x * x0 + b0.y * x1 + b0.z * x2 + b0.w * x3;
        let b1 = subgroupBroadcast(wa, 1u);
        a1 += b1.x * x0 + b1.y * x1 + b1.z * x2 + b1.w * x3;
        let b2 = subgroupBroadcast(wa, 2u);
        a2 += b2.x * x0 + b2.y * x1 + b2.z * x2 + b2.w * x3;
        let b3 = subgroupBroadcast(wa, 3u);
        a3 += b3.x * x0 + b3.y * x1 + b3.z * x2 + b3.w * x3;
        let b4 = subgroupBroadcast(wa, 4u);
        a4 += b4.x * x0 + b4.y * x1 + b4.z * x2 + b4.w * x3;
        let b5 = subgroupBroadcast(wa, 5u);
        a5 += b5.x * x0 + b5.y * x1 + b5.z * x2 + b5.w * x3;
        let b6 = subgroupBroadcast(wa, 6u);
        a6 += b6.x * x0 + b6.y * x1 + b6.z * x2 + b6.w * x3;
        let b7 = subgroupBroadcast(wa, 7u);
        a7 += b7.x * x0 + b7.y * x1 + b7.z * x2 + b7.w * x3;
        let b8 = subgroupBroadcast(wb, 0u);
        a8 += b8.x * x0 + b8.y * x1 + b8.z * x2 + b8.w * x3;
        let b9 = subgroupBroadcast(wb, 1u);
        a9 += b9.x * x0 + b9.y * x1 + b9.z * x2 + b9.w * x3;
        let b10 = subgroupBroadcast(wb, 2u);
        a10 += b10.x * x0 + b10.y * x1 + b10.z * x2 + b10.w * x3;
        let b11 = subgroupBroadcast(wb, 3u);
        a11 += b11.x * x0 + b11.y * x1 + b11.z * x2 + b11.w * x3;
        let b12 = subgroupBroadcast(wb, 4u);
        a12 += b12.x * x0 + b12.y * x1 + b12.z * x2 + b12.w * x3;
        let b13 = subgroupBroadcast(wb, 5u);
        a13 += b13.x * x0 + b13.y * x1 + b13.z * x2 + b13.w * x3;
        let b14 = subgroupBroadcast(wb, 6u);
        a14 += b14.x * x0 + b14.y * x1 + b14.z * x2 + b14.w * x3;
        let b15 = subgroupBroadcast(wb, 7u);
        a15 += b15.x * x0 + b15.y * x1 + b15.z * x2 + b15.w * x3;
        vi += 4u * row4;
    }

    // Rows of M for channels k0.. (those past K are not written).
    let out = array<vec4<f32>, 16>(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
    let mk = (pos * k_n + k0) * row4 + t4;
    let live = min(16u, k_n - k0);
    for (var r = 0u; r < live; r++) {
        m[mk + r * row4] = out[r];
    }
}
