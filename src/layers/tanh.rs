//! Tanh: `y = tanh(x)`, `dx = dout * (1 - y^2)`.

use super::{Layer, Scratch, activation_backward, activation_forward};
use crate::nets::LayerSpec;
use crate::tensor::{Float, Tensor};

#[derive(Clone, Default)]
pub struct Tanh<T> {
    /// `y`: the derivative is `1 - y^2`.
    out: Tensor<T>,
    dx: Tensor<T>,
}

impl<T: Float> Tanh<T> {
    pub fn new() -> Self {
        Tanh {
            out: Tensor::default(),
            dx: Tensor::default(),
        }
    }
}

impl<T: Float> Layer<T> for Tanh<T> {
    fn name(&self) -> &'static str {
        "Tanh"
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::Tanh {})
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>, _scratch: &mut Scratch<T>) {
        activation_forward(x, out, T::tanh);
    }

    fn has_infer(&self) -> bool {
        true
    }

    fn forward(&mut self, x: &Tensor<T>, _train: bool) -> &Tensor<T> {
        activation_forward(x, &mut self.out, T::tanh);
        &self.out
    }

    fn backward(&mut self, dout: &Tensor<T>) -> &Tensor<T> {
        activation_backward(dout, &self.out, &mut self.dx, |y| T::one() - y * y);
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
    fn forward_is_odd_and_bounded() {
        let mut t = Tanh::<f64>::new();
        let x = Tensor::from_vec(&[1, 3], vec![0.5, -0.5, 40.0]).unwrap();
        let y = t.forward(&x, true).data().to_vec();
        assert_eq!(y[0], -y[1]);
        assert!((y[2] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn gradient_check() {
        let x = random_tensor(&[4, 6], 1.5, 3);
        let report = check_layer(&mut Tanh::new(), &x, 9);
        assert!(report.passed(1e-6), "{report}");
    }
}
