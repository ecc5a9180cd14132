// face_dispatch: the indirect dispatch arguments of MTCNN's R-Net or O-Net section, from the
// number of boxes the previous stage left on the GPU. The section runs its boxes in chunks of
// `chunk` rows; each chunk has one plan per batch capacity, of which only the smallest that
// holds the chunk's rows runs. Entry e (a launch of some chunk and capacity: its crops, a net
// launch, or a row copy) gets its workgroups (x, y, z) when
//   lo_e < rows_e <= hi_e,  rows_e = min(max(count - first_e, 0), chunk)
// (hi_e: its plan's capacity; lo_e: the next smaller capacity), and (0, 0, 0) otherwise.
//
// Threads: one entry each, 64 per workgroup.
//
// | binding | what                                                      | access     |
// |---------|-----------------------------------------------------------|------------|
// | 0       | Params                                                    | uniform    |
// | 1       | count [1] u32                                             | read       |
// | 2       | table [2 entries] vec4<u32>: (first, lo, hi, 0), (x, y, z, 0) | read   |
// | 3       | args [entries * 3] u32 (indirect dispatch arguments)      | read_write |
//
// Params mirrors `FaceDispatchParams` in crates/wgcnn-kernels/src/detect/faces.rs.

struct Params {
    entries: u32,
    chunk: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> count: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> args: array<u32>;

@compute @workgroup_size(64)
fn face_dispatch(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = wg.x * 64u + lid;
    if (e >= params.entries) {
        return;
    }
    let sel = table[2u * e];
    let groups = table[2u * e + 1u];
    let n = count[0];
    var rows = 0u;
    if (n > sel.x) {
        rows = min(n - sel.x, params.chunk);
    }
    var out = vec3<u32>(0u);
    if (sel.y < rows && rows <= sel.z) {
        out = groups.xyz;
    }
    args[3u * e] = out.x;
    args[3u * e + 1u] = out.y;
    args[3u * e + 2u] = out.z;
}
