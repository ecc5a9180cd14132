//! Winograd convolution for 3x3, stride-1, undilated, ungrouped layers: three launches (input
//! transform, one GEMM per transformed position, output transform with the fused epilogue), in
//! two tile sizes ([`Tile`]). F(2x2, 3x3) (16 GEMMs) does 2.25x fewer multiply-adds than the
//! direct kernel and is as close to exact. F(4x4, 3x3) (36 GEMMs) does 4x fewer, but in f32 its
//! results are 2-4x further from exact than the direct kernel's (with the interpolation points
//! 0, 1, -1, 1/2, -2; 5-13x with the usual 0, ±1, ±2), which moved Inception-v4's logits from
//! 1.4e-3 to 2.0e-3 of PyTorch's: [`tile_for`] takes it only for the large feature maps where it
//! is measured faster, under the error budget [`F4_ERROR_BUDGET`]. Shaders:
//! `shaders/conv2d_winograd_input.wgsl`, `shaders/conv2d_winograd4_input.wgsl`,
//! `shaders/conv2d_winograd_gemm.wgsl` (both sizes), `shaders/conv2d_winograd_output.wgsl`,
//! `shaders/conv2d_winograd4_output.wgsl`.
//!
//! The weights are transformed once, on the CPU ([`transform_weights`]); the transformed input V
//! and the products M live in scratch buffers that consecutive layers can share
//! ([`Scratch`]), since each layer's three launches finish with them before the next begins.
//! The GEMM broadcasts weights across a subgroup of 8 lanes, so the path needs
//! [`wgpu::Features::SUBGROUP`] with subgroups of at least 8 lanes
//! ([`super::subgroups_usable`]).

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::ConvDesc;
use crate::{
    Access, Context, KernelError, KernelSpec, Launch, MAX_GROUPS, Variants, grid, shaders,
};

/// The input transform: params, then x, V.
pub const INPUT: KernelSpec = KernelSpec {
    name: "conv2d_winograd_input",
    source: shaders::CONV2D_WINOGRAD_INPUT,
    buffers: &[Access::Read, Access::ReadWrite],
};

