//! Classifying pictures with a saved model: `backprop predict` and the web page.
//!
//! A [`Classifier`] holds a net loaded from a checkpoint that takes 28x28
//! grayscale images; pictures of any size go through [`preprocess::mnist_like`]
//! first, and the answer is the softmax of the scores.
//!
//! ```
//! use backprop::predict::{format_top, top};
//! let p = [0.01, 0.9, 0.02, 0.07];
//! assert_eq!(top(&p, 2), vec![(1, 0.9), (3, 0.07)]);
//! assert_eq!(format_top(&p, 3), "1 (0.900), 3 (0.070), 2 (0.020)");
//! ```

pub mod preprocess;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::checkpoint::{self, ModelInfo};
use crate::nets::{InputError, Network};
use crate::predict::preprocess::SIDE;
use crate::tensor::Tensor;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot decode image {path}: {source} (PNG, JPEG and BMP are supported)")]
    Decode {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("image {path}: {source}")]
    Preprocess {
        path: PathBuf,
        source: preprocess::PreprocessError,
    },
}

/// Grey levels (0 black ... 255 white) of the picture at `path`, with any
/// transparency laid over white paper; returns `(levels, width, height)`.
pub fn load_gray(path: &Path) -> Result<(Vec<f32>, usize, usize), ImageError> {
    let read = |source| ImageError::Read {
        path: path.to_owned(),
        source,
    };
    let img = image::ImageReader::open(path)
        .map_err(read)?
        .with_guessed_format()
        .map_err(read)?
        .decode()
        .map_err(|source| ImageError::Decode {
            path: path.to_owned(),
            source,
        })?
        .to_luma_alpha8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let gray = img
        .pixels()
        .map(|p| {
            let a = f32::from(p[1]) / 255.0;
            f32::from(p[0]) * a + 255.0 * (1.0 - a)
        })
        .collect();
    Ok((gray, w, h))
}

/// The `k` most probable classes, most probable first.
pub fn top(probabilities: &[f64], k: usize) -> Vec<(usize, f64)> {
    let mut order: Vec<(usize, f64)> = probabilities.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(k);
    order
}

/// `7 (0.981), 1 (0.012), 9 (0.004)`.
pub fn format_top(probabilities: &[f64], k: usize) -> String {
    top(probabilities, k)
        .iter()
        .map(|(c, p)| format!("{c} ({p:.3})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Softmax of `scores`, in f64 and shifted by the maximum so it cannot overflow.
pub fn softmax(scores: &[f32]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = scores.iter().map(|&s| f64::from(s - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// A loaded model that classifies 28x28 grayscale images.
pub struct Classifier {
    pub net: Network<f32>,
    pub info: ModelInfo,
    x: Tensor<f32>,
}

impl Classifier {
    /// Loads a checkpoint; fails unless its inputs are 1x28x28 images.
    pub fn load(path: &Path) -> Result<Self> {
        let (mut net, info) = checkpoint::load::<f32>(path)?;
        let side = preprocess::SIDE;
        if info.input_shape != [1, side, side] {
            bail!(
                "{} was trained on {} with inputs shaped {:?}; pictures can only be classified by models of 1x{side}x{side} grayscale images (mnist, fashion-mnist)",
                path.display(),
                info.dataset,
                info.input_shape
            );
        }
        net.check_input(&[1, side, side])
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Classifier {
            net,
            info,
            x: Tensor::zeros(&[1, 1, side, side]),
        })
    }

    /// Class probabilities for one preprocessed image (`SIDE * SIDE` values
    /// in [0, 1]); an image of another size is an error naming both sizes.
    pub fn probabilities(&mut self, image: &[f32]) -> Result<Vec<f64>, InputError> {
        if image.len() == SIDE * SIDE {
            self.x.resize(&[1, 1, SIDE, SIDE]);
        } else {
            // The net's own check then names what it takes.
            self.x.resize(&[1, image.len()]);
        }
        self.x.data_mut().copy_from_slice(image);
        Ok(softmax(self.net.predict(&self.x, false)?.data()))
    }

    /// Loads, preprocesses and classifies the picture at `path`.
    pub fn classify_file(&mut self, path: &Path) -> Result<Vec<f64>, ImageError> {
        let (gray, w, h) = load_gray(path)?;
        let x = preprocess::mnist_like(&gray, w, h).map_err(|source| ImageError::Preprocess {
            path: path.to_owned(),
            source,
        })?;
        Ok(self
            .probabilities(&x)
            .expect("Classifier::load accepts only nets that take 28x28 images"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_and_sums_to_one() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]);
        assert!((p[0] - 0.5).abs() < 1e-12 && p[2] < 1e-300);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ties_keep_the_lower_class_first() {
        assert_eq!(
            top(&[0.25, 0.5, 0.25], 3),
            vec![(1, 0.5), (0, 0.25), (2, 0.25)]
        );
    }
}
