// mesh_vert_align: pytorch3d vert_align (grid_sample, bilinear, align_corners=True) of one
// [C, H, W] map at every point's (x, y) (y negated with MESH_FLIP_Y; border padding with
// MESH_BORDER, else zeros), written to out[r * ld_y + col_y + c]: run once per map with col_y
// advancing to concatenate maps.
//
// Threads: one (point, channel) each (n = points, count_slot may bound them), 256 per
// workgroup, 2-D grid.
//
// | binding | what                          | access     |
// |---------|-------------------------------|------------|
// | 0       | MeshParams (n, count_slot, flags, map_*, ld_y, col_y) | uniform |
// | 1       | points [n, 3]                 | read       |
// | 2       | map [C, H, W]                 | read       |
// | 3       | counts u32                    | read       |
// | 4       | out [n, ld_y]                 | read_write |
//
// Library: index, mesh.

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> points: array<f32>;
@group(0) @binding(2) var<storage, read> map: array<f32>;
@group(0) @binding(3) var<storage, read> counts: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn mesh_vert_align(ids: IdxIds) {
    let i = idx_element(ids);
    var n = params.n;
    if (params.count_slot != MESH_NO_SLOT) {
        n = min(n, counts[params.count_slot]);
    }
    let r = i / params.map_c;
    let c = i % params.map_c;
    if (r >= n) {
        return;
    }
    let flip = select(1.0, -1.0, (params.flags & MESH_FLIP_Y) != 0u);
    let t = mesh_taps(points[3u * r], flip * points[3u * r + 1u], params.map_h, params.map_w,
                      (params.flags & MESH_BORDER) != 0u);
    let plane = c * params.map_h * params.map_w;
    var acc = 0.0;
    for (var j = 0; j < 4; j++) {
        if (t.idx[j] >= 0) {
            acc += map[plane + u32(t.idx[j])] * t.wt[j];
        }
    }
    out[r * params.ld_y + params.col_y + c] = acc;
}
