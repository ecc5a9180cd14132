// preprocess: decoded RGBA8 image -> one normalized NCHW network input, entirely on the GPU.
//
// Mirrors torchvision's classification transform on a PIL image: resize so the shorter side
// becomes `resize` (antialiased bilinear or bicubic, PIL's separable filters: horizontal pass,
// rounded to 8 bits, then vertical pass, rounded to 8 bits), center crop, then
// `(v / 255 - mean[c]) / std[c]`. Only the cropped pixels are computed: for each output pixel
// the vertical taps each take a horizontal filtered row sample.
//
// Threads: one output pixel (all channels) each; 16x16 workgroups over the crop.
//
// | binding | what                                     | access     |
// |---------|------------------------------------------|------------|
// | 0       | Params                                   | uniform    |
// | 1       | image: packed RGBA8, one u32 per pixel   | read       |
// | 2       | out: f32 [N, channels, out_h, out_w]     | read_write |
//
// Params mirrors `PreprocessParams` in crates/wgcnn-kernels/src/preprocess.rs.

struct Params {
    in_w: u32,
    in_h: u32,
    resized_w: u32,     // size after the resize, before the crop
    resized_h: u32,
    crop_left: u32,     // crop origin in the resized image
    crop_top: u32,
    out_w: u32,         // crop size
    out_h: u32,
    resample: u32,       // 0: bilinear (triangle, support 1), 1: bicubic (a = -0.5, support 2)
    channels: u32,      // 3: RGB; 1: luminance (PIL "L": (299 R + 587 G + 114 B) / 1000)
    out_offset: u32,    // first element of this image in `out` (batch index * image size)
    in_offset: u32,     // first pixel of this image in `image` (several images share it)
    mean: vec4<f32>,    // per channel, in [0, 1] units
    inv_std: vec4<f32>, // 1 / std per channel
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> image: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn filter_weight(x: f32) -> f32 {
    let ax = abs(x);
    if (params.resample == 0u) {
        return max(0.0, 1.0 - ax);
    }
    let a = -0.5;
    if (ax < 1.0) {
        return ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1.0;
    }
    if (ax < 2.0) {
        return (((ax - 5.0) * ax + 8.0) * ax - 4.0) * a;
    }
    return 0.0;
}

fn support() -> f32 {
    return select(2.0, 1.0, params.resample == 0u);
}

// PIL's window for output index `o` of an axis resized from `in_len` to `out_len`:
// returns (first input index, tap count, center, filterscale).
fn window(o: u32, in_len: u32, out_len: u32) -> vec4<f32> {
    let scale = f32(in_len) / f32(out_len);
    let fscale = max(scale, 1.0);
    let sup = support() * fscale;
    let center = (f32(o) + 0.5) * scale;
    let lo = max(i32(center - sup + 0.5), 0);
    let hi = min(i32(center + sup + 0.5), i32(in_len));
    return vec4<f32>(f32(lo), f32(max(hi - lo, 0)), center, fscale);
}

fn to_u8(v: f32) -> f32 {
    return clamp(floor(v + 0.5), 0.0, 255.0);
}

fn texel(x: u32, y: u32) -> vec3<f32> {
    let p = image[params.in_offset + y * params.in_w + x];
    return vec3<f32>(f32(p & 0xffu), f32((p >> 8u) & 0xffu), f32((p >> 16u) & 0xffu));
}

@compute @workgroup_size(16, 16)
fn preprocess(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= params.out_w || gid.y >= params.out_h) {
        return;
    }
    let wx = window(gid.x + params.crop_left, params.in_w, params.resized_w);
    let wy = window(gid.y + params.crop_top, params.in_h, params.resized_h);
    let x0 = u32(wx.x);
    let y0 = u32(wy.x);
    // Normalizers of both windows (PIL divides the taps by their sum).
    var sx = 0.0;
    for (var i = 0u; i < u32(wx.y); i++) {
        sx += filter_weight((f32(x0 + i) - wx.z + 0.5) / wx.w);
    }
    var sy = 0.0;
    for (var j = 0u; j < u32(wy.y); j++) {
        sy += filter_weight((f32(y0 + j) - wy.z + 0.5) / wy.w);
    }
    var acc = vec3<f32>(0.0);
    for (var j = 0u; j < u32(wy.y); j++) {
        var row = vec3<f32>(0.0);
        for (var i = 0u; i < u32(wx.y); i++) {
            row += texel(x0 + i, y0 + j) * filter_weight((f32(x0 + i) - wx.z + 0.5) / wx.w);
        }
        let r8 = vec3<f32>(to_u8(row.x / sx), to_u8(row.y / sx), to_u8(row.z / sx));
        acc += r8 * filter_weight((f32(y0 + j) - wy.z + 0.5) / wy.w);
    }
    let rgb = vec3<f32>(to_u8(acc.x / sy), to_u8(acc.y / sy), to_u8(acc.z / sy)) / 255.0;
    let plane = params.out_w * params.out_h;
    let at = params.out_offset + gid.y * params.out_w + gid.x;
    if (params.channels == 1u) {
        let l = (rgb.x * 299.0 + rgb.y * 587.0 + rgb.z * 114.0) / 1000.0;
        out[at] = (l - params.mean.x) * params.inv_std.x;
    } else {
        out[at] = (rgb.x - params.mean.x) * params.inv_std.x;
        out[at + plane] = (rgb.y - params.mean.y) * params.inv_std.y;
        out[at + 2u * plane] = (rgb.z - params.mean.z) * params.inv_std.z;
    }
}
