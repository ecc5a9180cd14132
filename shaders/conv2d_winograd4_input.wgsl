// conv2d_winograd4_input: the input transform of a Winograd F(4x4, 3x3) convolution (stride 1,
// dilation 1, one group): V[pos][c][t] = (B^T d B)[pos] for every input channel c and output
// tile t, where d is the 6x6 input patch under the tile's 4x4 outputs (zero where padding).
//
// Tiles: t = (n * tiles_h + ty) * tiles_w + tx over the batch; tile (ty, tx) covers output
// rows 4ty .. 4ty+3 and columns 4tx .. 4tx+3, and reads input rows 4ty - pad_top .. +5 (likewise
// columns). pos = 6 * i + j indexes the 36 transformed values (i down, j across). The middle
// stage (conv2d_winograd_gemm.wgsl, with positions = 36) multiplies them by the transformed
// weights, the last stage (conv2d_winograd4_output.wgsl) turns the products back into outputs.
// Rows of V are `t_stride` long (the tile count rounded up to the GEMM's tile block); the padding
// columns are left alone.
//
// The interpolation points are 0, 1, -1, 1/2, -2 and infinity: their results are about half as
// far from exact in f32 as those of the usual 0, ±1, ±2 (see `F4_ERROR_BUDGET` in
// crates/wgcnn-kernels/src/conv2d/winograd.rs, whose `G4` holds the matching weight transform).
//
// Threads: one invocation per (c, t), 64 per workgroup; workgroup id on a 2-D grid (linear id =
// wg.x + wg.y * nwg.x; invocations past the end return).
//
// | binding | what                          | access     |
// |---------|-------------------------------|------------|
// | 0       | Params                        | uniform    |
// | 1       | x [N, C, H, W]                | read       |
// | 2       | V [36, C, t_stride]           | read_write |
//
// Params: `WinogradParams` (lib/winograd.wgsl, mirrors `WinogradParams` in
// crates/wgcnn-kernels/src/conv2d/winograd.rs, shared by the Winograd kernels). Composed with
// lib/winograd.wgsl.

@group(0) @binding(0) var<uniform> params: WinogradParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;

// B^T applied to 6 values: the rows of F(4x4, 3x3)'s input transform for the points above
// (integer entries, so only the sums round).
fn bt6(d: array<f32, 6>) -> array<f32, 6> {
    return array<f32, 6>(
        2.0 * d[0] - 3.0 * d[1] - 4.0 * d[2] + 3.0 * d[3] + 2.0 * d[4],
        -2.0 * d[1] + d[2] + 5.0 * d[3] + 2.0 * d[4],
        2.0 * d[1] - 5.0 * d[2] + d[3] + 2.0 * d[4],
        -2.0 * d[1] - d[2] + 2.0 * d[3] + d[4],
        d[1] - 2.0 * d[2] - d[3] + 2.0 * d[4],
        2.0 * d[1] - 3.0 * d[2] - 4.0 * d[3] + 3.0 * d[4] + 2.0 * d[5],
    );
}

@compute @workgroup_size(64)
fn conv2d_winograd4_input(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    // Tile t of input channel c.
    let tile = wino_input(params, wg, nwg, lid, 4u);
    if (!tile.ok) {
        return;
    }
    let h = i32(params.in_h);
    let w = i32(params.in_w);

    // d B: each row of the patch transformed across (zero outside the input).
    var r: array<array<f32, 6>, 6>;
    for (var a = 0; a < 6; a++) {
        let yy = tile.y0 + a;
        let row_ok = yy >= 0 && yy < h;
        var row: array<f32, 6>;
        for (var b = 0; b < 6; b++) {
            let xx = tile.x0 + b;
            let ok = row_ok && xx >= 0 && xx < w;
            let off = select(0u, tile.plane + u32(yy * w + xx), ok);
            row[b] = select(0.0, x[off], ok);
        }
        r[a] = bt6(row);
    }
    // B^T (d B): each column transformed down, written as V[6i + j].
    for (var j = 0u; j < 6u; j++) {
        let col = bt6(array<f32, 6>(r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j]));
        for (var i = 0u; i < 6u; i++) {
            v[(i * 6u + j) * tile.stride + tile.base] = col[i];
        }
    }
}
