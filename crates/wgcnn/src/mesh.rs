//! 3D shape from one image: Mesh R-CNN's ShapeNet model `voxmesh_R50` (facebookresearch/meshrcnn
//! `VoxMeshHead`) on the GPU. The backbone and voxel head run as a [`Plan`]; cubify, the edges
//! and the three refinement stages follow in the same command buffer
//! ([`wgcnn_kernels::mesh`]), their launches sized on the GPU from the voxels, so one
//! submission turns an image into a mesh and only the mesh is read back.
//!
//! ```no_run
//! use wgcnn::{Engine, EngineOptions, MeshPredictor, MeshPredictorOptions, MeshRequest};
//!
//! let engine = Engine::new(&EngineOptions::default())?;
//! let options = MeshPredictorOptions {
//!     weights: Some("voxmesh_R50.pth".into()),
//!     ..Default::default()
//! };
//! let predictor = MeshPredictor::new(&engine, &options)?;
//! let mesh = predictor.predict_file("chair.png", &MeshRequest::default())?;
//! mesh.save("chair.obj")?;
//! println!("{} vertices, {} faces", mesh.verts.len(), mesh.faces.len());
//! # Ok::<(), wgcnn::Error>(())
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wgcnn_exec::Plan;
use wgcnn_graph::{Tensor, WeightSource};
use wgcnn_kernels::Context;
use wgcnn_kernels::mesh::{
    CubifyGpu, FeatureMap, HeadWeightsGpu, LinearGpu, MeshCounts, MeshInput, RefineGpu,
    StageWeightsGpu, flag, read_u32,
};
use wgcnn_models::BuildOptions;
use wgcnn_models::mesh::{
    CleanKeys, GraphKeys, MeshHead, VOXEL_SIZE, VOXEL_THRESHOLD, voxmesh_r50,
};

use crate::{Engine, Error, RgbImage};

/// The one mesh model: meshrcnn's `voxmesh_R50`.
pub const MESH_MODEL: &str = "voxmesh_r50";
/// Where meshrcnn publishes the checkpoint (its ShapeNet model zoo).
pub const VOXMESH_R50_URL: &str =
    "https://dl.fbaipublicfiles.com/meshrcnn/shapenet/voxmesh_R50.pth";
/// The R2N2 renderings' size, which meshrcnn feeds without resizing.
pub const MESH_INPUT_SIZE: usize = 137;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// How to build a [`MeshPredictor`].
#[derive(Clone, Debug)]
pub struct MeshPredictorOptions {
    /// Only [`MESH_MODEL`] exists.
    pub model: String,
    /// The checkpoint: meshrcnn's released `.pth` (`best_states.model`, `module.` prefixes) or
    /// a safetensors file with the same keys.
    pub weights: Option<PathBuf>,
    /// The square input size (137: ShapeNet renders).
    pub size: usize,
}

impl Default for MeshPredictorOptions {
    fn default() -> Self {
        MeshPredictorOptions {
            model: MESH_MODEL.to_string(),
            weights: None,
            size: MESH_INPUT_SIZE,
        }
    }
}

/// Which mesh to read back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MeshStage {
    /// Cubify's mesh in the camera frame, before refinement.
    Cubified,
    /// After refinement stage `n` (0, 1, 2: the fixtures' `stage{n}.verts`).
    Refined(usize),
    /// After the last stage.
    #[default]
    Final,
}

/// What a prediction returns besides the mesh.
#[derive(Clone, Copy, Debug, Default)]
pub struct MeshRequest {
    pub stage: MeshStage,
    /// Also read back the `[48, 48, 48]` occupancy probabilities (`[z, y, x]`).
    pub voxels: bool,
}

/// Wall-clock times of one prediction.
#[derive(Clone, Copy, Debug, Default)]
pub struct MeshTimings {
    /// Decoding is not included; crop, resize and normalization on the CPU.
    pub preprocess: Duration,
    /// The one submission (backbone, voxels, cubify, edges, refinement), until the GPU is idle.
    pub gpu: Duration,
    /// Reading the counts and the mesh back.
    pub read: Duration,
}

