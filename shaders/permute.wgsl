// permute: y = x.permute(perm) for tensors of rank <= 6 (data moves; output is contiguous).
//
// The host right-aligns the output shape into d0..d5 (leading axes of extent 1) and gives, for
// each output axis i, the input stride s_i of input axis perm[i]. Output element `idx` with
// coordinates (c0..c5) reads x[sum c_i * s_i].
//
// Threads: one output each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what        | access     |
// |---------|-------------|------------|
// | 0       | Params      | uniform    |
// | 1       | x           | read       |
// | 2       | y           | read_write |
//
// Params mirrors `PermuteParams` in crates/wgcnn-kernels/src/permute.rs.

struct Params {
    total: u32,
    d1: u32, d2: u32, d3: u32, d4: u32, d5: u32,   // output extents of axes 1..5 (d0 implied)
    s0: u32, s1: u32, s2: u32, s3: u32, s4: u32, s5: u32, // input strides per output axis
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn permute(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    var rem = i;
    var off = (rem % params.d5) * params.s5;
    rem = rem / params.d5;
    off += (rem % params.d4) * params.s4;
    rem = rem / params.d4;
    off += (rem % params.d3) * params.s3;
    rem = rem / params.d3;
    off += (rem % params.d2) * params.s2;
    rem = rem / params.d2;
    off += (rem % params.d1) * params.s1;
    rem = rem / params.d1;
    off += rem * params.s0;
    y[i] = x[off];
}
