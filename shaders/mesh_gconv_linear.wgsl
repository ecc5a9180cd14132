// mesh_gconv_linear: GraphConv's two Linear layers on the same input rows:
// y0 = W0 x + b0 and y1 = W1 x + b1, with x[r * ld_x + col_x + k] (k < in_f) and rows
// [V, out_f]. mesh_gconv_gather then sums y1 over each vertex's neighbours.
//
// Threads: 128 per workgroup, each two vertices (r and r + 128 of the workgroup's 256) x 16
// outputs: grid (ceil(V / 256), out_f / 16) from mesh_dispatch_args (n = V_cap,
// counts[count_slot] vertices); out_f a multiple of 16. The two vertices share each input
// column's 8 weight vec4 loads (per-lane loads on lavapipe, as in mesh_bottleneck.wgsl):
// measured back to back on lavapipe, a refinement stage's GraphConvs + offsets took 27-35 ms
// against 37-50 ms with one vertex per thread.
//
// | binding | what                          | access     |
// |---------|-------------------------------|------------|
// | 0       | MeshParams (n, count_slot, in_f, out_f, ld_x, col_x) | uniform |
// | 1       | x [V_cap, ld_x]               | read       |
// | 2       | w0, transposed [in_f, out_f] as vec4s | read |
// | 3       | b0 [out_f]                    | read       |
// | 4       | w1, transposed [in_f, out_f] as vec4s | read |
// | 5       | b1 [out_f]                    | read       |
// | 6       | counts u32                    | read       |
// | 7       | y0 [V_cap, out_f]             | read_write |
// | 8       | y1 [V_cap, out_f]             | read_write |
//
// Library: mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w0t: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b0: array<f32>;
@group(0) @binding(4) var<storage, read> w1t: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b1: array<f32>;
@group(0) @binding(6) var<storage, read> counts: array<u32>;
@group(0) @binding(7) var<storage, read_write> y0: array<f32>;
@group(0) @binding(8) var<storage, read_write> y1: array<f32>;

const OUTS: u32 = 16u;
const LANES: u32 = 128u;

@compute @workgroup_size(128)
fn mesh_gconv_linear(@builtin(workgroup_id) wg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    // Lanes walk vertices, the workgroup row picks 16 outputs: weight loads are the same address
    // across the workgroup, each feeds 8 FMAs (4 per vertex and layer).
    let ra = wg.x * 2u * LANES + lid;
    let o0 = wg.y * OUTS;
    var n = params.n;
    if (params.count_slot != MESH_NO_SLOT) {
        n = min(n, counts[params.count_slot]);
    }
    if (ra >= n || o0 >= params.out_f) {
        return;
    }
    // A lane without a second vertex computes its first twice and stores it once.
    let has_b = ra + LANES < n;
    let rb = select(ra, ra + LANES, has_b);
    var a0: array<vec4<f32>, 4>;
    var a1: array<vec4<f32>, 4>;
    for (var q = 0u; q < 4u; q++) {
        let b = o0 + 4u * q;
        a0[q] = vec4<f32>(b0[b], b0[b + 1u], b0[b + 2u], b0[b + 3u]);
        a1[q] = vec4<f32>(b1[b], b1[b + 1u], b1[b + 2u], b1[b + 3u]);
    }
    var c0 = a0;
    var c1 = a1;
    let xa = ra * params.ld_x + params.col_x;
    let xb = rb * params.ld_x + params.col_x;
    let row4 = params.out_f / 4u;
    for (var k = 0u; k < params.in_f; k++) {
        let va = x[xa + k];
        let vb = x[xb + k];
        let w = k * row4 + o0 / 4u;
        for (var q = 0u; q < 4u; q++) {
            let u0 = w0t[w + q];
            let u1 = w1t[w + q];
            a0[q] += u0 * va;
            a1[q] += u1 * va;
            c0[q] += u0 * vb;
            c1[q] += u1 * vb;
        }
    }
    for (var q = 0u; q < 4u; q++) {
        for (var j = 0u; j < 4u; j++) {
            y0[ra * params.out_f + o0 + 4u * q + j] = a0[q][j];
            y1[ra * params.out_f + o0 + 4u * q + j] = a1[q][j];
        }
    }
    if (has_b) {
        for (var q = 0u; q < 4u; q++) {
            for (var j = 0u; j < 4u; j++) {
                y0[rb * params.out_f + o0 + 4u * q + j] = c0[q][j];
                y1[rb * params.out_f + o0 + 4u * q + j] = c1[q][j];
            }
        }
    }
}
