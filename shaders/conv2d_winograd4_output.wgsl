// conv2d_winograd4_output: the output transform of a Winograd F(4x4, 3x3) convolution with the
// fused epilogue: y = act(A^T M A + bias + residual) for every output channel k and tile t, where
// M[pos][k][t] (pos = 6i + j) is conv2d_winograd_gemm.wgsl's output (positions = 36). Outputs of a
// tile that fall past the output's bottom or right edge are not written.
//
// A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 1/2, -2, 0], [0, 1, 1, 1/4, 4, 0], [0, 1, -1, 1/8, -8, 1]]
// (interpolation points 0, 1, -1, 1/2, -2 and infinity, as conv2d_winograd4_input.wgsl; powers of
// two, so only the sums round).
//
// Threads: one invocation per (k, t), 64 per workgroup; workgroup id on a 2-D grid (linear id =
// wg.x + wg.y * nwg.x; invocations past the end return).
//
// | binding | what                                      | access     |
// |---------|-------------------------------------------|------------|
// | 0       | Params                                    | uniform    |
// | 1       | M [36, K, t_stride]                       | read       |
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

// A^T applied to 6 values.
fn at6(e: array<f32, 6>) -> vec4<f32> {
    let s = e[1] + e[2];
    let d = e[1] - e[2];
    return vec4<f32>(
        e[0] + s + e[3] + e[4],
        d + 0.5 * e[3] - 2.0 * e[4],
        s + 0.25 * e[3] + 4.0 * e[4],
        d + 0.125 * e[3] - 8.0 * e[4] + e[5],
    );
}

@compute @workgroup_size(64)
fn conv2d_winograd4_output(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    // Tile t of output channel k.
    let tile = wino_output(params, wg, nwg, lid, 4u);
    if (!tile.ok) {
        return;
    }

    // M A: each row i of the 6x6 block transformed across into 4 values.
    let ks = tile.stride;
    var ma: array<vec4<f32>, 6>;
    for (var i = 0u; i < 6u; i++) {
        let o = (i * 6u) * ks + tile.base;
        ma[i] = at6(array<f32, 6>(m[o], m[o + ks], m[o + 2u * ks], m[o + 3u * ks], m[o + 4u * ks],
                                  m[o + 5u * ks]));
    }
    // A^T (M A): column q of the result transformed down into output column q.
    var out: array<vec4<f32>, 4>;
    for (var q = 0u; q < 4u; q++) {
        out[q] = at6(array<f32, 6>(ma[0][q], ma[1][q], ma[2][q], ma[3][q], ma[4][q], ma[5][q]));
    }

    var b = 0.0;
    if (params.has_bias == 1u) { b = bias[tile.k]; }
    for (var r = 0u; r < 4u; r++) {
        for (var q = 0u; q < 4u; q++) {
            store(wino_out_at(params, tile, r, q), out[q][r] + b);
        }
    }
}

// The epilogue of one output, as conv2d_winograd_output.wgsl's.
fn store(at: WinoAt, v: f32) {
    var val = v;
    if (at.ok && params.has_residual == 1u) { val += residual[at.res]; }
    if (at.ok) { y[at.dst] = act_apply(val, params.act, params.p0, params.p1); }
}
