//! Image decoding with the library's (and so the CLI's) decoder settings: format guessed from
//! the content, the same size and allocation limits, EXIF orientation applied.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wgcnn::RgbImage::decode(data, "fuzz image");
});
