//! Image decoding: any file the `image` crate reads (JPEG, PNG, WebP, BMP, GIF's first frame),
//! EXIF orientation applied, as 8-bit RGB.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader};

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
        if reader.format().is_none() {
            return Err(err(
                "not an image in a format wgcnn reads (JPEG, PNG, WebP, BMP, GIF)".into(),
            ));
        }
        let mut decoder = reader
            .into_decoder()
            .map_err(|e| err(format!("cannot decode: {e}")))?;
        let orientation = decoder
            .orientation()
            .map_err(|e| err(format!("cannot read orientation: {e}")))?;
        let mut img =
            DynamicImage::from_decoder(decoder).map_err(|e| err(format!("cannot decode: {e}")))?;
        img.apply_orientation(orientation);
        Ok(RgbImage::from_dynamic(img))
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
        let mut decoder = reader
            .into_decoder()
            .map_err(|e| err(format!("cannot decode: {e}")))?;
        let orientation = decoder
            .orientation()
            .map_err(|e| err(format!("cannot read orientation: {e}")))?;
        let mut img =
            DynamicImage::from_decoder(decoder).map_err(|e| err(format!("cannot decode: {e}")))?;
        img.apply_orientation(orientation);
        Ok(RgbImage::from_dynamic(img))
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
        let mut decoder = reader
            .into_decoder()
            .map_err(|e| err(format!("cannot decode: {e}")))?;
        let orientation = decoder
            .orientation()
            .map_err(|e| err(format!("cannot read orientation: {e}")))?;
        let mut img =
            DynamicImage::from_decoder(decoder).map_err(|e| err(format!("cannot decode: {e}")))?;
        img.apply_orientation(orientation);
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
