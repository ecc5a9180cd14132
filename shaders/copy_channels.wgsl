// copy_channels: copies channels [src_offset, src_offset + count) of x [outer, src_channels,
// inner] into channels [dst_offset, dst_offset + count) of y [outer, dst_channels, inner].
//
// Concat along any axis is one launch per input (outer = product of the dims before the axis,
// inner = product after, dst_offset = running sum of the inputs' extents); with equal channel
// counts and zero offsets it is a plain copy, with a source offset it slices.
//
// Threads: one copied element each, 256 per workgroup, 2-D grid (linear id = x + y * nwg.x).
//
// | binding | what                            | access     |
// |---------|---------------------------------|------------|
// | 0       | Params                          | uniform    |
// | 1       | x [outer, src_channels, inner]  | read       |
// | 2       | y [outer, dst_channels, inner]  | read_write |
//
// Params mirrors `CopyChannelsParams` in crates/wgcnn-kernels/src/copy_channels.rs.

struct Params {
    total: u32,         // outer * count * inner
    count: u32,         // channels copied
    inner: u32,         // elements per channel
    src_channels: u32,
    src_offset: u32,
    dst_channels: u32,
    dst_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn copy_channels(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    let j = i % params.inner;
    let rest = i / params.inner;
    let c = rest % params.count;
    let o = rest / params.count;
    let src = (o * params.src_channels + params.src_offset + c) * params.inner + j;
    let dst = (o * params.dst_channels + params.dst_offset + c) * params.inner + j;
    y[dst] = x[src];
}
