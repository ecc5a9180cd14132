//! Detect objects with a torchvision Faster R-CNN checkpoint and write an annotated copy:
//!
//! ```text
//! cargo run --release -p wgcnn --example detect -- \
//!     fasterrcnn_mobilenet_v3_large_320_fpn fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth photo.jpg
//! ```

use wgcnn::{Detector, DetectorOptions, Engine, EngineOptions, RgbImage, class_color};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, weights, image] = args.as_slice() else {
        return Err("usage: detect MODEL WEIGHTS IMAGE".into());
    };
    let engine = Engine::new(&EngineOptions::default())?;
    let options = DetectorOptions {
        model: model.clone(),
        weights: weights.into(),
        score_threshold: 0.5,
        config: None,
        labels: None,
    };
    let detector = Detector::new(&engine, &options)?;
    let mut img = RgbImage::open(image)?;
    let detections = detector.detect(&img)?;
    for d in &detections {
        println!("{:5.1}%  {:<14} {:?}", d.score * 100.0, d.label, d.bbox);
        img.draw_box(d.bbox, class_color(d.class), 2);
    }
    img.save("detections.png")?;
    println!("{} detections; wrote detections.png", detections.len());
    Ok(())
}
