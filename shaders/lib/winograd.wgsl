// Shared pieces of the Winograd kernels (F(2x2, 3x3): conv2d_winograd_input, _gemm, _output;
// F(4x4, 3x3): conv2d_winograd4_input, the same _gemm, conv2d_winograd4_output): their uniform
// params and the transform kernels' tile coordinates. Values in, values out.

// conv2d_winograd_input/_gemm/_output.wgsl, conv2d_winograd4_*.wgsl: `WinogradParams` in
// crates/wgcnn-kernels/src/conv2d/winograd.rs.
struct WinogradParams {
    batch: u32,        // N
    in_c: u32,         // C
    in_h: u32,         // H
    in_w: u32,         // W
    out_c: u32,        // K
    out_h: u32,        // OH
    out_w: u32,        // OW
    pad_top: u32,
    pad_left: u32,
    tiles_h: u32,      // ceil(OH / m), m = 2 or 4 outputs per tile side
    tiles_w: u32,      // ceil(OW / m)
    tiles: u32,        // N * tiles_h * tiles_w
    t_stride: u32,     // row length of V and M: tiles rounded up to the GEMM's block
    t_blocks: u32,     // t_stride / the GEMM's tile block
    k_blocks: u32,     // ceil(K / 16)
    has_bias: u32,
    has_residual: u32,
    act: u32,          // activation code (wgcnn_graph::Activation::code)
    p0: f32,
    p1: f32,
    out_c_total: u32,  // channels of the tensor y is (out_c unless y is a concatenation)
    out_c_offset: u32, // first channel of y written (a channel slice of a concatenation)
    positions: u32,    // transformed positions per tile: 16 (F(2x2, 3x3)) or 36 (F(4x4, 3x3))
    tile_row0: u32,    // first tile row of this band (large layers run in bands of tile rows)
}

// The (tile, channel) pair of a transform kernel's invocation lid of workgroup wg: 64
// invocations a workgroup on a 2-D grid (linear id i = (wg.x + wg.y * nwg.x) * 64 + lid), tile
// t = i % tiles fastest, channel i / tiles (input channels for the input transform, output
// channels for the output one); ok is false past channels * tiles. Tile t = (n * tiles_h + ty)
// * tiles_w + tx: `at` is (n, ty, tx), the image and the tile's row and column, the row counted
// from the band's first row (add tile_row0 for the layer's).
struct WinoItem {
    ok: bool,
    t: u32,
    ch: u32,
    at: vec3<u32>,
}

fn wino_item(p: WinogradParams, wg: vec3<u32>, nwg: vec3<u32>, lid: u32, channels: u32) -> WinoItem {
    let i = (wg.x + wg.y * nwg.x) * 64u + lid;
    let t = i % p.tiles;
    let per_img = p.tiles_h * p.tiles_w;
    let at = vec3<u32>(t / per_img, (t % per_img) / p.tiles_w, t % p.tiles_w);
    return WinoItem(i < channels * p.tiles, t, i / p.tiles, at);
}
