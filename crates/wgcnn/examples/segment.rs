//! Paints the classes of a photo with a torchvision segmenter:
//!
//! ```text
//! cargo run --release -p wgcnn --example segment -- deeplabv3_resnet50 \
//!     deeplabv3_resnet50_coco-cd0a2569.pth assets/chelsea.png overlay.png
//! ```
//!
//! prints each class present with its share of the pixels and writes the overlay.

use wgcnn::{Engine, EngineOptions, RgbImage, Segmenter, SegmenterOptions, draw_segmentation};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, weights, image, output] = args.as_slice() else {
        return Err("usage: segment MODEL WEIGHTS IMAGE OUTPUT.png".into());
    };
    let engine = Engine::new(&EngineOptions::default())?;
    let segmenter = Segmenter::new(&engine, &SegmenterOptions::new(model, weights))?;
    let photo = RgbImage::open(image)?;
    let (seg, timings) = segmenter.segment_timed(&photo)?;
    println!(
        "{image}: {}x{} photo, network at {}x{} ({:.0} ms on the GPU)",
        seg.width,
        seg.height,
        seg.network_size.0,
        seg.network_size.1,
        timings.gpu.as_secs_f64() * 1e3
    );
    for c in seg.present(segmenter.labels()) {
        println!("  {:5.1}%  {}", c.fraction * 100.0, c.label);
    }
    let mut canvas = photo;
    draw_segmentation(&mut canvas, &seg, segmenter.labels(), 0.5)?;
    canvas.save(output)?;
    println!("wrote {output}");
    Ok(())
}
