//! Classifying with a saved model: `backprop predict` and `serve`.
//!
//! A [`Classifier`] holds a net loaded from a checkpoint and prepares what it
//! is given as the model's training data was prepared (the checkpoint's
//! [`InputKind`]): a picture of a digit goes through [`preprocess::mnist_like`]
//! (inverted if dark on light, cropped, centred), any other picture is
//! resized and converted as its folder's pictures were
//! ([`crate::data::folder::to_input`]), a table row is encoded column by
//! column ([`crate::data::TableEncoding`]). The answer is the softmax of the
//! scores, by class name.
//!
//! ```
//! use backprop::predict::{format_top, top};
//! let p = [0.01, 0.9, 0.02, 0.07];
//! assert_eq!(top(&p, 2), vec![(1, 0.9), (3, 0.07)]);
//! let names = ["ant", "bee", "cat", "dog"].map(String::from);
//! assert_eq!(format_top(&p, &names, 3), "bee (0.900), dog (0.070), cat (0.020)");
//! ```

pub mod preprocess;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::checkpoint::{self, ModelInfo};
use crate::data::{InputKind, folder};
use crate::nets::{InputError, Network};
use crate::tensor::Tensor;

/// Largest width and height of a picture `predict` decodes: a digit needs 28x28,
/// and a phone photo (4032x3024) still fits. Together with [`MAX_DECODE_BYTES`]
/// this keeps a small file that claims huge dimensions from allocating much.
pub const MAX_SIDE: u32 = 4096;

/// Most memory the decoder may hold at once (a 4096x4096 RGBA picture in 16-bit
/// channels is exactly this).
pub const MAX_DECODE_BYTES: u64 = 128 << 20;

// The fields holding the cause are called `err`, not `source`: thiserror would
// make a `source` the error's source, and `error: {e:#}` in main would print
// the cause twice.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("cannot decode image {path}: {err} (PNG, JPEG and BMP are supported)")]
    Decode {
        path: PathBuf,
        err: image::ImageError,
    },
    #[error(
        "image {path} is too large: expected at most {MAX_SIDE}x{MAX_SIDE} pixels (and {} MiB to decode), found {found}; scale it down, a digit needs only 28x28",
        MAX_DECODE_BYTES >> 20
    )]
    TooLarge { path: PathBuf, found: String },
    #[error("image {path}: {err}")]
    Preprocess {
        path: PathBuf,
        err: preprocess::PreprocessError,
    },
    #[error("{path}: the model takes {takes}, not pictures; give it {what}")]
    NotPictures {
        path: PathBuf,
        takes: String,
        what: String,
    },
}

/// Grey levels (0 black ... 255 white) of the picture at `path`, with any
/// transparency laid over white paper; returns `(levels, width, height)`.
pub fn load_gray(path: &Path) -> Result<(Vec<f32>, usize, usize), ImageError> {
    let bytes = std::fs::read(path).map_err(|err| ImageError::Read {
        path: path.to_owned(),
        err,
    })?;
    load_gray_bytes(path, &bytes)
}

/// Decodes the picture in `bytes`, guessing the format from the content,
/// within [`MAX_SIDE`] and [`MAX_DECODE_BYTES`]; `path` only names it in errors.
pub fn decode_picture(path: &Path, bytes: &[u8]) -> Result<image::DynamicImage, ImageError> {
    let decode_err = |err| ImageError::Decode {
        path: path.to_owned(),
        err,
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|err| ImageError::Read {
                path: path.to_owned(),
                err,
            })
    };
    // Some decoders have limits of their own and would report a huge picture
    // as corrupt: the header's claim is checked first, for one clear message.
    let claimed = reader()?.into_dimensions().ok();
    let too_large = || ImageError::TooLarge {
        path: path.to_owned(),
        found: claimed.map_or_else(|| "more".to_owned(), |(w, h)| format!("{w}x{h}")),
    };
    if claimed.is_some_and(|(w, h)| w > MAX_SIDE || h > MAX_SIDE) {
        return Err(too_large());
    }
    let mut reader = reader()?;
    reader.limits(limits);
    match reader.decode() {
        Ok(img) => Ok(img),
        Err(image::ImageError::Limits(_)) => Err(too_large()),
        Err(err) => Err(decode_err(err)),
    }
}

/// [`load_gray`] on the content of a picture; `path` only names it in errors.
pub fn load_gray_bytes(path: &Path, bytes: &[u8]) -> Result<(Vec<f32>, usize, usize), ImageError> {
    Ok(gray_levels(&decode_picture(path, bytes)?))
}

/// Grey levels of the picture in `bytes`, then [`preprocess::mnist_like`]:
/// what `predict` does to each file before the net sees it.
pub fn preprocess_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<f32>, ImageError> {
    let (gray, w, h) = load_gray_bytes(path, bytes)?;
    preprocess::mnist_like(&gray, w, h).map_err(|err| ImageError::Preprocess {
        path: path.to_owned(),
        err,
    })
}

