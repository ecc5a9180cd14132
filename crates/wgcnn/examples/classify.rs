//! Classify images with the bundled EfficientNet-Lite0, or a network and checkpoint of your own:
//!
//! ```text
//! cargo run --release -p wgcnn --example classify -- assets/chelsea.png
//! cargo run --release -p wgcnn --example classify -- assets/coffee.png resnet50 resnet50.pth
//! ```

use wgcnn::{Classifier, ClassifierOptions, Engine, EngineOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let image = args.next().ok_or("usage: classify IMAGE [MODEL WEIGHTS]")?;
    let mut options = ClassifierOptions::default();
    if let (Some(model), Some(weights)) = (args.next(), args.next()) {
        options.model = model;
        options.weights = Some(weights.into());
    }
    let engine = Engine::new(&EngineOptions::default())?;
    println!("adapter: {}", engine.adapter_info().name);
    let classifier = Classifier::new(&engine, &options)?;
    for p in classifier.classify_file(&image, 5)? {
        println!("{:6.2}%  {} ({})", p.probability * 100.0, p.label, p.index);
    }
    Ok(())
}
