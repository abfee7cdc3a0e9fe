//! Text drawn straight onto an `RgbImage` (the confusion matrix, the
//! misclassified grid) in DejaVu Sans, the font the figures embed.
//!
//! Glyphs are rasterised from the font's outlines by `ab_glyph` (no hinting,
//! no system font, plain f32 arithmetic), and each pixel is blended towards
//! the ink by its coverage, so the text is antialiased and its pixels are the
//! same on every machine. Sizes are in pixels: `px` is the height of a line,
//! from the font's ascent to its descent.

use std::borrow::Cow;
use std::sync::LazyLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use image::{Rgb, RgbImage};

/// The font file (`assets/fonts/`, Bitstream Vera license beside it),
/// embedded once for the figures of [`crate::plot`] and the pictures here.
pub(crate) static DEJAVU_SANS: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

static FONT: LazyLock<FontRef<'static>> = LazyLock::new(|| {
    FontRef::try_from_slice(DEJAVU_SANS)
        .expect("the embedded assets/fonts/DejaVuSans.ttf is not a valid font")
});

const ELLIPSIS: char = '…';

/// Which way a line of text runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Left to right; the anchor is the top-left corner of the line.
    Right,
    /// Bottom to top, turned 90° anticlockwise (the tops of the letters face
    /// left); the anchor is the bottom-left corner of the line.
    Up,
}

/// Pixels a line of text at `px` takes across its direction.
pub(crate) fn line_height(px: f32) -> u32 {
    FONT.as_scaled(PxScale::from(px)).height().ceil() as u32
}

/// Pixels `text` at `px` advances along its direction (with kerning).
pub(crate) fn width(text: &str, px: f32) -> u32 {
    layout(text, px).1.ceil() as u32
}

/// `text`, or as much of it as fits in `max` pixels followed by "…" (nothing
/// if not even the ellipsis fits).
pub(crate) fn ellipsize(text: &str, px: f32, max: u32) -> Cow<'_, str> {
    if width(text, px) <= max {
        return Cow::Borrowed(text);
    }
    let ends: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    ends.iter()
        .rev()
        .map(|&end| format!("{}{ELLIPSIS}", text[..end].trim_end()))
        .find(|short| width(short, px) <= max)
        .map_or(Cow::Borrowed(""), Cow::Owned)
}

/// Writes `text` at `px` in `ink` from `anchor` (see [`Direction`]); pixels
/// outside the image are dropped.
pub(crate) fn draw(
    img: &mut RgbImage,
    text: &str,
    anchor: (u32, u32),
    px: f32,
    ink: Rgb<u8>,
    direction: Direction,
) {
    let font = FONT.as_scaled(PxScale::from(px));
    let (glyphs, _) = layout(text, px);
    let (ax, ay) = (i64::from(anchor.0), i64::from(anchor.1));
    for glyph in glyphs {
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let min = outline.px_bounds().min;
        outline.draw(|gx, gy, coverage| {
            // (lx, ly): the pixel in the line's own frame, y down from its top.
            let (lx, ly) = (min.x as i64 + i64::from(gx), min.y as i64 + i64::from(gy));
            let (x, y) = match direction {
                Direction::Right => (ax + lx, ay + ly),
                Direction::Up => (ax + ly, ay - 1 - lx),
            };
            if let (Ok(x), Ok(y)) = (u32::try_from(x), u32::try_from(y))
                && x < img.width()
                && y < img.height()
            {
                let pixel = img.get_pixel_mut(x, y);
                *pixel = blend(*pixel, ink, coverage.min(1.0));
            }
        });
    }
}

/// The glyphs of `text` placed on a line whose top is y = 0 and which starts
/// at x = 0, and the line's advance.
fn layout(text: &str, px: f32) -> (Vec<ab_glyph::Glyph>, f32) {
    let font = FONT.as_scaled(PxScale::from(px));
    let mut caret = 0.0;
    let mut previous = None;
    let glyphs = text
        .chars()
        .map(|c| {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                caret += font.kern(p, id);
            }
            let glyph = id.with_scale_and_position(px, point(caret, font.ascent()));
            caret += font.h_advance(id);
            previous = Some(id);
            glyph
        })
        .collect();
    (glyphs, caret)
}

