//! Drawing detections onto an image: box outlines in a per-class colour and a label tag
//! (`person 0.93`) in a built-in 5x7 pixel font, so no font files are needed.

use crate::image::RgbImage;

/// 5x7 glyphs, one byte per row (low 5 bits, MSB = left column), for the characters labels and
/// scores use. Anything else is drawn as a blank.
const GLYPHS: &[(char, [u8; 7])] = &[
    ('a', [0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f]),
    ('b', [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e]),
    ('c', [0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e]),
    ('d', [0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f]),
    ('e', [0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e]),
    ('f', [0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08]),
    ('g', [0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x0e]),
    ('h', [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11]),
    ('i', [0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e]),
    ('j', [0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0c]),
    ('k', [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12]),
    ('l', [0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e]),
    ('m', [0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11]),
    ('n', [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11]),
    ('o', [0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e]),
    ('p', [0x00, 0x00, 0x1e, 0x11, 0x1e, 0x10, 0x10]),
    ('q', [0x00, 0x00, 0x0d, 0x13, 0x0f, 0x01, 0x01]),
    ('r', [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10]),
    ('s', [0x00, 0x00, 0x0e, 0x10, 0x0e, 0x01, 0x1e]),
    ('t', [0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06]),
    ('u', [0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d]),
    ('v', [0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04]),
    ('w', [0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a]),
    ('x', [0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11]),
    ('y', [0x00, 0x00, 0x11, 0x11, 0x0f, 0x01, 0x0e]),
    ('z', [0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f]),
    ('0', [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e]),
    ('1', [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e]),
    ('2', [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f]),
    ('3', [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e]),
    ('4', [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02]),
    ('5', [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e]),
    ('6', [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e]),
    ('7', [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08]),
    ('8', [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e]),
    ('9', [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c]),
    ('.', [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c]),
    ('-', [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00]),
    ('/', [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00]),
    ('(', [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02]),
    (')', [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08]),
];

fn glyph(c: char) -> [u8; 7] {
    let c = c.to_ascii_lowercase();
    GLYPHS
        .iter()
        .find(|(g, _)| *g == c)
        .map(|(_, rows)| *rows)
        .unwrap_or([0; 7])
}

/// A distinct, saturated colour per class index.
pub fn class_color(class: usize) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 10] = [
        [230, 25, 75],
        [60, 180, 75],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [255, 225, 25],
    ];
    PALETTE[class % PALETTE.len()]
}

impl RgbImage {
    fn put(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&color);
        }
    }

    /// Draws the outline of `[x1, y1, x2, y2]` (pixel coordinates), `thickness` pixels wide.
    pub fn draw_box(&mut self, b: [f32; 4], color: [u8; 3], thickness: i64) {
        let [x1, y1, x2, y2] = b.map(|v| v.round() as i64);
        for t in 0..thickness {
            for x in x1..=x2 {
                self.put(x, y1 + t, color);
                self.put(x, y2 - t, color);
            }
            for y in y1..=y2 {
                self.put(x1 + t, y, color);
                self.put(x2 - t, y, color);
            }
        }
    }

    /// Writes `text` with its top-left corner at `(x, y)` on a filled tag of `background`,
    /// glyphs scaled by `scale`.
    pub fn draw_label(&mut self, x: i64, y: i64, text: &str, background: [u8; 3], scale: i64) {
        let (cw, ch) = (6 * scale, 9 * scale);
        let w = cw * text.chars().count() as i64 + scale;
        for dy in 0..ch {
            for dx in 0..w {
                self.put(x + dx, y + dy, background);
            }
        }
        let luminance =
            u32::from(background[0]) * 3 + u32::from(background[1]) * 6 + u32::from(background[2]);
        let ink = if luminance > 1280 {
            [0, 0, 0]
        } else {
            [255, 255, 255]
        };
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c);
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        for sy in 0..scale {
                            for sx in 0..scale {
                                self.put(
                                    x + scale + i as i64 * cw + col * scale + sx,
                                    y + scale + r as i64 * scale + sy,
                                    ink,
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Encodes the image as PNG (or any format the `image` crate writes, by extension).
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<(), crate::ImageError> {
        let path = path.as_ref();
        let err = |reason: String| crate::ImageError {
            path: path.to_path_buf(),
            reason,
        };
        let buf =
            image::RgbImage::from_raw(self.width as u32, self.height as u32, self.pixels.clone())
                .ok_or_else(|| err("pixel buffer does not match the image size".into()))?;
        buf.save(path)
            .map_err(|e| err(format!("cannot write: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(w: usize, h: usize) -> RgbImage {
        RgbImage {
            width: w,
            height: h,
            pixels: vec![0; w * h * 3],
        }
    }

    #[test]
    fn draw_box_outlines_only_the_border_and_clips_to_the_image() {
        let mut img = blank(20, 10);
        img.draw_box([2.0, 2.0, 30.0, 7.0], [255, 0, 0], 1);
        let at = |img: &RgbImage, x: usize, y: usize| img.pixels[(y * 20 + x) * 3];
        assert_eq!(at(&img, 2, 2), 255);
        assert_eq!(at(&img, 10, 7), 255);
        assert_eq!(at(&img, 10, 4), 0, "inside stays untouched");
    }

    #[test]
    fn draw_label_puts_ink_on_a_tag() {
        let mut img = blank(60, 12);
        img.draw_label(0, 0, "dog 0.9", [0, 0, 200], 1);
        let inked = img
            .pixels
            .chunks(3)
            .filter(|p| p == &[255, 255, 255])
            .count();
        let tag = img.pixels.chunks(3).filter(|p| p == &[0, 0, 200]).count();
        assert!(inked > 20 && tag > 100, "inked {inked}, tag {tag}");
    }
}
