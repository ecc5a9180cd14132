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
// Params mirrors `LrnParams` in crates/wgcnn-kernels/src/lrn.rs. Composed with lib/index.wgsl
// (element id, index splitting).

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

// The sum of squares over channel c's window (channels c - size/2 ..= c + (size-1)/2, cut to
// 0..C), at offset base of channel 0.
fn window_sum_sq(base: u32, c: u32) -> f32 {
    let lo = u32(max(i32(c) - i32(params.size / 2u), 0));
    let hi = u32(min(i32(c) + i32((params.size - 1u) / 2u), i32(params.channels) - 1));
    var sum = 0.0;
    for (var j = lo; j <= hi; j++) {
        let v = x[base + j * params.spatial];
        sum += v * v;
    }
    return sum;
}

@compute @workgroup_size(256)
fn lrn(ids: IdxIds) {
    let i = idx_element(ids);
    if (i >= params.total) { return; }
    // (spatial index, channel, image)
    let e = idx_split3(i, params.channels, params.spatial);
    let sum = window_sum_sq(idx_flat3(e.z, 0u, e.x, params.channels, params.spatial), e.y);
    let denom = pow(params.k + params.alpha / f32(params.size) * sum, params.beta);
    y[i] = x[i] / denom;
}