fn blend(paper: Rgb<u8>, ink: Rgb<u8>, coverage: f32) -> Rgb<u8> {
    Rgb(std::array::from_fn(|i| {
        let (p, k) = (f32::from(paper[i]), f32::from(ink[i]));
        (p + (k - p) * coverage).round() as u8
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

    fn inked(img: &RgbImage) -> Vec<(u32, u32)> {
        img.enumerate_pixels()
            .filter(|p| *p.2 != WHITE)
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    #[test]
    fn text_stays_in_its_box_and_is_antialiased() {
        let (px, text) = (16.0, "Ankle boot→T-shirt/top");
        let (w, h) = (width(text, px), line_height(px));
        assert_eq!(h, 16);
        assert!(w > 150 && w < 200, "width {w}");
        let mut img = RgbImage::from_pixel(w + 20, h + 20, WHITE);
        let ink = Rgb([200, 0, 0]);
        draw(&mut img, text, (10, 10), px, ink, Direction::Right);
        let pixels = inked(&img);
        let (xs, ys): (Vec<u32>, Vec<u32>) = pixels.iter().copied().unzip();
        // The ink spans its measured box, give or take a pixel of side bearing.
        assert!(*xs.iter().min().unwrap() >= 10 && *xs.iter().min().unwrap() <= 12);
        assert!(*xs.iter().max().unwrap() < 10 + w && *xs.iter().max().unwrap() >= 10 + w - 3);
        assert!(*ys.iter().min().unwrap() >= 10 && *ys.iter().max().unwrap() < 10 + h);
        // Solid ink inside the strokes, partial coverage along their edges, and
        // every pixel a mix of paper and ink (red stays red).
        let colours: Vec<Rgb<u8>> = pixels.iter().map(|&(x, y)| *img.get_pixel(x, y)).collect();
        assert!(colours.contains(&ink));
        assert!(colours.iter().filter(|c| **c != ink).count() > colours.len() / 4);
        assert!(colours.iter().all(|c| c[1] == c[2] && c[0] >= 200));
    }

    #[test]
    fn upward_text_is_the_line_turned_anticlockwise() {
        let (px, text) = (13.0, "class 99");
        let (w, h) = (width(text, px), line_height(px));
        let mut right = RgbImage::from_pixel(w, h, WHITE);
        draw(
            &mut right,
            text,
            (0, 0),
            px,
            Rgb([0, 0, 0]),
            Direction::Right,
        );
        let mut up = RgbImage::from_pixel(h, w, WHITE);
        draw(&mut up, text, (0, w), px, Rgb([0, 0, 0]), Direction::Up);
        assert!(!inked(&up).is_empty());
        assert_eq!(up, image::imageops::rotate270(&right));
    }

    #[test]
    fn ellipsize_keeps_what_fits() {
        let px = 14.0;
        assert_eq!(ellipsize("Sneaker", px, 200), "Sneaker");
        let short = ellipsize("Ankle boot", px, width("Ankle boot", px) - 1);
        assert!(
            short.ends_with('…') && short.starts_with("Ankle"),
            "{short}"
        );
        assert!(width(&short, px) < width("Ankle boot", px));
        // A cut at the space drops the space too.
        let cut = ellipsize("Ankle boot", px, width("Ankle…", px));
        assert_eq!(cut, "Ankle…");
        assert_eq!(ellipsize("Ankle boot", px, 2), "");
    }

    #[test]
    fn text_off_the_image_is_dropped() {
        let mut img = RgbImage::from_pixel(8, 8, WHITE);
        draw(
            &mut img,
            "Pullover",
            (4, 4),
            20.0,
            Rgb([0, 0, 0]),
            Direction::Right,
        );
        draw(
            &mut img,
            "Pullover",
            (4, 4),
            20.0,
            Rgb([0, 0, 0]),
            Direction::Up,
        );
        assert!(!inked(&img).is_empty());
    }
}
