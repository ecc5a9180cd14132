// Shared pieces of the direct convolution kernels (conv2d, conv2d_sg, conv2d_1x1_sg): their
// uniform params, the workgroup's block of output channels and pixels, a lane's 4 output
// pixels, and the output offsets of the epilogue (a concat's channel slice).
// Only values in, values out: each kernel keeps its bindings and overrides.

// conv2d.wgsl, conv2d_sg.wgsl, conv2d_1x1_sg.wgsl: `Conv2dParams` in
// crates/wgcnn-kernels/src/conv2d.rs. pixel_blocks and chan_blocks count the kernel's own tiles
// (see its header); the subgroup kernels use 32-pixel, 16-channel tiles.
struct ConvParams {
    batch: u32,        // N
    in_c: u32,         // C
    in_h: u32,         // H
    in_w: u32,         // W
    out_c: u32,        // K
    out_h: u32,        // OH
    out_w: u32,        // OW
    groups: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    dil_h: u32,
    dil_w: u32,
    pixel_blocks: u32, // ceil(N*OH*OW / pixels per workgroup)
    chan_blocks: u32,  // ceil((K/groups) / channels per workgroup), per group
    has_bias: u32,
    has_residual: u32,
    act: u32,          // activation code (wgcnn_graph::Activation::code)
    p0: f32,
    p1: f32,
    cb: u32,           // conv2d.wgsl's CB override of this launch's pipeline (16 for the others; not read)
    out_c_total: u32,  // channels of the tensor y is (out_c unless y is a concatenation)
    out_c_offset: u32, // first channel of y written (a channel slice of a concatenation)
    _pad0: u32,
    _pad1: u32,
}

// A workgroup's block: group g (cg input channels per group), output channels k0.. of the
// block (the group's end is k_end) and its first output pixel; ok is false for ids past the end
// of the grid. Ids run pixel block fastest: id = pixel_block + pixel_blocks * (group *
// chan_blocks + chan_block).
struct ConvBlock {
    ok: bool,
    g: u32,
    cg: u32,
    k0: u32,
    k_end: u32,
    pixel0: u32,
}

fn conv_block(p: ConvParams, id: u32, channels: u32, pixels: u32) -> ConvBlock {
    var b: ConvBlock;
    b.ok = id < p.pixel_blocks * p.chan_blocks * p.groups;
    let gcb = id / p.pixel_blocks;
    b.g = gcb / p.chan_blocks;
    b.cg = p.in_c / p.groups;
    let kg = p.out_c / p.groups;
    b.k_end = (b.g + 1u) * kg;
    b.k0 = b.g * kg + (gcb % p.chan_blocks) * channels;
    b.pixel0 = (id % p.pixel_blocks) * pixels;
    return b;
}

// 4 consecutive output pixels in N*OH*OW order from `first`: image, spatial index, top-left
// input corner (negative in the padding), the offset of the image's first input channel of
// group g, and whether the pixel exists (those past the end are clamped to the last one).
struct ConvPixels {
    img: vec4<u32>,
    sp: vec4<u32>,
    iy0: vec4<i32>,
    ix0: vec4<i32>,
    base: vec4<u32>,
    live: vec4<bool>,
}

fn conv_pixels(p: ConvParams, first: u32, g: u32) -> ConvPixels {
    let plane = p.out_h * p.out_w;
    let m = p.batch * plane;
    let in_plane = p.in_h * p.in_w;
    var px: ConvPixels;
    for (var i = 0u; i < 4u; i++) {
        px.live[i] = first + i < m;
        let pc = min(first + i, m - 1u);
        px.img[i] = pc / plane;
        px.sp[i] = pc % plane;
        px.iy0[i] = i32((px.sp[i] / p.out_w) * p.stride_h) - i32(p.pad_top);
        px.ix0[i] = i32((px.sp[i] % p.out_w) * p.stride_w) - i32(p.pad_left);
        px.base[i] = (px.img[i] * p.in_c + g * (p.in_c / p.groups)) * in_plane;
    }
    return px;
}

// Tap (ky, kx) of the 4 pixels: which read inside the input (not padding, pixel live), and
// their offsets in the group's first input channel (0 where not).
struct ConvTap {
    ok: vec4<bool>,
    off: vec4<u32>,
}

fn conv_tap(p: ConvParams, px: ConvPixels, ky: u32, kx: u32) -> ConvTap {
    let h = i32(p.in_h);
    let wd = i32(p.in_w);
    let iy = px.iy0 + vec4<i32>(i32(ky * p.dil_h));
    let ix = px.ix0 + vec4<i32>(i32(kx * p.dil_w));
    var t: ConvTap;
    t.ok = (iy >= vec4<i32>(0)) & (iy < vec4<i32>(h)) & (ix >= vec4<i32>(0)) & (ix < vec4<i32>(wd)) & px.live;
    t.off = select(vec4<u32>(0u), px.base + vec4<u32>(iy * vec4<i32>(wd) + ix), t.ok);
    return t;
}

// Offsets of output channel k's plane of image n: in the [N, K, OH, OW] residual (.x) and in y,
// channels out_c_offset.. of [N, out_c_total, OH, OW] (.y).
fn conv_out_planes(p: ConvParams, n: u32, k: u32) -> vec2<u32> {
    let plane = p.out_h * p.out_w;
    return vec2<u32>((n * p.out_c + k) * plane, (n * p.out_c_total + p.out_c_offset + k) * plane);
}
