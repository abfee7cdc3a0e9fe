//! `confusion.png`: the confusion matrix as a heat map, rows and columns
//! labelled with the class names and the counts written in each cell, in the
//! embedded DejaVu Sans of `crate::font`.
//!
//! Each cell is shaded by its share of the row (the true class): blue on the
//! diagonal (found), red off it (confused), so the mistakes stand out. Row
//! labels are right-aligned left of the grid; column labels sit above it,
//! turned to read upwards when a name is wider than a cell. The margins grow
//! to fit the longest name (up to [`MAX_LABEL`] pixels, then "…"); cells
//! shrink from 44 pixels for up to 20 classes to 24 for 36 or more.

use std::path::Path;

use image::{ImageResult, Rgb, RgbImage};

use crate::font::{self, Direction};

/// White band around the picture, and the space between titles, labels and grid.
const MARGIN: u32 = 12;
const GAP: u32 = 6;
/// Longest a class name is drawn, in pixels.
const MAX_LABEL: u32 = 200;
const TITLE_PX: f32 = 16.0;
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([0, 0, 0]);
const TITLE_INK: Rgb<u8> = Rgb([90, 90, 90]);

/// Where everything goes, from the number of classes and their names.
#[derive(Debug)]
struct Layout {
    /// Side of a cell, with a 1-pixel white line between cells.
    cell: u32,
    /// The grid's top-left corner.
    left: u32,
    top: u32,
    width: u32,
    height: u32,
    label_px: f32,
    count_px: f32,
    /// Column labels read upwards (some name is wider than a cell).
    columns_up: bool,
    /// The names as drawn (shortened to [`MAX_LABEL`]).
    labels: Vec<String>,
}

impl Layout {
    fn new(names: &[String], largest_count: usize) -> Self {
        let k = names.len().max(1) as u32;
        let cell = (880 / k).clamp(24, 44);
        let label_px = (cell as f32 * 0.55).min(17.0);
        let labels: Vec<String> = names
            .iter()
            .map(|n| font::ellipsize(n, label_px, MAX_LABEL).into_owned())
            .collect();
        let widest = labels
            .iter()
            .map(|l| font::width(l, label_px))
            .max()
            .unwrap_or(0);
        let line = font::line_height(label_px);
        let columns_up = widest > cell - 4;
        let column_band = if columns_up { widest } else { line };
        // The largest count sets one size for all, shrunk until it fits a cell.
        let count = largest_count.to_string();
        let mut count_px = (cell as f32 * 0.34).max(10.0);
        while count_px > 1.0 && font::width(&count, count_px) > cell - 4 {
            count_px -= 0.5;
        }
        let title = font::line_height(TITLE_PX);
        let left = MARGIN + title + GAP + widest + GAP;
        let top = MARGIN + title + GAP + column_band + GAP;
        let grid = k * cell;
        // The titles are centred on the grid and may be longer than it.
        let reach = |title: &str| (font::width(title, TITLE_PX) / 2).saturating_sub(grid / 2);
        Layout {
            cell,
            left,
            top,
            width: left + grid + reach("predicted class") + MARGIN,
            height: top + grid + reach("true class") + MARGIN,
            label_px,
            count_px,
            columns_up,
            labels,
        }
    }
}

fn mix(a: [u8; 3], b: [u8; 3], t: f64) -> Rgb<u8> {
    Rgb(std::array::from_fn(|i| {
        (f64::from(a[i]) + (f64::from(b[i]) - f64::from(a[i])) * t).round() as u8
    }))
}

/// Draws `confusion[true][predicted]` into an image (rows: true class),
/// labelled with `class_names`.
///
/// Panics if there is not one name per row.
pub fn render_confusion(confusion: &[Vec<usize>], class_names: &[String]) -> RgbImage {
    assert_eq!(
        class_names.len(),
        confusion.len(),
        "render_confusion: {} class names for a {}x{} matrix",
        class_names.len(),
        confusion.len(),
        confusion.len()
    );
    let largest = confusion.iter().flatten().copied().max().unwrap_or(0);
    let l = Layout::new(class_names, largest);
    let (cell, grid) = (l.cell, confusion.len() as u32 * l.cell);
    let mut img = RgbImage::from_pixel(l.width, l.height, WHITE);

    let across = "predicted class";
    let x = (l.left + grid / 2).saturating_sub(font::width(across, TITLE_PX) / 2);
    font::draw(
        &mut img,
        across,
        (x, MARGIN),
        TITLE_PX,
        TITLE_INK,
        Direction::Right,
    );
    let down = "true class";
    let y = l.top + grid / 2 + font::width(down, TITLE_PX) / 2;
    font::draw(
        &mut img,
        down,
        (MARGIN, y),
        TITLE_PX,
        TITLE_INK,
        Direction::Up,
    );

    let line = font::line_height(l.label_px);
    for (i, label) in l.labels.iter().enumerate() {
        let start = i as u32 * cell;
        let w = font::width(label, l.label_px);
        let row = (l.left - GAP - w, l.top + start + (cell - line) / 2);
        font::draw(&mut img, label, row, l.label_px, INK, Direction::Right);
        let (column, direction) = if l.columns_up {
            (
                (l.left + start + (cell - line) / 2, l.top - GAP),
                Direction::Up,
            )
        } else {
            let x = l.left + start + (cell - w) / 2;
            ((x, l.top - GAP - line), Direction::Right)
        };
        font::draw(&mut img, label, column, l.label_px, INK, direction);
    }

    let count_line = font::line_height(l.count_px);
    for (t, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        let y0 = l.top + t as u32 * cell;
        for (p, &n) in row.iter().enumerate() {
            let x0 = l.left + p as u32 * cell;
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
            for y in y0 + 1..y0 + cell {
                for x in x0 + 1..x0 + cell {
                    img.put_pixel(x, y, fill);
                }
            }
            if n > 0 {
                let text = n.to_string();
                let ink = if strength > 0.55 { WHITE } else { INK };
                let at = (
                    x0 + 1 + (cell - 1 - font::width(&text, l.count_px)) / 2,
                    y0 + 1 + (cell - 1 - count_line) / 2,
                );
                font::draw(&mut img, &text, at, l.count_px, ink, Direction::Right);
            }
        }
    }
    img
}

