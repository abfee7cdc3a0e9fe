//! Dropout: during training each unit is kept with probability `1 - ratio`
//! and dropped (set to 0) otherwise; backward passes `dout` through the same
//! mask. At inference the layer does nothing.
//!
//! Scaling: *inverted* dropout. Kept units are multiplied by `1 / (1 - ratio)`
//! during training, so the expected activation is unchanged and inference is
//! the identity. (The textbook instead multiplies by `1 - ratio` at inference;
//! both give the same expected values, and inverted dropout keeps inference
//! free of the training setting.)
//!
//! ```
//! use backprop::layers::{Dropout, Layer};
//! use backprop::tensor::Tensor;
//! let mut d = Dropout::<f64>::new(0.5, 1);
//! let x = Tensor::from_vec(&[1, 4], vec![1.0; 4]).unwrap();
//! assert_eq!(d.forward(&x, false).data(), &[1.0; 4]); // inference: identity
//! assert!(d.forward(&x, true).data().iter().all(|&v| v == 0.0 || v == 2.0));
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Layer;
use crate::tensor::{Float, Tensor};

#[derive(Clone)]
pub struct Dropout<T> {
    pub ratio: f64,
    rng: ChaCha8Rng,
    /// `0` for dropped units, `1 / (1 - ratio)` for kept ones: backward needs it.
    mask: Tensor<T>,
    /// A mask set by [`Dropout::set_fixed_mask`], used instead of drawing one
    /// (for gradient checks).
    fixed: bool,
    out: Tensor<T>,
    dx: Tensor<T>,
}

impl<T: Float> Dropout<T> {
    /// Drops each unit with probability `ratio` (in `[0, 1)`), drawing masks
    /// from a generator seeded with `seed`.
    pub fn new(ratio: f64, seed: u64) -> Self {
        assert!(
            (0.0..1.0).contains(&ratio),
            "Dropout: ratio must be in [0, 1), got {ratio}"
        );
        Dropout {
            ratio,
            rng: ChaCha8Rng::seed_from_u64(seed),
            mask: Tensor::default(),
            fixed: false,
            out: Tensor::default(),
            dx: Tensor::default(),
        }
    }

    /// Uses `keep` (1 = keep, 0 = drop, per element) as the mask of every
    /// training-mode forward from now on.
    pub fn set_fixed_mask(&mut self, keep: &Tensor<T>) {
        let scale = T::of(1.0 / (1.0 - self.ratio));
        self.mask.copy_from(keep);
        for m in self.mask.data_mut() {
            *m = if *m != T::zero() { scale } else { T::zero() };
        }
        self.fixed = true;
    }
}

impl<T: Float> Layer<T> for Dropout<T> {
    fn name(&self) -> &'static str {
        "Dropout"
    }

    fn forward(&mut self, x: &Tensor<T>, train: bool) -> &Tensor<T> {
        self.out.copy_from(x);
        if !train || self.ratio == 0.0 {
            self.mask.resize(x.shape());
            self.mask.fill(T::one());
            return &self.out;
        }
        if self.fixed {
            assert_eq!(
                self.mask.shape(),
                x.shape(),
                "Dropout forward: fixed mask {:?}, input {:?}",
                self.mask.shape(),
                x.shape()
            );
        } else {
            let scale = T::of(1.0 / (1.0 - self.ratio));
            self.mask.resize(x.shape());
            for m in self.mask.data_mut() {
                *m = if self.rng.random::<f64>() >= self.ratio {
                    scale
                } else {
                    T::zero()
                };
            }
        }
        for (o, &m) in self.out.data_mut().iter_mut().zip(self.mask.data()) {
            *o *= m;
        }
        &self.out
    }

    fn backward(&mut self, dout: &Tensor<T>) -> &Tensor<T> {
        assert_eq!(
            dout.shape(),
            self.mask.shape(),
            "Dropout backward: dout {:?}, mask {:?}",
            dout.shape(),
            self.mask.shape()
        );
        self.dx.resize(dout.shape());
        for ((d, &g), &m) in self
            .dx
            .data_mut()
            .iter_mut()
            .zip(dout.data())
            .zip(self.mask.data())
        {
            *d = g * m;
        }
        &self.dx
    }

    fn output(&self) -> &Tensor<T> {
        &self.out
    }

    fn grad_input(&self) -> &Tensor<T> {
        &self.dx
    }

    fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    fn rng(&self) -> Option<&ChaCha8Rng> {
        Some(&self.rng)
    }

    fn set_rng(&mut self, rng: ChaCha8Rng) {
        self.rng = rng;
    }

    fn box_clone(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check_layer, random_tensor};

    #[test]
    fn drops_about_ratio_and_keeps_the_mean() {
        let mut d = Dropout::<f64>::new(0.3, 7);
        let x = Tensor::from_vec(&[100, 100], vec![1.0; 10_000]).unwrap();
        let y = d.forward(&x, true).data().to_vec();
        let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / 1e4;
        let mean = y.iter().sum::<f64>() / 1e4;
        assert!((dropped - 0.3).abs() < 0.02, "dropped {dropped}");
        assert!((mean - 1.0).abs() < 0.03, "mean {mean}");
        // Backward routes through the same mask.
        let dx = d.backward(&x).data().to_vec();
        assert_eq!(dx, y);
    }

    #[test]
    fn gradient_check_with_a_fixed_mask() {
        let x = random_tensor(&[4, 5], 1.0, 40);
        let mut keep = random_tensor(&[4, 5], 1.0, 41);
        for v in keep.data_mut() {
            *v = if *v > 0.0 { 1.0 } else { 0.0 };
        }
        let mut d = Dropout::new(0.4, 0);
        d.set_fixed_mask(&keep);
        let report = check_layer(&mut d, &x, 42);
        assert!(report.passed(1e-6), "{report}");
    }
}
