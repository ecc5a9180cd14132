//! `Op::ArgMax2d` (a segmenter's class map) on the CPU interpreter: by hand, against
//! `Resize` followed by a channel argmax, ties, and shape errors.

use wgcnn_graph::{GraphError, Op, ResizeMode, Tensor, interp::eval_op};

fn argmax(x: &Tensor, size: [usize; 2]) -> Result<Tensor, GraphError> {
    eval_op(&Op::ArgMax2d { size }, &[x])
}

#[test]
fn argmax2d_at_the_input_size_picks_the_largest_channel_and_the_first_on_ties()
-> Result<(), GraphError> {
    // Two images, three channels, 1x2 pixels. Pixel (0, 1) of image 0 ties channels 0 and 2.
    let x = Tensor::new(
        &[2, 3, 1, 2],
        vec![
            1.0, 5.0, /* c1 */ 3.0, -1.0, /* c2 */ 2.0, 5.0, // image 0
            -3.0, 0.0, /* c1 */ -2.0, 0.0, /* c2 */ -1.0, 0.5, // image 1
        ],
    )?;
    let got = argmax(&x, [1, 2])?;
    assert_eq!(got.shape, [2, 1, 2]);
    assert_eq!(got.data, [1.0, 0.0, 2.0, 2.0]);
    Ok(())
}

/// Deterministic values in [-2, 2) (an LCG), enough for shapes that do not divide evenly.
fn values(n: usize, mut seed: u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

#[test]
fn argmax2d_equals_bilinear_resize_then_channel_argmax_up_and_down() -> Result<(), GraphError> {
    for (input, size) in [
        ([1, 21, 15, 20], [120, 160]),
        ([2, 5, 7, 9], [13, 4]),
        ([1, 3, 1, 1], [3, 5]),
        ([1, 4, 65, 87], [37, 50]),
    ] {
        let x = Tensor::new(&input, values(input.iter().product(), input[3] as u64))?;
        let resized = eval_op(
            &Op::Resize {
                size,
                mode: ResizeMode::Bilinear {
                    align_corners: false,
                },
            },
            &[&x],
        )?;
        let got = argmax(&x, size)?;
        assert_eq!(got.shape, [input[0], size[0], size[1]]);
        let (c, plane) = (input[1], size[0] * size[1]);
        for n in 0..input[0] {
            for p in 0..plane {
                let at = |k: usize| resized.data[(n * c + k) * plane + p];
                let want = (1..c).fold(0, |best, k| if at(k) > at(best) { k } else { best });
                assert_eq!(
                    got.data[n * plane + p],
                    want as f32,
                    "{input:?} -> {size:?} pixel {p}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn argmax2d_rejects_non_nchw_inputs_and_empty_sizes() -> Result<(), GraphError> {
    let flat = Tensor::new(&[2, 3], vec![0.0; 6])?;
    assert!(matches!(
        argmax(&flat, [2, 2]),
        Err(GraphError::Shape { .. })
    ));
    let x = Tensor::new(&[1, 2, 2, 2], vec![0.0; 8])?;
    assert!(matches!(argmax(&x, [0, 2]), Err(GraphError::Shape { .. })));
    Ok(())
}
