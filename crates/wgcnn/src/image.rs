//! Image decoding: any file the `image` crate reads (JPEG, PNG, WebP, BMP, GIF's first frame),
//! EXIF orientation applied, as 8-bit RGB.
//!
//! Every decode goes through [`decode_reader`], which bounds what a file can make wgcnn
//! allocate: a header's claimed size is checked against [`MAX_SIDE`] and [`MAX_DECODED_BYTES`]
//! before any pixel buffer exists. The `image` crate's own `max_alloc` limit is not enough on its
//! own: `DynamicImage::from_decoder` (needed to read the EXIF orientation first) allocates the
//! whole output without consulting it, so a 2 kB PNG claiming 100 000 x 100 000 pixels asked the
//! allocator for 30 GB and aborted the process.

use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

/// The longest side wgcnn decodes, in pixels: 4x a 100-megapixel camera's, far past anything a
/// network here takes (inputs are resized to a few hundred pixels).
pub(crate) const MAX_SIDE: u32 = 1 << 15;

/// The most bytes a decoded image may take before conversion to RGB8 (the decoder's output:
/// 512 MiB, the `image` crate's default budget, is ~170 megapixels of RGB8 or ~45 of 16-bit
/// RGBA); the same budget bounds the decoders' own working memory.
pub(crate) const MAX_DECODED_BYTES: u64 = 512 << 20;

/// The limits every decoder runs under.
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

/// Decodes what `reader` holds (its format already guessed) under [`limits`], refusing a claimed
/// size over the limits before allocating, then applies the EXIF orientation.
fn decode_reader<R: BufRead + Seek>(
    mut reader: ImageReader<R>,
    err: &dyn Fn(String) -> ImageError,
) -> Result<DynamicImage, ImageError> {
    if reader.format().is_none() {
        return Err(err(
            "not an image in a format wgcnn reads (JPEG, PNG, WebP, BMP, GIF)".into(),
        ));
    }
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => err(format!(
            "the image is larger than wgcnn decodes (at most {MAX_SIDE} pixels a side, \
             {} MiB decoded): {e}",
            MAX_DECODED_BYTES >> 20
        )),
        e => err(format!("cannot decode: {e}")),
    })?;
    let (width, height) = decoder.dimensions();
    let bytes = decoder.total_bytes();
    if width > MAX_SIDE || height > MAX_SIDE || bytes > MAX_DECODED_BYTES {
        return Err(err(format!(
            "the header claims {width}x{height} pixels ({bytes} bytes decoded), larger than wgcnn \
             decodes (at most {MAX_SIDE} pixels a side, {} MiB decoded)",
            MAX_DECODED_BYTES >> 20
        )));
    }
    let orientation = decoder
        .orientation()
        .map_err(|e| err(format!("cannot read orientation: {e}")))?;
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| err(format!("cannot decode: {e}")))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// A decoded RGB8 image.
#[derive(Clone, Debug)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    /// Row-major, 3 bytes per pixel.
    pub pixels: Vec<u8>,
}

/// An image that could not be read, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct ImageError {
    pub path: PathBuf,
    pub reason: String,
}

impl RgbImage {
    /// Decodes a file, telling the format from its content, and applies its EXIF orientation.
    pub fn open(path: impl AsRef<Path>) -> Result<RgbImage, ImageError> {
        let path = path.as_ref();
        let err = |reason: String| ImageError {
            path: path.to_path_buf(),
            reason,
        };
        let reader = ImageReader::open(path)
            .map_err(|e| err(format!("cannot open: {e}")))?
            .with_guessed_format()
            .map_err(|e| err(format!("cannot read: {e}")))?;
        Ok(RgbImage::from_dynamic(decode_reader(reader, &err)?))
    }

