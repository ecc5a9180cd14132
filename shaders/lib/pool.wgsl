// Shared pieces of the pooling kernels (pool2d, pool2d_tile): their uniform params.

// pool2d.wgsl, pool2d_tile.wgsl: mirrors `Pool2dParams` in crates/wgcnn-kernels/src/pool2d.rs;
// keep both in step (80 bytes).
struct PoolParams {
    total: u32,            // N * C * OH * OW
    height: u32,           // H
    width: u32,            // W
    out_height: u32,       // OH
    out_width: u32,        // OW
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    pad_bottom: u32,
    pad_right: u32,
    mode: u32,             // 0 max, 1 average
    count_include_pad: u32,// average only: 1 counts padded positions in the divisor
    channels: u32,         // C
    out_c_total: u32,      // channels of the tensor y is (C unless y is a concatenation)
    out_c_offset: u32,     // first channel of y written (a channel slice of a concatenation)
    _pad0: u32,
    _pad1: u32,
}

// The most negative finite f32: the start of a max over a window, and what padded positions
// hold for a max (so they never win).
const POOL_LOWEST: f32 = -3.4028234663852886e38;