/// The 16 GEMMs: params, then U, V, M.
pub const GEMM: KernelSpec = KernelSpec {
    name: "conv2d_winograd_gemm",
    source: shaders::CONV2D_WINOGRAD_GEMM,
    buffers: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// The output transform: params, then M, bias, residual, y.
pub const OUTPUT: KernelSpec = KernelSpec {
    name: "conv2d_winograd_output",
    source: shaders::CONV2D_WINOGRAD_OUTPUT,
    buffers: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

/// F(4x4, 3x3)'s input transform: the bindings of [`INPUT`].
pub const INPUT4: KernelSpec = KernelSpec {
    name: "conv2d_winograd4_input",
    source: shaders::CONV2D_WINOGRAD4_INPUT,
    buffers: INPUT.buffers,
};

/// F(4x4, 3x3)'s output transform: the bindings of [`OUTPUT`].
pub const OUTPUT4: KernelSpec = KernelSpec {
    name: "conv2d_winograd4_output",
    source: shaders::CONV2D_WINOGRAD4_OUTPUT,
    buffers: OUTPUT.buffers,
};

/// Transformed positions per F(2x2, 3x3) tile (4 x 4).
pub const POSITIONS: usize = 16;

/// The output tile of a Winograd convolution: F(2x2, 3x3) (4x4 transformed positions) or
/// F(4x4, 3x3) (6x6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tile {
    F2,
    F4,
}

impl Tile {
    /// Outputs per tile side (2 or 4).
    pub fn outputs(self) -> usize {
        match self {
            Tile::F2 => 2,
            Tile::F4 => 4,
        }
    }

    /// Transformed values per tile side (outputs + 2).
    pub fn side(self) -> usize {
        self.outputs() + 2
    }

    /// Transformed positions per tile: 16 or 36 GEMMs.
    pub fn positions(self) -> usize {
        self.side() * self.side()
    }
}
/// Tiles per GEMM workgroup (8 lanes x 4); rows of V and M are padded to a multiple of it.
const TILE_BLOCK: usize = 32;
/// Output channels per GEMM workgroup; keep in step with the shader.
const CHANNEL_BLOCK: usize = 16;

/// Whether `desc` has the geometry this path computes: 3x3 kernel, stride 1, dilation 1, one
/// group, input channels a multiple of 4 (the GEMM reads 4 at a time), any padding.
pub fn fits(desc: &ConvDesc) -> bool {
    desc.weight[2..] == [3, 3]
        && desc.stride == [1, 1]
        && desc.dilation == [1, 1]
        && desc.groups == 1
        && desc.input[1].is_multiple_of(4)
}

/// Whether the Winograd path is faster than the direct kernels for `desc` (which [`fits`]),
/// from measurements on lavapipe (GFLOP per CPU-second against `conv2d_sg`'s SG4 step,
/// ResNet-50, VGG-16 and GoogLeNet layers): it needs at least 64 input channels (with 16-48
/// the transforms cost more than the multiply-adds saved: 0.6-0.8x) and GEMM rows mostly
/// full, the tile count being padded to the GEMM's 32-tile block: at least 75% full, or 40%
/// with 128 input channels or more (7x7 outputs, 16 tiles: 1.1x with 512 channels, 0.6x with
/// 48). Wins measured: 1.2x at 56x56 with 64 channels, 1.5-2.1x from 128 channels at 14x14
/// to 56x56.
pub fn pays(desc: &ConvDesc) -> bool {
    let [n, c, _, _] = desc.input;
    match desc.output() {
        Ok([_, k, oh, ow]) => {
            let tiles = n * oh.div_ceil(2) * ow.div_ceil(2);
            let padded = tiles.next_multiple_of(TILE_BLOCK);
            let full = 4 * tiles >= 3 * padded || (c >= 128 && 5 * tiles >= 2 * padded);
            c >= 64 && k >= 16 && full
        }
        Err(_) => false,
    }
}

/// Largest error F(4x4, 3x3) may add to one layer, as the largest absolute difference from
/// the exact (f64) convolution over the largest absolute exact output. The golden fixtures
/// allow `1e-3 * max|want| + 1e-5` at every compared stage (classifier logits, each detector
/// stage), and a stage is the end of a chain of tens of layers, each adding its own error and
/// passing on the earlier ones: one layer gets a hundredth of the stage's tolerance. Measured
/// in f32 (`winograd4_error_within_budget`, and a NumPy model of the kernels over 64-512 input
/// channels with normal, ReLU'd and offset-ReLU'd inputs): the direct kernel 0.6-3.7e-6,
/// F(2x2, 3x3) 0.3-1.0e-6, F(4x4, 3x3) with the points used here 0.9-5.7e-6 (with 0, ±1, ±2:
/// 3-13e-6, beyond the budget).
pub const F4_ERROR_BUDGET: f64 = 1e-5;

/// The Winograd tile for `desc` on `ctx`, or `None` where the direct kernels compute it:
/// Winograd where it [`fits`], the forced set allows it, it [`pays`] (unless forced) and its
/// scratch fits one binding; F(4x4, 3x3) where [`Variants::Winograd4`] forces it or
/// [`tile_for`] picks it (not under [`Variants::Winograd`], which forces F(2x2, 3x3)).
pub fn choose(ctx: &Context, desc: &ConvDesc) -> Option<Tile> {
    let forced = ctx.variants;
    let forced_any = matches!(forced, Variants::Winograd | Variants::Winograd4);
    if !fits(desc) || forced == Variants::Subgroup || !(forced_any || pays(desc)) {
        return None;
    }
    let tile = match forced {
        Variants::Winograd4 => Tile::F4,
        Variants::Winograd => Tile::F2,
        _ => tile_for(desc),
    };
    WinogradParams::with_tile(desc, tile)
        .is_ok_and(|p| check_size(ctx, "", &p).is_ok())
        .then_some(tile)
}

/// The tile for `desc` (which [`fits`] and [`pays`]) when no set is forced: F(4x4, 3x3) on
/// large maps with wide channels (at least 240 tiles of 4x4 outputs, about 62x62 and up, and
/// 128 input channels), F(2x2, 3x3) elsewhere.
///
/// Speed, measured on lavapipe (2 cores; `gemm_bench --shapes fpn --kernels winograd` against
/// `--kernels winograd4`, ms per 256 -> 256 layer, quiet machine, two rounds): 200x304 792 against
/// 467-653 (the direct `conv2d_sg`: 1571), 100x152 199 against 130-175, 50x76 49 against 31-44,
/// 25x38 (70 tiles) 13 against 11-16, 13x19 4.6 against 5.1; with `--model vgg16 / resnet50`
/// F(4x4) also wins at 28x28 and up with 64-512 channels, and loses at 14x14 and 7x7 (16 and 4
/// tiles, padded to the GEMM's 32-tile block). End to end, `fasterrcnn_resnet50_fpn` at 800x1199
/// takes 5.5 s with this choice against 6.7 s with F(2x2, 3x3) forced.
///
/// Error: every layer measured stays within [`F4_ERROR_BUDGET`], and with F(4x4) forced on
/// every 3x3 stride-1 layer the small-resolution golden networks move by at most 1.2x
/// (ResNet-50 3.7e-5 -> 4.6e-5 of the logits' scale, VGG-16 at 224 2.5e-6 -> 2.9e-6), but
/// Inception-v4 at 299 from 1.1e-3 to 1.7e-3, near its 2e-3 tolerance: a deep chain of
/// narrow layers amplifies any rounding. The channel floor keeps such layers (its 3x3
/// stride-1 layers have 32-96 input channels at 35x35 to 147x147) on F(2x2); the detectors'
/// FPN and RPN layers (256 channels, 50x76 to 200x304 at torchvision's default sizes) take
/// F(4x4), and their fixture stages pass with it forced everywhere
/// (`winograd4_detect.rs`).
pub fn tile_for(desc: &ConvDesc) -> Tile {
    let [n, c, _, _] = desc.input;
    match desc.output() {
        Ok([_, _, oh, ow]) if c >= 128 && n * oh.div_ceil(4) * ow.div_ceil(4) >= 240 => Tile::F4,
        _ => Tile::F2,
    }
}

/// Mirrors `Params` in the three Winograd shaders; keep them in step (96 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct WinogradParams {
    pub batch: u32,
    pub in_c: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    /// `ceil(OH / 2)`.
    pub tiles_h: u32,
    /// `ceil(OW / 2)`.
    pub tiles_w: u32,
    /// `N * tiles_h * tiles_w`.
    pub tiles: u32,
    /// Row length of V and M: `tiles` rounded up to the GEMM's 32-tile block.
    pub t_stride: u32,
    /// `t_stride / 32`.
    pub t_blocks: u32,
    /// `ceil(K / 16)`.
    pub k_blocks: u32,
    pub has_bias: u32,
    pub has_residual: u32,
    pub act: u32,
    pub p0: f32,
    pub p1: f32,
    /// Channels of the tensor `y` is (`out_c` unless the output is a channel slice of a wider
    /// tensor, see [`WinogradParams::into_channels`]).
    pub out_c_total: u32,
    /// First channel of that tensor the output is written at.
    pub out_c_offset: u32,
    /// Transformed positions per tile: 16 for F(2x2, 3x3), 36 for F(4x4, 3x3) ([`Tile`]).
    pub positions: u32,
    /// First tile row of this band: the launches of a large layer cover its tile rows in
    /// bands ([`WinogradParams::bands`]), `tiles_h` rows each; 0 for the whole layer.
    pub tile_row0: u32,
}

