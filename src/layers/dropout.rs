//! Dropout: during training each unit is kept with probability `1 - ratio`
//! and dropped (set to 0) otherwise; backward passes `dout` through the same
//! mask. Two ways to keep train and inference on the same scale
//! ([`DropoutScaling`]):
//!
//! - *inverted* (the default, as PyTorch): kept units are multiplied by
//!   `1 / (1 - ratio)` in training, and inference is the identity, free of
//!   the training setting.
//! - *textbook* (`common/layers.py`): kept units pass unscaled in training,
//!   and inference multiplies everything by `1 - ratio`.
//!
//! Both give the same expected activations, but not the same training: in the
//! textbook's form every hidden layer sees `1 - ratio` of the signal, so a deep
//! net learns as if its weights and learning rate were smaller. On the
//! textbook's overfitting setup (6x100, 300 images, ratio 0.2, 301 epochs) the
//! textbook's form ends at train 0.71 / test 0.59, inverted at 0.97 / 0.75.
//!
//! ```
//! use backprop::layers::{Dropout, Layer};
//! use backprop::tensor::Tensor;
//! let mut d = Dropout::<f64>::new(0.5, 1);
//! let x = Tensor::from_vec(&[1, 4], vec![1.0; 4]).unwrap();
//! assert_eq!(d.forward(&x, false).data(), &[1.0; 4]); // inference: identity
//! assert!(d.forward(&x, true).data().iter().all(|&v| v == 0.0 || v == 2.0));
//! ```

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Layer, Scratch};
use crate::nets::LayerSpec;
use crate::tensor::{Float, Tensor};

/// Where Dropout puts its `1 - ratio` (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropoutScaling {
    /// Kept units times `1 / (1 - ratio)` in training; inference unchanged.
    #[default]
    Inverted,
    /// Kept units unscaled in training; inference times `1 - ratio`.
    Textbook,
}

impl DropoutScaling {
    pub fn is_inverted(&self) -> bool {
        *self == DropoutScaling::Inverted
    }
}

impl FromStr for DropoutScaling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "inverted" => Ok(DropoutScaling::Inverted),
            "textbook" => Ok(DropoutScaling::Textbook),
            _ => Err(format!(
                "unknown dropout scaling '{s}': use inverted or textbook"
            )),
        }
    }
}

impl fmt::Display for DropoutScaling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropoutScaling::Inverted => "inverted",
            DropoutScaling::Textbook => "textbook",
        })
    }
}

/// Why `ratio` cannot be a dropout ratio, if it cannot (the nets' specs
/// check theirs with this before building).
pub fn check_dropout_ratio(ratio: f64) -> Result<(), String> {
    if (0.0..1.0).contains(&ratio) {
        Ok(())
    } else {
        Err(format!(
            "the dropout ratio must be at least 0 and below 1, got {ratio}"
        ))
    }
}

#[derive(Clone)]
pub struct Dropout<T> {
    pub ratio: f64,
    pub scaling: DropoutScaling,
    rng: ChaCha8Rng,
    /// `0` for dropped units, the training scale for kept ones (inference: the
    /// inference scale everywhere): backward needs it.
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
        if let Err(e) = check_dropout_ratio(ratio) {
            panic!("Dropout: {e}");
        }
        Dropout {
            ratio,
            scaling: DropoutScaling::Inverted,
            rng: ChaCha8Rng::seed_from_u64(seed),
            mask: Tensor::default(),
            fixed: false,
            out: Tensor::default(),
            dx: Tensor::default(),
        }
    }

    /// The same, scaled the textbook's way or the inverted way.
    pub fn with_scaling(ratio: f64, seed: u64, scaling: DropoutScaling) -> Self {
        Dropout {
            scaling,
            ..Dropout::new(ratio, seed)
        }
    }

    /// The factor on kept units in training.
    fn train_scale(&self) -> T {
        match self.scaling {
            DropoutScaling::Inverted => T::of(1.0 / (1.0 - self.ratio)),
            DropoutScaling::Textbook => T::one(),
        }
    }

    /// The factor on every unit at inference.
    fn inference_scale(&self) -> T {
        match self.scaling {
            DropoutScaling::Inverted => T::one(),
            DropoutScaling::Textbook => T::of(1.0 - self.ratio),
        }
    }

    /// Uses `keep` (1 = keep, 0 = drop, per element) as the mask of every
    /// training-mode forward from now on.
    pub fn set_fixed_mask(&mut self, keep: &Tensor<T>) {
        let scale = self.train_scale();
        self.mask.copy_from(keep);
        for m in self.mask.data_mut() {
            *m = if *m != T::zero() { scale } else { T::zero() };
        }
        self.fixed = true;
    }
}

/// `out = scale · x`; a copy where the scale is 1 (inverted Dropout's
/// inference).
fn scaled<T: Float>(x: &Tensor<T>, scale: T, out: &mut Tensor<T>) {
    out.copy_from(x);
    if scale != T::one() {
        for o in out.data_mut() {
            *o *= scale;
        }
    }
}

impl<T: Float> Layer<T> for Dropout<T> {
    fn name(&self) -> &'static str {
        "Dropout"
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::Dropout {
            dropout_ratio: self.ratio,
            scaling: self.scaling,
        })
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>, _scratch: &mut Scratch<T>) {
        scaled(x, self.inference_scale(), out);
    }

    fn has_infer(&self) -> bool {
        true
    }

    fn forward(&mut self, x: &Tensor<T>, train: bool) -> &Tensor<T> {
        if !train || self.ratio == 0.0 {
            let scale = self.inference_scale();
            self.mask.resize(x.shape());
            self.mask.fill(scale);
            scaled(x, scale, &mut self.out);
            return &self.out;
        }
        self.out.copy_from(x);
        if self.fixed {
            assert_eq!(
                self.mask.shape(),
                x.shape(),
                "Dropout forward: fixed mask {:?}, input {:?}",
                self.mask.shape(),
                x.shape()
            );
        } else {
            let scale = self.train_scale();
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
    use super::super::infers_as_forward;
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
        for scaling in [DropoutScaling::Inverted, DropoutScaling::Textbook] {
            let mut d = Dropout::with_scaling(0.4, 0, scaling);
            d.set_fixed_mask(&keep);
            let report = check_layer(&mut d, &x, 42);
            assert!(report.passed(1e-6), "{scaling}: {report}");
        }
    }

    #[test]
    fn textbook_scaling_keeps_units_whole_and_scales_inference() {
        let mut d = Dropout::<f64>::with_scaling(0.25, 3, DropoutScaling::Textbook);
        let x = Tensor::from_vec(&[1, 1000], vec![2.0; 1000]).unwrap();
        let y = d.forward(&x, true).data().to_vec();
        assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
        let kept = y.iter().filter(|&&v| v == 2.0).count() as f64 / 1000.0;
        assert!((kept - 0.75).abs() < 0.05, "kept {kept}");
        // Inference: every unit times 1 - ratio, the training mean.
        assert_eq!(d.forward(&x, false).data(), &[1.5; 1000][..]);
        assert_eq!(d.backward(&x).data(), &[1.5; 1000][..]);
        // Inverted: inference is the identity.
        let mut inv = Dropout::<f64>::new(0.25, 3);
        assert_eq!(inv.forward(&x, false).data(), x.data());
        // And over `&self`, the same.
        let x = random_tensor(&[3, 7], 1.0, 5);
        assert!(infers_as_forward(&mut d, &x, &mut Scratch::default()));
        assert!(infers_as_forward(&mut inv, &x, &mut Scratch::default()));
    }
}
