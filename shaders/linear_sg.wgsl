enable subgroups;

// linear_sg: linear.wgsl's computation, y[n, m] = act(sum_k x[n, k] * W[m, k] + b[m]) over a
// slice of W's rows (see linear.wgsl for the row-chunk convention), for K a multiple of 4 on
// devices with subgroups of at least 8 lanes.
//
// Threads: a workgroup is 8 invocations (one subgroup of 8 lanes on lavapipe; on wider
// subgroups only lanes 0..7 are read); lane l (subgroup lane id) owns weight row 8 * row_block + l and a block of
// 4 batch rows. Per 8 columns a lane reads its row's weights as two vec4 loads, and one value of
// x per batch row (lane l: column k + l) that `subgroupBroadcast` hands to every lane. On
// lavapipe each per-lane load is a bounds-checked load per lane and a vec4 load costs about
// what a scalar one does: measured on VGG-16's and ResNet-50's classifiers, 2.2x linear.wgsl's
// GFLOP per CPU-second (x's broadcast alone gained nothing there: the weights, read once each,
// are the cost). Workgroup id = row_block + row_blocks * batch_block, on a 2-D grid (linear id =
// wg.x + wg.y * nwg.x; ids past the end return).
//
// `override GROUPS`: 0 the 8-invocation broadcast form above; G >= 1 the wide form for
// subgroups of 16+ lanes: workgroups of 8 * G invocations, each group of 8 lanes of a subgroup
// (lanes base..base+7, base = lane & ~7) owning the 8 rows and 4 batch rows an 8-invocation
// workgroup owns, x shared in the group by `subgroupShuffle(v, base | j)`; block id =
// workgroup id * G + the group's index (`sg_group_in_workgroup`), ceil(blocks / G) workgroups.
//
// | binding | what                                          | access     |
// |---------|-----------------------------------------------|------------|
// | 0       | Params                                        | uniform    |
// | 1       | x [N, K]                                      | read       |
// | 2       | w [rows, K] (rows row_offset.. of W) as vec4s | read       |
// | 3       | b [M]         (full; if has_bias)             | read       |
// | 4       | y [N, M]                                      | read_write |
//
// Params: `LinearParams` (lib/linear.wgsl, mirrors `LinearParams` in
// crates/wgcnn-kernels/src/linear.rs); here row_blocks = ceil(rows / 8). Composed with
// lib/linear.wgsl, lib/subgroup.wgsl (`sg_dot8`) and lib/activation.wgsl.

@group(0) @binding(0) var<uniform> params: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// 0: 8-lane broadcast form; G >= 1: wide form, G groups of 8 lanes per workgroup.
override GROUPS: u32 = 0u;

@compute @workgroup_size(8u * max(GROUPS, 1u))
fn linear_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32,
             @builtin(subgroup_size) sg_size: u32) {
    let wide = GROUPS > 0u;
    let base = sg_lane & ~7u;
    let lane = select(sg_lane, sg_lane & 7u, wide);
    let wg_id = wg.x + wg.y * nwg.x;
    let id = select(wg_id, wg_id * GROUPS + sg_group_in_workgroup(sg_id, sg_size, sg_lane), wide);
    // linear_block takes a grid position: block id as a 1-D one.
    let blk = linear_block(params, vec3<u32>(id, 0u, 0u), nwg, 8u);
    if (!blk.ok) {
        return;
    }
    // Every lane runs to the end (the broadcasts need all 8 of its group): rows past the end
    // re-read the last row and store nothing.
    let r = blk.row0 + lane;
    let live = r < params.rows;
    let kk = params.in_features;
    let wr = min(r, params.rows - 1u) * kk;
    let n0 = blk.n0;
    let xr = linear_rows4(params, n0);
    // The row's last vec4: K % 8 == 4 leaves the final step half past the row, whose second
    // load must not run past the buffer on the last row (it is multiplied by zeros anyway).
    let w_last = (wr + kk) / 4u - 1u;

    var s = vec4<f32>(0.0);
    for (var k = 0u; k < kk; k += 8u) {
        // Columns k..k+7: this lane's weights (past K, when K % 8 == 4: the row's last vec4 again,
        // times zeros), and column k + lane of x (zero past K).
        let c = k + lane;
        let ok = c < kk;
        let cc = min(c, kk - 1u);
        let w4 = wr / 4u + k / 4u;
        let wa = w[w4];
        let wb = w[min(w4 + 1u, w_last)];
        if (wide) {
            s.x += sg_dot8_wide(wa, wb, select(0.0, x[xr.x + cc], ok), base);
            if (params.batch > 1u) {
                s.y += sg_dot8_wide(wa, wb, select(0.0, x[xr.y + cc], ok), base);
                s.z += sg_dot8_wide(wa, wb, select(0.0, x[xr.z + cc], ok), base);
                s.w += sg_dot8_wide(wa, wb, select(0.0, x[xr.w + cc], ok), base);
            }
        } else {
            s.x += sg_dot8(wa, wb, select(0.0, x[xr.x + cc], ok));
            if (params.batch > 1u) {
                s.y += sg_dot8(wa, wb, select(0.0, x[xr.y + cc], ok));
                s.z += sg_dot8(wa, wb, select(0.0, x[xr.z + cc], ok));
                s.w += sg_dot8(wa, wb, select(0.0, x[xr.w + cc], ok));
            }
        }
    }

    let m = params.row_offset + r;
    var b = 0.0;
    if (params.has_bias == 1u && live) {
        b = bias[m];
    }
    for (var i = 0u; i < 4u; i++) {
        if (live && n0 + i < params.batch) {
            y[(n0 + i) * params.out_features + m] = act_apply(s[i] + b, params.act, params.p0, params.p1);
        }
    }
}
