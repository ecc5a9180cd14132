// conv2d_winograd_output: the output transform of a Winograd F(2x2, 3x3) convolution with the fused
// epilogue: y = act(A^T M A + bias + residual) for every output channel k and tile t, where
// M[pos][k][t] (pos = 4i + j) is conv2d_winograd_gemm.wgsl's output. Outputs of a tile that fall past
// the output's bottom or right edge are not written.
//
// Threads: one invocation per (k, t), 64 per workgroup; workgroup id on a 2-D grid (linear id =
// wg.x + wg.y * nwg.x; invocations past the end return).
//
// | binding | what                                      | access     |
// |---------|-------------------------------------------|------------|
// | 0       | Params                                    | uniform    |
// | 1       | M [16, K, t_stride]                       | read       |
// | 2       | bias [K]                (if has_bias)     | read       |
// | 3       | residual [N, K, OH, OW] (if has_residual) | read       |
// | 4       | y [N, K, OH, OW]                          | read_write |
//
// Params: `WinogradParams` (lib/winograd.wgsl, mirrors `WinogradParams` in
// crates/wgcnn-kernels/src/conv2d/winograd.rs). Composed with lib/winograd.wgsl and
// lib/activation.wgsl.

@group(0) @binding(0) var<uniform> params: WinogradParams;
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn conv2d_winograd_output(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    // Tile t of output channel k.
    let tile = wino_output(params, wg, nwg, lid, 2u);
    if (!tile.ok) {
        return;
    }

    // The 4x4 block M[.][k][t] as rows, then A^T M A with A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
    // (interpolation points 0, 1, -1 and infinity).
    let ks = tile.stride;
    var mr: array<vec4<f32>, 4>;
    for (var a = 0u; a < 4u; a++) {
        let o = (a * 4u) * ks + tile.base;
        mr[a] = vec4<f32>(m[o], m[o + ks], m[o + 2u * ks], m[o + 3u * ks]);
    }
    let top = mr[0] + mr[1] + mr[2];
    let bottom = mr[1] - mr[2] - mr[3];
    let out = array<vec2<f32>, 2>(
        vec2<f32>(top.x + top.y + top.z, top.y - top.z - top.w),
        vec2<f32>(bottom.x + bottom.y + bottom.z, bottom.y - bottom.z - bottom.w),
    );

    var b = 0.0;
    if (params.has_bias == 1u) { b = bias[tile.k]; }
    for (var r = 0u; r < 2u; r++) {
        for (var q = 0u; q < 2u; q++) {
            store(wino_out_at(params, tile, r, q), out[r][q] + b);
        }
    }
}

// The epilogue of one output: at (wino_out_at) if inside the output, v (bias added) plus the
// residual, through the activation.
fn store(at: WinoAt, v: f32) {
    var val = v;
    if (at.ok && params.has_residual == 1u) { val += residual[at.res]; }
    if (at.ok) { y[at.dst] = act_apply(val, params.act, params.p0, params.p1); }
}
