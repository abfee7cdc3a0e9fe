//! ReLU: `y = max(0, x)`, `dx = dout` where `x > 0`, else 0.
//!
//! The textbook keeps a boolean `mask = (x <= 0)`; `y > 0` is the same mask,
//! so the output is the only cache.

use super::{Layer, Scratch, activation_backward, activation_forward};
use crate::nets::LayerSpec;
use crate::tensor::{Float, Tensor};

#[derive(Clone, Default)]
pub struct Relu<T> {
    /// `y`, whose sign is the mask backward needs.
    out: Tensor<T>,
    dx: Tensor<T>,
}

impl<T: Float> Relu<T> {
    pub fn new() -> Self {
        Relu {
            out: Tensor::default(),
            dx: Tensor::default(),
        }
    }
}

/// `max(0, v)`.
pub(crate) fn relu<T: Float>(v: T) -> T {
    if v > T::zero() { v } else { T::zero() }
}

/// The derivative by the output `y`: 1 where `y > 0`, else 0.
pub(crate) fn relu_derivative<T: Float>(y: T) -> T {
    if y > T::zero() { T::one() } else { T::zero() }
}

impl<T: Float> Layer<T> for Relu<T> {
    fn name(&self) -> &'static str {
        "Relu"
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::Relu {})
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>, _scratch: &mut Scratch<T>) {
        activation_forward(x, out, relu);
    }

    fn has_infer(&self) -> bool {
        true
    }

    fn forward(&mut self, x: &Tensor<T>, _train: bool) -> &Tensor<T> {
        activation_forward(x, &mut self.out, relu);
        &self.out
    }

    fn backward(&mut self, dout: &Tensor<T>) -> &Tensor<T> {
        activation_backward(dout, &self.out, &mut self.dx, relu_derivative);
        &self.dx
    }

    fn output(&self) -> &Tensor<T> {
        &self.out
    }

    fn grad_input(&self) -> &Tensor<T> {
        &self.dx
    }

    fn box_clone(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check_layer, inputs_away_from_zero};

    #[test]
    fn forward_and_mask() {
        let mut relu = Relu::<f64>::new();
        let x = Tensor::from_vec(&[1, 4], vec![-1.0, 0.5, 0.0, 2.0]).unwrap();
        assert_eq!(relu.forward(&x, true).data(), &[0.0, 0.5, 0.0, 2.0]);
        let dout = Tensor::from_vec(&[1, 4], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(relu.backward(&dout).data(), &[0.0, 2.0, 0.0, 4.0]);
    }

    #[test]
    fn gradient_check() {
        // The kink at 0 has no derivative; keep inputs away from it.
        let x = inputs_away_from_zero(&[4, 6], 0.05, 1);
        let report = check_layer(&mut Relu::new(), &x, 7);
        assert!(report.passed(1e-6), "{report}");
    }
}
