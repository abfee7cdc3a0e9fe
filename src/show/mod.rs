//! Pictures of a net, for looking at what it learned and where it fails
//! (`backprop show`):
//!
//! - filters ([`first_layer_filters`], [`filter_grid`]): the first layer's
//!   weights as a grid of grey tiles, as the textbook's `visualize_filter.py`
//!   draws them: the convolution filters of a convnet, or, for a
//!   MultiLayerNet, the weights into each first hidden unit laid out as an
//!   input image. Before training the tiles are noise; after, edge and blob
//!   detectors.
//! - misclassified ([`mistakes`], [`misclassified_grid`]): the test images a
//!   model gets wrong, each captioned `true→predicted`.
//!
//! - examples ([`examples_figure`]): training images with their labels, the
//!   textbook's `mnist_show.py`.
//! - activations ([`filter_responses`], [`responses_figure`]): a convnet's
//!   first filters run over a picture, the textbook's `apply_filter.py`.
//!
//! Filters and mistakes are `image` buffers, which the command line saves as
//! PNG; examples and activations are [`crate::plot`] figures (PNG and SVG).
//!
//! ```
//! use backprop::nets::SimpleConvNet;
//! use backprop::show::{FilterGrid, filter_grid, first_layer_filters};
//! let net = SimpleConvNet::new([1, 28, 28], 10).build::<f32>(0).unwrap();
//! let filters = first_layer_filters(&net, [1, 28, 28], 100).unwrap();
//! assert_eq!((filters.count(), filters.shape), (30, [1, 5, 5]));
//! let img = filter_grid(&filters, &FilterGrid::for_filters(&filters));
//! // 30 tiles of 5x5 in rows of 8, each weight an 8x8 block, 3-pixel gaps.
//! assert_eq!(img.dimensions(), (8 * (40 + 3) + 3, 4 * (40 + 3) + 3));
//! ```

mod activations;
mod examples;
mod filters;
mod misclassified;

pub use activations::{MAX_SIDE, Responses, filter_responses, responses_figure, shrink};
pub use examples::examples_figure;
pub use filters::{FilterGrid, FilterSource, Filters, filter_grid, first_layer_filters};
pub use misclassified::{Mistake, MistakeGrid, misclassified_grid, mistakes};

/// Why a picture cannot be drawn; the command line adds the file it was drawing from.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShowError {
    #[error(
        "the first layer with weights is {layer}, which has no filters to show (expected Convolution or Affine)"
    )]
    NoFilters { layer: String },
    #[error(
        "the first layer with weights is {layer}, not a Convolution: filter responses need a convnet (train one with --net simple-cnn)"
    )]
    NotConvolution { layer: String },
    #[error(
        "the first Affine layer takes {inputs} inputs, which do not form the model's input images {shape:?}"
    )]
    InputMismatch { inputs: usize, shape: [usize; 3] },
    #[error(
        "a {picture:?} picture does not fit filters of {filter:?} (channels, height, width): it needs as many channels and at least the filter's size"
    )]
    PictureMismatch {
        picture: [usize; 3],
        filter: [usize; 3],
    },
    #[error(
        "the {dataset} data set is not made of images ({shape:?} values per example), so there are no pictures of its mistakes to draw"
    )]
    NotImages { dataset: String, shape: [usize; 3] },
}
