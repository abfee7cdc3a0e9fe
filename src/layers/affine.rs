//! Affine (fully connected): `y = x · W + b`.
//!
//! Backward: `dx = dout · Wᵀ`, `dW = xᵀ · dout`, `db = Σ_rows dout`.
//! Inputs of any shape are flattened to `(N, rest)`, as the textbook's
//! `x.reshape(x.shape[0], -1)` does, and `dx` takes the input's shape back.
//!
//! ```
//! use backprop::layers::{Affine, Layer};
//! use backprop::tensor::Tensor;
//! let w = Tensor::from_vec(&[2, 1], vec![1.0f64, 2.0]).unwrap();
//! let b = Tensor::from_vec(&[1], vec![0.5]).unwrap();
//! let mut affine = Affine::from_params(w, b);
//! let x = Tensor::from_vec(&[1, 2], vec![3.0, 4.0]).unwrap();
//! assert_eq!(affine.forward(&x, true).data(), &[11.5]);
//! ```

use super::{Layer, Param, ParamMut, Params, ParamsMut, Scratch, smallvec};
use crate::nets::LayerSpec;
use crate::tensor::{Float, Tensor, matmul};

#[derive(Clone)]
pub struct Affine<T> {
    pub w: Tensor<T>,
    pub b: Tensor<T>,
    pub dw: Tensor<T>,
    pub db: Tensor<T>,
    /// The input, flattened to (N, in): `dW = xᵀ · dout` needs it.
    x: Tensor<T>,
    /// The input's original shape, given back to `dx`.
    x_shape: Vec<usize>,
    out: Tensor<T>,
    dx: Tensor<T>,
    input_grad_needed: bool,
}

impl<T: Float> Affine<T> {
    /// An Affine layer with weights `W` of shape (in, out) and bias `b` (out).
    pub fn from_params(w: Tensor<T>, b: Tensor<T>) -> Self {
        assert_eq!(
            w.shape().len(),
            2,
            "Affine: W must be (in, out), got {:?}",
            w.shape()
        );
        assert_eq!(
            b.shape(),
            &w.shape()[1..],
            "Affine: b shape {:?} does not match W shape {:?}",
            b.shape(),
            w.shape()
        );
        let (dw, db) = (Tensor::zeros(w.shape()), Tensor::zeros(b.shape()));
        Affine {
            w,
            b,
            dw,
            db,
            x: Tensor::default(),
            x_shape: Vec::new(),
            out: Tensor::default(),
            dx: Tensor::default(),
            input_grad_needed: true,
        }
    }

    pub fn input_size(&self) -> usize {
        self.w.shape()[0]
    }

    pub fn output_size(&self) -> usize {
        self.w.shape()[1]
    }
}

/// `out = x · W + b`, with `x` seen as `(N, in)`: forward and inference.
fn affine<T: Float>(x: &Tensor<T>, w: &Tensor<T>, b: &Tensor<T>, out: &mut Tensor<T>) {
    let (n, din, dout) = (x.rows(), w.shape()[0], w.shape()[1]);
    assert_eq!(
        x.cols(),
        din,
        "Affine forward: input {:?} has {} features per row, W is {:?}",
        x.shape(),
        x.cols(),
        w.shape()
    );
    out.resize(&[n, dout]);
    for row in out.data_mut().chunks_exact_mut(dout) {
        row.copy_from_slice(b.data());
    }
    matmul(
        n,
        dout,
        din,
        x.data(),
        false,
        w.data(),
        false,
        out.data_mut(),
        true,
    );
}

