//! Batch Normalization (Ioffe & Szegedy), as the textbook's `BatchNormalization`.
//!
//! Per feature `j` over the batch of `N` rows:
//! `μ = mean(x)`, `xc = x - μ`, `σ² = mean(xc²)`, `std = √(σ² + ε)`,
//! `xn = xc / std`, `y = γ ⊙ xn + β`.
//!
//! Backward (the textbook's computational graph, folded):
//! `dβ = Σ dout`, `dγ = Σ xn ⊙ dout`, `dxn = γ ⊙ dout`,
//! `dx = (dxn - mean(dxn) - xn ⊙ mean(dxn ⊙ xn)) / std`.
//!
//! Training mode normalises with the batch's own statistics and moves the
//! running statistics towards them: `running = 0.9 · running + 0.1 · batch`
//! (momentum 0.9, as the textbook). Inference mode normalises with the running
//! statistics, so a prediction does not depend on the rest of its batch.
//!
//! Two choices differ from the textbook's code, both about the start of
//! training only: the running variance starts at 1 (PyTorch's choice) instead
//! of 0, so that evaluating a freshly built net does not divide by `√ε`; and
//! the variance kept in `running_var` is the biased batch variance, exactly
//! what training divides by, as the textbook does.
//!
//! ```
//! use backprop::layers::{BatchNorm, Layer};
//! use backprop::tensor::Tensor;
//! let mut bn = BatchNorm::<f64>::new(1);
//! let x = Tensor::from_vec(&[4, 1], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
//! let y = bn.forward(&x, true).data().to_vec();
//! assert!(y.iter().sum::<f64>().abs() < 1e-12); // mean 0
//! assert!((y.iter().map(|v| v * v).sum::<f64>() / 4.0 - 1.0).abs() < 1e-5); // variance 1
//! assert!((bn.running_mean.data()[0] - 0.25).abs() < 1e-12); // 0.9 · 0 + 0.1 · 2.5
//! ```

use super::{Buffers, BuffersMut, Layer, Param, ParamMut, Params, ParamsMut, Scratch, smallvec};
use crate::nets::LayerSpec;
use crate::tensor::{Float, Tensor};

/// The textbook's `10e-7`: added to the variance so a constant feature does
/// not divide by zero.
pub const EPS: f64 = 1e-6;

#[derive(Clone)]
pub struct BatchNorm<T> {
    pub gamma: Tensor<T>,
    pub beta: Tensor<T>,
    pub dgamma: Tensor<T>,
    pub dbeta: Tensor<T>,
    /// Weight of the old running statistics in each update (0.9).
    pub momentum: f64,
    pub running_mean: Tensor<T>,
    pub running_var: Tensor<T>,
    /// The normalised input (N, D): dγ and dx need it.
    xn: Tensor<T>,
    /// `√(σ² + ε)` per feature, from the batch (training) or the running
    /// variance (inference): dx divides by it.
    std: Vec<T>,
    /// The input's shape, given back to `dx` (image-shaped inputs are flattened).
    x_shape: Vec<usize>,
    out: Tensor<T>,
    dx: Tensor<T>,
    /// Per-feature sums for backward, kept to avoid allocating every batch.
    sum_dxn: Vec<T>,
    sum_dxn_xn: Vec<T>,
}

impl<T: Float> BatchNorm<T> {
    /// Normalises `features` inputs per example: γ = 1, β = 0, running mean 0
    /// and running variance 1.
    pub fn new(features: usize) -> Self {
        let ones = || {
            let mut t = Tensor::zeros(&[features]);
            t.fill(T::one());
            t
        };
        BatchNorm {
            gamma: ones(),
            beta: Tensor::zeros(&[features]),
            dgamma: Tensor::zeros(&[features]),
            dbeta: Tensor::zeros(&[features]),
            momentum: 0.9,
            running_mean: Tensor::zeros(&[features]),
            running_var: ones(),
            xn: Tensor::default(),
            std: vec![T::zero(); features],
            x_shape: Vec::new(),
            out: Tensor::default(),
            dx: Tensor::default(),
            sum_dxn: vec![T::zero(); features],
            sum_dxn_xn: vec![T::zero(); features],
        }
    }

    pub fn features(&self) -> usize {
        self.gamma.len()
    }