    /// Decodes an in-memory encoded image (`what` names it in errors).
    pub fn decode(bytes: &[u8], what: &str) -> Result<RgbImage, ImageError> {
        let err = |reason: String| ImageError {
            path: PathBuf::from(what),
            reason,
        };
        let reader = ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| err(format!("cannot read: {e}")))?;
        Ok(RgbImage::from_dynamic(decode_reader(reader, &err)?))
    }

    /// Decodes a file as [`RgbImage::open`] does and, when it holds more than 8 bits per channel
    /// (16-bit PNG, float formats), also returns its exact values as a `[1, 3, H, W]` tensor in
    /// `[0, 1]`, so detectors can run on the full precision.
    pub fn open_precise(
        path: impl AsRef<Path>,
    ) -> Result<(RgbImage, Option<wgcnn_graph::Tensor>), ImageError> {
        let path = path.as_ref();
        let err = |reason: String| ImageError {
            path: path.to_path_buf(),
            reason,
        };
        let reader = ImageReader::open(path)
            .map_err(|e| err(format!("cannot open: {e}")))?
            .with_guessed_format()
            .map_err(|e| err(format!("cannot read: {e}")))?;
        let img = decode_reader(reader, &err)?;
        let precise =
            (img.color().bytes_per_pixel() / img.color().channel_count() > 1).then(|| {
                let f = img.to_rgb32f();
                let (w, h) = (f.width() as usize, f.height() as usize);
                let raw = f.into_raw();
                let mut chw = vec![0f32; 3 * w * h];
                for (i, px) in raw.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        chw[c * w * h + i] = px[c];
                    }
                }
                wgcnn_graph::Tensor {
                    shape: vec![1, 3, h, w],
                    data: chw,
                }
            });
        Ok((RgbImage::from_dynamic(img), precise))
    }

    fn from_dynamic(img: DynamicImage) -> RgbImage {
        let rgb = img.into_rgb8();
        RgbImage {
            width: rgb.width() as usize,
            height: rgb.height() as usize,
            pixels: rgb.into_raw(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-32 (IEEE) of PNG chunks, bit by bit: only test images are patched with it.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn encode(format: image::ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 13) as u8, ((x + y) * 3) as u8])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    /// A small valid PNG whose IHDR (CRC fixed up) claims `width` x `height` pixels.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut png = encode(image::ImageFormat::Png, 16, 16);
        // Signature (8), then IHDR: length (4), "IHDR" (4), width (4), height (4), 5 bytes, CRC.
        assert_eq!(&png[12..16], b"IHDR");
        png[16..20].copy_from_slice(&width.to_be_bytes());
        png[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    /// A small valid baseline JPEG whose SOF0 segment claims `width` x `height` pixels.
    fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
        let mut jpeg = encode(image::ImageFormat::Jpeg, 16, 16);
        let sof = jpeg
            .windows(2)
            .position(|w| w == [0xff, 0xc0])
            .expect("the encoder writes a baseline SOF0");
        // Marker (2), length (2), precision (1), height (2), width (2).
        jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        jpeg
    }

    fn refused(bytes: &[u8], what: &str) -> String {
        assert!(
            bytes.len() < 2048,
            "{what}: the bomb is {} bytes",
            bytes.len()
        );
        let err = RgbImage::decode(bytes, what).expect_err(what).to_string();
        println!("{err}");
        assert!(err.starts_with(what), "the error names the input: {err}");
        err
    }

    #[test]
    fn png_claiming_100000_squared_pixels_is_refused_before_allocating() {
        let err = refused(&png_claiming(100_000, 100_000), "bomb.png");
        assert!(
            err.contains("100000x100000") || err.contains("larger than"),
            "{err}"
        );
    }

    #[test]
    fn jpeg_claiming_65535_squared_pixels_is_refused_before_allocating() {
        let err = refused(&jpeg_claiming(65_535, 65_535), "bomb.jpg");
        assert!(err.contains("larger than"), "{err}");
    }

    #[test]
    fn images_within_the_side_limit_but_over_the_byte_budget_are_refused() {
        // 30 000 x 30 000 RGB8 is 2.7 GB: each side is allowed, the total is not.
        let err = refused(&png_claiming(30_000, 30_000), "wide.png");
        assert!(err.contains("30000x30000"), "{err}");
    }

    #[test]
    fn images_under_the_limits_still_decode_and_a_lying_small_header_fails_cleanly() {
        let ok = RgbImage::decode(&encode(image::ImageFormat::Png, 16, 16), "ok.png").unwrap();
        assert_eq!(
            (ok.width, ok.height, ok.pixels.len()),
            (16, 16, 16 * 16 * 3)
        );
        // Claims more pixels than the data holds but within the limits: a decode error.
        let err = RgbImage::decode(&png_claiming(4000, 3000), "short.png").unwrap_err();
        println!("{err}");
        assert!(err.to_string().starts_with("short.png"));
    }

    #[test]
    fn bytes_in_no_image_format_are_refused_by_name() {
        let err = RgbImage::decode(b"definitely not an image", "junk").unwrap_err();
        assert!(err.to_string().contains("not an image"), "{err}");
    }
}