impl<T: Float> Layer<T> for Affine<T> {
    fn name(&self) -> &'static str {
        "Affine"
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::Affine {
            units: Some(self.output_size()),
            weight_init_std: None,
        })
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        // Like the textbook's Affine, any example shape is flattened.
        if input.iter().product::<usize>() != self.input_size() {
            return Err(format!("{} values per example", self.input_size()));
        }
        Ok(vec![self.output_size()])
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>, _scratch: &mut Scratch<T>) {
        affine(x, &self.w, &self.b, out);
    }

    fn has_infer(&self) -> bool {
        true
    }

    fn forward(&mut self, x: &Tensor<T>, train: bool) -> &Tensor<T> {
        affine(x, &self.w, &self.b, &mut self.out);
        let (n, din) = (x.rows(), self.input_size());
        self.x_shape.clear();
        self.x_shape.extend_from_slice(x.shape());
        // Inference never runs backward: skip the copy (for W3, a tenth of the time).
        if train {
            self.x.resize(&[n, din]);
            self.x.data_mut().copy_from_slice(x.data());
        } else {
            self.x.resize(&[0, din]);
        }
        &self.out
    }

    fn backward(&mut self, dout: &Tensor<T>) -> &Tensor<T> {
        let (n, din, dn) = (self.x.rows(), self.input_size(), self.output_size());
        assert!(
            n > 0 || dout.rows() == 0,
            "Affine backward: the last forward ran in inference mode (train = false), which keeps no input"
        );
        assert_eq!(
            dout.shape(),
            &[n, dn],
            "Affine backward: dout {:?}, expected [{n}, {dn}]",
            dout.shape()
        );
        matmul(
            din,
            dn,
            n,
            self.x.data(),
            true,
            dout.data(),
            false,
            self.dw.data_mut(),
            false,
        );
        let db = self.db.data_mut();
        db.fill(T::zero());
        for row in dout.data().chunks_exact(dn) {
            for (d, &g) in db.iter_mut().zip(row) {
                *d += g;
            }
        }
        if self.input_grad_needed {
            self.dx.resize(&self.x_shape);
            matmul(
                n,
                din,
                dn,
                dout.data(),
                false,
                self.w.data(),
                true,
                self.dx.data_mut(),
                false,
            );
        } else {
            self.dx.resize(&[0]);
        }
        &self.dx
    }

    fn output(&self) -> &Tensor<T> {
        &self.out
    }

    fn grad_input(&self) -> &Tensor<T> {
        &self.dx
    }

    fn params(&self) -> Params<'_, T> {
        smallvec![
            Param::new("W", &self.w, &self.dw, true),
            Param::new("b", &self.b, &self.db, false),
        ]
    }

    fn params_mut(&mut self) -> ParamsMut<'_, T> {
        smallvec![
            ParamMut::new("W", &mut self.w, &mut self.dw, true),
            ParamMut::new("b", &mut self.b, &mut self.db, false),
        ]
    }

    fn torch_transposed(&self, param: &str) -> bool {
        param == "W"
    }

    fn set_input_grad_needed(&mut self, needed: bool) {
        self.input_grad_needed = needed;
    }

    fn box_clone(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check_layer, random_tensor};

    fn layer(din: usize, dout: usize, seed: u64) -> Affine<f64> {
        Affine::from_params(
            random_tensor(&[din, dout], 1.0, seed),
            random_tensor(&[dout], 1.0, seed + 1),
        )
    }

    #[test]
    fn forward_matches_hand_computation() {
        let w = Tensor::from_vec(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let b = Tensor::from_vec(&[3], vec![0.1, 0.2, 0.3]).unwrap();
        let mut a = Affine::<f64>::from_params(w, b);
        let x = Tensor::from_vec(&[2, 2], vec![1.0, 0.0, 1.0, 1.0]).unwrap();
        assert_eq!(a.forward(&x, true).data(), &[1.1, 2.2, 3.3, 5.1, 7.2, 9.3]);
        let dout = Tensor::from_vec(&[2, 3], vec![1.0; 6]).unwrap();
        a.backward(&dout);
        assert_eq!(a.db.data(), &[2.0, 2.0, 2.0]);
        assert_eq!(a.dw.data(), &[2.0, 2.0, 2.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn gradient_check() {
        let x = random_tensor(&[5, 4], 1.0, 10);
        let report = check_layer(&mut layer(4, 3, 11), &x, 12);
        assert!(report.passed(1e-6), "{report}");
    }

    #[test]
    fn gradient_check_on_image_shaped_input() {
        // (N, C, H, W) input is flattened and dx gets the shape back.
        let x = random_tensor(&[3, 2, 2, 3], 1.0, 13);
        let mut a = layer(12, 4, 14);
        let report = check_layer(&mut a, &x, 15);
        assert!(report.passed(1e-6), "{report}");
        assert_eq!(a.grad_input().shape(), &[3, 2, 2, 3]);
    }
}
