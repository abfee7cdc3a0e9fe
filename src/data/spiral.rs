//! The spiral toy data set (as in Stanford's cs231n notes): interleaved 2-D spiral arms,
//! one class per arm.
//!
//! It is generated, so it works offline and in tests, and it is not linearly separable, so
//! it shows what hidden layers buy. With the defaults below, a 2 -> 100 -> 100 -> 3 ReLU MLP
//! trained by plain SGD (learning rate 0.1, batch 32) reaches about 99% test accuracy in 20
//! epochs.

use std::f64::consts::TAU;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::{Dataset, Features, InputKind, Split};

/// Number of arms (classes) of the default split.
pub const CLASSES: usize = 3;
/// Training points per class of the default split.
pub const TRAIN_PER_CLASS: usize = 1000;
/// Test points per class of the default split.
pub const TEST_PER_CLASS: usize = 300;
/// Standard deviation of the angle noise, in radians, of the default split. The arms are
/// 2*pi/3 apart, so this blurs them without making them overlap.
pub const NOISE: f64 = 0.2;
/// How far each arm winds from the centre to the rim, in radians.
const TURN: f64 = 4.0;

/// Generates `points_per_class` points on each of `classes` spiral arms, shuffled so that
/// any prefix (see [`Dataset::take`]) has all classes. Point `i` of an arm lies at radius
/// `r = i / (points_per_class - 1)` and angle `class * 2*pi/classes + TURN * r`, plus
/// Gaussian noise of standard deviation `noise` on the angle; coordinates are in `[-1, 1]`.
/// The same arguments always give the same data.
///
/// Panics if `classes` is 0 or above 256 (labels are bytes).
pub fn generate(classes: usize, points_per_class: usize, noise: f64, seed: u64) -> Dataset {
    assert!(
        (1..=256).contains(&classes),
        "spiral: classes must be between 1 and 256, got {classes}"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let steps = points_per_class.saturating_sub(1).max(1) as f64;
    let mut points: Vec<([f32; 2], u8)> = (0..classes)
        .flat_map(|c| (0..points_per_class).map(move |i| (c, i)))
        .map(|(c, i)| {
            let r = i as f64 / steps;
            let jitter: f64 = rng.sample(StandardNormal);
            let theta = c as f64 * TAU / classes as f64 + TURN * r + noise * jitter;
            (
                [(r * theta.sin()) as f32, (r * theta.cos()) as f32],
                c as u8,
            )
        })
        .collect();
    points.shuffle(&mut rng);
    Dataset {
        name: "spiral".into(),
        features: Features::Dense(points.iter().flat_map(|(xy, _)| *xy).collect()),
        labels: points.iter().map(|&(_, c)| u16::from(c)).collect(),
        class_names: super::numbered_classes(classes),
        shape: [1, 1, 2],
        input: InputKind::Vectors,
    }
}

/// The default train and test splits. They are drawn independently, so test accuracy
/// measures generalisation rather than memory.
pub fn split(seed: u64) -> Split {
    Split::new(
        generate(CLASSES, TRAIN_PER_CLASS, NOISE, seed),
        generate(CLASSES, TEST_PER_CLASS, NOISE, test_seed(seed)),
    )
}

/// Derives the test split's seed; the odd constant (2^64 / golden ratio) keeps seeds a user
/// might pick next to each other (0, 1, 2, ...) from reusing one another's test data.
fn test_seed(seed: u64) -> u64 {
    seed.wrapping_add(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coords(d: &Dataset) -> &[f32] {
        match &d.features {
            Features::Dense(v) => v,
            Features::Pixels(_) => panic!("spiral features must be dense"),
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        assert_eq!(generate(3, 50, 0.2, 7), generate(3, 50, 0.2, 7));
        assert_ne!(
            coords(&generate(3, 50, 0.2, 7)),
            coords(&generate(3, 50, 0.2, 8))
        );
    }

    #[test]
    fn shapes_balance_and_range() {
        let d = generate(4, 250, 0.2, 1);
        assert_eq!(
            (d.len(), d.dim(), d.classes(), d.shape),
            (1000, 2, 4, [1, 1, 2])
        );
        assert_eq!(coords(&d).len(), 2000);
        let mut counts = [0usize; 4];
        for &l in &d.labels {
            counts[usize::from(l)] += 1;
        }
        assert_eq!(counts, [250; 4]);
        assert!(coords(&d).iter().all(|v| v.abs() <= 1.0));
        // Shuffled: a short prefix already holds every class.
        let mut seen = [false; 4];
        for &l in &d.take(40).labels {
            seen[usize::from(l)] = true;
        }
        assert_eq!(seen, [true; 4]);
    }

    #[test]
    fn default_split_draws_test_independently() {
        let s = split(42);
        assert_eq!((s.train.len(), s.test.len()), (3000, 900));
        assert_ne!(coords(&s.train)[..20], coords(&s.test)[..20]);
        assert_eq!(split(42), s);
    }
}
