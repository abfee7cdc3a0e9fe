//! Pictures of a net, for looking at what it learned: the first layer's
//! convolution filters as a grid of grey tiles, drawn as the textbook's
//! `visualize_filter` draws them (channel 0 of each filter, each tile scaled
//! to its own minimum and maximum, dark for large weights as matplotlib's
//! `gray_r`). Before training the tiles are noise; after, edge and blob
//! detectors.
//!
//! The result is a plain 8-bit [`GrayImage`]; encoding it (PNG for
//! `backprop show filters`) belongs to the caller. [`GrayImage::to_pgm`]
//! gives a dependency-free file any image viewer opens.
//!
//! ```
//! use backprop::nets::SimpleConvNet;
//! use backprop::show::{FilterGrid, filter_grid};
//! let net = SimpleConvNet::new([1, 28, 28], 10).build::<f32>(0);
//! let img = filter_grid(&net, &FilterGrid::default()).unwrap();
//! // 30 filters of 5x5 in rows of 8, each tile 4x magnified, 1-pixel gaps.
//! assert_eq!((img.width, img.height), (8 * 21 + 1, 4 * 21 + 1));
//! ```

use crate::nets::Network;
use crate::tensor::Float;

/// An 8-bit greyscale picture, row-major, 0 black and 255 white.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl GrayImage {
    /// The binary PGM (P5) file of the picture.
    pub fn to_pgm(&self) -> Vec<u8> {
        let mut out = format!("P5\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.pixels);
        out
    }
}

/// Layout of the grid.
#[derive(Clone, Copy, Debug)]
pub struct FilterGrid {
    /// Tiles per row (the textbook uses 8).
    pub columns: usize,
    /// Each weight becomes a `zoom x zoom` block of pixels.
    pub zoom: usize,
}

impl Default for FilterGrid {
    fn default() -> Self {
        FilterGrid {
            columns: 8,
            zoom: 4,
        }
    }
}

/// The first convolution's filters (the first 4-d parameter, `[FN, C, FH, FW]`)
/// as a grid of tiles separated by 1-pixel white gaps; `None` if the net has
/// no convolution.
pub fn filter_grid<T: Float>(net: &Network<T>, grid: &FilterGrid) -> Option<GrayImage> {
    let params = net.params();
    let w = params.iter().find(|p| p.value.shape().len() == 4)?.value;
    let [fnum, c, fh, fw] = w.shape().try_into().ok()?;
    if fnum == 0 || fh == 0 || fw == 0 {
        return None;
    }
    let (columns, zoom) = (grid.columns.max(1).min(fnum), grid.zoom.max(1));
    let rows = fnum.div_ceil(columns);
    let (tile_w, tile_h) = (fw * zoom, fh * zoom);
    let width = columns * (tile_w + 1) + 1;
    let height = rows * (tile_h + 1) + 1;
    let mut pixels = vec![255u8; width * height];
    for f in 0..fnum {
        // Channel 0, as the textbook shows it.
        let start = f * c * fh * fw;
        let tile = &w.data()[start..start + fh * fw];
        let (lo, hi) = tile
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v.as_f64()), hi.max(v.as_f64()))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let (x0, y0) = (
            1 + (f % columns) * (tile_w + 1),
            1 + (f / columns) * (tile_h + 1),
        );
        for i in 0..fh {
            for j in 0..fw {
                // gray_r: the largest weight is black.
                let level = (tile[i * fw + j].as_f64() - lo) / span;
                let shade = (255.0 * (1.0 - level)).round() as u8;
                for dy in 0..zoom {
                    let row = (y0 + i * zoom + dy) * width;
                    pixels[row + x0 + j * zoom..row + x0 + (j + 1) * zoom].fill(shade);
                }
            }
        }
    }
    Some(GrayImage {
        width,
        height,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Convolution, Layer};
    use crate::nets::MultiLayerNet;
    use crate::tensor::Tensor;

    #[test]
    fn tiles_are_scaled_per_filter_and_dark_for_large_weights() {
        // Two 1x2 filters: [0, 1] and [10, -10], no magnification.
        let w = Tensor::from_vec(&[2, 1, 1, 2], vec![0.0f64, 1.0, 10.0, -10.0]).unwrap();
        let conv = Convolution::from_params(w, Tensor::zeros(&[2]), 1, 0);
        let net = Network::new(vec![Box::new(conv) as Box<dyn Layer<f64>>], 0.0);
        let grid = FilterGrid {
            columns: 8,
            zoom: 1,
        };
        let img = filter_grid(&net, &grid).unwrap();
        // Two tiles side by side (columns clipped to the filter count).
        assert_eq!((img.width, img.height), (2 * 3 + 1, 1 + 1 + 1));
        let row = &img.pixels[img.width..2 * img.width];
        assert_eq!(row, &[255, 255, 0, 255, 0, 255, 255]);
        assert!(img.to_pgm().starts_with(b"P5\n7 3\n255\n"));
    }

    #[test]
    fn nets_without_convolutions_have_no_filters() {
        let net = MultiLayerNet::new(4, &[3], 2).build::<f32>(0);
        assert!(filter_grid(&net, &FilterGrid::default()).is_none());
    }
}
