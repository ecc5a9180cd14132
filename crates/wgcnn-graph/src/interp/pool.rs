//! Max, average and adaptive average pooling, PyTorch's window and divisor rules.

use crate::{Pool2d, Tensor};

/// The input range `[lo, hi)` that output position `o` of one axis reads, clipped to the
/// input, and the unclipped start (which may lie in the padding).
fn window(p: &Pool2d, axis: usize, o: usize, len: usize) -> (usize, usize) {
    let start = (o * p.stride[axis]) as isize - p.padding[axis] as isize;
    let end = start + p.kernel[axis] as isize;
    (
        start.clamp(0, len as isize) as usize,
        end.clamp(0, len as isize) as usize,
    )
}

/// Max pooling; padded positions never win.
pub(super) fn max_pool(p: &Pool2d, x: &Tensor, out_shape: &[usize]) -> Tensor {
    let (h, w) = (x.shape[2], x.shape[3]);
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let mut out = Vec::with_capacity(out_shape.iter().product());
    let xcols: Vec<(usize, usize)> = (0..ow).map(|ox| window(p, 1, ox, w)).collect();
    for pi in 0..out_shape[0] * out_shape[1] {
        let plane = &x.data[pi * h * w..(pi + 1) * h * w];
        for oy in 0..oh {
            let (y0, y1) = window(p, 0, oy, h);
            for &(x0, x1) in &xcols {
                let mut m = f32::NEG_INFINITY;
                for row in plane[y0 * w..y1 * w].chunks_exact(w.max(1)) {
                    for &v in &row[x0..x1] {
                        // NaN propagates, as in PyTorch.
                        if v > m || v.is_nan() {
                            m = v;
                        }
                    }
                }
                out.push(m);
            }
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// Average pooling. With `count_include_pad` the divisor is the window clipped to the padded
/// extent `[-pad_begin, len + pad_end)`; without it, the number of input elements summed.
pub(super) fn avg_pool(p: &Pool2d, x: &Tensor, out_shape: &[usize]) -> Tensor {
    let (h, w) = (x.shape[2], x.shape[3]);
    let (oh, ow) = (out_shape[2], out_shape[3]);
    // The window clipped to the padded extent, as a count.
    let padded = |axis: usize, o: usize, len: usize| -> usize {
        let start = (o * p.stride[axis]) as isize - p.padding[axis] as isize;
        let end = (start + p.kernel[axis] as isize).min((len + p.padding[axis + 2]) as isize);
        (end - start).max(0) as usize
    };
    let cols: Vec<((usize, usize), usize)> = (0..ow)
        .map(|ox| (window(p, 1, ox, w), padded(1, ox, w)))
        .collect();
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for pi in 0..out_shape[0] * out_shape[1] {
        let plane = &x.data[pi * h * w..(pi + 1) * h * w];
        for oy in 0..oh {
            let (y0, y1) = window(p, 0, oy, h);
            let ph = padded(0, oy, h);
            for &((x0, x1), pw) in &cols {
                let mut sum = 0f32;
                for row in plane[y0 * w..y1 * w].chunks_exact(w.max(1)) {
                    for &v in &row[x0..x1] {
                        sum += v;
                    }
                }
                let count = if p.count_include_pad {
                    ph * pw
                } else {
                    (y1 - y0) * (x1 - x0)
                };
                out.push(if count == 0 { 0.0 } else { sum / count as f32 });
            }
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}

/// Adaptive average pooling: window `i` spans `[floor(i*len/o), ceil((i+1)*len/o))`.
pub(super) fn adaptive_avg_pool(x: &Tensor, out_shape: &[usize]) -> Tensor {
    let (h, w) = (x.shape[2], x.shape[3]);
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let bounds = |i: usize, len: usize, o: usize| (i * len / o, ((i + 1) * len).div_ceil(o));
    let cols: Vec<(usize, usize)> = (0..ow).map(|ox| bounds(ox, w, ow)).collect();
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for pi in 0..out_shape[0] * out_shape[1] {
        let plane = &x.data[pi * h * w..(pi + 1) * h * w];
        for oy in 0..oh {
            let (y0, y1) = bounds(oy, h, oh);
            for &(x0, x1) in &cols {
                let mut sum = 0f32;
                for row in plane[y0 * w..y1 * w].chunks_exact(w.max(1)) {
                    for &v in &row[x0..x1] {
                        sum += v;
                    }
                }
                let count = (y1 - y0) * (x1 - x0);
                out.push(if count == 0 { 0.0 } else { sum / count as f32 });
            }
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data: out,
    }
}
