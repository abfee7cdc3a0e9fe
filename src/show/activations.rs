//! What a convnet's first filters do to a picture, the textbook's
//! `apply_filter.py`: each of the first Convolution's filters is run over
//! the picture on its own (stride 1, no padding, bias 0, as the book does),
//! through the library's Convolution layer. A filter that learned an edge
//! answers strongly along edges of its direction, so the responses show
//! which edges, blobs and strokes the first layer looks for.
//!
//! ```
//! use backprop::nets::SimpleConvNet;
//! use backprop::show::filter_responses;
//! use backprop::tensor::Tensor;
//! let net = SimpleConvNet::new([1, 28, 28], 10).build::<f32>(0).unwrap();
//! let picture = Tensor::from_vec(&[1, 1, 12, 10], vec![0.5; 120]).unwrap();
//! let r = filter_responses(&net, &picture, 16).unwrap();
//! assert_eq!((r.maps.len(), r.map_size), (16, (8, 6))); // 5x5 filters on 12x10
//! ```

use super::ShowError;
use crate::layers::{Convolution, Layer};
use crate::nets::Network;
use crate::plot::{Figure, Mark, Panel, Picture};
use crate::tensor::{Float, Tensor};

/// The first filters of a convnet and what each makes of one picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Responses {
    /// Each filter's `C · FH · FW` weights.
    pub filters: Vec<Vec<f64>>,
    /// `(C, FH, FW)` of one filter.
    pub filter_shape: (usize, usize, usize),
    /// One response per filter, `OH · OW` values row-major.
    pub maps: Vec<Vec<f64>>,
    /// `(OH, OW)` of a response.
    pub map_size: (usize, usize),
}

/// Runs the first `limit` filters of `net`'s first Convolution over
/// `picture` (`[1, C, H, W]`).
pub fn filter_responses<T: Float>(
    net: &Network<T>,
    picture: &Tensor<T>,
    limit: usize,
) -> Result<Responses, ShowError> {
    let first =
        net.layers
            .iter()
            .find(|l| !l.params().is_empty())
            .ok_or(ShowError::NotConvolution {
                layer: "none (the net has no weights)".into(),
            })?;
    if first.name() != "Convolution" {
        return Err(ShowError::NotConvolution {
            layer: first.name().into(),
        });
    }
    let params = first.params();
    let w = params
        .iter()
        .find(|p| p.name == "W")
        .expect("a Convolution has W")
        .value;
    let &[count, c, fh, fw] = w.shape() else {
        unreachable!("a Convolution's W is [FN, C, FH, FW]")
    };
    let &[_, pc, ph, pw] = picture.shape() else {
        unreachable!("the caller passes [1, C, H, W]")
    };
    if pc != c || ph < fh || pw < fw {
        return Err(ShowError::PictureMismatch {
            picture: [pc, ph, pw],
            filter: [c, fh, fw],
        });
    }
    let per = c * fh * fw;
    let mut responses = Responses {
        filters: Vec::new(),
        filter_shape: (c, fh, fw),
        maps: Vec::new(),
        map_size: (ph - fh + 1, pw - fw + 1),
    };
    for k in 0..count.min(limit) {
        let weights = w.data()[k * per..(k + 1) * per].to_vec();
        let one = Tensor::from_vec(&[1, c, fh, fw], weights.clone()).expect("one filter");
        let mut conv = Convolution::from_params(one, Tensor::zeros(&[1]), 1, 0);
        let out = conv.forward(picture, false);
        responses
            .maps
            .push(out.data().iter().map(|v| v.as_f64()).collect());
        responses
            .filters
            .push(weights.iter().map(|v| v.as_f64()).collect());
    }
    Ok(responses)
}

/// Pictures larger than this on a side are shrunk before the filters run:
/// a 5x5 filter sees little of a photo at full size, and 16 responses of
/// millions of pixels would take gigabytes.
pub const MAX_SIDE: usize = 400;

/// `grey` (`width` by `height`, row-major) shrunk by the smallest whole
/// factor that brings both sides within `max_side`, each output pixel the
/// mean of its block; returned with its new width and height.
pub fn shrink(
    grey: &[f32],
    width: usize,
    height: usize,
    max_side: usize,
) -> (Vec<f32>, usize, usize) {
    let factor = width.max(height).div_ceil(max_side.max(1)).max(1);
    if factor == 1 {
        return (grey.to_vec(), width, height);
    }
    let (w, h) = (width / factor, height / factor);
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let mut sum = 0.0f64;
            for dy in 0..factor {
                let row = (y * factor + dy) * width;
                for dx in 0..factor {
                    sum += f64::from(grey[row + x * factor + dx]);
                }
            }
            out.push((sum / (factor * factor) as f64) as f32);
        }
    }
    (out, w, h)
}

