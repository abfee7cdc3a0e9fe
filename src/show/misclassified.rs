//! The test images a model gets wrong, as a grid: each image magnified
//! (nearest neighbour) and drawn dark ink on white, captioned `true→predicted`
//! below it with the class names (the true class in black, the prediction in
//! red) in the embedded DejaVu Sans, under a header that says which colour is
//! which. A cell widens for long names up to twice its image; captions
//! longer than that are shortened with "…".

use std::borrow::Cow;

use image::{Rgb, RgbImage};

use super::ShowError;
use crate::data::{Dataset, Features};
use crate::font::{self, Direction};

/// A test example the model got wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mistake {
    /// Its position in the test set.
    pub index: usize,
    pub label: usize,
    pub predicted: usize,
}

/// The examples whose prediction differs from the label, in test-set order.
pub fn mistakes(labels: &[usize], predictions: &[usize]) -> Vec<Mistake> {
    labels
        .iter()
        .zip(predictions)
        .enumerate()
        .filter(|(_, (t, p))| t != p)
        .map(|(index, (&label, &predicted))| Mistake {
            index,
            label,
            predicted,
        })
        .collect()
}

/// Layout of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MistakeGrid {
    /// Images per row (clipped to the number of mistakes).
    pub columns: u32,
    /// Each pixel becomes a `zoom x zoom` block.
    pub zoom: u32,
    /// Font size of the captions in pixels (the height of a line).
    pub caption_px: u32,
}

impl Default for MistakeGrid {
    /// Six across, 28x28 images at 84 pixels with captions 15 pixels high,
    /// readable without zooming in.
    fn default() -> Self {
        MistakeGrid {
            columns: 6,
            zoom: 3,
            caption_px: 15,
        }
    }
}

/// White space around the grid, between cells, and above and below captions.
const PAD: u32 = 4;
const HEADER_PX: f32 = 17.0;
const BORDER: Rgb<u8> = Rgb([190, 190, 190]);
const TRUE_INK: Rgb<u8> = Rgb([0, 0, 0]);
const ARROW_INK: Rgb<u8> = Rgb([120, 120, 120]);
const PREDICTED_INK: Rgb<u8> = Rgb([200, 0, 0]);
const ARROW: &str = "→";

/// A line of text in pieces of different colours, drawn side by side.
fn draw_pieces<S: AsRef<str>>(
    img: &mut RgbImage,
    pieces: &[(S, Rgb<u8>)],
    (x, y): (u32, u32),
    px: f32,
) {
    let mut x = x;
    for (text, ink) in pieces {
        font::draw(img, text.as_ref(), (x, y), px, *ink, Direction::Right);
        x += font::width(text.as_ref(), px);
    }
}

/// Pixels the pieces take drawn by [`draw_pieces`].
fn pieces_width<S: AsRef<str>>(pieces: &[(S, Rgb<u8>)], px: f32) -> u32 {
    pieces
        .iter()
        .map(|(t, _)| font::width(t.as_ref(), px))
        .sum()
}

