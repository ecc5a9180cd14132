// resize: PyTorch's F.interpolate over NCHW f32, mode "nearest" or "bilinear" (no antialias).
//
// Output (plane, oy, ox), plane = n * C + c:
// - mode 0 (nearest): source index min(floor(dst * scale), in - 1), scale = in / out (f32, as
//   PyTorch computes it on the host);
// - mode 1 (bilinear): source coordinate scale * dst (align_corners) or
//   max(scale * (dst + 0.5) - 0.5, 0) (not), scale = (in - 1) / (out - 1) resp. in / out;
//   i0 = min(floor(src), in - 1), i1 = i0 + 1 clamped, weight of i1 = clamp(src - i0, 0, 1).
//
// Threads: one output each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what                  | access     |
// |---------|-----------------------|------------|
// | 0       | Params                | uniform    |
// | 1       | x [N, C, H, W]        | read       |
// | 2       | y [N, C, OH, OW]      | read_write |
//
// Params mirrors `ResizeParams` in crates/wgcnn-kernels/src/resize.rs.
// Composed with lib/index.wgsl (the element id) and lib/sample.wgsl (the bilinear source).

struct Params {
    total: u32,         // N * C * OH * OW
    height: u32,        // H
    width: u32,         // W
    out_height: u32,    // OH
    out_width: u32,     // OW
    mode: u32,          // 0 nearest, 1 bilinear
    align_corners: u32, // bilinear only
    _pad0: u32,
    scale_h: f32,       // see the header
    scale_w: f32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn resize(ids: IdxIds) {
    let o = idx_pixel(ids, params.total, params.out_height, params.out_width);
    if (!o.ok) {
        return;
    }
    let ox = o.x;
    let oy = o.y;
    let base = o.plane * params.height * params.width;
    if (params.mode == 0u) {
        let sy = min(u32(floor(f32(oy) * params.scale_h)), params.height - 1u);
        let sx = min(u32(floor(f32(ox) * params.scale_w)), params.width - 1u);
        y[o.index] = x[base + sy * params.width + sx];
        return;
    }
    let ly = sample_linear(oy, params.scale_h, params.height, params.align_corners == 1u);
    let lx = sample_linear(ox, params.scale_w, params.width, params.align_corners == 1u);
    let y0 = u32(ly.x) * params.width;
    let y1 = u32(ly.y) * params.width;
    let x0 = u32(lx.x);
    let x1 = u32(lx.y);
    let top = (1.0 - lx.z) * x[base + y0 + x0] + lx.z * x[base + y0 + x1];
    let bottom = (1.0 - lx.z) * x[base + y1 + x0] + lx.z * x[base + y1 + x1];
    y[o.index] = (1.0 - ly.z) * top + ly.z * bottom;
}
