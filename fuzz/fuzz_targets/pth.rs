//! `.pth` checkpoints (zip or legacy pickle): open the bytes, then decode every tensor the file
//! claims, as binding a model would. Any panic, abort, timeout or out-of-memory is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgcnn_io::PthFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = PthFile::from_bytes("fuzz.pth", data.to_vec()) {
        for key in file.keys().to_vec() {
            let _ = file.shape(&key);
            let _ = file.tensor(&key);
        }
    }
});