/// The picture, then each response with its filter in the corner, these in
/// `gray_r` (dark for large values, as the book draws them).
pub fn responses_figure(picture: &[f64], size: (usize, usize), r: &Responses) -> Figure {
    let (h, w) = size;
    let image = |values: &[f64], (rows, cols): (usize, usize)| {
        let (wf, hf) = (cols as f64, rows as f64);
        Picture::grey(values, cols, rows, true, 0.0..wf, 0.0..hf)
    };
    let panel = |title: &str, marks: Vec<Mark>, (rows, cols): (usize, usize)| {
        Panel::marks(title, "", "", marks)
            .x_range(0.0..cols as f64)
            .y_range(0.0..rows as f64)
            .no_axes()
            .equal_aspect()
    };
    // The picture as it looks (white 1); responses and filters in gray_r.
    let shown = Picture::grey(picture, w, h, false, 0.0..w as f64, 0.0..h as f64);
    let mut panels = vec![panel("the picture", vec![Mark::Picture(shown)], (h, w))];
    let (_, fh, fw) = r.filter_shape;
    for (k, (map, filter)) in r.maps.iter().zip(&r.filters).enumerate() {
        let (oh, ow) = r.map_size;
        // The filter's first channel, a quarter of the response's width.
        let side = (ow.min(oh) as f64 / 4.0).max(1.0);
        let mut inset = image(&filter[..fh * fw], (fh, fw));
        inset.x = 0.0..side * fw as f64 / fh.max(fw) as f64;
        inset.y = oh as f64 - side * fh as f64 / fh.max(fw) as f64..oh as f64;
        // A white frame keeps the filter apart from the response under it.
        let frame = Picture {
            x: inset.x.start..inset.x.end + side / 8.0,
            y: inset.y.start - side / 8.0..inset.y.end,
            width: 1,
            height: 1,
            pixels: vec![(255, 255, 255)],
        };
        panels.push(panel(
            &format!("filter {}", k + 1),
            vec![
                Mark::Picture(image(map, (oh, ow))),
                Mark::Picture(frame),
                Mark::Picture(inset),
            ],
            (oh, ow),
        ));
    }
    let columns = panels.len().min(6);
    Figure::new(panels, columns).panel_size(200, 220)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::MultiLayerNet;

    #[test]
    fn an_edge_filter_answers_along_edges() {
        // A vertical-edge filter [-1, 1] over a picture dark left, light right.
        let w = Tensor::from_vec(&[1, 1, 1, 2], vec![-1.0, 1.0]).unwrap();
        let conv = Convolution::from_params(w, Tensor::zeros(&[1]), 1, 0);
        let net = Network::new(vec![Box::new(conv) as Box<dyn Layer<f64>>], 0.0);
        let picture =
            Tensor::from_vec(&[1, 1, 2, 4], vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]).unwrap();
        let r = filter_responses(&net, &picture, 16).unwrap();
        assert_eq!(r.map_size, (2, 3));
        assert_eq!(r.maps, [vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0]]);
        assert_eq!(r.filters, [vec![-1.0, 1.0]]);
        let figure = responses_figure(picture.data(), (2, 4), &r);
        assert_eq!(figure.panels.len(), 2);
    }

    #[test]
    fn large_pictures_are_shrunk_by_block_means() {
        let grey: Vec<f32> = (0..24).map(|v| v as f32).collect();
        assert_eq!(shrink(&grey, 6, 4, 10), (grey.clone(), 6, 4));
        // Factor 2: 3x2 blocks of 2x2, the first holding 0, 1, 6, 7.
        let (small, w, h) = shrink(&grey, 6, 4, 3);
        assert_eq!((w, h), (3, 2));
        assert_eq!(small, [3.5, 5.5, 7.5, 15.5, 17.5, 19.5]);
    }

    #[test]
    fn nets_and_pictures_that_do_not_fit_are_errors() {
        let mlp = MultiLayerNet::new(4, &[3], 2).build::<f64>(0).unwrap();
        let picture = Tensor::zeros(&[1, 1, 2, 2]);
        let err = filter_responses(&mlp, &picture, 16).unwrap_err();
        assert!(
            err.to_string().contains("Affine, not a Convolution"),
            "{err}"
        );
        let w = Tensor::zeros(&[2, 1, 3, 3]);
        let conv = Convolution::from_params(w, Tensor::zeros(&[2]), 1, 0);
        let net = Network::new(vec![Box::new(conv) as Box<dyn Layer<f64>>], 0.0);
        assert_eq!(
            filter_responses(&net, &picture, 16),
            Err(ShowError::PictureMismatch {
                picture: [1, 2, 2],
                filter: [1, 3, 3]
            })
        );
    }
}
