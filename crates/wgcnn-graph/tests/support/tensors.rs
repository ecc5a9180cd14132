//! Small tensors for the hand-computed op tests (`detect_resize.rs`, `detect_roi_align.rs`),
//! each included with `#[path = "support/tensors.rs"] mod tensors;`.

use wgcnn_graph::Tensor;

/// A tensor of `shape` holding `data` (row-major).
pub fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor {
        shape: shape.to_vec(),
        data: data.to_vec(),
    }
}

/// A tensor whose value at each position is given by `f(index)`.
pub fn from_fn(shape: &[usize], f: impl Fn(&[usize]) -> f32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut idx = vec![0usize; shape.len()];
    let mut data = Vec::with_capacity(n);
    for _ in 0..n {
        data.push(f(&idx));
        for ax in (0..shape.len()).rev() {
            idx[ax] += 1;
            if idx[ax] < shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    Tensor {
        shape: shape.to_vec(),
        data,
    }
}

/// Prints `what`'s max abs error and asserts equal shapes and the error within `tol`.
pub fn check(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let err = got.max_abs_diff(want);
    println!("{what}: max abs error {err:.3e}");
    assert_eq!(got.shape, want.shape, "{what}: shape");
    assert!(
        err <= tol,
        "{what}: error {err} > {tol}\n got {:?}\nwant {:?}",
        got.data,
        want.data
    );
}
