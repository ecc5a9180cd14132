// scale_boxes: detections [N, D, 6] rows (x1, y1, x2, y2, score, label) mapped back to the input
// image: x * scale_x, y * scale_y; score and label copied. Unused rows (all zero, score -1) stay.
//
// Threads: one row each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what                  | access     |
// |---------|-----------------------|------------|
// | 0       | Params                | uniform    |
// | 1       | detections [N, D, 6]  | read       |
// | 2       | out [N, D, 6]         | read_write |
//
// Params mirrors `ScaleBoxesParams` in crates/wgcnn-kernels/src/scale_boxes.rs.

struct Params {
    rows: u32,     // N * D
    _pad: u32,
    scale_x: f32,  // original width / resized width
    scale_y: f32,  // original height / resized height
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> det: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn scale_boxes(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= params.rows) {
        return;
    }
    let b = r * 6u;
    out[b] = det[b] * params.scale_x;
    out[b + 1u] = det[b + 1u] * params.scale_y;
    out[b + 2u] = det[b + 2u] * params.scale_x;
    out[b + 3u] = det[b + 3u] * params.scale_y;
    out[b + 4u] = det[b + 4u];
    out[b + 5u] = det[b + 5u];
}
