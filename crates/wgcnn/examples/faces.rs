//! Find faces with the bundled MTCNN, print their five landmarks, write an annotated copy and
//! a 160x160 crop of each face (the input of face-recognition models such as FaceNet):
//!
//! ```text
//! cargo run --release -p wgcnn --example faces -- photo.jpg
//! ```

use wgcnn::{Engine, EngineOptions, FACE_LANDMARKS, FaceDetector, FaceDetectorOptions, RgbImage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image] = args.as_slice() else {
        return Err("usage: faces IMAGE".into());
    };
    let engine = Engine::new(&EngineOptions::default())?;
    let detector = FaceDetector::new(&engine, &FaceDetectorOptions::default())?;
    let mut img = RgbImage::open(image)?;
    let faces = detector.detect(&img)?;
    let style = wgcnn::draw::Style::for_image(img.width, img.height);
    for (k, f) in faces.iter().enumerate() {
        println!("{:5.1}%  face {:?}", f.score * 100.0, f.bbox);
        for (name, [x, y]) in FACE_LANDMARKS.iter().zip(&f.landmarks) {
            println!("         {name:<12} ({x:.1}, {y:.1})");
        }
        wgcnn::extract_face(&img, f.bbox, 160, 0.0).save(format!("face{k}.png"))?;
    }
    for f in &faces {
        img.draw_box(f.bbox, [0, 200, 255], style.line_width);
        wgcnn::draw::draw_landmarks(&mut img, &f.landmarks, &style);
    }
    img.save("faces.png")?;
    println!("{} faces; wrote faces.png and face0.png ...", faces.len());
    Ok(())
}