/// A predicted mesh in meshrcnn's camera frame (the camera looks down -Z).
#[derive(Clone, Debug)]
pub struct MeshOutput {
    pub verts: Vec<[f32; 3]>,
    pub faces: Vec<[u32; 3]>,
    /// Unique edges of the mesh (GraphConv's neighbourhoods).
    pub edges: usize,
    pub stage: MeshStage,
    /// No voxel was above the threshold, so meshrcnn's fallback block was cubified.
    pub fallback: bool,
    /// `[48, 48, 48]` occupancy probabilities when requested.
    pub voxels: Option<Tensor>,
    pub timings: MeshTimings,
}

impl MeshOutput {
    /// Axis-aligned bounds `(min, max)`, or None for an empty mesh.
    pub fn bounds(&self) -> Option<([f32; 3], [f32; 3])> {
        let first = *self.verts.first()?;
        Some(self.verts.iter().fold((first, first), |(lo, hi), p| {
            (
                std::array::from_fn(|i| lo[i].min(p[i])),
                std::array::from_fn(|i| hi[i].max(p[i])),
            )
        }))
    }

    /// Wavefront OBJ: `v x y z` lines, then `f a b c` (1-based).
    pub fn write_obj(&self, w: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            w,
            "# wgcnn mesh: {} vertices, {} faces",
            self.verts.len(),
            self.faces.len()
        )?;
        for v in &self.verts {
            writeln!(w, "v {} {} {}", v[0], v[1], v[2])?;
        }
        for f in &self.faces {
            writeln!(w, "f {} {} {}", f[0] + 1, f[1] + 1, f[2] + 1)?;
        }
        Ok(())
    }

    /// ASCII PLY with float vertices and triangle faces.
    pub fn write_ply(&self, w: &mut dyn Write) -> std::io::Result<()> {
        write!(
            w,
            "ply\nformat ascii 1.0\ncomment wgcnn mesh\nelement vertex {}\nproperty float x\n\
             property float y\nproperty float z\nelement face {}\n\
             property list uchar int vertex_indices\nend_header\n",
            self.verts.len(),
            self.faces.len()
        )?;
        for v in &self.verts {
            writeln!(w, "{} {} {}", v[0], v[1], v[2])?;
        }
        for f in &self.faces {
            writeln!(w, "3 {} {} {}", f[0], f[1], f[2])?;
        }
        Ok(())
    }

    /// Writes OBJ, or PLY when the extension is `.ply`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let err = |e: std::io::Error| Error::Encode(format!("{}: {e}", path.display()));
        let file = std::fs::File::create(path).map_err(err)?;
        let mut w = std::io::BufWriter::new(file);
        let ply = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ply"));
        if ply {
            self.write_ply(&mut w).map_err(err)?;
        } else {
            self.write_obj(&mut w).map_err(err)?;
        }
        w.flush().map_err(err)
    }
}

/// Mesh R-CNN's ShapeNet model on an [`Engine`]'s device.
pub struct MeshPredictor {
    ctx: Arc<Context>,
    plan: Plan,
    cubify: CubifyGpu,
    refine: RefineGpu,
    _head: HeadWeightsGpu,
    size: usize,
    /// One prediction at a time: the plan and mesh buffers are shared.
    lock: Mutex<()>,
}

impl std::fmt::Debug for MeshPredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshPredictor")
            .field("size", &self.size)
            .finish()
    }
}

impl MeshPredictor {
    /// Loads the checkpoint named in `options` (required: see [`VOXMESH_R50_URL`]).
    pub fn new(engine: &Engine, options: &MeshPredictorOptions) -> Result<MeshPredictor, Error> {
        if options.model != MESH_MODEL {
            return Err(wgcnn_models::ModelError::Unknown {
                name: options.model.clone(),
                known: MESH_MODEL.to_string(),
            }
            .into());
        }
        let path = options.weights.as_ref().ok_or_else(|| Error::NoWeights {
            model: options.model.clone(),
        })?;
        let source = wgcnn_io::open_weights(path)?;
        MeshPredictor::from_source(engine, source.as_ref(), options.size).map_err(|e| match e {
            Error::Graph(source) => Error::Weights {
                path: path.clone(),
                source,
            },
            Error::Models(wgcnn_models::ModelError::Graph(source)) => Error::Weights {
                path: path.clone(),
                source,
            },
            other => other,
        })
    }

