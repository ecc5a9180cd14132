// detect_rows_args: the indirect dispatch arguments of the launches that run a detector head
// on a block of its rows, from how many leading rows of the fixed-capacity detection tensor
// hold kept detections. `dets [images, rows, width]` holds each image's kept rows first (NMS
// gather: rows past the kept total have score -1, INVALID_SCORE, in column `score_col`); the
// head runs on its rows flattened image-major (`[images * rows, ...]`), so the rows in use are
// a prefix of length
//   used = max over kept rows i (image-major) of i + 1   (0 when no row is kept).
// A NaN score counts as kept (the conservative side: a launch too many, never one too few).
// Entry e (a launch computing rows first_e.. of some head layer) gets its workgroups (x, y, z)
// when used > first_e, and (0, 0, 0) otherwise.
//
// Threads: one workgroup of 256: lanes stride over the rows (maximum through a workgroup
// atomic), then over the entries.
//
// | binding | what                                          | access     |
// |---------|-----------------------------------------------|------------|
// | 0       | Params                                        | uniform    |
// | 1       | dets [images * rows * width]                  | read       |
// | 2       | table [entries] vec4<u32>: (first, x, y, z)   | read       |
// | 3       | args [entries * 3] u32 (indirect arguments)   | read_write |
//
// Params mirrors `RowsArgsParams` in crates/wgcnn-kernels/src/detect/rows.rs.

struct Params {
    total_rows: u32, // images * rows
    width: u32,
    score_col: u32,
    entries: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dets: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> args: array<u32>;

var<workgroup> used: atomic<u32>;

@compute @workgroup_size(256)
fn detect_rows_args(@builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&used, 0u);
    }
    workgroupBarrier();
    var best = 0u;
    for (var i = lid; i < params.total_rows; i += 256u) {
        let s = dets[i * params.width + params.score_col];
        if (!(s == -1.0)) {
            best = i + 1u;
        }
    }
    atomicMax(&used, best);
    workgroupBarrier();
    let n = atomicLoad(&used);
    for (var e = lid; e < params.entries; e += 256u) {
        let t = table[e];
        let run = n > t.x;
        args[3u * e] = select(0u, t.y, run);
        args[3u * e + 1u] = select(0u, t.z, run);
        args[3u * e + 2u] = select(0u, t.w, run);
    }
}
