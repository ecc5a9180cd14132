// argmax2d: a segmenter's class map. For each output pixel (n, oy, ox), the index of the largest
// channel of the logits x [N, C, H, W] bilinearly resized to [OH, OW] (PyTorch's F.interpolate,
// align_corners=False: source max(scale * (dst + 0.5) - 0.5, 0), scale = in / out in f32, the
// same taps as resize.wgsl), the first one on ties, written as f32. The resized logits are never
// stored: a 12-megapixel photo's 21 channels would not fit one binding.
//
// Threads: one output pixel each, looping over the channels (the four taps' addresses are the
// same for every channel, a plane apart), 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
// At the input size the taps have weight 1 and 0, so the values compared are the logits.
//
// | binding | what                  | access     |
// |---------|-----------------------|------------|
// | 0       | Params                | uniform    |
// | 1       | x [N, C, H, W]        | read       |
// | 2       | y [N, OH, OW]         | read_write |
//
// Params mirrors `ArgMax2dParams` in crates/wgcnn-kernels/src/argmax2d.rs.
// Composed with lib/index.wgsl (the element id) and lib/sample.wgsl (the bilinear source).

struct Params {
    total: u32,      // N * OH * OW
    channels: u32,   // C
    height: u32,     // H
    width: u32,      // W
    out_height: u32, // OH
    out_width: u32,  // OW
    scale_h: f32,    // H / OH
    scale_w: f32,    // W / OW
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn argmax2d(ids: IdxIds) {
    let o = idx_pixel(ids, params.total, params.out_height, params.out_width);
    if (!o.ok) {
        return;
    }
    let n = o.plane;
    let ly = sample_linear(o.y, params.scale_h, params.height, false);
    let lx = sample_linear(o.x, params.scale_w, params.width, false);
    let plane = params.height * params.width;
    let y0 = u32(ly.x) * params.width;
    let y1 = u32(ly.y) * params.width;
    let x0 = u32(lx.x);
    let x1 = u32(lx.y);
    var base = n * params.channels * plane;
    var best = -3.4028235e38;
    var arg = 0u;
    for (var c = 0u; c < params.channels; c++) {
        let top = (1.0 - lx.z) * x[base + y0 + x0] + lx.z * x[base + y0 + x1];
        let bottom = (1.0 - lx.z) * x[base + y1 + x0] + lx.z * x[base + y1 + x1];
        let v = (1.0 - ly.z) * top + ly.z * bottom;
        // `>` keeps the first maximum; a NaN never wins (channel 0 when nothing is finite), as
        // the interpreter does.
        if (v > best) {
            best = v;
            arg = c;
        }
        base += plane;
    }
    y[o.index] = f32(arg);
}
