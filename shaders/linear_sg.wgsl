// linear_sg: linear.wgsl's computation, y[n, m] = act(sum_k x[n, k] * W[m, k] + b[m]) over a
// slice of W's rows (see linear.wgsl for the row-chunk convention), for K a multiple of 4 on
// devices with subgroups of at least 8 lanes.
//
// Threads: a workgroup is 8 invocations (one subgroup of 8 lanes on lavapipe; on wider
// subgroups only lanes 0..7 are read); lane l owns weight row 8 * row_block + l and a block of
// 4 batch rows. Per 8 columns a lane reads its row's weights as two vec4 loads, and one value of
// x per batch row (lane l: column k + l) that `subgroupBroadcast` hands to every lane. On
// lavapipe each per-lane load is a bounds-checked load per lane and a vec4 load costs about
// what a scalar one does: measured on VGG-16's and ResNet-50's classifiers, 2.2x linear.wgsl's
// GFLOP per CPU-second (x's broadcast alone gained nothing there: the weights, read once each,
// are the cost). Workgroup id = row_block + row_blocks * batch_block, on a 2-D grid (linear id =
// wg.x + wg.y * nwg.x; ids past the end return).
//
// | binding | what                                          | access     |
// |---------|-----------------------------------------------|------------|
// | 0       | Params                                        | uniform    |
// | 1       | x [N, K]                                      | read       |
// | 2       | w [rows, K] (rows row_offset.. of W) as vec4s | read       |
// | 3       | b [M]         (full; if has_bias)             | read       |
// | 4       | y [N, M]                                      | read_write |
//
// Params mirrors `LinearParams` in crates/wgcnn-kernels/src/linear.rs (shared with linear.wgsl;
// here row_blocks = ceil(rows / 8)); keep them in step.

struct Params {
    batch: u32,        // N
    in_features: u32,  // K
    out_features: u32, // M (row stride of y)
    row_offset: u32,   // first row of W held by `w`
    rows: u32,         // rows of W held by `w`
    row_blocks: u32,   // ceil(rows / 8)
    has_bias: u32,
    act: u32,          // activation code (wgcnn_graph::Activation::code)
    p0: f32,
    p1: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
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

// sum_j wv[j] * (value j of v broadcast from lane j): one batch row's share of 8 columns.
fn dot8(wa: vec4<f32>, wb: vec4<f32>, v: f32) -> f32 {
    let xa = vec4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u));
    let xb = vec4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
    return dot(wa, xa) + dot(wb, xb);
}

@compute @workgroup_size(8)
fn linear_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lane: u32) {
    let id = wg.x + wg.y * nwg.x;
    let batch_blocks = (params.batch + 3u) / 4u;
    if (id >= params.row_blocks * batch_blocks) {
        return;
    }
    // Every lane runs to the end (the broadcasts need all 8): rows past the end re-read the
    // last row and store nothing.
    let r = (id % params.row_blocks) * 8u + lane;
    let live = r < params.rows;
    let kk = params.in_features;
    let wr = min(r, params.rows - 1u) * kk;
    let n0 = (id / params.row_blocks) * 4u;
    let last = params.batch - 1u;
    let x0 = min(n0, last) * kk;
    let x1 = min(n0 + 1u, last) * kk;
    let x2 = min(n0 + 2u, last) * kk;
    let x3 = min(n0 + 3u, last) * kk;

    var s = vec4<f32>(0.0);
    for (var k = 0u; k < kk; k += 8u) {
        // Columns k..k+7: this lane's weights (past K, when K % 8 == 4: the next row's, times
        // zeros), and column k + lane of x (zero past K).
        let c = k + lane;
        let ok = c < kk;
        let cc = min(c, kk - 1u);
        let w4 = wr / 4u + k / 4u;
        let wa = w[w4];
        let wb = w[w4 + 1u];
        s.x += dot8(wa, wb, select(0.0, x[x0 + cc], ok));
        if (params.batch > 1u) {
            s.y += dot8(wa, wb, select(0.0, x[x1 + cc], ok));
            s.z += dot8(wa, wb, select(0.0, x[x2 + cc], ok));
            s.w += dot8(wa, wb, select(0.0, x[x3 + cc], ok));
        }
    }

    let m = params.row_offset + r;
    var b = 0.0;
    if (params.has_bias == 1u && live) {
        b = bias[m];
    }
    for (var i = 0u; i < 4u; i++) {
        if (live && n0 + i < params.batch) {
            y[(n0 + i) * params.out_features + m] = act(s[i] + b, params.act, params.p0, params.p1);
        }
    }
}
