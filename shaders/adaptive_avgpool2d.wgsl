// adaptive_avgpool2d: PyTorch's AdaptiveAvgPool2d over NCHW f32.
//
// Output (n, c, oy, ox) averages rows [floor(oy * H / OH), ceil((oy + 1) * H / OH)) and columns
// [floor(ox * W / OW), ceil((ox + 1) * W / OW)) of plane (n, c). Global average pooling is
// OH = OW = 1.
//
// Threads, chosen by `cooperative` (a uniform, so one pipeline serves both):
// - 0: one output per invocation, 64 per workgroup: small windows (adaptive 13 -> 6, 7x7 global
//      pooling over thousands of channels);
// - 1: one output per workgroup, its 64 invocations sum strided parts of the window and reduce
//      in workgroup memory: large windows over few planes (global pooling of 56x56 maps).
// Both use a 2-D grid (linear workgroup id = x + y * nwg.x).
//
// | binding | what                 | access     |
// |---------|----------------------|------------|
// | 0       | Params               | uniform    |
// | 1       | x [N, C, H, W]       | read       |
// | 2       | y [N, C, OH, OW]     | read_write |
//
// Params mirrors `AdaptiveAvgPool2dParams` in crates/wgcnn-kernels/src/adaptive_avgpool2d.rs.

struct Params {
    total: u32,        // N * C * OH * OW
    height: u32,       // H
    width: u32,        // W
    out_height: u32,   // OH
    out_width: u32,    // OW
    cooperative: u32,  // 1: one workgroup per output
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

// The window of output `i`: plane offset, first row/column, extents.
struct Window {
    base: u32,
    y0: u32,
    x0: u32,
    rows: u32,
    cols: u32,
}

fn window(i: u32) -> Window {
    let ox = i % params.out_width;
    let oy = (i / params.out_width) % params.out_height;
    let plane = i / (params.out_width * params.out_height);
    let h = params.height;
    let w = params.width;
    let oh = params.out_height;
    let ow = params.out_width;
    let y0 = (oy * h) / oh;
    let y1 = ((oy + 1u) * h + oh - 1u) / oh;
    let x0 = (ox * w) / ow;
    let x1 = ((ox + 1u) * w + ow - 1u) / ow;
    return Window(plane * h * w, y0, x0, y1 - y0, x1 - x0);
}

@compute @workgroup_size(64)
fn adaptive_avgpool2d(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let group = wg.x + wg.y * nwg.x;
    if (params.cooperative == 1u) {
        if (group >= params.total) {
            return;
        }
        let win = window(group);
        let n = win.rows * win.cols;
        var sum = 0.0;
        for (var k = lid; k < n; k += WG) {
            let r = win.y0 + k / win.cols;
            let c = win.x0 + k % win.cols;
            sum += x[win.base + r * params.width + c];
        }
        partial[lid] = sum;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if (lid < s) {
                partial[lid] += partial[lid + s];
            }
            workgroupBarrier();
        }
        if (lid == 0u) {
            y[group] = partial[0] / f32(n);
        }
        return;
    }

    let i = group * WG + lid;
    if (i >= params.total) {
        return;
    }
    let win = window(i);
    var sum = 0.0;
    for (var r = 0u; r < win.rows; r++) {
        let row = win.base + (win.y0 + r) * params.width + win.x0;
        for (var c = 0u; c < win.cols; c++) {
            sum += x[row + c];
        }
    }
    y[i] = sum / f32(win.rows * win.cols);
}