/// The `k` most probable classes, most probable first.
pub fn top(probabilities: &[f64], k: usize) -> Vec<(usize, f64)> {
    let mut order: Vec<(usize, f64)> = probabilities.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(k);
    order
}

/// `7 (0.981), 1 (0.012), 9 (0.004)`, by class name.
pub fn format_top(probabilities: &[f64], names: &[String], k: usize) -> String {
    top(probabilities, k)
        .iter()
        .map(|&(c, p)| format!("{} ({p:.3})", names.get(c).map_or("?", String::as_str)))
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

/// A loaded model, ready to classify pictures or rows as its training data
/// was prepared.
#[derive(Clone)]
pub struct Classifier {
    pub net: Network<f32>,
    pub info: ModelInfo,
    x: Tensor<f32>,
    /// One example's shape, batch axis first: `[1, C, H, W]`.
    shape: Vec<usize>,
}

/// A table row or a vector that does not fit the model.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("{0}")]
    Row(String),
    #[error("the model takes {0}, not rows")]
    NotRows(String),
    #[error(transparent)]
    Input(#[from] InputError),
}

impl Classifier {
    /// Loads a checkpoint.
    pub fn load(path: &Path) -> Result<Self> {
        let (net, info) = checkpoint::load::<f32>(path)?;
        Self::new(net, info, path)
    }

    /// A classifier of `net`, which `info` describes; `path` names it in errors.
    pub fn new(mut net: Network<f32>, info: ModelInfo, path: &Path) -> Result<Self> {
        net.check_input(&info.input_shape)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut shape = vec![1];
        shape.extend(info.input_shape);
        Ok(Classifier {
            x: Tensor::zeros(&shape),
            net,
            info,
            shape,
        })
    }

    /// The classes' names, in score order.
    pub fn class_names(&self) -> &[String] {
        &self.info.class_names
    }

    /// What the model takes, in words.
    pub fn takes(&self) -> String {
        match &self.info.input {
            InputKind::Digits => "pictures of digits (any size, preprocessed as MNIST)".into(),
            InputKind::Images {
                width,
                height,
                channels,
            } => format!("pictures (resized to {width}x{height}, {channels} channel(s))"),
            InputKind::Vectors => format!("vectors of {} values", self.values()),
            InputKind::Table(t) => {
                let names: Vec<&str> = t.input_columns().map(|c| c.name.as_str()).collect();
                format!("table rows with the columns {}", names.join(", "))
            }
        }
    }

    /// Values per example.
    pub fn values(&self) -> usize {
        self.info.input_shape.iter().product()
    }

    /// Class probabilities for one example as the net takes it
    /// ([`Classifier::values`] values, already prepared); another count is
    /// an error naming both.
    pub fn probabilities(&mut self, x: &[f32]) -> Result<Vec<f64>, InputError> {
        if x.len() == self.values() {
            self.x.resize(&self.shape);
        } else {
            // The net's own check then names what it takes.
            self.x.resize(&[1, x.len()]);
        }
        self.x.data_mut().copy_from_slice(x);
        Ok(softmax(self.net.predict(&self.x, false)?.data()))
    }

    /// A decoded picture, prepared as the model's training pictures were.
    pub fn picture_input(
        &self,
        path: &Path,
        img: &image::DynamicImage,
    ) -> Result<Vec<f32>, ImageError> {
        match &self.info.input {
            InputKind::Digits => {
                let (gray, w, h) = gray_levels(img);
                preprocess::mnist_like(&gray, w, h).map_err(|err| ImageError::Preprocess {
                    path: path.to_owned(),
                    err,
                })
            }
            input @ InputKind::Images { .. } => Ok(folder::to_input(img, input)
                .into_iter()
                .map(|p| f32::from(p) / 255.0)
                .collect()),
            InputKind::Vectors | InputKind::Table(_) => Err(self.not_pictures(path)),
        }
    }

    fn not_pictures(&self, path: &Path) -> ImageError {
        ImageError::NotPictures {
            path: path.to_owned(),
            takes: self.takes(),
            what: match self.info.input {
                InputKind::Table(_) => "CSV files of such rows".into(),
                _ => format!(
                    "files with {} comma-separated numbers per line",
                    self.values()
                ),
            },
        }
    }

    /// Loads, prepares and classifies the picture in `bytes` (`path` names it).
    pub fn classify_picture(&mut self, path: &Path, bytes: &[u8]) -> Result<Vec<f64>, ImageError> {
        if matches!(self.info.input, InputKind::Vectors | InputKind::Table(_)) {
            return Err(self.not_pictures(path));
        }
        let img = decode_picture(path, bytes)?;
        let x = self.picture_input(path, &img)?;
        Ok(self
            .probabilities(&x)
            .expect("a prepared picture has the model's input size"))
    }

    /// Loads, prepares and classifies the picture at `path`.
    pub fn classify_file(&mut self, path: &Path) -> Result<Vec<f64>, ImageError> {
        let bytes = std::fs::read(path).map_err(|err| ImageError::Read {
            path: path.to_owned(),
            err,
        })?;
        self.classify_picture(path, &bytes)
    }

    /// Classifies a raw table row: the values of the model's input columns,
    /// in their order (the row without its label). A vector model takes its
    /// values as numbers.
    pub fn classify_row(&mut self, values: &[&str]) -> Result<Vec<f64>, RowError> {
        let mut x = Vec::with_capacity(self.values());
        match &self.info.input {
            InputKind::Table(t) => t.encode(values, &mut x).map_err(RowError::Row)?,
            InputKind::Vectors => {
                for v in values {
                    x.push(
                        v.trim()
                            .parse::<f32>()
                            .map_err(|_| RowError::Row(format!("{v:?} is not a number")))?,
                    );
                }
            }
            InputKind::Digits | InputKind::Images { .. } => {
                return Err(RowError::NotRows(self.takes()));
            }
        }
        Ok(self.probabilities(&x)?)
    }
}

/// Grey levels (0 black ... 255 white) of a picture, any transparency laid
/// over white paper; `(levels, width, height)`.
fn gray_levels(img: &image::DynamicImage) -> (Vec<f32>, usize, usize) {
    let img = img.to_luma_alpha8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let gray = img
        .pixels()
        .map(|p| {
            let a = f32::from(p[1]) / 255.0;
            f32::from(p[0]) * a + 255.0 * (1.0 - a)
        })
        .collect();
    (gray, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::bmp;

    #[test]
    fn softmax_is_stable_and_sums_to_one() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]);
        assert!((p[0] - 0.5).abs() < 1e-12 && p[2] < 1e-300);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> Vec<u8> {
        let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn error(name: &str, bytes: &[u8]) -> ImageError {
        let e = preprocess_bytes(Path::new(name), bytes).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
        e
    }

    #[test]
    fn a_small_picture_is_preprocessed() {
        let bar = png(10, 12, |x, y| {
            if x == 5 && (2..10).contains(&y) {
                0
            } else {
                255
            }
        });
        let x = preprocess_bytes(Path::new("bar.png"), &bar).unwrap();
        assert_eq!(x.len(), preprocess::SIDE * preprocess::SIDE);
        // The same picture as a 3x3 BMP decodes too.
        let (gray, w, h) = load_gray_bytes(Path::new("white.bmp"), &bmp(3, 3, 36)).unwrap();
        assert_eq!((w, h), (3, 3));
        assert!(gray.iter().all(|&g| g == 255.0));
    }

    #[test]
    fn bad_pictures_are_errors_naming_the_file() {
        let e = error("notes.txt", b"hello, not a picture");
        assert!(matches!(e, ImageError::Decode { .. }), "{e:?}");
        assert!(
            e.to_string().contains("PNG, JPEG and BMP are supported"),
            "{e}"
        );

        // Huge dimensions in a 54-byte file: refused before any pixel buffer.
        let e = error("huge.bmp", &bmp(20_000, 20_000, 0));
        assert!(matches!(e, ImageError::TooLarge { .. }), "{e:?}");
        assert!(e.to_string().contains("found 20000x20000"), "{e}");
        // The BMP decoder refuses this one itself, as corrupt.
        let e = error("huger.bmp", &bmp(100_000, 100_000, 0));
        assert!(matches!(e, ImageError::Decode { .. }), "{e:?}");
        let e = error("wide.bmp", &bmp(MAX_SIDE as i32 + 1, 1, 0));
        assert!(matches!(e, ImageError::TooLarge { .. }), "{e:?}");

        let e = error("empty.bmp", &bmp(0, 0, 0));
        assert!(
            matches!(
                e,
                ImageError::Decode { .. }
                    | ImageError::Preprocess {
                        err: preprocess::PreprocessError::Empty { .. },
                        ..
                    }
            ),
            "{e:?}"
        );

        let bar = png(10, 12, |x, _| if x == 5 { 0 } else { 255 });
        let e = error("cut.png", &bar[..bar.len() / 2]);
        assert!(matches!(e, ImageError::Decode { .. }), "{e:?}");

        let e = error("blank.png", &png(8, 8, |_, _| 200));
        assert!(
            matches!(
                e,
                ImageError::Preprocess {
                    err: preprocess::PreprocessError::Blank { .. },
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn ties_keep_the_lower_class_first() {
        assert_eq!(
            top(&[0.25, 0.5, 0.25], 3),
            vec![(1, 0.5), (0, 0.25), (2, 0.25)]
        );
    }
}
