//! The built-in MNIST sample: the first 10,000 training digits of MNIST and
//! its whole test set of 10,000, compiled into the library, so that
//! `backprop train` runs on a machine without the data set and without a
//! network, and its test accuracy is MNIST's own.
//!
//! The whole test set rather than a slice of it, because MNIST's test digits
//! are not in random order: the first 4,000 are the hardest (a net trained on
//! the sample scores 0.937, 0.939, 0.951, 0.964 and 0.960 on the five slices
//! of 2,000, and 0.950 on all 10,000), so a slice would report a figure that
//! is not comparable with anyone else's.
//!
//! The files are `assets/mnist-sample/*.gz`, cut from the four standard files
//! by `assets/mnist-sample/rebuild.py`; that folder's README says where they
//! come from and under which terms. [`super::load`] falls back to the sample
//! for `mnist` when [`super::LoadOptions::sample_fallback`] is set and the
//! full set can be neither found nor downloaded; `mnist-sample` names it on
//! purpose.
//!
//! ```
//! let split = backprop::data::sample::split().unwrap();
//! assert_eq!((split.train.len(), split.test.len()), (10_000, 10_000));
//! assert_eq!(split.train.name, "mnist-sample");
//! ```

use std::path::{Path, PathBuf};

use super::{DataError, DatasetName, Split, idx, sources};

/// Training examples in the sample.
pub const TRAIN: usize = 10_000;
/// Test examples in the sample: all of MNIST's.
pub const TEST: usize = 10_000;

/// (file name, gzipped IDX bytes), as in the standard set's folder.
const FILES: [(&str, &[u8]); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        include_bytes!("../../assets/mnist-sample/train-images-idx3-ubyte.gz"),
    ),
    (
        "train-labels-idx1-ubyte.gz",
        include_bytes!("../../assets/mnist-sample/train-labels-idx1-ubyte.gz"),
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        include_bytes!("../../assets/mnist-sample/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        include_bytes!("../../assets/mnist-sample/t10k-labels-idx1-ubyte.gz"),
    ),
];

/// The one line a command prints when it fell back to the sample; `task` is
/// what it does with it ("training on", "testing on").
pub fn notice(task: &str) -> String {
    format!(
        "MNIST not found and could not be downloaded: {task} the built-in sample of 10,000 \
         training digits (and MNIST's 10,000 test digits); pass --data DIR or set BACKPROP_DATA \
         for the full 60,000"
    )
}

/// Decodes the sample's training and test splits (about 20 ms).
pub fn split() -> Result<Split, DataError> {
    // Errors name the files as they are in the repository.
    let file = |i: usize| -> (PathBuf, &'static [u8]) {
        let (name, bytes) = FILES[i];
        (Path::new("<built-in sample>").join(name), bytes)
    };
    let part = |images: usize, labels: usize| {
        let ((ip, ib), (lp, lb)) = (file(images), file(labels));
        let (img, lab) = idx::parse_labelled((&ip, ib), (&lp, lb), 10)?;
        Ok::<_, DataError>(sources::ten_class_images(
            DatasetName::MnistSample,
            img,
            lab,
        ))
    };
    Ok(Split::new(part(0, 1)?, part(2, 3)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Features;

    #[test]
    fn the_sample_is_ten_thousand_and_two_thousand_mnist_digits() {
        let split = split().unwrap();
        for (d, n) in [(&split.train, TRAIN), (&split.test, TEST)] {
            assert_eq!((d.len(), d.shape, d.classes()), (n, [1, 28, 28], 10));
            assert_eq!(d.name, "mnist-sample");
            // Every digit is there, in roughly MNIST's proportions (9 to 11 %).
            for class in 0..10u16 {
                let count = d.labels.iter().filter(|&&l| l == class).count();
                assert!(
                    (n * 8 / 100..n * 12 / 100).contains(&count),
                    "{count} of class {class}"
                );
            }
        }
        // MNIST's first training digit is a 5, its first test digit a 7.
        assert_eq!((split.train.labels[0], split.test.labels[0]), (5, 7));
        let Features::Pixels(px) = &split.train.features else {
            panic!("the sample holds pixels")
        };
        let ink = px[..784].iter().filter(|&&p| p > 0).count();
        assert!(
            (100..300).contains(&ink),
            "{ink} inked pixels in the first digit"
        );
    }

    /// With `BACKPROP_DATA` set: the sample is exactly the first 10,000
    /// training examples of the full set and all its test examples.
    #[test]
    fn the_sample_is_the_head_of_the_full_set() {
        let Some(root) = std::env::var_os("BACKPROP_DATA").filter(|v| !v.is_empty()) else {
            eprintln!("skipping the_sample_is_the_head_of_the_full_set: BACKPROP_DATA is not set");
            return;
        };
        let full =
            sources::read_split(DatasetName::Mnist, &PathBuf::from(root).join("mnist")).unwrap();
        let sample = split().unwrap();
        for (s, f, n) in [
            (&sample.train, &full.train, TRAIN),
            (&sample.test, &full.test, TEST),
        ] {
            let head = f.take(n);
            assert_eq!(s.labels, head.labels);
            assert_eq!(s.features, head.features);
        }
    }
}