impl WinogradParams {
    /// F(2x2, 3x3) params of `desc`, or an error naming the shapes (including a geometry this
    /// path does not compute, see [`fits`]).
    pub fn new(desc: &ConvDesc) -> Result<Self, KernelError> {
        Self::with_tile(desc, Tile::F2)
    }

    /// Params of `desc` with output tiles `tile`, or an error as [`WinogradParams::new`].
    pub fn with_tile(desc: &ConvDesc, tile: Tile) -> Result<Self, KernelError> {
        let [n, k, oh, ow] = desc.output()?;
        if !fits(desc) {
            return Err(KernelError::BadShape {
                kernel: "winograd",
                detail: format!(
                    "input {:?}, weight {:?}, stride {:?}, dilation {:?}, groups {}: only 3x3, stride 1, \
                     dilation 1, one group, input channels a multiple of 4",
                    desc.input, desc.weight, desc.stride, desc.dilation, desc.groups
                ),
            });
        }
        let [_, c, h, w] = desc.input;
        let (th, tw) = (oh.div_ceil(tile.outputs()), ow.div_ceil(tile.outputs()));
        let tiles = n * th * tw;
        let t_stride = tiles.next_multiple_of(TILE_BLOCK);
        let u = |v: usize| v as u32;
        Ok(WinogradParams {
            batch: u(n),
            in_c: u(c),
            in_h: u(h),
            in_w: u(w),
            out_c: u(k),
            out_h: u(oh),
            out_w: u(ow),
            pad_top: u(desc.padding[0]),
            pad_left: u(desc.padding[1]),
            tiles_h: u(th),
            tiles_w: u(tw),
            tiles: u(tiles),
            t_stride: u(t_stride),
            t_blocks: u(t_stride / TILE_BLOCK),
            k_blocks: u(k.div_ceil(CHANNEL_BLOCK)),
            has_bias: desc.bias as u32,
            has_residual: desc.residual as u32,
            act: desc.act.0,
            p0: desc.act.1,
            p1: desc.act.2,
            out_c_total: u(k),
            out_c_offset: 0,
            positions: u(tile.positions()),
            tile_row0: 0,
        })
    }

