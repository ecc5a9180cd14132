// conv2d_winograd_input: the input transform of a Winograd F(2x2, 3x3) convolution (stride 1,
// dilation 1, one group): V[pos][c][t] = (B^T d B)[pos] for every input channel c and output
// tile t, where d is the 4x4 input patch under the tile's 2x2 outputs (zero where padding).
//
// Tiles: t = (n * tiles_h + ty) * tiles_w + tx over the batch; tile (ty, tx) covers output
// rows 2ty, 2ty+1 and columns 2tx, 2tx+1, and reads input rows 2ty - pad_top .. +3 (likewise
// columns). pos = 4 * i + j indexes the 16 transformed values. The middle stage
// (conv2d_winograd_gemm.wgsl) multiplies them by the transformed weights, the last stage
// (conv2d_winograd_output.wgsl) turns the products back into outputs. Rows of V are `t_stride` long
// (the tile count rounded up to the GEMM's tile block); the padding columns are left alone.
//
// Threads: one invocation per (c, t), 64 per workgroup; workgroup id on a 2-D grid (linear id =
// wg.x + wg.y * nwg.x; invocations past the end return).
//
// | binding | what                          | access     |
// |---------|-------------------------------|------------|
// | 0       | Params                        | uniform    |
// | 1       | x [N, C, H, W]                | read       |
// | 2       | V [16, C, t_stride]           | read_write |
//
// Params: `WinogradParams` (lib/winograd.wgsl, mirrors `WinogradParams` in
// crates/wgcnn-kernels/src/conv2d/winograd.rs, shared by the three Winograd kernels). Composed
// with lib/winograd.wgsl.

@group(0) @binding(0) var<uniform> params: WinogradParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;

// B^T applied to 4 values: the rows of F(2x2, 3x3)'s input transform (interpolation points
// 0, 1, -1 and infinity; F(4x4, 3x3) does 1.8x fewer multiply-adds but its f32 results are
// 4x further from exact, which measurably moved Inception-v4's logits).
fn bt(d: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(d.x - d.z, d.y + d.z, d.z - d.y, d.y - d.w);
}

@compute @workgroup_size(64)
fn conv2d_winograd_input(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    // Tile t of input channel c.
    let tile = wino_input(params, wg, nwg, lid, 2u);
    if (!tile.ok) {
        return;
    }
    let h = i32(params.in_h);
    let w = i32(params.in_w);

    // The patch's 4 columns as vec4s down the rows, and the row mask.
    let cols = vec4<i32>(tile.x0) + vec4<i32>(0, 1, 2, 3);
    let col_ok = (cols >= vec4<i32>(0)) & (cols < vec4<i32>(w));
    var d: array<vec4<f32>, 4>;
    for (var a = 0; a < 4; a++) {
        let yy = tile.y0 + a;
        let ok = col_ok & vec4<bool>(yy >= 0 && yy < h);
        let off = select(vec4<u32>(0u), vec4<u32>(tile.plane) + vec4<u32>(yy * w + cols), ok);
        d[a] = select(vec4<f32>(0.0), vec4<f32>(x[off.x], x[off.y], x[off.z], x[off.w]), ok);
    }
    // B^T d: combine rows; then (B^T d) B: combine the columns of each resulting row.
    let r = array<vec4<f32>, 4>(d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]);
    for (var a = 0u; a < 4u; a++) {
        let o = bt(r[a]);
        v[(a * 4u) * tile.stride + tile.base] = o.x;
        v[(a * 4u + 1u) * tile.stride + tile.base] = o.y;
        v[(a * 4u + 2u) * tile.stride + tile.base] = o.z;
        v[(a * 4u + 3u) * tile.stride + tile.base] = o.w;
    }
}
