//! Sigmoid: `y = 1 / (1 + exp(-x))`, `dx = dout * y * (1 - y)`.

use super::{Layer, Scratch, activation_backward, activation_forward};
use crate::nets::LayerSpec;
use crate::tensor::{Float, Tensor};

#[derive(Clone, Default)]
pub struct Sigmoid<T> {
    /// `y`: the derivative is `y (1 - y)`, so no need to keep `x`.
    out: Tensor<T>,
    dx: Tensor<T>,
}

impl<T: Float> Sigmoid<T> {
    pub fn new() -> Self {
        Sigmoid {
            out: Tensor::default(),
            dx: Tensor::default(),
        }
    }
}

/// `1 / (1 + exp(-v))`.
fn sigmoid<T: Float>(v: T) -> T {
    T::one() / (T::one() + (-v).exp())
}

impl<T: Float> Layer<T> for Sigmoid<T> {
    fn name(&self) -> &'static str {
        "Sigmoid"
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::Sigmoid {})
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>, _scratch: &mut Scratch<T>) {
        activation_forward(x, out, sigmoid);
    }

    fn has_infer(&self) -> bool {
        true
    }

    fn forward(&mut self, x: &Tensor<T>, _train: bool) -> &Tensor<T> {
        activation_forward(x, &mut self.out, sigmoid);
        &self.out
    }

    fn backward(&mut self, dout: &Tensor<T>) -> &Tensor<T> {
        activation_backward(dout, &self.out, &mut self.dx, |y| y * (T::one() - y));
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
    use crate::gradcheck::{check_layer, random_tensor};

    #[test]
    fn forward_values() {
        let mut s = Sigmoid::<f64>::new();
        let x = Tensor::from_vec(&[1, 3], vec![0.0, 50.0, -50.0]).unwrap();
        let y = s.forward(&x, true).data().to_vec();
        assert_eq!(y[0], 0.5);
        assert!((y[1] - 1.0).abs() < 1e-15 && y[2] > 0.0 && y[2] < 1e-20);
    }

    #[test]
    fn gradient_check() {
        let x = random_tensor(&[4, 6], 2.0, 2);
        let report = check_layer(&mut Sigmoid::new(), &x, 8);
        assert!(report.passed(1e-6), "{report}");
    }
}
