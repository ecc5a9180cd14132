// face_rows: gathers R-Net's or O-Net's outputs over their batches. Mode 0 (copy): rows
// [0, n) of src [rows, width] (a batch's output) to rows [first, first + n) of dst, n =
// min(max(count - first, 0), rows). Mode 1 (clear): zeroes dst's rows [count, rows), so rows
// past the boxes never pass a probability threshold.
//
// Threads: one value each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what                  | access     |
// |---------|-----------------------|------------|
// | 0       | Params                | uniform    |
// | 1       | count [1] u32         | read       |
// | 2       | src [rows, width]     | read       |
// | 3       | dst [., width]        | read_write |
//
// Params mirrors `FaceRowsParams` in crates/wgcnn-kernels/src/detect/faces.rs.

struct Params {
    first: u32,
    rows: u32,
    width: u32,
    mode: u32,  // 0 copy, 1 clear
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> count: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn face_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    let n = count[0];
    if (params.mode == 1u) {
        if (i < params.rows * params.width && i / params.width >= n) {
            dst[i] = 0.0;
        }
        return;
    }
    var rows = 0u;
    if (n > params.first) {
        rows = min(n - params.first, params.rows);
    }
    if (i < rows * params.width) {
        dst[params.first * params.width + i] = src[i];
    }
}
