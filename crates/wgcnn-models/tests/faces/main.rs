//! MTCNN (`wgcnn_models::faces`) against facenet-pytorch 2.6.0 on the CPU interpreter: each
//! net from the fixture's reference inputs, the pyramid from the image, the crops the cascade
//! cuts, the stage counts, and the final faces of the whole cascade.

use std::error::Error;

use wgcnn_graph::{Graph, Tensor, interp};
use wgcnn_models::faces::{self, CascadeConfig, Interpreter};

mod checks;

use checks::*;

fn run_cpu(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, Box<dyn Error>> {
    Ok(interp::run(g, inputs)?)
}

#[test]
fn mtcnn_pyramid_levels_and_pnet_maps_match_facenet_pytorch() -> TestResult {
    check_pyramid_and_pnet(&run_cpu)
}

#[test]
fn mtcnn_rnet_and_onet_match_facenet_pytorch_on_reference_crops() -> TestResult {
    check_rnet_onet(&run_cpu)
}

/// The whole cascade on grace_hopper.jpg's pixels: 199 R-Net crops (the first 16 equal to the
/// reference's), 13 O-Net crops (all equal), one face within 1 px / 1e-3.
#[test]
fn mtcnn_cascade_reproduces_grace_hopper_crops_counts_and_face() -> TestResult {
    let fx = fixture()?;
    let st = weights()?;
    let img = image(&fx)?;
    let (faces, trace) = faces::detect(
        &mut Interpreter { weights: &st },
        &img,
        &CascadeConfig::default(),
    )?;
    assert_eq!(
        trace.rnet_boxes.len(),
        fx.tensor("rnet.count")?.data[0] as usize,
        "R-Net crops"
    );
    assert_eq!(
        trace.onet_boxes.len(),
        fx.tensor("onet.count")?.data[0] as usize,
        "O-Net crops"
    );
    let crops = |boxes: &[faces::Candidate], size: usize, n: usize| -> Tensor {
        let mut data = Vec::new();
        for b in &boxes[..n] {
            let (rows, cols) = faces::cascade::crop_rect(b.bbox, img.shape[2], img.shape[3])
                .expect("non-empty crop");
            data.extend(faces::cascade::crop_resample(&img, rows, cols, size));
        }
        Tensor {
            shape: vec![n, 3, size, size],
            data,
        }
    };
    check_net(
        "rnet.input.first16",
        &crops(&trace.rnet_boxes, 24, 16),
        &fx.tensor("rnet.input.first16")?,
    )?;
    let n = trace.onet_boxes.len();
    check_net(
        "onet.input",
        &crops(&trace.onet_boxes, 48, n),
        &fx.tensor("onet.input.first16")?,
    )?;
    check_faces(&faces)
}

/// A flat grey picture has no face: the cascade returns nothing (P-Net finds no candidate or
/// the later nets reject them) rather than failing on empty batches.
#[test]
fn mtcnn_cascade_on_a_blank_image_finds_no_face() -> TestResult {
    let st = weights()?;
    let img = faces::cascade::image_tensor(&vec![128u8; 64 * 80 * 3], 64, 80);
    let (faces, _) = faces::detect(
        &mut Interpreter { weights: &st },
        &img,
        &CascadeConfig::default(),
    )?;
    assert!(faces.is_empty(), "{faces:?}");
    // Smaller than one 12-pixel cell at the first scale: no pyramid level at all.
    let tiny = faces::cascade::image_tensor(&[0u8; 8 * 8 * 3], 8, 8);
    let (faces, trace) = faces::detect(
        &mut Interpreter { weights: &st },
        &tiny,
        &CascadeConfig::default(),
    )?;
    assert!(faces.is_empty() && trace.scales.is_empty());
    Ok(())
}
