//! Winograd F(2x2, 3x3) convolution for 3x3, stride-1, undilated, ungrouped layers: three
//! launches (input transform, 16 GEMMs, output transform with the fused epilogue) doing 2.25x
//! fewer multiply-adds than the direct kernel. F(4x4, 3x3) would do 4x fewer, but in f32 its
//! results are about 4x further from exact (twice that with the usual interpolation points) and
//! moved Inception-v4's logits from 1.4e-3 to 2.0e-3 of PyTorch's even with blocked sums;
//! F(2x2, 3x3) is as close as the direct kernel. Shaders: `shaders/conv2d_winograd_input.wgsl`,
//! `shaders/conv2d_winograd_gemm.wgsl`, `shaders/conv2d_winograd_output.wgsl`.
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
use crate::{Access, Context, KernelError, KernelSpec, Launch, MAX_GROUPS, grid, shaders};

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

/// Transformed positions per tile (4 x 4).
pub const POSITIONS: usize = 16;
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
    pub _pad0: u32,
    pub _pad1: u32,
}

impl WinogradParams {
    /// Params of `desc`, or an error naming the shapes (including a geometry this path does
    /// not compute, see [`fits`]).
    pub fn new(desc: &ConvDesc) -> Result<Self, KernelError> {
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
        let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
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
            _pad0: 0,
            _pad1: 0,
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

    /// Bytes of the transformed input V `[16, C, t_stride]`.
    pub fn v_bytes(&self) -> u64 {
        (POSITIONS * self.in_c as usize * self.t_stride as usize * 4) as u64
    }

    /// Bytes of the products M `[16, K, t_stride]`.
    pub fn m_bytes(&self) -> u64 {
        (POSITIONS * self.out_c as usize * self.t_stride as usize * 4) as u64
    }
}

/// The transformed weights U `[16, K, C]` of a `[K, C, 3, 3]` weight: `U[pos] = (G g G^T)[pos]`
/// for each 3x3 filter g, with F(2x2, 3x3)'s 4x3 matrix G (interpolation points 0, 1, -1 and
/// infinity). Made once, at plan time.
pub fn transform_weights(weight: &[f32], k: usize, c: usize) -> Result<Vec<f32>, KernelError> {
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
    // In f64, so the only rounding is the final one to f32.
    const G: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let mut out = vec![0f32; POSITIONS * k * c];
    for kk in 0..k {
        for cc in 0..c {
            let g = &weight[(kk * c + cc) * 9..][..9];
            // t = G g (4x3), then U = t G^T (4x4).
            let mut t = [[0f64; 3]; 4];
            for (i, row) in G.iter().enumerate() {
                for j in 0..3 {
                    t[i][j] = (0..3).map(|l| row[l] * f64::from(g[l * 3 + j])).sum();
                }
            }
            for i in 0..4 {
                for j in 0..4 {
                    let v: f64 = (0..3).map(|l| t[i][l] * G[j][l]).sum();
                    out[((i * 4 + j) * k + kk) * c + cc] = v as f32;
                }
            }
        }
    }
    Ok(out)
}

/// Scratch buffers for V and M shared by the Winograd layers of one plan: [`Scratch::buffers`]
/// hands out buffers at least as large as asked, replacing them with larger ones when needed
/// (layers recorded earlier keep the smaller ones through their bind groups).
#[derive(Debug, Default)]
pub struct Scratch {
    v: Option<(u64, Arc<wgpu::Buffer>)>,
    m: Option<(u64, Arc<wgpu::Buffer>)>,
}

impl Scratch {
    /// V and M buffers of at least `p.v_bytes()` and `p.m_bytes()`.
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
        let v = get(&mut self.v, p.v_bytes(), "winograd V");
        let m = get(&mut self.m, p.m_bytes(), "winograd M");
        (v, m)
    }
}

/// Checks that V and M of `p` fit one binding of the device.
pub fn check_size(ctx: &Context, label: &str, p: &WinogradParams) -> Result<(), KernelError> {
    let limit = ctx.max_binding();
    for (what, bytes) in [("V", p.v_bytes()), ("M", p.m_bytes())] {
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

/// Records the three launches of `y = act(conv(x, weight) + bias + residual)` with `u` the
/// transformed weights ([`transform_weights`]) and `v`, `m` scratch buffers of at least
/// `p.v_bytes()` / `p.m_bytes()`. `bias` and `residual` may be any small buffer when absent.
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
    let params = bytemuck::bytes_of(p);
    let per_64 = |n: u32| grid(n.div_ceil(64), MAX_GROUPS);
    vec![
        ctx.launch(
            &format!("{label} (winograd input)"),
            &ctx.kernel(&INPUT, &[]),
            params,
            &[x, v],
            per_64(p.in_c * p.tiles),
        ),
        ctx.launch(
            &format!("{label} (winograd gemm)"),
            &ctx.kernel(&GEMM, &[]),
            params,
            &[u, v, m],
            grid(p.t_blocks * p.k_blocks * POSITIONS as u32, MAX_GROUPS),
        ),
        ctx.launch(
            &format!("{label} (winograd output)"),
            &ctx.kernel(&OUTPUT, &[]),
            params,
            &[m, bias, residual, y],
            per_64(p.out_c * p.tiles),
        ),
    ]
}

#[cfg(test)]
mod tests;
