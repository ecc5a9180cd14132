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
// Params mirrors `CopyChannelsParams` in crates/wgcnn-kernels/src/copy_channels.rs. Composed
// with lib/index.wgsl (element id, index splitting).

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
fn copy_channels(ids: IdxIds) {
    let i = idx_element(ids);
    if (i >= params.total) { return; }
    // (element in the channel, copied channel, outer index)
    let e = idx_split3(i, params.count, params.inner);
    let src = idx_flat3(e.z, params.src_offset + e.y, e.x, params.src_channels, params.inner);
    y[idx_flat3(e.z, params.dst_offset + e.y, e.x, params.dst_channels, params.inner)] = x[src];
}
