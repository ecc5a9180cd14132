// lrn: PyTorch's LocalResponseNorm across channels over NCHW f32 (AlexNet, GoogLeNet):
//   y[n, c, p] = x[n, c, p] / (k + alpha / size * sum_{j in window(c)} x[n, j, p]^2)^beta,
//   window(c) = [c - size / 2, c + (size - 1) / 2] clipped to [0, C).
//
// Threads: one output each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what              | access     |
// |---------|-------------------|------------|
// | 0       | Params            | uniform    |
// | 1       | x [N, C, H, W]    | read       |
// | 2       | y [N, C, H, W]    | read_write |
//
// Params mirrors `LrnParams` in crates/wgcnn-kernels/src/lrn.rs.

struct Params {
    total: u32,     // N * C * H * W
    channels: u32,  // C
    spatial: u32,   // H * W
    size: u32,      // window length in channels
    alpha: f32,
    beta: f32,
    k: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn lrn(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    let p = i % params.spatial;
    let c = (i / params.spatial) % params.channels;
    let n = i / (params.spatial * params.channels);
    let c0 = i32(c) - i32(params.size / 2u);
    let c1 = i32(c) + i32((params.size - 1u) / 2u);
    let lo = u32(max(c0, 0));
    let hi = u32(min(c1, i32(params.channels) - 1));
    let base = n * params.channels * params.spatial + p;
    var sum = 0.0;
    for (var j = lo; j <= hi; j++) {
        let v = x[base + j * params.spatial];
        sum += v * v;
    }
    let denom = pow(params.k + params.alpha / f32(params.size) * sum, params.beta);
    y[i] = x[i] / denom;
}
