// softmax: y = exp(x - max) / sum(exp(x - max)) along one axis of a flat f32 tensor viewed as
// [outer, axis_len, inner] (outer = product of the dims before the axis, inner = after).
//
// Threads, chosen by `cooperative` (a uniform, so one pipeline serves both):
// - 0: one row (outer, inner) per invocation, 64 per workgroup: many short rows (detection
//      class scores, softmax over channels);
// - 1: one row per workgroup, its 64 invocations take strided parts of the row and reduce the
//      max and the sum in workgroup memory: few long rows (1000 ImageNet logits).
// Both use a 2-D grid (linear workgroup id = x + y * nwg.x).
//
// | binding | what                       | access     |
// |---------|----------------------------|------------|
// | 0       | Params                     | uniform    |
// | 1       | x [outer, axis_len, inner] | read       |
// | 2       | y (same shape)             | read_write |
//
// Params mirrors `SoftmaxParams` in crates/wgcnn-kernels/src/softmax.rs.

struct Params {
    rows: u32,         // outer * inner
    axis_len: u32,
    inner: u32,
    cooperative: u32,  // 1: one workgroup per row
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG: u32 = 64u;
// The most negative finite f32: the start of a max.
const LOWEST: f32 = -3.4028234663852886e38;
var<workgroup> partial: array<f32, 64>;

// Index of the row's first element; its elements are `inner` apart.
fn row_base(row: u32) -> u32 {
    let o = row / params.inner;
    let j = row % params.inner;
    return o * params.axis_len * params.inner + j;
}

@compute @workgroup_size(64)
fn softmax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let group = wg.x + wg.y * nwg.x;
    let len = params.axis_len;
    let stride = params.inner;
    if (params.cooperative == 1u) {
        if (group >= params.rows) {
            return;
        }
        let base = row_base(group);
        var m = LOWEST;
        for (var k = lid; k < len; k += WG) {
            m = max(m, x[base + k * stride]);
        }
        partial[lid] = m;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if (lid < s) {
                partial[lid] = max(partial[lid], partial[lid + s]);
            }
            workgroupBarrier();
        }
        let row_max = partial[0];
        workgroupBarrier();
        var sum = 0.0;
        for (var k = lid; k < len; k += WG) {
            sum += exp(x[base + k * stride] - row_max);
        }
        partial[lid] = sum;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if (lid < s) {
                partial[lid] += partial[lid + s];
            }
            workgroupBarrier();
        }
        let inv = 1.0 / partial[0];
        for (var k = lid; k < len; k += WG) {
            let at = base + k * stride;
            y[at] = exp(x[at] - row_max) * inv;
        }
        return;
    }

    let row = group * WG + lid;
    if (row >= params.rows) {
        return;
    }
    let base = row_base(row);
    var m = LOWEST;
    for (var k = 0u; k < len; k++) {
        m = max(m, x[base + k * stride]);
    }
    var sum = 0.0;
    for (var k = 0u; k < len; k++) {
        sum += exp(x[base + k * stride] - m);
    }
    let inv = 1.0 / sum;
    for (var k = 0u; k < len; k++) {
        let at = base + k * stride;
        y[at] = exp(x[at] - m) * inv;
    }
}
