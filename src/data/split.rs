//! Held-out splits: a test set for data that has none (`--test-split`), a
//! validation set out of the training set (`--validation`). Each class gives
//! the same share, drawn by a seeded generator, so a split keeps the class
//! proportions and is the same on every run with the same seed (and so on
//! `--resume`).
//!
//! ```
//! use backprop::data::split::stratified;
//! let labels = [0u16, 0, 0, 0, 0, 1, 1, 1, 1, 1];
//! let (kept, held) = stratified(&labels, 2, 0.2, 7).unwrap();
//! assert_eq!((kept.len(), held.len()), (8, 2));
//! assert_eq!(held.iter().filter(|&&i| labels[i] == 0).count(), 1);
//! ```

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{DataError, Dataset};

/// The indices of `labels` as (kept, held out): of each class's `n` examples,
/// `round(fraction · n)` are held out (at least 1, and at least 1 kept), drawn
/// with a generator seeded with `seed`; both lists in the original order. A
/// class with a single example cannot be split: `Err((class, count))`.
pub fn stratified(
    labels: &[u16],
    classes: usize,
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), (usize, usize)> {
    let mut by_class = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[usize::from(l)].push(i);
    }
    // A stream of its own: the same seed also draws weights and batches.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5b11_7000_0000_0000);
    let mut held = Vec::new();
    for (class, mut members) in by_class.into_iter().enumerate() {
        let n = members.len();
        if n == 0 || fraction <= 0.0 {
            continue;
        }
        if n < 2 {
            return Err((class, n));
        }
        let k = ((fraction * n as f64).round() as usize).clamp(1, n - 1);
        members.shuffle(&mut rng);
        held.extend_from_slice(&members[..k]);
    }
    held.sort_unstable();
    let mut is_held = vec![false; labels.len()];
    for &i in &held {
        is_held[i] = true;
    }
    let kept = (0..labels.len()).filter(|&i| !is_held[i]).collect();
    Ok((kept, held))
}

impl Dataset {
    /// This split as (kept, held out), by [`stratified`]; `what` ("the test
    /// set") and `flag` ("test-split") name the choice in the error.
    pub fn hold_out(
        &self,
        fraction: f64,
        seed: u64,
        what: &str,
        flag: &'static str,
    ) -> Result<(Dataset, Dataset), DataError> {
        let (kept, held) = stratified(&self.labels, self.classes(), fraction, seed).map_err(
            |(class, count)| DataError::TooFewToSplit {
                source_name: self.name.clone(),
                class: self.class_names[class].clone(),
                count,
                what: format!("{}% as {what}", fraction * 100.0),
                flag,
            },
        )?;
        Ok((self.subset(&kept), self.subset(&held)))
    }
}

/// Checks a share given on the command line.
pub fn check_fraction(fraction: f64, flag: &str) -> Result<(), String> {
    if (0.0..1.0).contains(&fraction) {
        Ok(())
    } else {
        Err(format!(
            "--{flag} takes a share of each class from 0 to below 1, such as 0.2; got {fraction}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_gives_its_share_and_the_same_seed_the_same_split() {
        let labels: Vec<u16> = (0..1000)
            .map(|i| (i % 3) as u16 + u16::from(i % 7 == 0))
            .collect();
        let (kept, held) = stratified(&labels, 4, 0.2, 1).unwrap();
        assert_eq!(kept.len() + held.len(), labels.len());
        for class in 0..4u16 {
            let n = labels.iter().filter(|&&l| l == class).count();
            let h = held.iter().filter(|&&i| labels[i] == class).count();
            assert_eq!(h, (0.2 * n as f64).round() as usize, "class {class}");
        }
        assert!(kept.windows(2).all(|w| w[0] < w[1]) && held.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(stratified(&labels, 4, 0.2, 1).unwrap().1, held);
        assert_ne!(stratified(&labels, 4, 0.2, 2).unwrap().1, held);
    }

    #[test]
    fn small_classes_keep_one_on_each_side_and_a_single_example_is_an_error() {
        let labels = [0u16, 0, 1, 1, 1, 2];
        assert_eq!(stratified(&labels, 3, 0.01, 0), Err((2, 1)));
        let (kept, held) = stratified(&labels[..5], 2, 0.9, 0).unwrap();
        assert_eq!((kept.len(), held.len()), (2, 3));
        let (kept, held) = stratified(&labels, 3, 0.0, 0).unwrap();
        assert_eq!((kept.len(), held.len()), (6, 0));
    }
}
