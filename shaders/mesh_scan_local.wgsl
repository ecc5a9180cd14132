// mesh_scan_local: first step of an exclusive prefix sum of u32 data (the compactions of
// cubify, edges and adjacency): each block of 1024 elements is scanned in place and its total
// written to block_sums. mesh_scan_sums scans the totals, mesh_scan_add adds them back.
//
// Threads: 256 per workgroup, 4 consecutive elements each; one workgroup per block, 2-D grid.
//
// | binding | what                    | access     |
// |---------|-------------------------|------------|
// | 0       | MeshParams (n)          | uniform    |
// | 1       | data [n] u32            | read_write |
// | 2       | block_sums [blocks] u32 | read_write |
//
// Library: mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read_write> data: array<u32>;
@group(0) @binding(2) var<storage, read_write> block_sums: array<u32>;

var<workgroup> partial: array<u32, 256>;

@compute @workgroup_size(256)
fn mesh_scan_local(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let block = wg.x + wg.y * nwg.x;
    let base = block * 1024u + lid * 4u;
    var v: array<u32, 4>;
    var sum = 0u;
    for (var j = 0u; j < 4u; j++) {
        let i = base + j;
        v[j] = select(0u, data[min(i, params.n - 1u)], i < params.n);
        sum += v[j];
    }
    partial[lid] = sum;
    workgroupBarrier();
    // Hillis-Steele inclusive scan of the 256 thread sums.
    for (var off = 1u; off < 256u; off = off * 2u) {
        var add = 0u;
        if (lid >= off) {
            add = partial[lid - off];
        }
        workgroupBarrier();
        partial[lid] += add;
        workgroupBarrier();
    }
    // Uniform control flow above; the bounds check comes after the barriers.
    if (block * 1024u >= params.n) {
        return;
    }
    var run = partial[lid] - sum;
    for (var j = 0u; j < 4u; j++) {
        let i = base + j;
        if (i < params.n) {
            data[i] = run;
        }
        run += v[j];
    }
    if (lid == 255u) {
        block_sums[block] = partial[255];
    }
}
