// Index arithmetic of the elementwise and resampling kernels (unary, binary, copy_channels, lrn,
// pad, resize, argmax2d): one
// invocation per element, 256 to a workgroup, on a 2-D grid of workgroups (wgpu caps each grid
// axis at 65535). Values in, values out.

// The builtins an elementwise entry point takes (as its one parameter).
struct IdxIds {
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// The invocation's element: linear workgroup id wg.x + wg.y * nwg.x, 256 invocations each.
// Ids past the kernel's element count must return (the grid is rounded up).
fn idx_element(ids: IdxIds) -> u32 {
    return (ids.wg.x + ids.wg.y * ids.nwg.x) * 256u + ids.lid;
}

// Flat index i of an [outer, mid, inner] array as (inner, mid, outer) indices: for NCHW with
// inner = H * W and mid = C, (spatial, channel, image).
fn idx_split3(i: u32, mid: u32, inner: u32) -> vec3<u32> {
    let rest = i / inner;
    return vec3<u32>(i % inner, rest % mid, rest / mid);
}

// The flat index of (outer o, mid m, inner j) in an [outer, mids, inner] array.
fn idx_flat3(o: u32, m: u32, j: u32, mids: u32, inner: u32) -> u32 {
    return (o * mids + m) * inner + j;
}

// An output pixel of a resampling kernel: the invocation's element `index` of an
// [planes, height, width] output, split into column, row and plane; `ok` is false past the last
// element.
struct IdxPixel {
    index: u32,
    x: u32,
    y: u32,
    plane: u32,
    ok: bool,
}

fn idx_pixel(ids: IdxIds, total: u32, height: u32, width: u32) -> IdxPixel {
    let i = idx_element(ids);
    let o = idx_split3(i, height, width);
    return IdxPixel(i, o.x, o.y, o.z, i < total);
}