    /// The features per row of `x`, which must be the layer's.
    fn features_of(&self, x: &Tensor<T>) -> usize {
        assert_eq!(
            x.cols(),
            self.features(),
            "BatchNorm forward: input {:?} has {} features per row, gamma is {:?}",
            x.shape(),
            x.cols(),
            self.gamma.shape()
        );
        self.features()
    }
}

/// Inference's `√(σ² + ε)` per feature, from the running variance.
fn running_std<T: Float>(running_var: &Tensor<T>, std: &mut [T]) {
    for (s, &v) in std.iter_mut().zip(running_var.data()) {
        *s = (v + T::of(EPS)).sqrt();
    }
}

impl<T: Float> Layer<T> for BatchNorm<T> {
    fn name(&self) -> &'static str {
        "BatchNorm"
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::BatchNorm {})
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        if input.iter().product::<usize>() != self.features() {
            return Err(format!("{} features per example", self.features()));
        }
        Ok(input.to_vec())
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>, scratch: &mut Scratch<T>) {
        let d = self.features_of(x);
        let std = &mut scratch.values;
        std.resize(d, T::zero());
        running_std(&self.running_var, std);
        out.resize(x.shape());
        // forward's two steps, `xn = (x - μ) / std` then `γ xn + β`, in one.
        for (o, row) in out
            .data_mut()
            .chunks_exact_mut(d)
            .zip(x.data().chunks_exact(d))
        {
            for ((((o, &v), &mu), &s), (&g, &b)) in o
                .iter_mut()
                .zip(row)
                .zip(self.running_mean.data())
                .zip(std.iter())
                .zip(self.gamma.data().iter().zip(self.beta.data()))
            {
                *o = g * ((v - mu) / s) + b;
            }
        }
    }

    fn has_infer(&self) -> bool {
        true
    }

    fn forward(&mut self, x: &Tensor<T>, train: bool) -> &Tensor<T> {
        let (n, d) = (x.rows(), self.features_of(x));
        self.x_shape.clear();
        self.x_shape.extend_from_slice(x.shape());
        self.xn.resize(&[n, d]);
        let eps = T::of(EPS);
        if train {
            assert!(n > 0, "BatchNorm forward: empty batch in training mode");
            let inv_n = T::one() / T::of(n as f64);
            let (m, one_m) = (T::of(self.momentum), T::of(1.0 - self.momentum));
            // Two passes per feature (mean, then variance of the centred
            // values): more accurate than E[x²] - μ² when |μ| ≫ σ.
            let mean = &mut self.sum_dxn;
            mean.fill(T::zero());
            for row in x.data().chunks_exact(d) {
                for (s, &v) in mean.iter_mut().zip(row) {
                    *s += v;
                }
            }
            mean.iter_mut().for_each(|s| *s *= inv_n);
            let var = &mut self.sum_dxn_xn;
            var.fill(T::zero());
            for (row, xn) in x
                .data()
                .chunks_exact(d)
                .zip(self.xn.data_mut().chunks_exact_mut(d))
            {
                for (((c, &v), &mu), s) in
                    xn.iter_mut().zip(row).zip(mean.iter()).zip(var.iter_mut())
                {
                    *c = v - mu;
                    *s += *c * *c;
                }
            }
            var.iter_mut().for_each(|s| *s *= inv_n);
            for j in 0..d {
                self.std[j] = (var[j] + eps).sqrt();
                let rm = &mut self.running_mean.data_mut()[j];
                *rm = m * *rm + one_m * mean[j];
                let rv = &mut self.running_var.data_mut()[j];
                *rv = m * *rv + one_m * var[j];
            }
            for xn in self.xn.data_mut().chunks_exact_mut(d) {
                for (c, &s) in xn.iter_mut().zip(&self.std) {
                    *c /= s;
                }
            }
        } else {
            running_std(&self.running_var, &mut self.std);
            for (row, xn) in x
                .data()
                .chunks_exact(d)
                .zip(self.xn.data_mut().chunks_exact_mut(d))
            {
                for (((c, &v), &mu), &s) in xn
                    .iter_mut()
                    .zip(row)
                    .zip(self.running_mean.data())
                    .zip(&self.std)
                {
                    *c = (v - mu) / s;
                }
            }
        }
        self.out.resize(x.shape());
        for (o, xn) in self
            .out
            .data_mut()
            .chunks_exact_mut(d)
            .zip(self.xn.data().chunks_exact(d))
        {
            for (((o, &v), &g), &b) in o
                .iter_mut()
                .zip(xn)
                .zip(self.gamma.data())
                .zip(self.beta.data())
            {
                *o = g * v + b;
            }
        }
        &self.out
    }

    fn backward(&mut self, dout: &Tensor<T>) -> &Tensor<T> {
        let (n, d) = (self.xn.rows(), self.features());
        assert_eq!(
            (dout.rows(), dout.cols()),
            (n, d),
            "BatchNorm backward: dout {:?}, expected [{n}, {d}]",
            dout.shape()
        );
        let (dgamma, dbeta) = (self.dgamma.data_mut(), self.dbeta.data_mut());
        dgamma.fill(T::zero());
        dbeta.fill(T::zero());
        for (g, xn) in dout
            .data()
            .chunks_exact(d)
            .zip(self.xn.data().chunks_exact(d))
        {
            for (((db, dg), &g), &v) in dbeta.iter_mut().zip(dgamma.iter_mut()).zip(g).zip(xn) {
                *db += g;
                *dg += g * v;
            }
        }
        // With dxn = γ ⊙ dout: Σ dxn = γ ⊙ dβ and Σ dxn ⊙ xn = γ ⊙ dγ.
        let inv_n = T::one() / T::of(n as f64);
        for j in 0..d {
            let gamma = self.gamma.data()[j];
            self.sum_dxn[j] = gamma * dbeta[j] * inv_n;
            self.sum_dxn_xn[j] = gamma * dgamma[j] * inv_n;
        }
        self.dx.resize(&self.x_shape);
        for ((dx, g), xn) in self
            .dx
            .data_mut()
            .chunks_exact_mut(d)
            .zip(dout.data().chunks_exact(d))
            .zip(self.xn.data().chunks_exact(d))
        {
            for j in 0..d {
                let dxn = self.gamma.data()[j] * g[j];
                dx[j] = (dxn - self.sum_dxn[j] - xn[j] * self.sum_dxn_xn[j]) / self.std[j];
            }
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
            Param::new("gamma", &self.gamma, &self.dgamma, false),
            Param::new("beta", &self.beta, &self.dbeta, false),
        ]
    }

    fn params_mut(&mut self) -> ParamsMut<'_, T> {
        smallvec![
            ParamMut::new("gamma", &mut self.gamma, &mut self.dgamma, false),
            ParamMut::new("beta", &mut self.beta, &mut self.dbeta, false),
        ]
    }

    fn buffers(&self) -> Buffers<'_, T> {
        smallvec![
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ]
    }

    fn buffers_mut(&mut self) -> BuffersMut<'_, T> {
        smallvec![
            ("running_mean", &mut self.running_mean),
            ("running_var", &mut self.running_var),
        ]
    }

    fn box_clone(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::infers_as_forward;
    use super::*;
    use crate::gradcheck::{TOLERANCE, check_layer, random_tensor};

    /// The textbook's forward and backward, step by step through its
    /// computational graph (mu, xc, var, std, xn), as the trusted reference.
    fn textbook(x: &Tensor<f64>, gamma: &[f64], dout: &Tensor<f64>) -> (Vec<f64>, Vec<f64>) {
        let (n, d) = (x.rows(), x.cols());
        let col = |t: &[f64], j: usize| -> Vec<f64> { (0..n).map(|i| t[i * d + j]).collect() };
        let (mut out, mut dx) = (vec![0.0; n * d], vec![0.0; n * d]);
        for j in 0..d {
            let xs = col(x.data(), j);
            let mu = xs.iter().sum::<f64>() / n as f64;
            let xc: Vec<f64> = xs.iter().map(|v| v - mu).collect();
            let var = xc.iter().map(|v| v * v).sum::<f64>() / n as f64;
            let std = (var + EPS).sqrt();
            let xn: Vec<f64> = xc.iter().map(|v| v / std).collect();
            let g = col(dout.data(), j);
            let dxn: Vec<f64> = g.iter().map(|v| gamma[j] * v).collect();
            let mut dxc: Vec<f64> = dxn.iter().map(|v| v / std).collect();
            let dstd = -(0..n).map(|i| dxn[i] * xc[i] / (std * std)).sum::<f64>();
            let dvar = 0.5 * dstd / std;
            for i in 0..n {
                dxc[i] += 2.0 / n as f64 * xc[i] * dvar;
            }
            let dmu = dxc.iter().sum::<f64>();
            for i in 0..n {
                out[i * d + j] = gamma[j] * xn[i];
                dx[i * d + j] = dxc[i] - dmu / n as f64;
            }
        }
        (out, dx)
    }

    #[test]
    fn matches_the_textbook_graph() {
        let x = random_tensor(&[6, 3], 2.0, 1);
        let dout = random_tensor(&[6, 3], 1.0, 2);
        let gamma = [0.5, 1.5, -2.0];
        let mut bn = BatchNorm::<f64>::new(3);
        bn.gamma.data_mut().copy_from_slice(&gamma);
        let out = bn.forward(&x, true).data().to_vec();
        let dx = bn.backward(&dout).data().to_vec();
        let (want_out, want_dx) = textbook(&x, &gamma, &dout);
        for (a, b) in out.iter().zip(&want_out).chain(dx.iter().zip(&want_dx)) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn running_statistics_and_inference_mode() {
        let mut bn = BatchNorm::<f64>::new(2);
        // Feature 0: mean 2, variance 1; feature 1: mean -1, variance 4.
        let x = Tensor::from_vec(&[2, 2], vec![1.0, -3.0, 3.0, 1.0]).unwrap();
        bn.forward(&x, true);
        let want = [0.2, -0.1, 0.9 + 0.1 * 1.0, 0.9 + 0.1 * 4.0];
        let got = [bn.running_mean.data(), bn.running_var.data()].concat();
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{got:?}");
        }
        // Many identical batches: the running statistics converge to the batch's.
        for _ in 0..300 {
            bn.forward(&x, true);
        }
        let train_out = bn.forward(&x, true).data().to_vec();
        let infer_out = bn.forward(&x, false).data().to_vec();
        for (a, b) in train_out.iter().zip(&infer_out) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        // Inference does not move the running statistics, and one row alone is
        // normalised with them rather than with itself.
        let before = bn.running_mean.clone();
        let one = Tensor::from_vec(&[1, 2], vec![3.0, 1.0]).unwrap();
        let y = bn.forward(&one, false).data().to_vec();
        assert_eq!(bn.running_mean, before);
        assert!(
            (y[0] - 1.0).abs() < 1e-5 && (y[1] - 1.0).abs() < 1e-5,
            "{y:?}"
        );
        // Inference over `&self` normalises in one step what forward does
        // in two, to the same bits, in f64 and in f32.
        bn.gamma = random_tensor(&[2], 1.5, 3);
        bn.beta = random_tensor(&[2], 1.0, 4);
        let mut scratch = Scratch::default();
        let x = random_tensor(&[5, 2], 3.0, 5);
        assert!(infers_as_forward(&mut bn, &x, &mut scratch));
        let mut bn32 = BatchNorm::<f32>::new(2);
        bn32.running_mean = bn.running_mean.cast();
        bn32.running_var = bn.running_var.cast();
        bn32.gamma = bn.gamma.cast();
        bn32.beta = bn.beta.cast();
        assert!(infers_as_forward(
            &mut bn32,
            &x.cast(),
            &mut Scratch::default()
        ));
    }

    #[test]
    fn gradient_check() {
        let x = random_tensor(&[5, 4], 2.0, 20);
        let mut bn = BatchNorm::<f64>::new(4);
        bn.gamma = random_tensor(&[4], 1.5, 21);
        bn.beta = random_tensor(&[4], 1.0, 22);
        let report = check_layer(&mut bn, &x, 23);
        assert_eq!(report.entries.len(), 3, "{report}"); // dx, dgamma, dbeta
        assert!(report.passed(TOLERANCE), "{report}");
    }

    #[test]
    fn gradient_check_on_image_shaped_input() {
        let x = random_tensor(&[4, 2, 1, 3], 1.0, 24);
        let mut bn = BatchNorm::<f64>::new(6);
        let report = check_layer(&mut bn, &x, 25);
        assert!(report.passed(TOLERANCE), "{report}");
        assert_eq!(bn.grad_input().shape(), &[4, 2, 1, 3]);
    }
}