/// Draws the matrix and writes it as a PNG to `path`.
pub fn draw_confusion(
    confusion: &[Vec<usize>],
    class_names: &[String],
    path: &Path,
) -> ImageResult<()> {
    render_confusion(confusion, class_names).save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn white(img: &RgbImage, xs: std::ops::Range<u32>, ys: std::ops::Range<u32>) -> bool {
        ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
            .all(|(x, y)| *img.get_pixel(x, y) == WHITE)
    }

    #[test]
    fn size_colours_and_counts() {
        let m = vec![vec![50, 2], vec![0, 48]];
        let img = render_confusion(&m, &names(&["0", "1"]));
        let l = Layout::new(&names(&["0", "1"]), 50);
        assert_eq!((l.cell, l.columns_up), (44, false));
        // The title "predicted class" is wider than the two columns.
        let title = font::width("predicted class", TITLE_PX);
        assert_eq!(
            img.dimensions(),
            (l.left + 44 + title / 2 + MARGIN, l.top + 2 * 44 + MARGIN)
        );
        let (left, top) = (l.left, l.top);
        // A corner of the (0, 0) cell is strongly blue; the empty (1, 0) cell is white.
        let p = img.get_pixel(left + 2, top + 2);
        assert!(p[2] > 150 && p[0] < 100, "{p:?}");
        assert!(white(&img, left + 1..left + 44, top + 45..top + 88));
        // The count "50" was written in white in the middle of the blue cell,
        // and "2" in black in the pale red one.
        let cell = |x0: u32, y0: u32| {
            (y0 + 1..y0 + 44)
                .flat_map(move |y| (x0 + 1..x0 + 44).map(move |x| (x, y)))
                .map(|(x, y)| *img.get_pixel(x, y))
                .collect::<Vec<_>>()
        };
        let bright = |c: &&Rgb<u8>| c.0.iter().all(|&v| v > 200);
        assert!(cell(left, top).iter().filter(bright).count() > 20);
        assert!(cell(left + 44, top).iter().filter(|c| c[0] < 100).count() > 5);
    }

    #[test]
    fn cells_shrink_with_many_classes_and_stay_legible() {
        let ten = Layout::new(&(0..10).map(|k| k.to_string()).collect::<Vec<_>>(), 1135);
        assert_eq!((ten.cell, ten.columns_up), (44, false));
        let hundred: Vec<String> = (0..100).map(|k| format!("class {k}")).collect();
        let l = Layout::new(&hundred, 1000);
        assert_eq!(l.cell, 24);
        assert!(
            l.columns_up && l.label_px >= 13.0 && l.count_px >= 8.0,
            "{l:?}"
        );
        assert!(font::width("1000", l.count_px) <= l.cell - 4);
    }

    #[test]
    fn long_names_widen_the_margins_and_stay_beside_their_cells() {
        let digits = names(&["0", "1", "2"]);
        let fashion = names(&["T-shirt/top", "Pullover", "Ankle boot"]);
        let m = vec![vec![0; 3]; 3];
        let (short, long) = (
            render_confusion(&m, &digits),
            render_confusion(&m, &fashion),
        );
        let (ls, ll) = (Layout::new(&digits, 0), Layout::new(&fashion, 0));
        assert!(ll.columns_up && ll.left > ls.left + 50 && ll.top > ls.top + 50);
        assert!(long.width() > short.width() && long.height() > short.height());
        let img = long;
        let (left, top, cell) = (ll.left, ll.top, ll.cell);
        let grid = 3 * cell;
        // A white band around the picture and between the labels and the grid.
        let (w, h) = img.dimensions();
        assert!(white(&img, 0..w, 0..MARGIN) && white(&img, 0..w, h - MARGIN..h));
        assert!(white(&img, 0..MARGIN, 0..h) && white(&img, w - MARGIN..w, 0..h));
        // (A glyph's ink may reach a pixel past its advance, as a T's bar does.)
        let band = GAP - 2;
        assert!(white(
            &img,
            left - band..left + grid,
            top - band..top + grid
        ));
        // Each label stays within its row or column: the lines between cells
        // are white across the label bands, and every label left ink.
        let labels = MARGIN + font::line_height(TITLE_PX) + GAP;
        for i in 0..=3 {
            let edge = i * cell;
            assert!(
                white(&img, left + edge..left + edge + 1, labels..top),
                "column {i}"
            );
            assert!(
                white(&img, labels..left, top + edge..top + edge + 1),
                "row {i}"
            );
        }
        for i in 0..3 {
            let inside = i * cell + 1..(i + 1) * cell;
            let column = left + inside.start..left + inside.end;
            assert!(!white(&img, column, labels..top), "column {i}");
            let row = top + inside.start..top + inside.end;
            assert!(!white(&img, labels..left, row), "row {i}");
        }
    }

    #[test]
    #[should_panic(expected = "1 class names for a 2x2 matrix")]
    fn one_name_per_class() {
        render_confusion(&[vec![1, 0], vec![0, 1]], &names(&["0"]));
    }
}
