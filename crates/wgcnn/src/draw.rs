//! Annotating images: detection boxes with labels, blended instance masks, keypoint skeletons
//! and face landmarks, drawn the way the tools people know draw them (ultralytics, torchvision's
//! `draw_bounding_boxes`): line width and font size grow with the image, each label sits on a
//! filled tag in its class colour above its box, and the text is black or white, whichever reads
//! better on that colour.
//!
//! Shapes are drawn with `imageproc`, text with `ab_glyph` and an embedded DejaVu Sans, so no font
//! has to be installed. Every function clips to the image: boxes and points partly or wholly
//! outside it, zero-size, inverted or NaN boxes draw what is visible (or nothing) and never panic.

use std::sync::LazyLock;

use ab_glyph::{FontRef, PxScale};
use image::Rgb;
use imageproc::drawing::{
    draw_filled_circle_mut, draw_filled_rect_mut, draw_line_segment_mut, draw_polygon_mut,
    draw_text_mut, text_size,
};
use imageproc::point::Point;
use imageproc::rect::Rect;

use crate::detector::Detection;
use crate::image::RgbImage;

/// The label font, DejaVu Sans (Bitstream Vera licence, see assets/LICENSES.md).
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Parsed once. `None` only if the embedded file were corrupt (a test pins that it is not): labels
/// then keep their tags and lose their text rather than panicking.
static FONT: LazyLock<Option<FontRef<'static>>> =
    LazyLock::new(|| FontRef::try_from_slice(FONT_BYTES).ok());

/// A mask, keypoints or landmarks that do not fit the image they are drawn on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DrawError {
    #[error(
        "mask has {got} values but the {width}x{height} image needs {expected} (one per pixel)"
    )]
    MaskSize {
        got: usize,
        expected: usize,
        width: usize,
        height: usize,
    },
}

/// Sizes that scale with the image, so a 4K photo gets lines and text as legible as a thumbnail.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Style {
    /// Box outline and skeleton line width in pixels.
    pub line_width: u32,
    /// Label text height (ascender to descender) in pixels.
    pub font_px: f32,
    /// Keypoint and landmark dot radius in pixels.
    pub radius: u32,
}

impl Style {
    /// About `max(w, h) / 300` px lines and `max(12, max(w, h) / 40)` px text, like ultralytics'
    /// annotator (its line width ~0.3 % and font ~3.5 % of the mean side).
    pub fn for_image(width: usize, height: usize) -> Style {
        let side = width.max(height) as f32;
        let line_width = (side / 300.0).round().max(1.0) as u32;
        Style {
            line_width,
            font_px: (side / 40.0).round().max(12.0),
            radius: line_width + 2,
        }
    }
}

