//! The first layer's weights as a grid of grey tiles, after the textbook's
//! `visualize_filter.py`: one tile per filter and input channel, each weight a
//! `zoom x zoom` block (nearest neighbour, so the kernels stay crisp), every
//! filter scaled to its own minimum and maximum (matplotlib's `imshow` does
//! that per subplot) and drawn dark for large weights, as `cmap=gray_r`.
//!
//! A convnet's first layer is a Convolution, `W` of `[FN, C, FH, FW]`: each
//! filter is `C` tiles of `FH x FW`. A MultiLayerNet's is an Affine, `W` of
//! `(C·H·W, units)`: column `j` holds the weights into hidden unit `j`, one per
//! input pixel, so it is drawn as a `C x H x W` image, the natural analogue of
//! a filter (the pattern that unit responds to most).

use image::{GrayImage, Luma};

use super::ShowError;
use crate::nets::Network;
use crate::tensor::Float;

/// Which kind of layer the filters were read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterSource {
    Convolution,
    Affine,
}

/// First-layer filters, each of shape `[C, H, W]`, widened to f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Filters {
    pub source: FilterSource,
    /// The textbook's name of the weights they came from (`W1`).
    pub param: String,
    /// One filter's `[C, H, W]`.
    pub shape: [usize; 3],
    /// How many the layer has; `count()` may be fewer when limited.
    pub total: usize,
    /// `count() · C · H · W` weights, filter after filter, each row-major.
    pub weights: Vec<f64>,
}

impl Filters {
    pub fn count(&self) -> usize {
        let [c, h, w] = self.shape;
        self.weights.len() / (c * h * w).max(1)
    }
}

/// The first `limit` filters of the first layer with weights of `net`, whose
/// inputs are `[C, H, W]` images of `input_shape`.
pub fn first_layer_filters<T: Float>(
    net: &Network<T>,
    input_shape: [usize; 3],
    limit: usize,
) -> Result<Filters, ShowError> {
    let no_filters = |layer: &str| ShowError::NoFilters {
        layer: layer.to_owned(),
    };
    let layer = net
        .layers
        .iter()
        .find(|l| !l.params().is_empty())
        .ok_or_else(|| no_filters("none (the net has no weights)"))?;
    let params = layer.params();
    let w = params
        .iter()
        .find(|p| p.name == "W")
        .ok_or_else(|| no_filters(layer.name()))?
        .value;
    // The first layer with weights holds the net's first parameters, so its
    // W is the textbook's W1.
    let param = net.params().first().map_or("W1".into(), |p| p.name.clone());
    match (layer.name(), w.shape()) {
        ("Convolution", &[total, c, fh, fw]) => {
            let count = total.min(limit);
            Ok(Filters {
                source: FilterSource::Convolution,
                param,
                shape: [c, fh, fw],
                total,
                weights: w.data()[..count * c * fh * fw]
                    .iter()
                    .map(|v| v.as_f64())
                    .collect(),
            })
        }
        ("Affine", &[inputs, units]) => {
            let [c, h, wd] = input_shape;
            if inputs != c * h * wd {
                return Err(ShowError::InputMismatch {
                    inputs,
                    shape: input_shape,
                });
            }
            let count = units.min(limit);
            let data = w.data();
            Ok(Filters {
                source: FilterSource::Affine,
                param,
                shape: input_shape,
                total: units,
                weights: (0..count)
                    .flat_map(|j| (0..inputs).map(move |i| data[i * units + j].as_f64()))
                    .collect(),
            })
        }
        (name, _) => Err(no_filters(name)),
    }
}

/// Layout of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterGrid {
    /// Filters per row (clipped to the number of filters).
    pub columns: u32,
    /// Each weight becomes a `zoom x zoom` block of pixels.
    pub zoom: u32,
}

/// White space between filters and around the grid.
const GAP: u32 = 3;
/// White space between the channel tiles of one filter.
const CHANNEL_GAP: u32 = 1;
/// Tiles are magnified to about this many pixels on their longer side.
const TILE_PIXELS: usize = 40;

