// mesh_scan_sums: second step of the exclusive prefix sum: scans the per-block totals of
// mesh_scan_local in place (one workgroup; each thread walks a chunk sequentially) and stores the
// grand total in counts[slot2].
//
// Threads: one workgroup of 256.
//
// | binding | what                          | access     |
// |---------|-------------------------------|------------|
// | 0       | MeshParams (n = blocks, slot2) | uniform    |
// | 1       | block_sums [n] u32            | read_write |
// | 2       | counts u32                    | read_write |
//
// Library: mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read_write> block_sums: array<u32>;
@group(0) @binding(2) var<storage, read_write> counts: array<u32>;

var<workgroup> partial: array<u32, 256>;

@compute @workgroup_size(256)
fn mesh_scan_sums(@builtin(local_invocation_index) lid: u32) {
    let chunk = (params.n + 255u) / 256u;
    let start = min(lid * chunk, params.n);
    let end = min(start + chunk, params.n);
    var sum = 0u;
    for (var i = start; i < end; i++) {
        sum += block_sums[i];
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var off = 1u; off < 256u; off = off * 2u) {
        var add = 0u;
        if (lid >= off) {
            add = partial[lid - off];
        }
        workgroupBarrier();
        partial[lid] += add;
        workgroupBarrier();
    }
    var run = partial[lid] - sum;
    for (var i = start; i < end; i++) {
        let v = block_sums[i];
        block_sums[i] = run;
        run += v;
    }
    if (lid == 255u) {
        counts[params.slot2] = partial[255];
    }
}