/// A distinct, stable colour per class index: the saturated, mid-to-dark half of Sasha
/// Trubetskoy's 20 distinct colours plus a violet and a periwinkle. Pastels (pink, apricot,
/// beige, mint, lavender) and brown are left out: their boxes vanish on skin, fur and walls.
pub fn class_color(class: usize) -> [u8; 3] {
    #[rustfmt::skip]
    const PALETTE: [[u8; 3]; 15] = [
        [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
        [70, 240, 240], [240, 50, 230], [210, 245, 60], [0, 128, 128], [255, 225, 25],
        [132, 56, 255], [128, 0, 0], [128, 128, 0], [0, 0, 128], [100, 115, 255],
    ];
    PALETTE[class % PALETTE.len()]
}

/// Black or white, whichever contrasts more with `background` (WCAG relative luminance: black
/// wins above ~0.18, so yellow, cyan, green and this palette's red get black text, blue, purple,
/// navy and maroon white).
pub fn text_color(background: [u8; 3]) -> [u8; 3] {
    let linear = |c: u8| {
        let c = f32::from(c) / 255.0;
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = background.map(linear);
    let luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    // Contrast with black (L + 0.05) / 0.05 against contrast with white 1.05 / (L + 0.05).
    if (luminance + 0.05) * (luminance + 0.05) > 0.05 * 1.05 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

/// Draws every detection: boxes first, then their `label 0.93` tags, each in ascending score
/// order so the most confident box and label end up on top and no box line crosses a label.
pub fn draw_detections(img: &mut RgbImage, detections: &[Detection]) {
    let style = Style::for_image(img.width, img.height);
    let mut order: Vec<&Detection> = detections.iter().collect();
    order.sort_by(|a, b| a.score.total_cmp(&b.score));
    for d in &order {
        draw_box(img, d.bbox, class_color(d.class), style.line_width);
    }
    for d in &order {
        let text = format!("{} {:.2}", d.label, d.score);
        draw_label(img, d.bbox, &text, class_color(d.class), &style);
    }
}

/// Draws the outline of `[x1, y1, x2, y2]` (pixel edges, as detectors report them) inside the box,
/// `line_width` pixels wide. Inverted corners are swapped; a zero-size box still leaves a mark.
pub fn draw_box(img: &mut RgbImage, bbox: [f32; 4], color: [u8; 3], line_width: u32) {
    let Some(canvas) = Canvas::new(img) else {
        return;
    };
    let Some([x1, y1, x2, y2]) = pixel_box(bbox, canvas.w, canvas.h, line_width) else {
        return;
    };
    let t = i64::from(line_width.max(1));
    canvas.run(|c| {
        let color = Rgb(color);
        fill_rect(c, x1, y1, x2, (y1 + t).min(y2), color);
        fill_rect(c, x1, (y2 - t).max(y1), x2, y2, color);
        fill_rect(c, x1, y1, (x1 + t).min(x2), y2, color);
        fill_rect(c, (x2 - t).max(x1), y1, x2, y2, color);
    });
}

/// Writes `text` on a filled tag of `color` at the top-left corner of `bbox`: above the box, or
/// just inside it where there is no room above; shifted left to stay in the image when the box
/// touches its right edge. The text is black or white by [`text_color`].
pub fn draw_label(img: &mut RgbImage, bbox: [f32; 4], text: &str, color: [u8; 3], style: &Style) {
    let Some(canvas) = Canvas::new(img) else {
        return;
    };
    let Some([x1, y1, x2, y2]) = pixel_box(bbox, canvas.w, canvas.h, 0) else {
        return;
    };
    let (w, h) = (canvas.w, canvas.h);
    if x2 <= 0 || y2 <= 0 || x1 >= w || y1 >= h {
        return; // The box is not in the image, so neither is its label.
    }
    let font_px = if style.font_px.is_finite() {
        style.font_px.clamp(1.0, 1000.0)
    } else {
        12.0
    };
    let scale = PxScale::from(font_px);
    let text_w = FONT
        .as_ref()
        .map_or(0, |f| i64::from(text_size(scale, f, text).0));
    let pad_x = (font_px * 0.25).round().max(1.0) as i64;
    let pad_y = (font_px * 0.1).round().max(1.0) as i64;
    let (tag_w, tag_h) = (text_w + 2 * pad_x, font_px.ceil() as i64 + 2 * pad_y);
    let ty = if y1 - tag_h >= 0 {
        y1 - tag_h
    } else {
        y1.max(0)
    };
    let tx = x1.min(w - tag_w).max(0);
    canvas.run(|c| {
        fill_rect(c, tx, ty, tx + tag_w, ty + tag_h, Rgb(color));
        if let Some(font) = FONT.as_ref() {
            let (x, y) = ((tx + pad_x) as i32, (ty + pad_y) as i32);
            draw_text_mut(c, Rgb(text_color(color)), x, y, scale, font, text);
        }
    });
}

/// Blends `color` over the pixels where `mask` is true (`alpha` 0 keeps the image, 1 paints
/// solid) and outlines the mask's edge in solid `color`, `style.line_width` pixels wide. The
/// image's own border is not an edge, so a mask cut off by the frame is not boxed in.
/// `mask` is row-major, one value per image pixel.
pub fn blend_mask(
    img: &mut RgbImage,
    mask: &[bool],
    color: [u8; 3],
    alpha: f32,
    style: &Style,
) -> Result<(), DrawError> {
    let (w, h) = (img.width, img.height);
    let expected = w * h;
    if mask.len() != expected {
        return Err(DrawError::MaskSize {
            got: mask.len(),
            expected,
            width: w,
            height: h,
        });
    }
    if img.pixels.len() != expected * 3 {
        return Ok(()); // A malformed image: nothing sensible to draw on.
    }
    let alpha = if alpha.is_nan() {
        0.0
    } else {
        alpha.clamp(0.0, 1.0)
    };
    let inner = erode(mask, w, h, style.line_width.max(1));
    for (i, px) in img.pixels.chunks_exact_mut(3).enumerate() {
        if !mask[i] {
            continue;
        }
        let a = if inner[i] { alpha } else { 1.0 };
        for (p, c) in px.iter_mut().zip(color) {
            *p = (f32::from(*p) * (1.0 - a) + f32::from(c) * a).round() as u8;
        }
    }
    Ok(())
}

/// Draws a skeleton: a `style.line_width` line for each `(i, j)` edge whose two points are
/// present, then a dot per present point. `None` (or non-finite) points are not drawn, and edges
/// naming a point that does not exist are skipped.
pub fn draw_keypoints(
    img: &mut RgbImage,
    points: &[Option<[f32; 2]>],
    edges: &[(usize, usize)],
    color: [u8; 3],
    style: &Style,
) {
    let Some(canvas) = Canvas::new(img) else {
        return;
    };
    let point = |i: usize| -> Option<[f32; 2]> {
        points
            .get(i)
            .copied()
            .flatten()
            .filter(|p| p.iter().all(|v| v.is_finite()))
    };
    let (w, h) = (canvas.w as f32, canvas.h as f32);
    canvas.run(|c| {
        for &(i, j) in edges {
            if let (Some(a), Some(b)) = (point(i), point(j)) {
                thick_line(c, a, b, style.line_width, Rgb(color), w, h);
            }
        }
        for p in (0..points.len()).filter_map(point) {
            dot(c, p, style.radius, color);
        }
    });
}

/// Draws face landmarks (RetinaFace's five: eyes, nose, mouth corners) as dots, one colour per
/// landmark index so left and right stay apart. Non-finite points are skipped.
pub fn draw_landmarks(img: &mut RgbImage, points: &[[f32; 2]], style: &Style) {
    const COLORS: [[u8; 3]; 5] = [
        [255, 0, 0],
        [255, 255, 0],
        [255, 0, 255],
        [0, 255, 0],
        [0, 0, 255],
    ];
    let Some(canvas) = Canvas::new(img) else {
        return;
    };
    canvas.run(|c| {
        for (i, p) in points.iter().enumerate() {
            if p.iter().all(|v| v.is_finite()) {
                dot(c, *p, style.radius, COLORS[i % COLORS.len()]);
            }
        }
    });
}

impl RgbImage {
    /// [`draw_detections`] on this image.
    pub fn draw_detections(&mut self, detections: &[Detection]) {
        draw_detections(self, detections);
    }

    /// [`draw_box`] on this image.
    pub fn draw_box(&mut self, bbox: [f32; 4], color: [u8; 3], line_width: u32) {
        draw_box(self, bbox, color, line_width);
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

/// Lends an [`RgbImage`]'s pixels to `imageproc` as an `image::RgbImage` (same row-major RGB8
/// layout, so the buffer moves, it is not copied) and takes them back afterwards. `None` for an
/// empty image or one whose buffer does not match its size, which are left alone.
struct Canvas<'a> {
    img: &'a mut RgbImage,
    w: i64,
    h: i64,
}

impl<'a> Canvas<'a> {
    fn new(img: &'a mut RgbImage) -> Option<Canvas<'a>> {
        let (w, h) = (
            u32::try_from(img.width).ok()?,
            u32::try_from(img.height).ok()?,
        );
        let fits = img.width.checked_mul(img.height)?.checked_mul(3) == Some(img.pixels.len());
        (w > 0 && h > 0 && fits).then_some(Canvas {
            img,
            w: i64::from(w),
            h: i64::from(h),
        })
    }

    fn run(self, f: impl FnOnce(&mut image::RgbImage)) {
        let pixels = std::mem::take(&mut self.img.pixels);
        let (w, h) = (self.w as u32, self.h as u32);
        // Cannot fail: `new` checked the buffer length.
        if let Some(mut c) = image::RgbImage::from_raw(w, h, pixels) {
            f(&mut c);
            self.img.pixels = c.into_raw();
        }
    }
}

/// `[x1, y1, x2, y2]` as whole pixels with x2/y2 exclusive, corners sorted, at least one pixel
/// each way, and clamped to a margin around the image (wider than any line) so that huge or
/// infinite coordinates neither overflow nor draw a side that lies outside the image.
fn pixel_box(b: [f32; 4], w: i64, h: i64, line_width: u32) -> Option<[i64; 4]> {
    if b.iter().any(|v| v.is_nan()) {
        return None;
    }
    let margin = i64::from(line_width) + 2;
    let x = |v: f32| v.clamp(-margin as f32, (w + margin) as f32).round() as i64;
    let y = |v: f32| v.clamp(-margin as f32, (h + margin) as f32).round() as i64;
    let (x1, x2) = (x(b[0].min(b[2])), x(b[0].max(b[2])));
    let (y1, y2) = (y(b[1].min(b[3])), y(b[1].max(b[3])));
    Some([x1, y1, x2.max(x1 + 1), y2.max(y1 + 1)])
}

/// Fills `[x1, x2) x [y1, y2)`, clipped to the canvas.
fn fill_rect(c: &mut image::RgbImage, x1: i64, y1: i64, x2: i64, y2: i64, color: Rgb<u8>) {
    let (w, h) = (i64::from(c.width()), i64::from(c.height()));
    let (x1, y1, x2, y2) = (x1.max(0), y1.max(0), x2.min(w), y2.min(h));
    if x2 > x1 && y2 > y1 {
        let rect = Rect::at(x1 as i32, y1 as i32).of_size((x2 - x1) as u32, (y2 - y1) as u32);
        draw_filled_rect_mut(c, rect, color);
    }
}

/// A filled dot of `color` with a one-pixel ring in its text colour, visible on any background.
fn dot(c: &mut image::RgbImage, p: [f32; 2], radius: u32, color: [u8; 3]) {
    let r = radius.clamp(1, 1000) as i32;
    let (w, h) = (c.width() as f32, c.height() as f32);
    let reach = (r + 1) as f32;
    if p[0] < -reach || p[1] < -reach || p[0] > w + reach || p[1] > h + reach {
        return;
    }
    let centre = (p[0].round() as i32, p[1].round() as i32);
    draw_filled_circle_mut(c, centre, r + 1, Rgb(text_color(color)));
    draw_filled_circle_mut(c, centre, r, Rgb(color));
}

/// A line `width` pixels wide from `a` to `b`, as a filled quadrilateral, after clipping the
/// segment to the image (grown by the width) so far-away endpoints cost nothing.
fn thick_line(
    c: &mut image::RgbImage,
    a: [f32; 2],
    b: [f32; 2],
    width: u32,
    color: Rgb<u8>,
    w: f32,
    h: f32,
) {
    let m = width as f32 + 1.0;
    let Some((a, b)) = clip_segment(a, b, [-m, -m, w + m, h + m]) else {
        return;
    };
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    if width <= 1 || len < 0.5 {
        draw_line_segment_mut(c, (a[0], a[1]), (b[0], b[1]), color);
        return;
    }
    let half = width as f32 / 2.0;
    let (nx, ny) = (-dy / len * half, dx / len * half);
    let corner = |p: [f32; 2], s: f32| {
        Point::new(
            (p[0] + s * nx).round() as i32,
            (p[1] + s * ny).round() as i32,
        )
    };
    let quad = [
        corner(a, 1.0),
        corner(b, 1.0),
        corner(b, -1.0),
        corner(a, -1.0),
    ];
    draw_polygon_mut(c, &quad, color);
}

/// Liang-Barsky: the part of segment `a`-`b` inside `[xmin, ymin, xmax, ymax]`, if any.
fn clip_segment(a: [f32; 2], b: [f32; 2], r: [f32; 4]) -> Option<([f32; 2], [f32; 2])> {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let (mut t0, mut t1) = (0.0f32, 1.0f32);
    for (p, q) in [
        (-dx, a[0] - r[0]),
        (dx, r[2] - a[0]),
        (-dy, a[1] - r[1]),
        (dy, r[3] - a[1]),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then(|| {
        let at = |t: f32| [a[0] + t * dx, a[1] + t * dy];
        (at(t0), at(t1))
    })
}

/// The mask shrunk by `steps` pixels (4-neighbour erosion); outside the image counts as inside
/// so the frame's edge is not treated as the mask's edge.
fn erode(mask: &[bool], w: usize, h: usize, steps: u32) -> Vec<bool> {
    let mut cur = mask.to_vec();
    for _ in 0..steps {
        let prev = cur.clone();
        let at = |x: usize, y: usize| prev[y * w + x];
        for y in 0..h {
            for x in 0..w {
                if prev[y * w + x] {
                    cur[y * w + x] = (x == 0 || at(x - 1, y))
                        && (x + 1 == w || at(x + 1, y))
                        && (y == 0 || at(x, y - 1))
                        && (y + 1 == h || at(x, y + 1));
                }
            }
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREY: [u8; 3] = [100, 100, 100];
    const RED: [u8; 3] = [230, 25, 75];

    fn filled(w: usize, h: usize, c: [u8; 3]) -> RgbImage {
        RgbImage {
            width: w,
            height: h,
            pixels: c.repeat(w * h),
        }
    }

    fn at(img: &RgbImage, x: usize, y: usize) -> [u8; 3] {
        let i = (y * img.width + x) * 3;
        [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]]
    }

    fn count(img: &RgbImage, c: [u8; 3]) -> usize {
        img.pixels.chunks(3).filter(|p| *p == c).count()
    }

    fn detection(label: &str, class: usize, score: f32, bbox: [f32; 4]) -> Detection {
        Detection {
            label: label.into(),
            class,
            score,
            bbox,
            mask: None,
            keypoints: None,
        }
    }

    #[test]
    fn draw_box_colours_a_band_inside_the_edges_and_leaves_inside_and_outside_alone() {
        let mut img = filled(40, 30, GREY);
        draw_box(&mut img, [5.0, 5.0, 25.0, 20.0], RED, 2);
        for (x, y) in [
            (5, 5),
            (6, 6),
            (24, 19),
            (23, 18),
            (15, 5),
            (5, 12),
            (24, 12),
        ] {
            assert_eq!(at(&img, x, y), RED, "border pixel ({x}, {y})");
        }
        for (x, y) in [
            (7, 7),
            (15, 12),
            (22, 17),
            (4, 4),
            (25, 20),
            (15, 4),
            (26, 12),
        ] {
            assert_eq!(
                at(&img, x, y),
                GREY,
                "pixel ({x}, {y}) is not on the border"
            );
        }
        // 20x15 box, 2 px band: 20*15 - 16*11.
        assert_eq!(count(&img, RED), 20 * 15 - 16 * 11);
    }

    #[test]
    fn draw_box_clips_to_the_image_and_draws_no_side_that_lies_outside() {
        let mut img = filled(20, 10, GREY);
        draw_box(&mut img, [-50.0, 2.0, 10.0, f32::INFINITY], RED, 1);
        assert_eq!(at(&img, 9, 5), RED, "right side is visible");
        assert_eq!(at(&img, 5, 2), RED, "top side is visible");
        assert_eq!(at(&img, 0, 5), GREY, "left side is off the image");
        assert_eq!(at(&img, 5, 9), GREY, "bottom side is off the image");
    }

    #[test]
    fn boxes_outside_the_image_degenerate_or_nan_never_panic() {
        let mut img = filled(16, 12, GREY);
        let boxes = [
            [100.0, 100.0, 200.0, 200.0],
            [-200.0, -200.0, -100.0, -100.0],
            [f32::NAN, 0.0, 5.0, 5.0],
            [
                f32::NEG_INFINITY,
                f32::NEG_INFINITY,
                f32::INFINITY,
                f32::INFINITY,
            ],
            [1e30, -1e30, -1e30, 1e30],
        ];
        let style = Style::for_image(16, 12);
        for b in boxes {
            draw_box(&mut img, b, RED, 3);
        }
        // The two infinite boxes cover the whole image, their sides lie outside it.
        assert_eq!(count(&img, RED), 0, "nothing visible was drawn");
        for b in boxes {
            draw_label(&mut img, b, "a long label 0.99", RED, &style);
        }
        // Zero-size and inverted boxes still leave a mark where they are.
        draw_box(&mut img, [4.0, 4.0, 4.0, 4.0], RED, 1);
        assert_eq!(at(&img, 4, 4), RED);
        draw_box(&mut img, [12.0, 9.0, 8.0, 6.0], [0, 0, 255], 1);
        assert_eq!(at(&img, 8, 6), [0, 0, 255]);
        assert_eq!(at(&img, 11, 8), [0, 0, 255]);
    }

    #[test]
    fn drawing_on_an_empty_or_malformed_image_does_nothing() {
        let style = Style::for_image(0, 0);
        let mut empty = filled(0, 0, GREY);
        draw_detections(
            &mut empty,
            &[detection("cat", 17, 0.9, [0.0, 0.0, 1.0, 1.0])],
        );
        draw_keypoints(&mut empty, &[Some([0.0, 0.0])], &[(0, 0)], RED, &style);
        let mut short = RgbImage {
            width: 4,
            height: 4,
            pixels: vec![0; 5],
        };
        draw_box(&mut short, [0.0, 0.0, 4.0, 4.0], RED, 1);
        draw_label(&mut short, [0.0, 0.0, 4.0, 4.0], "x", RED, &style);
        draw_landmarks(&mut short, &[[1.0, 1.0]], &style);
        assert_eq!(short.pixels, vec![0; 5]);
        assert_eq!(
            blend_mask(&mut short, &[true; 16], RED, 0.5, &style),
            Ok(())
        );
    }

    #[test]
    fn embedded_font_parses_and_renders_glyph_pixels() {
        let font = FONT.as_ref().expect("embedded DejaVu Sans parses");
        let mut img = image::RgbImage::new(60, 30);
        draw_text_mut(
            &mut img,
            Rgb([255, 255, 255]),
            2,
            2,
            PxScale::from(20.0),
            font,
            "Ag 0.9",
        );
        let inked = img.pixels().filter(|p| p.0[0] > 128).count();
        assert!(inked > 40, "only {inked} glyph pixels");
        let (w, h) = text_size(PxScale::from(20.0), font, "Ag 0.9");
        assert!((40..80).contains(&w) && h == 20, "text size {w}x{h}");
    }

    #[test]
    fn label_sits_on_a_tag_above_the_box_with_contrasting_text() {
        let mut img = filled(200, 100, GREY);
        let style = Style::for_image(200, 100);
        draw_label(
            &mut img,
            [20.0, 50.0, 120.0, 90.0],
            "dog 0.87",
            [0, 0, 128],
            &style,
        );
        // Tag: 12 px text + 2 * 1 px padding = 14 rows, ending at the box top.
        assert_eq!(at(&img, 20, 36), [0, 0, 128], "tag's top-left corner");
        assert_eq!(at(&img, 20, 49), [0, 0, 128], "tag's bottom-left corner");
        assert_eq!(at(&img, 20, 35), GREY, "nothing above the tag");
        assert_eq!(at(&img, 20, 50), GREY, "nothing below the tag");
        let rows = 36 * 200 * 3..50 * 200 * 3;
        let white = img.pixels[rows].chunks(3).filter(|p| p[0] > 200).count();
        assert!(white > 30, "white text on navy: {white} pixels");
        assert_eq!(text_color([0, 0, 128]), [255, 255, 255]);
        assert_eq!(text_color([255, 225, 25]), [0, 0, 0]);
    }

    #[test]
    fn label_goes_inside_a_box_at_the_top_edge_and_shifts_left_at_the_right_edge() {
        let mut img = filled(100, 60, GREY);
        let style = Style::for_image(100, 60);
        let yellow = [255, 225, 25];
        draw_label(
            &mut img,
            [90.0, 3.0, 100.0, 50.0],
            "umbrella 0.51",
            yellow,
            &style,
        );
        assert_eq!(at(&img, 99, 3), yellow, "tag reaches the right edge");
        assert_eq!(
            at(&img, 99, 2),
            GREY,
            "tag starts at the box top, inside it"
        );
        let first = (0..100).find(|&x| at(&img, x, 3) == yellow).unwrap();
        assert!(
            first < 90,
            "tag shifted left of the box to fit: starts at {first}"
        );
        let black = img.pixels.chunks(3).filter(|p| p[0] < 60).count();
        assert!(black > 20, "black text on yellow: {black} pixels");
    }

    #[test]
    fn a_label_wider_than_the_image_is_clipped_without_panicking() {
        let mut img = filled(30, 20, GREY);
        let style = Style::for_image(30, 20);
        let text = "a very long class name that cannot fit 0.99";
        draw_label(&mut img, [10.0, 10.0, 20.0, 15.0], text, RED, &style);
        // No room above the box: the tag's top padding row is row 10, across the whole width.
        assert!(
            (0..30).all(|x| at(&img, x, 10) == RED),
            "tag spans the image"
        );
        assert_eq!(at(&img, 0, 9), GREY);
    }

    #[test]
    fn blend_mask_mixes_by_alpha_inside_and_outlines_the_edge_in_solid_colour() {
        let mut img = filled(10, 10, GREY);
        let mask: Vec<bool> = (0..100)
            .map(|i| (2..8).contains(&(i % 10)) && (2..8).contains(&(i / 10)))
            .collect();
        let style = Style {
            line_width: 1,
            font_px: 12.0,
            radius: 2,
        };
        blend_mask(&mut img, &mask, [200, 0, 50], 0.25, &style).unwrap();
        assert_eq!(at(&img, 0, 0), GREY, "outside the mask");
        assert_eq!(at(&img, 2, 2), [200, 0, 50], "edge pixel is outlined");
        assert_eq!(at(&img, 7, 4), [200, 0, 50], "edge pixel is outlined");
        // 100 * 0.75 + 200 * 0.25 = 125, 75 + 0 = 75, 75 + 12.5 = 87.5 -> 88.
        assert_eq!(at(&img, 4, 4), [125, 75, 88], "interior is blended");
        assert_eq!(count(&img, [125, 75, 88]), 16, "4x4 interior");
    }

    #[test]
    fn blend_mask_does_not_outline_where_the_mask_meets_the_image_border() {
        let mut img = filled(6, 6, GREY);
        let style = Style::for_image(6, 6);
        blend_mask(&mut img, &[true; 36], [0, 0, 0], 0.5, &style).unwrap();
        assert_eq!(count(&img, [50, 50, 50]), 36);
    }

    #[test]
    fn blend_mask_rejects_a_mask_of_the_wrong_size() {
        let mut img = filled(4, 3, GREY);
        let err = blend_mask(&mut img, &[true; 10], RED, 0.5, &Style::for_image(4, 3));
        assert_eq!(
            err,
            Err(DrawError::MaskSize {
                got: 10,
                expected: 12,
                width: 4,
                height: 3
            })
        );
        assert_eq!(count(&img, GREY), 12, "image untouched");
    }

    #[test]
    fn keypoints_draw_dots_and_skeleton_lines_and_skip_missing_points() {
        let mut img = filled(60, 40, GREY);
        let style = Style {
            line_width: 2,
            font_px: 12.0,
            radius: 2,
        };
        let points = [
            Some([10.0, 20.0]),
            Some([50.0, 20.0]),
            None,
            Some([f32::NAN, 1.0]),
        ];
        let edges = [(0, 1), (1, 2), (0, 3), (0, 99)];
        draw_keypoints(&mut img, &points, &edges, RED, &style);
        assert_eq!(at(&img, 30, 20), RED, "middle of the 0-1 edge");
        assert_eq!(at(&img, 30, 25), GREY, "away from the edge");
        assert_eq!(at(&img, 10, 20), RED, "keypoint 0");
        assert_eq!(at(&img, 10, 17), text_color(RED), "keypoint 0's ring");
        // Points far outside only cost a clip.
        draw_keypoints(
            &mut img,
            &[Some([-1e9, -1e9]), Some([1e9, 1e9])],
            &[(0, 1)],
            [0, 255, 0],
            &style,
        );
        assert_eq!(
            at(&img, 0, 0),
            [0, 255, 0],
            "the clipped diagonal crosses the image"
        );
    }

    #[test]
    fn landmarks_get_one_colour_each() {
        let mut img = filled(50, 20, GREY);
        let pts = [
            [5.0, 10.0],
            [15.0, 10.0],
            [25.0, 10.0],
            [35.0, 10.0],
            [45.0, 10.0],
        ];
        draw_landmarks(&mut img, &pts, &Style::for_image(50, 20));
        let colours: Vec<[u8; 3]> = pts.iter().map(|p| at(&img, p[0] as usize, 10)).collect();
        for (i, c) in colours.iter().enumerate() {
            assert!(
                !colours[..i].contains(c),
                "landmark {i} colour {c:?} repeats"
            );
        }
    }

    #[test]
    fn style_scales_with_the_image() {
        assert_eq!(Style::for_image(160, 120).line_width, 1);
        assert_eq!(Style::for_image(160, 120).font_px, 12.0);
        assert_eq!(Style::for_image(640, 480).line_width, 2);
        assert_eq!(Style::for_image(640, 480).font_px, 16.0);
        assert_eq!(Style::for_image(1080, 1920).line_width, 6);
        assert_eq!(Style::for_image(1080, 1920).font_px, 48.0);
    }

    #[test]
    fn class_colours_are_stable_and_distinct() {
        let first: Vec<_> = (0..15).map(class_color).collect();
        for (i, c) in first.iter().enumerate() {
            assert!(!first[..i].contains(c), "class {i} repeats {c:?}");
        }
        assert_eq!(class_color(1), [60, 180, 75]);
        assert_eq!(class_color(16), class_color(1));
    }

    #[test]
    fn detections_are_drawn_with_labels_and_the_best_on_top() {
        let mut img = filled(160, 120, GREY);
        let dets = [
            detection("cat", 17, 0.95, [20.0, 30.0, 100.0, 110.0]),
            detection("dog", 18, 0.40, [10.0, 30.0, 90.0, 100.0]),
        ];
        img.draw_detections(&dets);
        // Both tags start at y = 30 - 14 = 16; the cat's (drawn last) covers the dog's at x = 20.
        assert_eq!(at(&img, 20, 16), class_color(17));
        assert_eq!(at(&img, 10, 16), class_color(18));
        assert_eq!(at(&img, 60, 109), class_color(17), "cat box bottom");
    }
}
