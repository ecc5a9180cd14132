// topk_sort: bitonic sorting of (key, index) pairs in blocks of at most 2048, in workgroup
// memory, into descending key order with ties by ascending index (a total order, so the result
// is deterministic: a stable descending sort).
//
// Each workgroup handles one table entry (a, b, len, _) (offsets in pairs):
// - mode 0 (sort):  sorts pairs[a .. a + len) in place; len is a power of two <= 2048.
//   Key 0 marks an entry nobody wants (below a score threshold, NaN, or padding): such
//   entries become padding (0, 0xffffffff), the others are gathered to the front in their
//   order (a prefix sum of per-thread counts) and only the smallest power of two holding
//   them is sorted, so a block with few wanted entries costs few stages.
// - mode 1 (merge): pairs[a ..) and pairs[b ..) are sorted blocks of len; writes the len best of
//   their union, sorted, to pairs[a ..): the elementwise better of A[i] and B[len - 1 - i] is a
//   bitonic sequence holding the top len, which one bitonic merge sorts.
// Repeated merges (the host pairs blocks at strides 1, 2, 4, ...) leave the top-len of a long
// segment in its first block: a top-k for k <= 2048 over any length.
//
// Threads: 256 per workgroup, each handling len / 512 comparators per stage; workgroup id
// (x + y * nwg.x) = table entry.
//
// Workgroup memory: exactly the 2048 pairs (16 384 bytes, WebGPU's default
// maxComputeWorkgroupStorageSize); nothing else may live there. The gather's prefix sum uses
// the pair array as scratch before the pairs go in (an atomic slot counter would need 16
// more bytes), and the table entry is read from the read-only storage buffer (uniform under
// WGSL's uniformity rules) instead of a shared copy.
//
// | binding | what                                 | access     |
// |---------|--------------------------------------|------------|
// | 0       | Params                               | uniform    |
// | 1       | table [entries] vec4 (a, b, len, 0)  | read       |
// | 2       | pairs vec2<u32> (key, index)         | read_write |
//
// Params mirrors `TopkSortParams` in crates/wgcnn-kernels/src/topk_sort.rs.

struct Params {
    entries: u32,
    mode: u32,   // 0 sort, 1 merge
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> pairs: array<vec2<u32>>;

var<workgroup> sh: array<vec2<u32>, 2048>;

const PADDING: vec2<u32> = vec2<u32>(0u, 0xffffffffu);

// Whether `x` comes before `y`: larger key first, then smaller index.
fn before(x: vec2<u32>, y: vec2<u32>) -> bool {
    return x.x > y.x || (x.x == y.x && x.y < y.y);
}

// One compare-exchange stage over pairs (lo, lo + j); `k` = 0 sorts every pair descending,
// otherwise the block of `lo & k` picks the direction (bitonic sort).
fn stage(len: u32, k: u32, j: u32, lid: u32) {
    for (var t = lid; t < len / 2u; t += 256u) {
        let lo = (t / j) * 2u * j + t % j;
        let hi = lo + j;
        let x = sh[lo];
        let y = sh[hi];
        let desc = k == 0u || (lo & k) == 0u;
        var swap: bool;
        if (desc) {
            swap = before(y, x);
        } else {
            swap = before(x, y);
        }
        if (swap) {
            sh[lo] = y;
            sh[hi] = x;
        }
    }
}

@compute @workgroup_size(256)
fn topk_sort(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let id = wg.x + wg.y * nwg.x;
    if (id >= params.entries) {
        return;
    }
    let e = table[id];
    let len = min(e.z, 2048u);
    if (params.mode == 0u) {
        // Thread lid owns positions [first, first + per): it counts their wanted pairs, a
        // prefix sum of the 256 counts (in sh[.].x, 16 chunks of 16: few barriers, which
        // lavapipe pays dearly for) gives where they go, and the same thread moves them there
        // in order.
        let per = max(len / 256u, 1u);
        let first = lid * per;
        let last = min(first + per, len);
        var own = 0u;
        for (var t = first; t < last; t++) {
            if (pairs[e.x + t].x != 0u) {
                own += 1u;
            }
        }
        sh[lid].x = own;
        workgroupBarrier();
        if (lid < 16u) {
            var chunk = 0u;
            for (var i = lid * 16u; i < lid * 16u + 16u; i++) {
                chunk += sh[i].x;
            }
            sh[256u + lid].x = chunk;
        }
        workgroupBarrier();
        var before_me = 0u;
        for (var c = 0u; c < lid / 16u; c++) {
            before_me += sh[256u + c].x;
        }
        for (var i = lid & ~15u; i < lid; i++) {
            before_me += sh[i].x;
        }
        if (lid == 0u) {
            var total = 0u;
            for (var c = 0u; c < 16u; c++) {
                total += sh[256u + c].x;
            }
            sh[272].x = total;
        }
        let count = workgroupUniformLoad(&sh[272]).x;
        // Every thread has read its prefix; the pairs may now overwrite the scratch.
        workgroupBarrier();
        var slot = before_me;
        for (var t = first; t < last; t++) {
            let v = pairs[e.x + t];
            if (v.x != 0u) {
                sh[slot] = v;
                slot += 1u;
            }
            if (t >= count) {
                sh[t] = PADDING;
            }
        }
        workgroupBarrier();
        // The smallest power of two >= count (count is uniform: workgroupUniformLoad).
        var n = 1u;
        while (n < count) {
            n <<= 1u;
        }
        n = min(n, len);
        for (var k = 2u; k <= n; k <<= 1u) {
            for (var j = k >> 1u; j > 0u; j >>= 1u) {
                stage(n, k, j, lid);
                workgroupBarrier();
            }
        }
    } else {
        for (var t = lid; t < len; t += 256u) {
            let x = pairs[e.x + t];
            let y = pairs[e.y + len - 1u - t];
            if (before(y, x)) {
                sh[t] = y;
            } else {
                sh[t] = x;
            }
        }
        workgroupBarrier();
        for (var j = len >> 1u; j > 0u; j >>= 1u) {
            stage(len, 0u, j, lid);
            workgroupBarrier();
        }
    }
    for (var t = lid; t < len; t += 256u) {
        pairs[e.x + t] = sh[t];
    }
}
