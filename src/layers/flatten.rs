//! Flatten: `(N, C, H, W)` to `(N, C·H·W)` between the convolutional and the
//! dense part of a net; backward gives `dout` the input's shape back.
//!
//! Affine would flatten on its own (as the textbook's does); the explicit layer
//! makes the hand-over visible in the chain and in `show`-style listings.
//!
//! ```
//! use backprop::layers::{Flatten, Layer};
//! use backprop::tensor::Tensor;
//! let mut f = Flatten::new();
//! let x = Tensor::from_vec(&[2, 1, 2, 2], (0..8).map(f64::from).collect()).unwrap();
//! assert_eq!(f.forward(&x, true).shape(), &[2, 4]);
//! let dx = f.backward(&Tensor::from_vec(&[2, 4], vec![1.0; 8]).unwrap());
//! assert_eq!(dx.shape(), &[2, 1, 2, 2]);
//! ```

use super::{Layer, Scratch};
use crate::nets::LayerSpec;
use crate::tensor::{Float, Tensor};

#[derive(Clone, Default)]
pub struct Flatten<T> {
    /// The input's shape, which `dx` takes.
    x_shape: Vec<usize>,
    out: Tensor<T>,
    dx: Tensor<T>,
}

impl<T: Float> Flatten<T> {
    pub fn new() -> Self {
        Flatten {
            x_shape: Vec::new(),
            out: Tensor::default(),
            dx: Tensor::default(),
        }
    }
}

/// `x` as `(N, rest)` into `out`.
fn flatten<T: Float>(x: &Tensor<T>, out: &mut Tensor<T>) {
    out.resize(&[x.rows(), x.cols()]);
    out.data_mut().copy_from_slice(x.data());
}

impl<T: Float> Layer<T> for Flatten<T> {
    fn name(&self) -> &'static str {
        "Flatten"
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::Flatten {})
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(vec![input.iter().product()])
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>, _scratch: &mut Scratch<T>) {
        flatten(x, out);
    }

    fn has_infer(&self) -> bool {
        true
    }

    fn forward(&mut self, x: &Tensor<T>, _train: bool) -> &Tensor<T> {
        self.x_shape.clear();
        self.x_shape.extend_from_slice(x.shape());
        flatten(x, &mut self.out);
        &self.out
    }

    fn backward(&mut self, dout: &Tensor<T>) -> &Tensor<T> {
        assert_eq!(
            dout.shape(),
            self.out.shape(),
            "Flatten backward: dout {:?}, output was {:?}",
            dout.shape(),
            self.out.shape()
        );
        self.dx.resize(&self.x_shape);
        self.dx.data_mut().copy_from_slice(dout.data());
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
    fn keeps_the_order_of_the_elements() {
        let x = random_tensor(&[3, 2, 3, 4], 1.0, 1);
        let mut f = Flatten::new();
        let y = f.forward(&x, true).clone();
        assert_eq!((y.shape(), y.data()), (&[3, 24][..], x.data()));
    }

    #[test]
    fn gradient_check() {
        let x = random_tensor(&[2, 3, 2, 5], 1.0, 2);
        let mut f = Flatten::new();
        let report = check_layer(&mut f, &x, 3);
        assert!(report.passed(1e-6), "{report}");
        assert_eq!(f.grad_input().shape(), &[2, 3, 2, 5]);
    }
}
