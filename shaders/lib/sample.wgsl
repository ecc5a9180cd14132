// Source coordinates of resampling kernels (resize, argmax2d): PyTorch's `F.interpolate`
// rules, values in, values out.

// Bilinear source of destination index `dst` along an axis of `extent` source samples, `scale`
// = source / destination: (low index, high index, weight of the high index), as f32s. With
// `align_corners` the corners map onto each other; otherwise half-pixel centres, clamped at 0.
fn sample_linear(dst: u32, scale: f32, extent: u32, align_corners: bool) -> vec3<f32> {
    var src: f32;
    if (align_corners) {
        src = scale * f32(dst);
    } else {
        src = max(scale * (f32(dst) + 0.5) - 0.5, 0.0);
    }
    let i0 = min(u32(floor(src)), extent - 1u);
    let i1 = min(i0 + 1u, extent - 1u);
    let lambda = clamp(src - f32(i0), 0.0, 1.0);
    return vec3<f32>(f32(i0), f32(i1), lambda);
}
