// mesh_bottleneck: MeshRefinementStage's relu(bottleneck(vert_align(feats, pos * (1, -1, 1))))
// without storing the [V, 3840] samples: one launch per feature map accumulates
// W[o, col_map + c] * sample_c over the map's channels into y[r * ld_y + col_y + o]; MESH_FIRST
// starts from the bias, MESH_LAST applies the activation.
//
// Threads: 128 per workgroup, each two vertices (r and r + 128 of the workgroup's 256) x 32
// outputs: grid (ceil(V / 256), out_f / 32) from mesh_dispatch_args (n = V_cap,
// counts[count_slot] vertices); out_f a multiple of 32. On lavapipe every load is a per-lane
// bounds-checked load, uniform address or not (see conv2d.wgsl): two vertices share each
// channel's 8 weight vec4 loads, and the taps are branch-free (an outside tap reads element 0
// with weight 0). Measured on lavapipe (voxmesh_R50's 3840 -> 128 on 1194 vertices, back to back
// on the same loaded 2 cores): 1.5-1.6x the one-vertex-per-thread kernel (about 350 -> 225 ms a
// stage); four vertices per thread (128 accumulators) and two channels per iteration were both
// slower than two vertices, from register spills.
//
// | binding | what                                       | access     |
// |---------|--------------------------------------------|------------|
// | 0       | MeshParams (n, count_slot, flags, act,     | uniform    |
// |         | map_*, col_map, in_f, out_f, ld_y, col_y)  |            |
// | 1       | pos [V_cap, 3] (projected, y not flipped)  | read       |
// | 2       | map [C, H, W]                              | read       |
// | 3       | weight, transposed [in_f, out_f] as vec4s  | read       |
// | 4       | bias [out_f]                               | read       |
// | 5       | counts u32                                 | read       |
// | 6       | y [V_cap, ld_y]                            | read_write |
//
// Library: mesh, activation.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> pos: array<f32>;
@group(0) @binding(2) var<storage, read> map: array<f32>;
@group(0) @binding(3) var<storage, read> weight_t: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> counts: array<u32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

const OUTS: u32 = 32u;
const LANES: u32 = 128u;

// One vertex's four bilinear taps: in-range element indices, zero weights for outside taps.
struct Taps {
    idx: vec4<u32>,
    wt: vec4<f32>,
}

fn taps_of(r: u32) -> Taps {
    let t = mesh_taps(pos[3u * r], -pos[3u * r + 1u], params.map_h, params.map_w, false);
    let inside = t.idx >= vec4<i32>(0);
    return Taps(vec4<u32>(max(t.idx, vec4<i32>(0))), select(vec4<f32>(0.0), t.wt, inside));
}

fn sample(plane: u32, t: Taps) -> f32 {
    return map[plane + t.idx.x] * t.wt.x + map[plane + t.idx.y] * t.wt.y +
           map[plane + t.idx.z] * t.wt.z + map[plane + t.idx.w] * t.wt.w;
}

@compute @workgroup_size(128)
fn mesh_bottleneck(@builtin(workgroup_id) wg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    // Lanes walk vertices; the output block is the workgroup row's.
    let ra = wg.x * 2u * LANES + lid;
    let o0 = wg.y * OUTS;
    let n = min(params.n, counts[params.count_slot]);
    if (ra >= n || o0 >= params.out_f) {
        return;
    }
    // A lane without a second vertex computes its first twice and stores it once.
    let has_b = ra + LANES < n;
    let rb = select(ra, ra + LANES, has_b);
    let ta = taps_of(ra);
    let tb = taps_of(rb);
    let out_a = ra * params.ld_y + params.col_y + o0;
    let out_b = rb * params.ld_y + params.col_y + o0;
    let first = (params.flags & MESH_FIRST) != 0u;
    var acc_a: array<vec4<f32>, 8>;
    var acc_b: array<vec4<f32>, 8>;
    for (var q = 0u; q < 8u; q++) {
        let a = out_a + 4u * q;
        let b = out_b + 4u * q;
        let c = o0 + 4u * q;
        let bv = vec4<f32>(bias[c], bias[c + 1u], bias[c + 2u], bias[c + 3u]);
        acc_a[q] = select(vec4<f32>(y[a], y[a + 1u], y[a + 2u], y[a + 3u]), bv, first);
        acc_b[q] = select(vec4<f32>(y[b], y[b + 1u], y[b + 2u], y[b + 3u]), bv, first);
    }
    let hw = params.map_h * params.map_w;
    let row4 = params.out_f / 4u;
    for (var c = 0u; c < params.map_c; c++) {
        let plane = c * hw;
        let sa = sample(plane, ta);
        let sb = sample(plane, tb);
        // The 32 outputs' weights of this channel are contiguous: 8 vec4 loads for 64 FMAs.
        let w = (params.col_map + c) * row4 + o0 / 4u;
        for (var q = 0u; q < 8u; q++) {
            let wv = weight_t[w + q];
            acc_a[q] += wv * sa;
            acc_b[q] += wv * sb;
        }
    }
    let last = (params.flags & MESH_LAST) != 0u;
    for (var q = 0u; q < 8u; q++) {
        for (var j = 0u; j < 4u; j++) {
            let v = acc_a[q][j];
            y[out_a + 4u * q + j] = select(v, act_apply(v, params.act, 0.0, 0.0), last);
        }
    }
    if (has_b) {
        for (var q = 0u; q < 8u; q++) {
            for (var j = 0u; j < 4u; j++) {
                let v = acc_b[q][j];
                y[out_b + 4u * q + j] = select(v, act_apply(v, params.act, 0.0, 0.0), last);
            }
        }
    }
}
