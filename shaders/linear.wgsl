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
// Params mirrors `LinearParams` in crates/wgcnn-kernels/src/linear.rs; keep both in step.

struct Params {
    batch: u32,        // N
    in_features: u32,  // K
    out_features: u32, // M (row stride of y)
    row_offset: u32,   // first row of W held by `w`
    rows: u32,         // rows of W held by `w`
    row_blocks: u32,   // ceil(rows / 64)
    has_bias: u32,
    act: u32,          // activation code (wgcnn_graph::Activation::code)
    p0: f32,
    p1: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Same codes and formulas as `act()` in unary.wgsl.
fn act(v: f32, code: u32, p0: f32, p1: f32) -> f32 {
    switch code {
        case 1u: { return max(v, 0.0); }
        case 2u: { return clamp(v, p0, p1); }
        case 3u: { return 1.0 / (1.0 + exp(-v)); }
        case 4u: { return v / (1.0 + exp(-v)); }
        case 5u: { return clamp(p0 * v + p1, 0.0, 1.0); }
        case 6u: { return v * clamp(v / 6.0 + 0.5, 0.0, 1.0); }
        case 7u: { return tanh(v); }
        default: { return v; }
    }
}

@compute @workgroup_size(64)
fn linear(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let id = wg.x + wg.y * nwg.x;
    let batch_blocks = (params.batch + 3u) / 4u;
    if (id >= params.row_blocks * batch_blocks) {
        return;
    }
    let r = (id % params.row_blocks) * 64u + lid;
    if (r >= params.rows) {
        return;
    }
    let n0 = (id / params.row_blocks) * 4u;
    let kk = params.in_features;
    // Batch rows past the end re-read the last row (uniform loads), their sums are dropped.
    let last = params.batch - 1u;
    let x0 = min(n0, last) * kk;
    let x1 = min(n0 + 1u, last) * kk;
    let x2 = min(n0 + 2u, last) * kk;
    let x3 = min(n0 + 3u, last) * kk;
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
            y[(n0 + i) * params.out_features + m] = act(s[i] + b, params.act, params.p0, params.p1);
        }
    }
}