    /// The same convolution writing its output as a channel slice of a wider tensor (see
    /// [`crate::conv2d::ChannelSlice`]).
    pub fn into_channels(self, slice: super::ChannelSlice) -> Self {
        WinogradParams {
            out_c_total: slice.total as u32,
            out_c_offset: slice.offset as u32,
            ..self
        }
    }

    /// The tile size these params are for.
    pub fn tile(&self) -> Tile {
        if self.positions == Tile::F4.positions() as u32 {
            Tile::F4
        } else {
            Tile::F2
        }
    }

    /// The params of tile rows `row0 .. row0 + rows` of these (whole-layer) params: the same
    /// convolution restricted to that band of output rows.
    pub fn band(&self, row0: u32, rows: u32) -> Self {
        let tiles = self.batch * rows * self.tiles_w;
        let t_stride = tiles.next_multiple_of(TILE_BLOCK as u32);
        WinogradParams {
            tiles_h: rows,
            tiles,
            t_stride,
            t_blocks: t_stride / TILE_BLOCK as u32,
            tile_row0: self.tile_row0 + row0,
            ..*self
        }
    }

    /// These params split into bands of whole tile rows whose V and M take at most `v_limit`
    /// and `m_limit` bytes each (one tile row per band at least), top to bottom; the first
    /// band is the largest.
    pub fn bands(&self, v_limit: u64, m_limit: u64) -> Vec<Self> {
        let fits = |rows: u32| {
            let b = self.band(0, rows);
            b.v_bytes() <= v_limit && b.m_bytes() <= m_limit
        };
        let mut rows = self.tiles_h.max(1);
        while rows > 1 && !fits(rows) {
            // Shrink by the overshoot's ratio, then by single rows for the rounding.
            let b = self.band(0, rows);
            let over =
                (b.v_bytes() as f64 / v_limit as f64).max(b.m_bytes() as f64 / m_limit as f64);
            rows = ((rows as f64 / over) as u32).clamp(1, rows - 1);
        }
        (0..self.tiles_h)
            .step_by(rows as usize)
            .map(|r0| self.band(r0, rows.min(self.tiles_h - r0)))
            .collect()
    }

    /// Bytes of the transformed input V `[positions, C, t_stride]`.
    pub fn v_bytes(&self) -> u64 {
        self.positions as u64 * self.in_c as u64 * self.t_stride as u64 * 4
    }

    /// Bytes of the products M `[positions, K, t_stride]`.
    pub fn m_bytes(&self) -> u64 {
        self.positions as u64 * self.out_c as u64 * self.t_stride as u64 * 4
    }
}