    /// Builds from any weight source holding meshrcnn's keys (`K`, `backbone.*`,
    /// `voxel_head.*`, `mesh_head.*`, each with or without `module.` prefixes), for an `size` x
    /// `size` input.
    pub fn from_source(
        engine: &Engine,
        source: &dyn WeightSource,
        size: usize,
    ) -> Result<MeshPredictor, Error> {
        let ctx = engine.context().clone();
        let mut graph = voxmesh_r50(&BuildOptions::square(size, 1))?;
        let source = CleanKeys::new(source);
        graph.bind(&GraphKeys(&source))?;
        let head = MeshHead::load(&source)?;
        let plan = engine.plan(&graph)?;
        let shapes = plan.output_shapes();
        let missing = Error::Internal("the voxmesh plan lacks an output");
        let logits = plan.output_buffer(4).ok_or(missing)?;
        let cubify = CubifyGpu::new(
            &ctx,
            logits,
            [VOXEL_SIZE; 3],
            VOXEL_THRESHOLD,
            flag::SIGMOID | flag::FALLBACK | flag::WORLD,
        )?;
        let head_gpu = upload_head(&ctx, &head)?;
        let mut feats = Vec::with_capacity(4);
        for (i, shape) in shapes.iter().take(4).enumerate() {
            let buffer = plan
                .output_buffer(i)
                .ok_or(Error::Internal("the voxmesh plan lacks a feature map"))?;
            feats.push(FeatureMap {
                buffer,
                chw: [shape[1], shape[2], shape[3]],
            });
        }
        let input = MeshInput {
            counts: &cubify.counts,
            args: &cubify.args,
            verts: &cubify.verts,
            adj_offset: &cubify.adj_offset,
            adj: &cubify.adj,
            vert_cap: cubify.lattice,
        };
        let refine = RefineGpu::new(&ctx, input, &feats, &head_gpu, false)?;
        // Lavapipe compiles pipelines on first use: dispatch each once with no workgroups now,
        // not in the first prediction.
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for l in cubify.launches.iter().chain(&refine.launches) {
                pass.set_pipeline(&l.launch.kernel.pipeline);
                pass.set_bind_group(0, &l.launch.bind_group, &[]);
                pass.dispatch_workgroups(0, 0, 0);
            }
        }
        ctx.queue.submit([encoder.finish()]);
        ctx.wait()?;
        ctx.take_error()?;
        Ok(MeshPredictor {
            ctx,
            plan,
            cubify,
            refine,
            _head: head_gpu,
            size,
            lock: Mutex::new(()),
        })
    }

    /// The square input size.
    pub fn size(&self) -> usize {
        self.size
    }

    /// meshrcnn's input for `image`: ToTensor + ImageNet Normalize, `[1, 3, S, S]`. An image of
    /// another size is centre-cropped to a square and resized (bilinear) first.
    pub fn preprocess(&self, image: &RgbImage) -> Tensor {
        preprocess(image, self.size)
    }

    /// Decodes and predicts a file.
    pub fn predict_file(
        &self,
        path: impl AsRef<Path>,
        request: &MeshRequest,
    ) -> Result<MeshOutput, Error> {
        self.predict(&RgbImage::open(path)?, request)
    }

    /// Predicts the mesh of one image.
    pub fn predict(&self, image: &RgbImage, request: &MeshRequest) -> Result<MeshOutput, Error> {
        let start = Instant::now();
        let input = self.preprocess(image);
        let preprocess = start.elapsed();
        let mut out = self.predict_input(&input, request)?;
        out.timings.preprocess = preprocess;
        Ok(out)
    }

    /// Predicts from an already normalized `[1, 3, S, S]` input.
    pub fn predict_input(
        &self,
        input: &Tensor,
        request: &MeshRequest,
    ) -> Result<MeshOutput, Error> {
        let want = [1, 3, self.size, self.size];
        if input.shape != want || input.data.len() != want.iter().product::<usize>() {
            return Err(wgcnn_exec::ExecError::InputShape {
                index: 0,
                expected: want.to_vec(),
                got: input.shape.clone(),
            }
            .into());
        }
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let start = Instant::now();
        let buffer = self
            .plan
            .input_buffer(0)
            .ok_or(Error::Internal("the voxmesh plan lacks an input"))?;
        self.ctx
            .queue
            .write_buffer(buffer, 0, bytemuck::cast_slice(&input.data));
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        self.plan.encode(&mut encoder);
        self.cubify.clear(&mut encoder);
        let launches: Vec<_> = self
            .cubify
            .launches
            .iter()
            .chain(&self.refine.launches)
            .collect();
        encode_all(&mut encoder, &launches, &self.cubify.args);
        self.ctx.queue.submit([encoder.finish()]);
        self.ctx.wait()?;
        self.ctx.take_error()?;
        let gpu = start.elapsed();
        let start = Instant::now();
        let counts: MeshCounts = self.cubify.read_counts(&self.ctx)?;
        let verts_buf = match request.stage {
            MeshStage::Cubified => &self.cubify.verts,
            MeshStage::Refined(n) => self.refine.stage_verts.get(n).ok_or_else(|| {
                wgcnn_graph::GraphError::Invalid(format!(
                    "no refinement stage {n}: the model has stages 0, 1 and 2"
                ))
            })?,
            MeshStage::Final => self
                .refine
                .stage_verts
                .last()
                .ok_or(Error::Internal("no refinement stage"))?,
        };
        let verts = self.ctx.read(verts_buf, counts.verts * 3)?;
        let faces = read_u32(&self.ctx, &self.cubify.faces, counts.faces * 3)?;
        let voxels = if request.voxels {
            let logits = self
                .plan
                .output_buffer(4)
                .ok_or(Error::Internal("no logits"))?;
            let n = VOXEL_SIZE * VOXEL_SIZE * VOXEL_SIZE;
            let mut data = self.ctx.read(logits, n)?;
            data.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp()));
            Some(Tensor::new(&[VOXEL_SIZE; 3], data)?)
        } else {
            None
        };
        Ok(MeshOutput {
            verts: verts.chunks(3).map(|p| [p[0], p[1], p[2]]).collect(),
            faces: faces.chunks(3).map(|f| [f[0], f[1], f[2]]).collect(),
            edges: counts.edges,
            stage: request.stage,
            fallback: !counts.any,
            voxels,
            timings: MeshTimings {
                preprocess: Duration::ZERO,
                gpu,
                read: start.elapsed(),
            },
        })
    }
}

