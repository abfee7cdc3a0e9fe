//! Pictures for a [`Classifier`]: decoding PNG, JPEG and BMP within limits,
//! and preparing a picture as the model's training pictures were (a digit's
//! as MNIST's, [`preprocess::mnist_like`]; a folder's resized and converted
//! as [`folder::to_input`] did).

use std::path::{Path, PathBuf};

use super::{Classifier, Prediction, preprocess};
use crate::data::{InputKind, folder};

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

impl Classifier {
    /// The class of a decoded picture, prepared as the model's training
    /// pictures were, the way `backprop predict` prepares a file.
    pub fn predict_image(&self, img: &image::DynamicImage) -> Result<Prediction<'_>, ImageError> {
        let path = Path::new("the picture");
        let x = self.picture_input(path, img)?;
        Ok(self.prediction(
            self.probabilities(&x)
                .expect("a prepared picture fits the model"),
        ))
    }

    /// [`Classifier::predict_image`] on the picture file at `path`.
    pub fn predict_image_file(&self, path: impl AsRef<Path>) -> Result<Prediction<'_>, ImageError> {
        Ok(self.prediction(self.classify_file(path.as_ref())?))
    }

    /// A decoded picture, prepared as the model's training pictures were.
    pub fn picture_input(
        &self,
        path: &Path,
        img: &image::DynamicImage,
    ) -> Result<Vec<f32>, ImageError> {
        match &self.info().input {
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
            what: match self.info().input {
                InputKind::Table(_) => "CSV files of such rows".into(),
                _ => format!(
                    "files with {} comma-separated numbers per line",
                    self.values()
                ),
            },
        }
    }

    /// Loads, prepares and classifies the picture in `bytes` (`path` names it).
    pub fn classify_picture(&self, path: &Path, bytes: &[u8]) -> Result<Vec<f64>, ImageError> {
        if matches!(self.info().input, InputKind::Vectors | InputKind::Table(_)) {
            return Err(self.not_pictures(path));
        }
        let img = decode_picture(path, bytes)?;
        let x = self.picture_input(path, &img)?;
        Ok(self
            .probabilities(&x)
            .expect("a prepared picture has the model's input size"))
    }

    /// Loads, prepares and classifies the picture at `path`.
    pub fn classify_file(&self, path: &Path) -> Result<Vec<f64>, ImageError> {
        let bytes = std::fs::read(path).map_err(|err| ImageError::Read {
            path: path.to_owned(),
            err,
        })?;
        self.classify_picture(path, &bytes)
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
}
