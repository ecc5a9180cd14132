// linear: y[n, m] = act(sum_k x[n, k] * W[m, k] + b[m]) over a slice of W's rows.
//
// Weight splitting: W [M, K] may exceed the largest storage binding (VGG-16's first classifier
// layer is 392 MiB, lavapipe binds at most 128 MiB), so one launch covers the rows
// [row_offset, row_offset + rows) of W: the bound `w` holds exactly those rows, the bound bias
// is the full b [M] (indexed at row_offset + r), and results land in columns row_offset + r of
// the full y [N, M]. An unsplit layer is one launch with row_offset 0, rows M.
//
// Threads: one invocation per weight row r and block of 4 batch rows; it streams its row of W
// once and keeps 4 sums (batch 1, the GEMV of classifier heads, takes a leaner loop: 8.6 GB/s of
// weights on lavapipe against 3.6 for the 4-row loop, and against 6.0 for a workgroup reducing
// one row cooperatively through workgroup memory, which was measured and dropped). x is indexed
// by loop counters only, so its loads are uniform across the workgroup (though lavapipe still
// makes them per-lane loads: see conv2d.wgsl); W loads are per lane. Devices with subgroups take
// linear_sg.wgsl (2.2x on lavapipe) where K is a multiple of 4. 64 invocations per workgroup;
// workgroup id = row_block + row_blocks * batch_block, on a 2-D grid (linear id = wg.x +
// wg.y * nwg.x; ids past the end return).
//
// | binding | what                                   | access     |
// |---------|----------------------------------------|------------|
// | 0       | Params                                 | uniform    |
// | 1       | x [N, K]                               | read       |
// | 2       | w [rows, K] (rows row_offset.. of W)   | read       |
// | 3       | b [M]         (full; if has_bias)      | read       |
// | 4       | y [N, M]                               | read_write |
//
// Params: `LinearParams` (lib/linear.wgsl, mirrors `LinearParams` in
// crates/wgcnn-kernels/src/linear.rs); row_blocks = ceil(rows / 64). Composed with lib/linear.wgsl
// and lib/activation.wgsl.

@group(0) @binding(0) var<uniform> params: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn linear(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    // Row r of w (an output feature), batch rows n0..n0+3.
    let blk = linear_block(params, wg, nwg, 64u);
    let r = blk.row0 + lid;
    if (!blk.ok || r >= params.rows) {
        return;
    }
    let n0 = blk.n0;
    let kk = params.in_features;
    let xr = linear_rows4(params, n0);
    let x0 = xr.x;
    let x1 = xr.y;
    let x2 = xr.z;
    let x3 = xr.w;
    let wr = r * kk;

    var s = vec4<f32>(0.0);
    let k4 = kk & ~3u;
    if (params.batch == 1u) {
        // GEMV: one input row, 4 partial sums to shorten the dependency chain.
        var t = vec4<f32>(0.0);
        for (var k = 0u; k < k4; k += 4u) {
            t += vec4<f32>(w[wr + k], w[wr + k + 1u], w[wr + k + 2u], w[wr + k + 3u]) *
                 vec4<f32>(x[k], x[k + 1u], x[k + 2u], x[k + 3u]);
        }
        for (var k = k4; k < kk; k++) {
            t.x += w[wr + k] * x[k];
        }
        s.x = t.x + t.y + t.z + t.w;
    } else {
        for (var k = 0u; k < k4; k += 4u) {
            let wv = vec4<f32>(w[wr + k], w[wr + k + 1u], w[wr + k + 2u], w[wr + k + 3u]);
            s.x += dot(wv, vec4<f32>(x[x0 + k], x[x0 + k + 1u], x[x0 + k + 2u], x[x0 + k + 3u]));
            s.y += dot(wv, vec4<f32>(x[x1 + k], x[x1 + k + 1u], x[x1 + k + 2u], x[x1 + k + 3u]));
            s.z += dot(wv, vec4<f32>(x[x2 + k], x[x2 + k + 1u], x[x2 + k + 2u], x[x2 + k + 3u]));
            s.w += dot(wv, vec4<f32>(x[x3 + k], x[x3 + k + 1u], x[x3 + k + 2u], x[x3 + k + 3u]));
        }
        for (var k = k4; k < kk; k++) {
            let wv = w[wr + k];
            s += wv * vec4<f32>(x[x0 + k], x[x1 + k], x[x2 + k], x[x3 + k]);
        }
    }

    let m = params.row_offset + r;
    var b = 0.0;
    if (params.has_bias == 1u) {
        b = bias[m];
    }
    for (var i = 0u; i < 4u; i++) {
        if (n0 + i < params.batch) {
            y[(n0 + i) * params.out_features + m] = act_apply(s[i] + b, params.act, params.p0, params.p1);
        }
    }
}