/// Encodes mesh launches (some indirect) into one compute pass.
fn encode_all(
    encoder: &mut wgpu::CommandEncoder,
    launches: &[&wgcnn_kernels::mesh::MeshLaunch],
    args: &wgpu::Buffer,
) {
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("wgcnn.mesh"),
        timestamp_writes: None,
    });
    for l in launches {
        pass.set_pipeline(&l.launch.kernel.pipeline);
        pass.set_bind_group(0, &l.launch.bind_group, &[]);
        match l.indirect {
            Some(offset) => pass.dispatch_workgroups_indirect(args, offset),
            None => {
                let [x, y, z] = l.launch.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
    }
}

fn upload_head(ctx: &Context, head: &MeshHead) -> Result<HeadWeightsGpu, Error> {
    let lin = |name: String, l: &wgcnn_models::mesh::LinearWeights| {
        LinearGpu::upload(
            ctx,
            &name,
            &l.weight.data,
            &l.bias.data,
            l.weight.shape[0],
            l.weight.shape[1],
        )
    };
    let mut stages = Vec::with_capacity(head.stages.len());
    for (s, st) in head.stages.iter().enumerate() {
        let p = format!("mesh_head.stages.{s}");
        let mut gconvs = Vec::with_capacity(st.gconvs.len());
        for (g, gc) in st.gconvs.iter().enumerate() {
            gconvs.push((
                lin(format!("{p}.gconvs.{g}.w0"), &gc.w0)?,
                lin(format!("{p}.gconvs.{g}.w1"), &gc.w1)?,
            ));
        }
        stages.push(StageWeightsGpu {
            bottleneck: lin(format!("{p}.bottleneck"), &st.bottleneck)?,
            gconvs,
            vert_offset: lin(format!("{p}.vert_offset"), &st.vert_offset)?,
        });
    }
    Ok(HeadWeightsGpu { k: head.k, stages })
}

/// meshrcnn's input: centre square crop, bilinear resize to `size` when needed, ToTensor and
/// ImageNet Normalize, `[1, 3, size, size]`.
pub fn preprocess(image: &RgbImage, size: usize) -> Tensor {
    let side = image.width.min(image.height);
    let (x0, y0) = ((image.width - side) / 2, (image.height - side) / 2);
    let mut square = Vec::with_capacity(side * side * 3);
    for y in y0..y0 + side {
        let row = (y * image.width + x0) * 3;
        square.extend_from_slice(&image.pixels[row..row + side * 3]);
    }
    let pixels = if side == size {
        square
    } else {
        match image::RgbImage::from_raw(side as u32, side as u32, square) {
            Some(img) => image::imageops::resize(
                &img,
                size as u32,
                size as u32,
                image::imageops::FilterType::Triangle,
            )
            .into_raw(),
            None => vec![0; size * size * 3],
        }
    };
    let plane = size * size;
    let mut data = vec![0f32; 3 * plane];
    for (i, px) in pixels.chunks_exact(3).enumerate() {
        for c in 0..3 {
            data[c * plane + i] = (f32::from(px[c]) / 255.0 - MEAN[c]) / STD[c];
        }
    }
    Tensor {
        shape: vec![1, 3, size, size],
        data,
    }
}

/// A wireframe preview: the mesh's edges projected with meshrcnn's camera (`K`) over the input
/// square (upscaled `scale` times), drawn back to front with depth shading.
pub fn render_wireframe(
    image: &RgbImage,
    size: usize,
    mesh: &MeshOutput,
    scale: usize,
) -> RgbImage {
    use imageproc::drawing::draw_antialiased_line_segment_mut;
    use imageproc::pixelops::interpolate;
    let input = preprocess(image, size);
    let s = size * scale;
    let plane = size * size;
    let mut img = image::RgbImage::new(s as u32, s as u32);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let i = (y as usize / scale) * size + x as usize / scale;
        // Undo the normalization and dim the photo so the wire stands out.
        *px = image::Rgb(std::array::from_fn(|c| {
            let v = (input.data[c * plane + i] * STD[c] + MEAN[c]).clamp(0.0, 1.0);
            (v * 255.0 * 0.6) as u8
        }));
    }
    // meshrcnn's K: x_ndc = 2.1875 X / -Z, y_ndc = 2.1875 Y / -Z; ±1 are the corner pixels.
    let project = |p: [f32; 3]| -> Option<(f32, f32, f32)> {
        let w = -p[2];
        if w <= 1e-3 {
            return None;
        }
        let (nx, ny) = (2.1875 * p[0] / w, 2.1875 * p[1] / w);
        let px = (nx + 1.0) / 2.0 * (size as f32 - 1.0);
        let py = (-ny + 1.0) / 2.0 * (size as f32 - 1.0);
        Some(((px + 0.5) * scale as f32, (py + 0.5) * scale as f32, w))
    };
    let mut edges: Vec<(u32, u32)> = mesh
        .faces
        .iter()
        .flat_map(|&[a, b, c]| {
            [
                (a.min(b), a.max(b)),
                (b.min(c), b.max(c)),
                (a.min(c), a.max(c)),
            ]
        })
        .collect();
    edges.sort_unstable();
    edges.dedup();
    let (zmin, zmax) = mesh.verts.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| {
        (lo.min(-p[2]), hi.max(-p[2]))
    });
    // (start, end, mean depth) in preview pixels.
    type Line = ((f32, f32), (f32, f32), f32);
    let mut lines: Vec<Line> = edges
        .iter()
        .filter_map(|&(a, b)| {
            let (pa, pb) = (*mesh.verts.get(a as usize)?, *mesh.verts.get(b as usize)?);
            let (ax, ay, aw) = project(pa)?;
            let (bx, by, bw) = project(pb)?;
            Some(((ax, ay), (bx, by), (aw + bw) / 2.0))
        })
        .collect();
    // Far edges first, so near ones are drawn over them.
    lines.sort_by(|x, y| y.2.total_cmp(&x.2));
    for ((ax, ay), (bx, by), w) in lines {
        let t = if zmax > zmin {
            (zmax - w) / (zmax - zmin)
        } else {
            1.0
        };
        let shade = (90.0 + 165.0 * t) as u8;
        let color = image::Rgb([shade, (shade as f32 * 0.85) as u8, 40]);
        draw_antialiased_line_segment_mut(
            &mut img,
            (ax as i32, ay as i32),
            (bx as i32, by as i32),
            color,
            interpolate,
        );
    }
    RgbImage {
        width: s,
        height: s,
        pixels: img.into_raw(),
    }
}