impl FilterGrid {
    /// The textbook's 8 per row for convolution filters, 10 for the larger
    /// Affine images; tiles magnified to about 40 pixels (5x5 kernels 8x,
    /// 28x28 images 2x).
    pub fn for_filters(filters: &Filters) -> Self {
        let [_, h, w] = filters.shape;
        FilterGrid {
            columns: match filters.source {
                FilterSource::Convolution => 8,
                FilterSource::Affine => 10,
            },
            zoom: TILE_PIXELS.div_ceil(h.max(w).max(1)) as u32,
        }
    }
}

/// Draws `filters` as a grid of tiles on white: filter after filter in rows
/// of `grid.columns`, the channels of one filter side by side.
pub fn filter_grid(filters: &Filters, grid: &FilterGrid) -> GrayImage {
    let [c, h, w] = filters.shape.map(|d| d as u32);
    let count = filters.count() as u32;
    let zoom = grid.zoom.max(1);
    let columns = grid.columns.clamp(1, count.max(1));
    let rows = count.div_ceil(columns);
    let (tile_w, tile_h) = (w * zoom, h * zoom);
    let block_w = c * tile_w + c.saturating_sub(1) * CHANNEL_GAP;
    let width = columns * (block_w + GAP) + GAP;
    let height = rows * (tile_h + GAP) + GAP;
    let mut img = GrayImage::from_pixel(width, height, Luma([255]));
    let per_filter = (c * h * w) as usize;
    for (f, weights) in filters.weights.chunks_exact(per_filter.max(1)).enumerate() {
        let f = f as u32;
        let (lo, hi) = weights
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        // gray_r: the filter's largest weight is black, its smallest white; a
        // constant filter has no contrast to show and is drawn mid-grey.
        let shade = |v: f64| {
            if hi > lo {
                Luma([(255.0 * (1.0 - (v - lo) / (hi - lo))).round() as u8])
            } else {
                Luma([128])
            }
        };
        let x0 = GAP + (f % columns) * (block_w + GAP);
        let y0 = GAP + (f / columns) * (tile_h + GAP);
        for (k, &v) in weights.iter().enumerate() {
            let k = k as u32;
            let (ch, i, j) = (k / (h * w), k / w % h, k % w);
            let x = x0 + ch * (tile_w + CHANNEL_GAP) + j * zoom;
            let y = y0 + i * zoom;
            for dy in 0..zoom {
                for dx in 0..zoom {
                    img.put_pixel(x + dx, y + dy, shade(v));
                }
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{BatchNorm, Convolution, Layer};
    use crate::nets::MultiLayerNet;
    use crate::tensor::Tensor;

    fn conv_net(shape: [usize; 4], w: Vec<f64>) -> Network<f64> {
        let w = Tensor::from_vec(&shape, w).unwrap();
        let conv = Convolution::from_params(w, Tensor::zeros(&[shape[0]]), 1, 0);
        Network::new(vec![Box::new(conv) as Box<dyn Layer<f64>>], 0.0)
    }

    fn row(img: &GrayImage, y: u32) -> Vec<u8> {
        (0..img.width()).map(|x| img.get_pixel(x, y)[0]).collect()
    }

    #[test]
    fn tiles_are_scaled_per_filter_and_dark_for_large_weights() {
        // Two 1x3 filters: [0, 1, 2] and [10, -10, 0], no magnification.
        let net = conv_net([2, 1, 1, 3], vec![0.0, 1.0, 2.0, 10.0, -10.0, 0.0]);
        let filters = first_layer_filters(&net, [1, 4, 4], 100).unwrap();
        assert_eq!((filters.count(), filters.total), (2, 2));
        assert_eq!(filters.param, "W1");
        let img = filter_grid(
            &filters,
            &FilterGrid {
                columns: 8,
                zoom: 1,
            },
        );
        // Two tiles side by side (columns clipped to the filter count).
        assert_eq!(img.dimensions(), (2 * (3 + GAP) + GAP, 1 + 2 * GAP));
        assert!(row(&img, 0).iter().all(|&p| p == 255), "top gap is white");
        // Brightness falls as the weight grows, each filter on its own scale:
        // 0 < 1 < 2 is white, grey, black; 10 > 0 > -10 is black, grey, white.
        assert_eq!(
            row(&img, GAP),
            [
                255, 255, 255, 255, 128, 0, 255, 255, 255, 0, 255, 128, 255, 255, 255
            ]
        );
    }

    #[test]
    fn weights_are_magnified_by_nearest_neighbour() {
        let net = conv_net([1, 1, 2, 2], vec![1.0, 0.0, 0.0, 1.0]);
        let filters = first_layer_filters(&net, [1, 4, 4], 100).unwrap();
        let img = filter_grid(
            &filters,
            &FilterGrid {
                columns: 1,
                zoom: 3,
            },
        );
        assert_eq!(img.dimensions(), (6 + 2 * GAP, 6 + 2 * GAP));
        // A diagonal of 3x3 black blocks on white.
        for y in 0..6 {
            for x in 0..6 {
                let black = (x / 3) == (y / 3);
                assert_eq!(
                    img.get_pixel(GAP + x, GAP + y)[0],
                    if black { 0 } else { 255 }
                );
            }
        }
    }

    #[test]
    fn channels_sit_side_by_side_and_rows_wrap() {
        // Three filters of 2 channels 1x1, two per row: the filter's two
        // channels share one scale, so its larger weight is black.
        let w = vec![1.0, 2.0, 3.0, -3.0, 5.0, 5.0];
        let net = conv_net([3, 2, 1, 1], w);
        let filters = first_layer_filters(&net, [2, 3, 3], 100).unwrap();
        assert_eq!(filters.shape, [2, 1, 1]);
        let img = filter_grid(
            &filters,
            &FilterGrid {
                columns: 2,
                zoom: 1,
            },
        );
        let block = 2 + CHANNEL_GAP;
        assert_eq!(
            img.dimensions(),
            (2 * (block + GAP) + GAP, 2 * (1 + GAP) + GAP)
        );
        let px = |x, y| img.get_pixel(x, y)[0];
        assert_eq!((px(GAP, GAP), px(GAP + 2, GAP)), (255, 0));
        assert_eq!(px(GAP + 1, GAP), 255, "gap between the channels");
        let x1 = GAP + block + GAP;
        assert_eq!((px(x1, GAP), px(x1 + 2, GAP)), (0, 255));
        // The constant third filter wraps to the second row, mid-grey.
        let y1 = GAP + 1 + GAP;
        assert_eq!((px(GAP, y1), px(GAP + 2, y1)), (128, 128));
        assert_eq!(px(x1, y1), 255, "no fourth filter");
    }

    #[test]
    fn an_mlp_shows_the_weights_into_each_hidden_unit_as_an_image() {
        let net = MultiLayerNet::new(4, &[3], 2).build::<f64>(7).unwrap();
        let w1 = net.params()[0].value.clone();
        let filters = first_layer_filters(&net, [1, 2, 2], 2).unwrap();
        assert_eq!(filters.source, FilterSource::Affine);
        assert_eq!(
            (filters.count(), filters.total, filters.shape),
            (2, 3, [1, 2, 2])
        );
        // Filter j is column j of W1 (inputs x units).
        for j in 0..2 {
            for i in 0..4 {
                assert_eq!(filters.weights[j * 4 + i], w1.data()[i * 3 + j]);
            }
        }
        let grid = FilterGrid::for_filters(&filters);
        assert_eq!(
            grid,
            FilterGrid {
                columns: 10,
                zoom: 20
            }
        );
        let img = filter_grid(&filters, &grid);
        assert_eq!(img.dimensions(), (2 * (40 + GAP) + GAP, 40 + 2 * GAP));
    }

    #[test]
    fn weights_that_are_not_filters_are_clear_errors() {
        let net = MultiLayerNet::new(4, &[3], 2).build::<f64>(0).unwrap();
        assert_eq!(
            first_layer_filters(&net, [1, 3, 3], 100),
            Err(ShowError::InputMismatch {
                inputs: 4,
                shape: [1, 3, 3]
            })
        );
        let bn = Network::new(
            vec![Box::new(BatchNorm::<f64>::new(4)) as Box<dyn Layer<f64>>],
            0.0,
        );
        let err = first_layer_filters(&bn, [1, 2, 2], 100).unwrap_err();
        assert_eq!(
            err,
            ShowError::NoFilters {
                layer: "BatchNorm".into()
            }
        );
    }
}
