//! `confusion.png`: the confusion matrix as a heat map, with the counts written
//! in each cell by the built-in 3x5 bitmap font of `crate::bitmap_font`.
//!
//! Each cell is shaded by its share of the row (the true class): blue on the
//! diagonal (found), red off it (confused), so the mistakes stand out.

use std::path::Path;

use image::{ImageResult, Rgb, RgbImage};

use crate::bitmap_font::{draw_text, text_width};

/// Pixels per cell side, and the margins holding the labels.
const CELL: u32 = 44;
const LEFT: u32 = 64;
const TOP: u32 = 64;
const MARGIN: u32 = 12;

fn mix(a: [u8; 3], b: [u8; 3], t: f64) -> Rgb<u8> {
    Rgb(std::array::from_fn(|i| {
        (f64::from(a[i]) + (f64::from(b[i]) - f64::from(a[i])) * t).round() as u8
    }))
}

/// Draws `confusion[true][predicted]` into an image (rows: true class).
pub fn render_confusion(confusion: &[Vec<usize>]) -> RgbImage {
    let k = confusion.len() as u32;
    let (w, h) = (LEFT + k * CELL + MARGIN, TOP + k * CELL + MARGIN);
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let black = Rgb([0, 0, 0]);
    let grey = Rgb([90, 90, 90]);
    draw_text(
        &mut img,
        "PREDICTED",
        LEFT + (k * CELL - text_width("PREDICTED", 2)) / 2,
        8,
        2,
        grey,
    );
    // "TRUE" reads downwards, one letter per line, left of the row labels.
    for (i, c) in "TRUE".chars().enumerate() {
        let y = TOP + (k * CELL).saturating_sub(4 * 14) / 2 + i as u32 * 14;
        draw_text(&mut img, &c.to_string(), 8, y, 2, grey);
    }
    for (t, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        let label = t.to_string();
        let y0 = TOP + t as u32 * CELL;
        draw_text(
            &mut img,
            &label,
            LEFT - 8 - text_width(&label, 3),
            y0 + (CELL - 15) / 2,
            3,
            black,
        );
        for (p, &n) in row.iter().enumerate() {
            let x0 = LEFT + p as u32 * CELL;
            let share = n as f64 / total;
            let full = if t == p {
                [33, 102, 172]
            } else {
                [203, 24, 29]
            };
            // Off-diagonal shares are small; stretch them so a few percent shows.
            let strength = if t == p {
                share
            } else {
                (share * 4.0).min(1.0)
            };
            let fill = mix([255, 255, 255], full, strength);
            for y in y0 + 1..y0 + CELL {
                for x in x0 + 1..x0 + CELL {
                    img.put_pixel(x, y, fill);
                }
            }
            if n > 0 {
                let text = n.to_string();
                let scale = if text_width(&text, 2) <= CELL - 4 {
                    2
                } else {
                    1
                };
                let ink = if strength > 0.55 {
                    Rgb([255, 255, 255])
                } else {
                    black
                };
                let tx = x0 + (CELL - text_width(&text, scale)) / 2;
                draw_text(&mut img, &text, tx, y0 + (CELL - 5 * scale) / 2, scale, ink);
            }
        }
    }
    for p in 0..k {
        let label = p.to_string();
        let x = LEFT + p * CELL + (CELL - text_width(&label, 3)) / 2;
        draw_text(&mut img, &label, x, TOP - 24, 3, black);
    }
    img
}

/// Draws the matrix and writes it as a PNG to `path`.
pub fn draw_confusion(confusion: &[Vec<usize>], path: &Path) -> ImageResult<()> {
    render_confusion(confusion).save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_colours_and_digits() {
        let m = vec![vec![50, 2], vec![0, 48]];
        let img = render_confusion(&m);
        assert_eq!(
            img.dimensions(),
            (LEFT + 2 * CELL + MARGIN, TOP + 2 * CELL + MARGIN)
        );
        // A corner of the (0, 0) cell is strongly blue; the empty (1, 0) cell is white.
        let p = img.get_pixel(LEFT + 2, TOP + 2);
        assert!(p[2] > 150 && p[0] < 100, "{p:?}");
        assert_eq!(
            *img.get_pixel(LEFT + 2, TOP + CELL + 2),
            Rgb([255, 255, 255])
        );
        // The count "50" was written in white in the middle of the blue cell.
        let cell: Vec<_> = (TOP + 1..TOP + CELL)
            .flat_map(|y| (LEFT + 1..LEFT + CELL).map(move |x| (x, y)))
            .filter(|&(x, y)| *img.get_pixel(x, y) == Rgb([255, 255, 255]))
            .collect();
        assert!(cell.len() > 20, "no digits drawn");
    }
}
