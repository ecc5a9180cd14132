// paste_masks: Mask R-CNN's maskrcnn_inference + torchvision's paste_masks_in_image. Per
// detection row (x1, y1, x2, y2, score, label) of [N, D, 6] and its logits [K, M, M]:
//   prob = sigmoid(logits[label]) zero-padded by `padding` to P = M + 2 padding;
//   the box expanded about its centre by scale = P / M (f32: half = (x2 - x1) * 0.5 * scale,
//   centre = (x2 + x1) * 0.5) and truncated toward zero to (bx0, by0, bx1, by1);
//   out[n, d, y, x] = bilinear(prob) at (y - by0, x - bx0) of the map resized to
//   (by1 - by0 + 1) x (bx1 - bx0 + 1) (align_corners=False, the taps of `resize`)
//   inside the box and the image, else 0. Unused rows (score -1) and labels that are not a
//   channel index give 0 everywhere.
//
// Only the four taps a pixel reads are computed (no resized map is materialized).
//
// Threads: one output pixel each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what                         | access     |
// |---------|------------------------------|------------|
// | 0       | Params                       | uniform    |
// | 1       | logits [N * D, K, M, M]      | read       |
// | 2       | detections [N, D, 6]         | read       |
// | 3       | out [N, D, H, W]             | read_write |
//
// Params mirrors `PasteMasksParams` in crates/wgcnn-kernels/src/paste_masks.rs. Composed with
// lib/activation.wgsl (the clamped sigmoid).

struct Params {
    total: u32,   // N * D * H * W
    height: u32,  // H
    width: u32,   // W
    classes: u32, // K
    mask: u32,    // M
    padding: u32,
    scale: f32,   // float(M + 2 padding) / M rounded to f32
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> dets: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// PyTorch's linear source index along one axis: (i0, i1, weight of i1) as in `resize`.
fn tap(dst: u32, input: u32, output: u32) -> vec3<f32> {
    let scale = f32(input) / f32(output);
    let src = max(scale * (f32(dst) + 0.5) - 0.5, 0.0);
    let i0 = min(u32(src), input - 1u);
    let i1 = select(i0, i0 + 1u, i0 + 1u < input);
    let w1 = clamp(src - f32(i0), 0.0, 1.0);
    return vec3<f32>(f32(i0), f32(i1), w1);
}

// The padded probability map at (row i, column j).
fn prob(base: u32, i: u32, j: u32) -> f32 {
    let p = params.padding;
    let m = params.mask;
    if (i < p || j < p || i >= m + p || j >= m + p) {
        return 0.0;
    }
    return act_apply(logits[base + (i - p) * m + (j - p)], 3u, 0.0, 0.0);
}

@compute @workgroup_size(256)
fn paste_masks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    let x = i % params.width;
    let y = (i / params.width) % params.height;
    let row = i / (params.width * params.height);
    out[i] = 0.0;
    let score = dets[row * 6u + 4u];
    let label = dets[row * 6u + 5u];
    // `label >= 0 && label < K` is false for NaN too.
    if (score == -1.0 || !(label >= 0.0 && label < f32(params.classes))) {
        return;
    }
    let x1 = dets[row * 6u];
    let y1 = dets[row * 6u + 1u];
    let x2 = dets[row * 6u + 2u];
    let y2 = dets[row * 6u + 3u];
    let w_half = (x2 - x1) * 0.5 * params.scale;
    let h_half = (y2 - y1) * 0.5 * params.scale;
    let x_c = (x2 + x1) * 0.5;
    let y_c = (y2 + y1) * 0.5;
    let bx0 = i32(x_c - w_half);
    let by0 = i32(y_c - h_half);
    let bx1 = i32(x_c + w_half);
    let by1 = i32(y_c + h_half);
    let xi = i32(x);
    let yi = i32(y);
    if (xi < bx0 || xi > bx1 || yi < by0 || yi > by1) {
        return;
    }
    let padded = params.mask + 2u * params.padding;
    let ty = tap(u32(yi - by0), padded, u32(by1 - by0 + 1));
    let tx = tap(u32(xi - bx0), padded, u32(bx1 - bx0 + 1));
    let base = (row * params.classes + u32(label)) * params.mask * params.mask;
    let r0 = u32(ty.x);
    let r1 = u32(ty.y);
    let c0 = u32(tx.x);
    let c1 = u32(tx.y);
    let top = (1.0 - tx.z) * prob(base, r0, c0) + tx.z * prob(base, r0, c1);
    let bottom = (1.0 - tx.z) * prob(base, r1, c0) + tx.z * prob(base, r1, c1);
    out[i] = (1.0 - ty.z) * top + ty.z * bottom;
}
