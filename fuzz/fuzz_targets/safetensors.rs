//! `.safetensors` files: header (length, JSON) and data; every tensor is decoded to f32.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgcnn_io::SafetensorsFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = SafetensorsFile::from_bytes("fuzz.safetensors", data.to_vec()) {
        for key in file.keys().to_vec() {
            let _ = file.tensor(&key);
        }
    }
});
