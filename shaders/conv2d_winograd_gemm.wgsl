enable subgroups;

// conv2d_winograd_gemm: the middle stage of a Winograd convolution, `positions` independent GEMMs
// (16 for F(2x2, 3x3), 36 for F(4x4, 3x3)) M[pos][k][t] = sum_c U[pos][k][c] * V[pos][c][t] (U:
// the transformed weights, made once on the CPU; V: conv2d_winograd_input.wgsl's or
// conv2d_winograd4_input.wgsl's output; M: the matching output transform's input).
//
// Threads: a workgroup is 8 invocations, one subgroup of 8 lanes on lavapipe (any subgroup of at
// least 8 lanes works: only lanes 0..7 are ever read). It owns one pos, a block of 16 output
// channels and a block of 32 tiles; each lane (by subgroup lane id) keeps a 16-channel x 4-tile
// register tile. Per 4 input channels, the lanes load the 16 channels' weights as two 8-wide
// vectors of vec4 (lane l loads output channels l and l + 8, input channels c..c+3; C is a multiple
// of 4) and `subgroupBroadcast` hands each to every lane, so a weight costs a thirty-second of a
// per-lane vec4 load; V is read as vec4s (4 neighbouring tiles). On lavapipe per-lane loads are
// what costs (each is a bounds-checked load per lane; a vec4 load costs about as much as a scalar
// one), and 4 channels per iteration also write each accumulator a quarter as often (every register
// write in a loop is a masked blend there): 1.15-1.3x faster than 1 channel per step. Workgroup id
// = t_block + t_blocks * (k_block + k_blocks * pos), on a 2-D grid (linear id = wg.x + wg.y *
// nwg.x; ids past the end return).
//
// | binding | what                       | access     |
// |---------|----------------------------|------------|
// | 0       | Params                     | uniform    |
// | 1       | U [positions, K, C]        | read       |
// | 2       | V [positions, C, t_stride] | read       |
// | 3       | M [positions, K, t_stride] | read_write |
//
// Params: `WinogradParams` (lib/winograd.wgsl, mirrors `WinogradParams` in
// crates/wgcnn-kernels/src/conv2d/winograd.rs). Composed with lib/winograd.wgsl and
// lib/subgroup.wgsl (the broadcast step).

@group(0) @binding(0) var<uniform> params: WinogradParams;
@group(0) @binding(1) var<storage, read> u: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;

@compute @workgroup_size(8)
fn conv2d_winograd_gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(subgroup_invocation_id) lane: u32) {
    let id = wg.x + wg.y * nwg.x;
    if (id >= params.t_blocks * params.k_blocks * params.positions) {
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

    var acc: array<vec4<f32>, 16>;
    for (var c4 = 0u; c4 < c_n / 4u; c4++) {
        sg_fma16x4(&acc, u[ua + c4], u[ub + c4], v[vi], v[vi + row4], v[vi + 2u * row4], v[vi + 3u * row4]);
        vi += 4u * row4;
    }

    // Rows of M for channels k0.. (those past K are not written), from a copy so the
    // accumulators stay registers.
    let out = acc;
    let mk = (pos * k_n + k0) * row4 + t4;
    for (var r = 0u; r < min(16u, k_n - k0); r++) {
        m[mk + r * row4] = out[r];
    }
}
