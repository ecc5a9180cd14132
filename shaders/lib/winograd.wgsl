// Shared pieces of the Winograd kernels (F(2x2, 3x3): conv2d_winograd_input, _gemm, _output;
// F(4x4, 3x3): conv2d_winograd4_input, the same _gemm, conv2d_winograd4_output): their uniform
// params and the transform kernels' tile coordinates and offsets. Values in, values out.

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

// An input transform's invocation (conv2d_winograd_input, conv2d_winograd4_input), for tiles of
// m x m outputs (m = 2 or 4): tile t of input channel c (see wino_item). Tile (ty, tx) (ty the
// layer's tile row: the band's plus tile_row0) reads the patch whose top-left input is row
// m * ty - pad_top, column m * tx - pad_left (negative, or past the input's edge, inside the
// padding); its transformed value at position pos goes to V[pos][c][t], at pos * stride + base.
struct WinoIn {
    ok: bool,
    y0: i32,      // the patch's first input row
    x0: i32,      // the patch's first input column
    plane: u32,   // offset of image n's channel c in x
    base: u32,    // c * t_stride + t
    stride: u32,  // in_c * t_stride: one position's share of V
}

fn wino_input(p: WinogradParams, wg: vec3<u32>, nwg: vec3<u32>, lid: u32, m: u32) -> WinoIn {
    let it = wino_item(p, wg, nwg, lid, p.in_c);
    return WinoIn(
        it.ok,
        i32((it.at.y + p.tile_row0) * m) - i32(p.pad_top),
        i32(it.at.z * m) - i32(p.pad_left),
        (it.at.x * p.in_c + it.ch) * p.in_h * p.in_w,
        it.ch * p.t_stride + it.t,
        p.in_c * p.t_stride,
    );
}

// An output transform's invocation (conv2d_winograd_output, conv2d_winograd4_output), for tiles
// of m x m outputs: tile t of output channel k (see wino_item). The tile's products
// M[pos][k][t] are at pos * stride + base; the tile (ty the layer's tile row, as in WinoIn)
// covers output rows m * ty.. and columns m * tx.. of image n, whose channel k plane starts at
// planes.x in the [N, K, OH, OW] residual and at planes.y in y (channels out_c_offset.. of
// [N, out_c_total, OH, OW]).
struct WinoOut {
    ok: bool,
    k: u32,
    oy: u32,           // the tile's first output row
    ox: u32,           // the tile's first output column
    base: u32,         // k * t_stride + t
    stride: u32,       // out_c * t_stride: one position's share of M
    planes: vec2<u32>,
}

fn wino_output(p: WinogradParams, wg: vec3<u32>, nwg: vec3<u32>, lid: u32, m: u32) -> WinoOut {
    let it = wino_item(p, wg, nwg, lid, p.out_c);
    let n = it.at.x;
    let k = it.ch;
    let plane = p.out_h * p.out_w;
    return WinoOut(
        it.ok,
        k,
        (it.at.y + p.tile_row0) * m,
        it.at.z * m,
        k * p.t_stride + it.t,
        p.out_c * p.t_stride,
        vec2<u32>((n * p.out_c + k) * plane, (n * p.out_c_total + p.out_c_offset + k) * plane),
    );
}

// Output (r, q) of an output transform's tile, row o.oy + r and column o.ox + q: ok is false
// past the output's bottom or right edge (not written); res and dst are its offsets in the
// residual and in y.
struct WinoAt {
    ok: bool,
    res: u32,
    dst: u32,
}

fn wino_out_at(p: WinogradParams, o: WinoOut, r: u32, q: u32) -> WinoAt {
    let oy = o.oy + r;
    let ox = o.ox + q;
    let s = oy * p.out_w + ox;
    return WinoAt(oy < p.out_h && ox < p.out_w, o.planes.x + s, o.planes.y + s);
}
