//! A built-in 3x5 bitmap font for the captions of the misclassified grid,
//! so no system font is needed and
//! the pixels are the same on every machine.
//!
//! Each character is 3 columns by 5 rows, followed by one blank column; at
//! `scale` every font pixel becomes a `scale x scale` block. Only the
//! characters the pictures use have glyphs: digits, the capitals of
//! "PREDICTED" and "TRUE", and a right arrow for "true → predicted".

use image::{Rgb, RgbImage};

/// Height in pixels of a line of text at scale 1.
pub(crate) const HEIGHT: u32 = 5;

/// Rows of 3 bits, top to bottom, for the characters the pictures need.
pub(crate) fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        'C' => [0b111, 0b100, 0b100, 0b100, 0b111],
        'D' => [0b110, 0b101, 0b101, 0b101, 0b110],
        'E' => [0b111, 0b100, 0b110, 0b100, 0b111],
        'I' => [0b111, 0b010, 0b010, 0b010, 0b111],
        'P' => [0b111, 0b101, 0b111, 0b100, 0b100],
        'R' => [0b110, 0b101, 0b110, 0b101, 0b101],
        'T' => [0b111, 0b010, 0b010, 0b010, 0b010],
        'U' => [0b101, 0b101, 0b101, 0b101, 0b111],
        '→' => [0b010, 0b001, 0b111, 0b001, 0b010],
        _ => return None,
    })
}

/// Width in pixels of `text` at `scale` (3 columns and 1 of spacing per character).
pub(crate) fn text_width(text: &str, scale: u32) -> u32 {
    (text.chars().count() as u32 * 4).saturating_sub(1) * scale
}

/// Writes `text` with its top-left corner at (x, y); unknown characters are
/// blank, and pixels outside the image are dropped.
pub(crate) fn draw_text(
    img: &mut RgbImage,
    text: &str,
    x: u32,
    y: u32,
    scale: u32,
    color: Rgb<u8>,
) {
    for (i, c) in text.chars().enumerate() {
        let Some(rows) = glyph(c) else { continue };
        let gx = x + i as u32 * 4 * scale;
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (gx + col * scale + dx, y + r as u32 * scale + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, color);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_used_has_a_glyph() {
        for c in "0123456789PREDICTEDTRUE→".chars() {
            assert!(glyph(c).is_some(), "{c}");
        }
    }

    #[test]
    fn text_lands_where_its_width_says() {
        // "1→7" at scale 2: 3 characters, 11 font columns, 22 pixels wide.
        assert_eq!(text_width("1→7", 2), 22);
        let mut img = RgbImage::from_pixel(30, 14, Rgb([255, 255, 255]));
        let ink = Rgb([1, 2, 3]);
        draw_text(&mut img, "1→7", 2, 2, 2, ink);
        let inked: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|p| *p.2 == ink)
            .map(|(x, y, _)| (x, y))
            .collect();
        let (xs, ys): (Vec<u32>, Vec<u32>) = inked.iter().copied().unzip();
        assert_eq!(xs.iter().min(), Some(&2));
        assert_eq!(xs.iter().max(), Some(&(2 + 22 - 1)));
        assert_eq!((ys.iter().min(), ys.iter().max()), (Some(&2), Some(&11)));
        // The arrow's shaft: the whole middle row of the second glyph.
        for x in 10..16 {
            assert_eq!(*img.get_pixel(x, 2 + 2 * 2), ink, "x {x}");
        }
    }
}
