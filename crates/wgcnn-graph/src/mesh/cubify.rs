//! `cubify`: occupancy grids to triangle meshes, exactly as pytorch3d's `ops.cubify` with
//! `align="topleft"` (its vertex order, face order and f32 coordinates), plus meshrcnn's
//! empty-grid fallback. The conventions are spelled out in the fixtures README (mesh/ section).

use crate::{GraphError, Tensor};

/// One triangle mesh: vertices `(x, y, z)` and faces indexing them from 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TriMesh {
    pub verts: Vec<[f32; 3]>,
    pub faces: Vec<[u32; 3]>,
}

/// The sides of a voxel in pytorch3d's order: the neighbour offset `(dx, dy, dz)` that must be
/// empty (or outside) for the side to be emitted, and its two triangles as cube corners
/// `c = 4dx + 2dy + dz`.
const SIDES: [([i32; 3], [[u8; 3]; 2]); 6] = [
    ([-1, 0, 0], [[0, 1, 2], [1, 3, 2]]), // left
    ([0, 1, 0], [[2, 3, 6], [3, 7, 6]]),  // bottom
    ([0, 0, -1], [[0, 2, 6], [0, 6, 4]]), // front
    ([0, -1, 0], [[0, 5, 1], [0, 4, 5]]), // up
    ([1, 0, 0], [[6, 7, 5], [6, 5, 4]]),  // right
    ([0, 0, 1], [[1, 7, 3], [1, 5, 7]]),  // back
];

/// The `[N, D, H, W]` dimensions of a voxel batch.
pub fn grid_dims(voxels: &Tensor) -> Result<[usize; 4], GraphError> {
    <[usize; 4]>::try_from(voxels.shape.as_slice()).map_err(|_| {
        GraphError::Invalid(format!(
            "cubify wants voxels [N, D, H, W], got {:?}",
            voxels.shape
        ))
    })
}

/// A lattice axis index `i` of an axis of `s` voxels in "topleft" alignment, computed in f32 in
/// PyTorch's order (`i * 2.0 / (s - 1) - 1.0`) so the result is bit-identical.
pub fn topleft_coord(i: usize, s: usize) -> f32 {
    (i as f32 * 2.0) / (s as f32 - 1.0) - 1.0
}

/// pytorch3d `cubify(voxels, thresh, align="topleft")`: one mesh per batch item. A voxel is
/// occupied iff `v >= thresh`; a side is emitted when its neighbour is empty or outside.
pub fn cubify(voxels: &Tensor, thresh: f32) -> Result<Vec<TriMesh>, GraphError> {
    let [n, d, h, w] = grid_dims(voxels)?;
    let per = d * h * w;
    (0..n)
        .map(|b| {
            Ok(cubify_one(
                &voxels.data[b * per..(b + 1) * per],
                [d, h, w],
                thresh,
            ))
        })
        .collect()
}

fn cubify_one(grid: &[f32], [d, h, w]: [usize; 3], thresh: f32) -> TriMesh {
    let occupied = |x: i64, y: i64, z: i64| -> bool {
        if x < 0 || y < 0 || z < 0 || x >= w as i64 || y >= h as i64 || z >= d as i64 {
            return false;
        }
        grid[(z as usize * h + y as usize) * w + x as usize] >= thresh
    };
    // Lattice index of point (x, y, z): y-major, then x, then z (pytorch3d's vertex order).
    let (lw, ld) = (w + 1, d + 1);
    let lattice = |x: usize, y: usize, z: usize| (y * lw + x) * ld + z;
    let mut used = vec![false; (h + 1) * lw * ld];
    let mut lattice_faces: Vec<[usize; 3]> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            for z in 0..d {
                if !occupied(x as i64, y as i64, z as i64) {
                    continue;
                }
                for (off, tris) in SIDES {
                    let (nx, ny, nz) = (
                        x as i64 + off[0] as i64,
                        y as i64 + off[1] as i64,
                        z as i64 + off[2] as i64,
                    );
                    if occupied(nx, ny, nz) {
                        continue;
                    }
                    for tri in tris {
                        let f = tri.map(|c| {
                            let (dx, dy, dz) =
                                ((c >> 2) as usize, ((c >> 1) & 1) as usize, (c & 1) as usize);
                            lattice(x + dx, y + dy, z + dz)
                        });
                        for &p in &f {
                            used[p] = true;
                        }
                        lattice_faces.push(f);
                    }
                }
            }
        }
    }
    // Compaction: a used lattice point's vertex index is its rank among the used points.
    let mut rank = vec![u32::MAX; used.len()];
    let mut verts = Vec::new();
    for y in 0..=h {
        for x in 0..=w {
            for z in 0..=d {
                let p = lattice(x, y, z);
                if used[p] {
                    rank[p] = verts.len() as u32;
                    verts.push([
                        topleft_coord(x, w),
                        topleft_coord(y, h),
                        topleft_coord(z, d),
                    ]);
                }
            }
        }
    }
    let faces = lattice_faces.iter().map(|f| f.map(|p| rank[p])).collect();
    TriMesh { verts, faces }
}

/// meshrcnn's probabilities for cubify: `sigmoid(logits)`, and when no voxel of an item has
/// probability `> thresh`, its centre block `[S/4, S/4 + S/2)` on every axis set to 1 (for
/// S = 48, meshrcnn's `12:36`). Returns the probabilities and, per item, whether the fallback
/// fired.
pub fn occupancy_probs(logits: &Tensor, thresh: f32) -> Result<(Tensor, Vec<bool>), GraphError> {
    let [n, d, h, w] = grid_dims(logits)?;
    let mut probs = logits.clone();
    for v in &mut probs.data {
        *v = 1.0 / (1.0 + (-*v).exp());
    }
    let per = d * h * w;
    let mut fired = Vec::with_capacity(n);
    for b in 0..n {
        let grid = &mut probs.data[b * per..(b + 1) * per];
        let empty = !grid.iter().any(|&p| p > thresh);
        if empty {
            for z in d / 4..d / 4 + d / 2 {
                for y in h / 4..h / 4 + h / 2 {
                    for x in w / 4..w / 4 + w / 2 {
                        grid[(z * h + y) * w + x] = 1.0;
                    }
                }
            }
        }
        fired.push(empty);
    }
    Ok((probs, fired))
}
