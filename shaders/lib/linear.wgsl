// Shared pieces of the linear kernels (linear, linear_sg): their uniform params, the
// workgroup's block and the offsets of its batch rows. Values in, values out.

// linear.wgsl, linear_sg.wgsl: `LinearParams` in crates/wgcnn-kernels/src/linear.rs.
struct LinearParams {
    batch: u32,        // N
    in_features: u32,  // K
    out_features: u32, // M (row stride of y)
    row_offset: u32,   // first row of W held by `w`
    rows: u32,         // rows of W held by `w`
    row_blocks: u32,   // ceil(rows / rows per workgroup): 64 (linear) or 8 (linear_sg)
    has_bias: u32,
    act: u32,          // activation code (wgcnn_graph::Activation::code)
    p0: f32,
    p1: f32,
    _pad0: u32,
    _pad1: u32,
}

// A workgroup's block: rows row0.. of `w` (`rows_per` of them: 64 in linear, 8 in linear_sg)
// and batch rows n0..n0+3. Workgroup ids run row block fastest on a 2-D grid (linear id
// wg.x + wg.y * nwg.x); ok is false for ids past row_blocks * ceil(N / 4).
struct LinearBlock {
    ok: bool,
    row0: u32,
    n0: u32,
}

fn linear_block(p: LinearParams, wg: vec3<u32>, nwg: vec3<u32>, rows_per: u32) -> LinearBlock {
    let id = wg.x + wg.y * nwg.x;
    let batch_blocks = (p.batch + 3u) / 4u;
    let ok = id < p.row_blocks * batch_blocks;
    return LinearBlock(ok, (id % p.row_blocks) * rows_per, (id / p.row_blocks) * 4u);
}

// Offsets in x [N, K] of batch rows n0..n0+3; rows past the end re-read the last row (their
// sums are dropped), which keeps the loads in bounds and uniform.
fn linear_rows4(p: LinearParams, n0: u32) -> vec4<u32> {
    let last = p.batch - 1u;
    let n = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last));
    return n * p.in_features;
}
