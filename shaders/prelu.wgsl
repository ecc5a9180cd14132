// prelu: PReLU over NCHW f32, y = x where x >= 0, else slope[c] * x (MTCNN's activation).
//
// Threads: one element offset o within the plane each (workgroup x = 256 offsets), looping
// over a group of 16 consecutive planes (workgroup y + 65535 * z); the channel is found with
// one modulo per invocation and stepped after that, so no element needs a division, and
// neighbouring lanes read neighbouring elements. Measured on lavapipe (MTCNN's pyramid and
// R-Net): the flat `binary` kernel's per-element `(i / spatial) % C` made PReLU a third of the
// nets' time. Planes under 32 elements (dense layers: spatial = 1) stay on `binary`
// (`prelu::MIN_SPATIAL`): here most lanes would idle.
//
// | binding | what                        | access     |
// |---------|-----------------------------|------------|
// | 0       | Params                      | uniform    |
// | 1       | x [N, C, spatial]           | read       |
// | 2       | slope [C] (or [1])          | read       |
// | 3       | y [N, C, spatial]           | read_write |
//
// Params mirrors `PreluParams` in crates/wgcnn-kernels/src/prelu.rs.

struct Params {
    spatial: u32,  // elements per plane
    channels: u32, // C
    planes: u32,   // N * C
    single: u32,   // 1: one slope for every channel
}

// Planes per workgroup row; `prelu::PLANES_PER_GROUP` on the host.
const PLANES: u32 = 16u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> slope: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn prelu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = wg.x * 256u + lid;
    if (o >= params.spatial) {
        return;
    }
    let first = (wg.y + wg.z * 65535u) * PLANES;
    let last = min(first + PLANES, params.planes);
    var c = first % params.channels;
    for (var p = first; p < last; p++) {
        let a = slope[select(c, 0u, params.single == 1u)];
        let i = p * params.spatial + o;
        let v = x[i];
        y[i] = select(v * a, v, v >= 0.0);
        c += 1u;
        if (c == params.channels) {
            c = 0u;
        }
    }
}