/// The caption `true→predicted` within `max` pixels: if it is too long, the
/// longer name gives way first, then both share the room, each shortened
/// with "…".
fn caption<'a>(
    true_name: &'a str,
    predicted_name: &'a str,
    px: f32,
    max: u32,
) -> [(Cow<'a, str>, Rgb<u8>); 3] {
    let room = max.saturating_sub(font::width(ARROW, px));
    let (wt, wp) = (font::width(true_name, px), font::width(predicted_name, px));
    let half = room / 2;
    let (rt, rp) = if wt + wp <= room {
        (wt, wp)
    } else if wt <= half {
        (wt, room - wt)
    } else if wp <= half {
        (room - wp, wp)
    } else {
        (half, room - half)
    };
    [
        (font::ellipsize(true_name, px, rt), TRUE_INK),
        (Cow::Borrowed(ARROW), ARROW_INK),
        (font::ellipsize(predicted_name, px, rp), PREDICTED_INK),
    ]
}

/// Draws `mistakes` of `data` (a set of images: channel 0 is shown), each
/// captioned with the names of its true and predicted classes.
///
/// Panics if a mistake's class has no name in `class_names`.
pub fn misclassified_grid(
    data: &Dataset,
    mistakes: &[Mistake],
    class_names: &[String],
    grid: &MistakeGrid,
) -> Result<RgbImage, ShowError> {
    let Features::Pixels(pixels) = &data.features else {
        return Err(ShowError::NotImages {
            dataset: data.name.clone(),
            shape: data.shape,
        });
    };
    let [_, h, w] = data.shape;
    let dim = data.dim();
    let (zoom, px) = (grid.zoom.max(1), grid.caption_px.max(1) as f32);
    let name = |class: usize| {
        class_names
            .get(class)
            .map(String::as_str)
            .unwrap_or_else(|| {
                panic!(
                    "misclassified_grid: class {class} has no name ({} names)",
                    class_names.len()
                )
            })
    };
    // Each cell: the image in a 1-pixel frame, then its caption. Cells widen
    // for the longest caption up to twice the frame (tiny images still get
    // room for digits); longer captions are shortened.
    let frame_w = w as u32 * zoom + 2;
    let frame_h = h as u32 * zoom + 2;
    let full_caption = mistakes
        .iter()
        .map(|m| pieces_width(&caption(name(m.label), name(m.predicted), px, u32::MAX), px))
        .max()
        .unwrap_or(0);
    let widest = (2 * frame_w).max(3 * px as u32);
    let cell_w = frame_w.max((full_caption + 2).min(widest));
    let cell_h = frame_h + PAD + font::line_height(px) + PAD;
    let header_h = PAD + font::line_height(HEADER_PX) + PAD;
    let header = [
        ("true", TRUE_INK),
        (ARROW, ARROW_INK),
        ("predicted", PREDICTED_INK),
    ];
    let header_w = pieces_width(&header, HEADER_PX);
    let n = mistakes.len() as u32;
    let columns = grid.columns.clamp(1, n.max(1));
    let rows = n.div_ceil(columns);
    let width = (PAD + columns * (cell_w + PAD)).max(2 * PAD + header_w);
    let height = header_h + rows * (cell_h + PAD);
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    draw_pieces(&mut img, &header, (PAD, PAD), HEADER_PX);

    for (k, m) in mistakes.iter().enumerate() {
        let k = k as u32;
        let x0 = PAD + (k % columns) * (cell_w + PAD);
        let y0 = header_h + (k / columns) * (cell_h + PAD);
        let fx = x0 + (cell_w - frame_w) / 2;
        for x in fx..fx + frame_w {
            img.put_pixel(x, y0, BORDER);
            img.put_pixel(x, y0 + frame_h - 1, BORDER);
        }
        for y in y0..y0 + frame_h {
            img.put_pixel(fx, y, BORDER);
            img.put_pixel(fx + frame_w - 1, y, BORDER);
        }
        let image = &pixels[m.index * dim..m.index * dim + h * w];
        for (i, &p) in image.iter().enumerate() {
            // Ink is 255 in MNIST's layout; on paper it is dark.
            let shade = Rgb([255 - p; 3]);
            let (px, py) = (
                fx + 1 + (i % w) as u32 * zoom,
                y0 + 1 + (i / w) as u32 * zoom,
            );
            for dy in 0..zoom {
                for dx in 0..zoom {
                    img.put_pixel(px + dx, py + dy, shade);
                }
            }
        }
        // A pixel spare on each side for ink beyond the glyphs' advances.
        let pieces = caption(name(m.label), name(m.predicted), px, cell_w - 2);
        let caption_w = pieces_width(&pieces, px);
        let at = (x0 + (cell_w - caption_w) / 2, y0 + frame_h + PAD);
        draw_pieces(&mut img, &pieces, at, px);
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

    /// Three 2x3 images: all ink, blank, and one ink pixel at the top left.
    fn tiny() -> Dataset {
        let mut px = vec![255u8; 6];
        px.extend([0u8; 6]);
        px.extend([255, 0, 0, 0, 0, 0]);
        Dataset {
            name: "tiny".into(),
            features: Features::Pixels(px),
            labels: vec![1, 2, 3],
            class_names: crate::data::numbered_classes(10),
            shape: [1, 2, 3],
            input: crate::data::InputKind::Vectors,
        }
    }

    fn digits(n: usize) -> Vec<String> {
        (0..n).map(|k| k.to_string()).collect()
    }

    fn mistake(index: usize, label: usize, predicted: usize) -> Mistake {
        Mistake {
            index,
            label,
            predicted,
        }
    }

    /// Antialiased text is a mix of paper and ink: the true class's pixels
    /// are neutral and darker than the grey arrow's, the prediction's red.
    fn is_black(c: &Rgb<u8>) -> bool {
        c[0] == c[1] && c[1] == c[2] && c[0] < 100
    }

    fn is_red(c: &Rgb<u8>) -> bool {
        c[0] > c[1].saturating_add(50) && c[1] == c[2]
    }

    fn pixels(img: &RgbImage, xs: std::ops::Range<u32>, ys: std::ops::Range<u32>) -> Vec<Rgb<u8>> {
        ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
            .map(|(x, y)| *img.get_pixel(x, y))
            .collect()
    }

    #[test]
    fn mistakes_are_the_wrong_predictions_in_order() {
        let m = mistakes(&[1, 2, 3, 4], &[1, 7, 3, 0]);
        assert_eq!(m, [mistake(1, 2, 7), mistake(3, 4, 0)]);
    }

    #[test]
    fn grid_size_images_and_captions() {
        let data = tiny();
        let m = [mistake(0, 1, 7), mistake(1, 2, 3), mistake(2, 3, 10)];
        let grid = MistakeGrid {
            columns: 2,
            zoom: 4,
            caption_px: 15,
        };
        let img = misclassified_grid(&data, &m, &digits(11), &grid).unwrap();
        // Cells are as wide as the widest of the framed image (3*4+2 = 14)
        // and the captions ("3→10"); the header is wider still.
        let cell_w = font::width("3", 15.0) + font::width("→", 15.0) + font::width("10", 15.0) + 2;
        assert!(cell_w > 14);
        let cell_h = 2 * 4 + 2 + PAD + font::line_height(15.0) + PAD;
        let header_h = PAD + font::line_height(HEADER_PX) + PAD;
        let header_w = font::width("true", HEADER_PX)
            + font::width("→", HEADER_PX)
            + font::width("predicted", HEADER_PX);
        let width = (PAD + 2 * (cell_w + PAD)).max(2 * PAD + header_w);
        assert_eq!(img.dimensions(), (width, header_h + 2 * (cell_h + PAD)));
        // Image 0 is all ink (black) inside its frame; image 1 is blank paper.
        let fx = PAD + (cell_w - 14) / 2;
        let (ix, iy) = (fx + 1, header_h + 1);
        assert_eq!(*img.get_pixel(fx, header_h), BORDER);
        assert_eq!(*img.get_pixel(ix, iy), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(ix + 11, iy + 7), Rgb([0, 0, 0]));
        let x1 = ix + cell_w + PAD;
        assert_eq!(*img.get_pixel(x1 + 5, iy + 3), WHITE);
        // Image 2 (second row) has one ink pixel, magnified to a 4x4 block.
        let iy2 = iy + cell_h + PAD;
        assert_eq!(*img.get_pixel(ix + 3, iy2 + 3), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(ix + 4, iy2), WHITE);
        // Each caption writes the true class in black, then the arrow in
        // grey, then the prediction in red.
        let caption_y = header_h + 2 * 4 + 2 + PAD;
        let caption_rows = caption_y..caption_y + font::line_height(15.0);
        let columns_of = |test: fn(&Rgb<u8>) -> bool| -> Vec<u32> {
            (PAD..PAD + cell_w)
                .filter(|&x| {
                    pixels(&img, x..x + 1, caption_rows.clone())
                        .iter()
                        .any(test)
                })
                .collect()
        };
        let (black, red) = (columns_of(is_black), columns_of(is_red));
        assert!(!black.is_empty() && !red.is_empty());
        assert!(black.last() < red.first(), "black {black:?} red {red:?}");
        let grey = columns_of(|c| c[0] == c[2] && (100..=200).contains(&c[0]));
        assert!(
            grey.iter()
                .any(|x| x > black.last().unwrap() && x < red.first().unwrap())
        );
        // The header is written in the same colours.
        let header = pixels(&img, PAD..PAD + header_w, PAD..header_h - PAD);
        assert!(header.iter().any(is_black) && header.iter().any(is_red));
    }

    #[test]
    fn long_names_are_shortened_to_their_cell() {
        let fashion = crate::data::builtin_class_names(crate::data::DatasetName::FashionMnist, 10);
        let m = [mistake(0, 0, 9), mistake(1, 2, 6), mistake(2, 9, 0)];
        let grid = MistakeGrid {
            columns: 3,
            zoom: 20,
            caption_px: 15,
        };
        let img = misclassified_grid(&tiny(), &m, &fashion, &grid).unwrap();
        // The cells widen to twice the framed images (3*20+2), and
        // "T-shirt/top→Ankle boot" is wider still.
        let cell_w = 2 * 62;
        assert!(font::width("T-shirt/top→Ankle boot", 15.0) > cell_w);
        let (w, h) = img.dimensions();
        assert_eq!(w, PAD + 3 * (cell_w + PAD));
        let digit_names = misclassified_grid(&tiny(), &m, &digits(10), &grid).unwrap();
        assert_eq!(digit_names.dimensions(), (PAD + 3 * (62 + PAD), h));
        // No text outside its cell: the gaps between cells and the margins
        // stay paper from top to bottom, below the header.
        let header_h = PAD + font::line_height(HEADER_PX) + PAD;
        for i in 0..=3 {
            let gap = i * (cell_w + PAD);
            let paper = pixels(&img, gap..gap + PAD, header_h..h);
            assert!(paper.iter().all(|&c| c == WHITE), "gap {i}");
        }
        let bottom = pixels(&img, 0..w, h - PAD..h);
        assert!(bottom.iter().all(|&c| c == WHITE));
        // Each shortened caption still shows its true class in black and its
        // prediction in red.
        let caption_y = header_h + 2 * 20 + 2 + PAD;
        for i in 0..3 {
            let x0 = PAD + i * (cell_w + PAD);
            let ink = pixels(&img, x0..x0 + cell_w, caption_y..caption_y + 18);
            assert!(
                ink.iter().any(is_black) && ink.iter().any(is_red),
                "cell {i}"
            );
        }
    }

    #[test]
    fn the_longer_name_gives_way_first() {
        let fits = caption("Bag", "Coat", 15.0, 100);
        assert_eq!([&*fits[0].0, &*fits[2].0], ["Bag", "Coat"]);
        let max = 90;
        let one = caption("Bag", "Ankle boot", 15.0, max);
        assert_eq!(&*one[0].0, "Bag");
        assert!(one[2].0.ends_with('…'), "{}", one[2].0);
        let both = caption("T-shirt/top", "Ankle boot", 15.0, max);
        for pieces in [&one, &both] {
            let w = pieces_width(pieces, 15.0);
            assert!(w <= max, "{w}");
        }
        assert!(both[0].0.ends_with('…') && both[2].0.ends_with('…'));
        assert!(both[0].0.starts_with("T-") && both[2].0.starts_with('A'));
    }

    #[test]
    fn no_mistakes_is_a_header_alone_and_dense_data_is_refused() {
        let img = misclassified_grid(&tiny(), &[], &digits(10), &MistakeGrid::default()).unwrap();
        assert_eq!(img.height(), PAD + font::line_height(HEADER_PX) + PAD);
        let dense = Dataset {
            name: "spiral".into(),
            features: Features::Dense(vec![0.0; 4]),
            labels: vec![0, 1],
            class_names: crate::data::numbered_classes(3),
            shape: [1, 1, 2],
            input: crate::data::InputKind::Vectors,
        };
        assert_eq!(
            misclassified_grid(&dense, &[], &digits(3), &MistakeGrid::default()),
            Err(ShowError::NotImages {
                dataset: "spiral".into(),
                shape: [1, 1, 2]
            })
        );
    }
}
