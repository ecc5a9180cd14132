//! ONNX bytes through the whole importer: protobuf decoding, initializers, op mapping, constant
//! folding, shape inference and graph building, then the report `wgcnn inspect` prints.
//! External data is looked up in a folder that does not exist, so no file outside the input is
//! ever read.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wgcnn_io::onnx::{OnnxOptions, load_onnx_bytes};

fuzz_target!(|data: &[u8]| {
    let _ = load_onnx_bytes(
        data,
        Path::new("fuzz.onnx"),
        Path::new("/nonexistent/wgcnn-fuzz"),
        &OnnxOptions::default(),
    );
});
