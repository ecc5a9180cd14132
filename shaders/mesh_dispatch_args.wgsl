// mesh_dispatch_args: the workgroup grid of an indirect dispatch from a count on the GPU:
// ceil(ceil(counts[count_slot] / in_f) * aux0 / aux1) workgroups (in_f items per group, 0
// meaning 1; aux0 threads per group; aux1 per workgroup), split into a 2-D grid of at most
// 65535 along x, written to args[3n .. 3n + 3]. With ld_y > 0 the grid is instead
// (ceil(items / aux1), ld_y, 1): kernels that give each workgroup row its own output block.
// The mesh's later kernels thus launch only the workgroups its real size needs.
//
// Threads: one.
//
// | binding | what                    | access     |
// |---------|-------------------------|------------|
// | 0       | MeshParams (n = args slot, count_slot, in_f, aux0, aux1, ld_y) | uniform |
// | 1       | counts u32              | read       |
// | 2       | args [slots, 3] u32     | read_write |
//
// Library: mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> args: array<u32>;

@compute @workgroup_size(1)
fn mesh_dispatch_args() {
    let per = max(params.in_f, 1u);
    let items = (counts[params.count_slot] + per - 1u) / per * params.aux0;
    let groups = (items + params.aux1 - 1u) / params.aux1;
    var x = min(groups, 65535u);
    var y = select(1u, (groups + 65534u) / 65535u, groups > 0u);
    if (params.ld_y > 0u) {
        x = groups;
        y = params.ld_y;
    }
    args[3u * params.n] = x;
    args[3u * params.n + 1u] = y;
    args[3u * params.n + 2u] = 1u;
}