/// The transformed weights U `[16, K, C]` of a `[K, C, 3, 3]` weight: `U[pos] = (G g G^T)[pos]`
/// for each 3x3 filter g, with F(2x2, 3x3)'s 4x3 matrix G (interpolation points 0, 1, -1 and
/// infinity). Made once, at plan time.
pub fn transform_weights(weight: &[f32], k: usize, c: usize) -> Result<Vec<f32>, KernelError> {
    transform_weights_for(Tile::F2, weight, k, c)
}

/// F(2x2, 3x3)'s G (points 0, 1, -1, infinity); rows of `conv2d_winograd_input.wgsl`'s B^T
/// and `conv2d_winograd_output.wgsl`'s A^T belong to it.
const G2: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// F(4x4, 3x3)'s G for the points 0, 1, -1, 1/2, -2 and infinity (Barabasz et al., "Error
/// analysis and improving the accuracy of Winograd convolution", 2020: half the error of the
/// usual 0, ±1, ±2, measured again here). The denominators sit in G, which is applied once in
/// f64, so that the transforms run at run time (`conv2d_winograd4_input.wgsl`'s B^T and
/// `conv2d_winograd4_output.wgsl`'s A^T) have small integer or power-of-two entries.
const G4: [[f64; 3]; 6] = [
    [1.0 / 2.0, 0.0, 0.0],
    [1.0 / 6.0, 1.0 / 6.0, 1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [-16.0 / 15.0, -8.0 / 15.0, -4.0 / 15.0],
    [1.0 / 30.0, -1.0 / 15.0, 2.0 / 15.0],
    [0.0, 0.0, 1.0 / 2.0],
];

/// The transformed weights U `[positions, K, C]` of a `[K, C, 3, 3]` weight for `tile`:
/// `U[pos] = (G g G^T)[pos]` for each 3x3 filter g ([`G2`] or [`G4`]). Made once, at plan time.
pub fn transform_weights_for(
    tile: Tile,
    weight: &[f32],
    k: usize,
    c: usize,
) -> Result<Vec<f32>, KernelError> {
    if weight.len() != k * c * 9 {
        return Err(KernelError::BadShape {
            kernel: "winograd",
            detail: format!(
                "weight has {} values, [{k}, {c}, 3, 3] needs {}",
                weight.len(),
                k * c * 9
            ),
        });
    }
    let g_rows: &[[f64; 3]] = match tile {
        Tile::F2 => &G2,
        Tile::F4 => &G4,
    };
    let n = g_rows.len();
    // In f64, so the only rounding is the final one to f32.
    let mut out = vec![0f32; n * n * k * c];
    let mut t = vec![[0f64; 3]; n];
    for kk in 0..k {
        for cc in 0..c {
            let g = &weight[(kk * c + cc) * 9..][..9];
            // t = G g (n x 3), then U = t G^T (n x n).
            for (i, row) in g_rows.iter().enumerate() {
                for j in 0..3 {
                    t[i][j] = (0..3).map(|l| row[l] * f64::from(g[l * 3 + j])).sum();
                }
            }
            for i in 0..n {
                for j in 0..n {
                    let v: f64 = (0..3).map(|l| t[i][l] * g_rows[j][l]).sum();
                    out[((i * n + j) * k + kk) * c + cc] = v as f32;
                }
            }
        }
    }
    Ok(out)
}

/// The most bytes a band's V (and M) may take: large layers run in bands of tile rows
/// ([`WinogradParams::bands`]), which both keeps V and M within one binding (the stride-4 FPN
/// level at 800x1216, 256 channels, needs 140 MB for F(4x4)'s V, 249 MB for F(2x2)'s, beyond
/// lavapipe's 128 MiB) and lets the GEMM read V while the input transform's writes are still
/// in the CPU's caches.
pub const BAND_BYTES: u64 = 16 << 20;

/// Scratch buffers for V and M shared by the Winograd layers of one plan: [`Scratch::buffers`]
/// hands out buffers at least as large as asked, replacing them with larger ones when needed
/// (layers recorded earlier keep the smaller ones through their bind groups).
#[derive(Debug, Default)]
pub struct Scratch {
    v: Option<(u64, Arc<wgpu::Buffer>)>,
    m: Option<(u64, Arc<wgpu::Buffer>)>,
}

impl Scratch {
    /// V and M buffers for `p`'s largest band ([`band_limit`]).
    pub fn buffers(
        &mut self,
        ctx: &Context,
        p: &WinogradParams,
    ) -> (Arc<wgpu::Buffer>, Arc<wgpu::Buffer>) {
        let get = |slot: &mut Option<(u64, Arc<wgpu::Buffer>)>, bytes: u64, label: &str| match slot
        {
            Some((size, b)) if *size >= bytes => b.clone(),
            _ => {
                let b = Arc::new(ctx.storage(label, bytes));
                *slot = Some((bytes, b.clone()));
                b
            }
        };
        let limit = band_limit(ctx);
        let first = p.bands(limit, limit).first().copied().unwrap_or(*p);
        let v = get(&mut self.v, first.v_bytes(), "winograd V");
        let m = get(&mut self.m, first.m_bytes(), "winograd M");
        (v, m)
    }
}

/// The byte limit of one band's V and M on `ctx`: [`BAND_BYTES`] or the device's binding
/// limit, whichever is smaller.
pub fn band_limit(ctx: &Context) -> u64 {
    BAND_BYTES.min(ctx.max_binding())
}

/// Checks that V and M of one tile row of `p` (the smallest band) fit one binding of the
/// device.
pub fn check_size(ctx: &Context, label: &str, p: &WinogradParams) -> Result<(), KernelError> {
    let limit = ctx.max_binding();
    let row = p.band(0, 1);
    for (what, bytes) in [("V", row.v_bytes()), ("M", row.m_bytes())] {
        if bytes > limit {
            return Err(KernelError::TooLarge {
                what: format!("{label}: Winograd {what}"),
                needed: bytes,
                limit,
            });
        }
    }
    Ok(())
}

/// Records the launches of `y = act(conv(x, weight) + bias + residual)` with `u` the
/// transformed weights ([`transform_weights_for`]) and `v`, `m` scratch buffers (at least one
/// tile row's V and M; [`Scratch::buffers`]): three launches per band of tile rows that fits
/// them ([`WinogradParams::bands`]). `bias` and `residual` may be any small buffer when absent.
#[allow(clippy::too_many_arguments)]
pub fn launches(
    ctx: &Context,
    label: &str,
    p: &WinogradParams,
    x: &wgpu::Buffer,
    u: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    residual: &wgpu::Buffer,
    y: &wgpu::Buffer,
    v: &wgpu::Buffer,
    m: &wgpu::Buffer,
) -> Vec<Launch> {
    let per_64 = |n: u32| grid(n.div_ceil(64), MAX_GROUPS);
    let (input, output) = match p.tile() {
        Tile::F2 => (&INPUT, &OUTPUT),
        Tile::F4 => (&INPUT4, &OUTPUT4),
    };
    let bands = p.bands(v.size(), m.size());
    let count = bands.len();
    let mut out = Vec::with_capacity(3 * count);
    for (i, band) in bands.iter().enumerate() {
        let params = bytemuck::bytes_of(band);
        let part = if count > 1 {
            format!(", band {}/{count}", i + 1)
        } else {
            String::new()
        };
        out.push(ctx.launch(
            &format!("{label}[winograd input{part}]"),
            &ctx.kernel(input, &[]),
            params,
            &[x, v],
            per_64(band.in_c * band.tiles),
        ));
        out.push(ctx.launch(
            &format!("{label}[winograd gemm{part}]"),
            &ctx.kernel(&GEMM, &[]),
            params,
            &[u, v, m],
            grid(band.t_blocks * band.k_blocks * band.positions, MAX_GROUPS),
        ));
        out.push(ctx.launch(
            &format!("{label}[winograd output{part}]"),
            &ctx.kernel(output, &[]),
            params,
            &[m, bias, residual, y],
            per_64(band.out_c * band.tiles),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
