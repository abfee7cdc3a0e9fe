//! The test images a model gets wrong, as a grid: each image magnified
//! (nearest neighbour) and drawn dark ink on white, captioned `true→predicted`
//! below it (the true class in black, the prediction in red) with the
//! built-in bitmap font, under a header that says which label is which.

use image::{Rgb, RgbImage};

use super::ShowError;
use crate::bitmap_font::{self, draw_text, text_width};
use crate::data::{Dataset, Features};

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
    /// Font pixels of the captions (the font is 5 high: 3 makes 15 pixels).
    pub caption_scale: u32,
}

impl Default for MistakeGrid {
    /// Six across, 28x28 images at 84 pixels with captions 15 pixels high,
    /// readable without zooming in.
    fn default() -> Self {
        MistakeGrid {
            columns: 6,
            zoom: 3,
            caption_scale: 3,
        }
    }
}

/// White space around the grid, between cells, and above and below captions.
const PAD: u32 = 4;
const HEADER: &str = "TRUE→PREDICTED";
const HEADER_SCALE: u32 = 3;
const BORDER: Rgb<u8> = Rgb([190, 190, 190]);
const TRUE_INK: Rgb<u8> = Rgb([0, 0, 0]);
const ARROW_INK: Rgb<u8> = Rgb([120, 120, 120]);
const PREDICTED_INK: Rgb<u8> = Rgb([200, 0, 0]);

/// Draws `mistakes` of `data` (a set of images: channel 0 is shown).
pub fn misclassified_grid(
    data: &Dataset,
    mistakes: &[Mistake],
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
    let (zoom, scale) = (grid.zoom.max(1), grid.caption_scale.max(1));
    let captions: Vec<String> = mistakes
        .iter()
        .map(|m| format!("{}→{}", m.label, m.predicted))
        .collect();
    // Each cell: the image in a 1-pixel frame, then its caption.
    let frame_w = w as u32 * zoom + 2;
    let frame_h = h as u32 * zoom + 2;
    let caption_w = captions.iter().map(|c| text_width(c, scale)).max();
    let cell_w = frame_w.max(caption_w.unwrap_or(0));
    let cell_h = frame_h + PAD + bitmap_font::HEIGHT * scale + PAD;
    let header_h = PAD + bitmap_font::HEIGHT * HEADER_SCALE + PAD;
    let n = mistakes.len() as u32;
    let columns = grid.columns.clamp(1, n.max(1));
    let rows = n.div_ceil(columns);
    let width = (PAD + columns * (cell_w + PAD)).max(2 * PAD + text_width(HEADER, HEADER_SCALE));
    let height = header_h + rows * (cell_h + PAD);
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    draw_text(&mut img, HEADER, PAD, PAD, HEADER_SCALE, ARROW_INK);

    for (k, (m, caption)) in mistakes.iter().zip(&captions).enumerate() {
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
        let cx = x0 + (cell_w - text_width(caption, scale)) / 2;
        let cy = y0 + frame_h + PAD;
        let label = m.label.to_string();
        let step = |s: &str| text_width(s, scale) + scale;
        draw_text(&mut img, &label, cx, cy, scale, TRUE_INK);
        draw_text(&mut img, "→", cx + step(&label), cy, scale, ARROW_INK);
        draw_text(
            &mut img,
            &m.predicted.to_string(),
            cx + step(&label) + step("→"),
            cy,
            scale,
            PREDICTED_INK,
        );
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn mistakes_are_the_wrong_predictions_in_order() {
        let m = mistakes(&[1, 2, 3, 4], &[1, 7, 3, 0]);
        assert_eq!(
            m,
            [
                Mistake {
                    index: 1,
                    label: 2,
                    predicted: 7
                },
                Mistake {
                    index: 3,
                    label: 4,
                    predicted: 0
                }
            ]
        );
    }

    #[test]
    fn grid_size_images_and_captions() {
        let data = tiny();
        let m = [
            Mistake {
                index: 0,
                label: 1,
                predicted: 7,
            },
            Mistake {
                index: 1,
                label: 2,
                predicted: 3,
            },
            Mistake {
                index: 2,
                label: 3,
                predicted: 10,
            },
        ];
        let grid = MistakeGrid {
            columns: 2,
            zoom: 4,
            caption_scale: 1,
        };
        let img = misclassified_grid(&data, &m, &grid).unwrap();
        // Cells are as wide as the widest of the framed image (3*4+2 = 14)
        // and the captions ("3→10": 15); the header is wider still.
        let (cell_w, cell_h) = (15, 2 * 4 + 2 + PAD + 5 + PAD);
        let header_h = PAD + 5 * HEADER_SCALE + PAD;
        let width = (PAD + 2 * (cell_w + PAD)).max(2 * PAD + text_width(HEADER, HEADER_SCALE));
        assert_eq!(img.dimensions(), (width, header_h + 2 * (cell_h + PAD)));
        // Image 0 is all ink (black) inside its frame; image 1 is blank paper.
        let fx = PAD + (cell_w - 14) / 2;
        let (ix, iy) = (fx + 1, header_h + 1);
        assert_eq!(*img.get_pixel(fx, header_h), BORDER);
        assert_eq!(*img.get_pixel(ix, iy), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(ix + 11, iy + 7), Rgb([0, 0, 0]));
        let x1 = ix + cell_w + PAD;
        assert_eq!(*img.get_pixel(x1 + 5, iy + 3), Rgb([255, 255, 255]));
        // Image 2 (second row) has one ink pixel, magnified to a 4x4 block.
        let iy2 = iy + cell_h + PAD;
        assert_eq!(*img.get_pixel(ix + 3, iy2 + 3), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(ix + 4, iy2), Rgb([255, 255, 255]));
        // Each caption writes the true class in black and the prediction in red.
        let caption_rows = |y0: u32| {
            let mut colours = Vec::new();
            for y in y0..y0 + 5 {
                for x in PAD..PAD + cell_w {
                    colours.push(*img.get_pixel(x, y));
                }
            }
            colours
        };
        let first = caption_rows(header_h + 2 * 4 + 2 + PAD);
        assert!(first.contains(&TRUE_INK) && first.contains(&PREDICTED_INK));
        assert!(first.contains(&ARROW_INK));
        // "1→7" is 11 font columns wide, centred in the 15 of the cell: the
        // prediction's red glyph ends 2 pixels before the cell's edge.
        let red_x: Vec<u32> = (PAD..PAD + cell_w)
            .filter(|&x| *img.get_pixel(x, header_h + 2 * 4 + 2 + PAD) == PREDICTED_INK)
            .collect();
        assert_eq!(red_x.last(), Some(&(PAD + cell_w - 3)));
    }

    #[test]
    fn no_mistakes_is_a_header_alone_and_dense_data_is_refused() {
        let img = misclassified_grid(&tiny(), &[], &MistakeGrid::default()).unwrap();
        assert_eq!(img.height(), PAD + 5 * HEADER_SCALE + PAD);
        let dense = Dataset {
            name: "spiral".into(),
            features: Features::Dense(vec![0.0; 4]),
            labels: vec![0, 1],
            class_names: crate::data::numbered_classes(3),
            shape: [1, 1, 2],
            input: crate::data::InputKind::Vectors,
        };
        assert_eq!(
            misclassified_grid(&dense, &[], &MistakeGrid::default()),
            Err(ShowError::NotImages {
                dataset: "spiral".into(),
                shape: [1, 1, 2]
            })
        );
    }
}
