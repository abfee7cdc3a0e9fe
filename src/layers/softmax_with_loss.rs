//! SoftmaxWithLoss: softmax over each row, then mean cross-entropy over the batch.
//!
//! `y = softmax(x)`, `L = -(1/N) Σ_n Σ_k t_nk log y_nk`; backward gives
//! `dx = dout · (y - t) / N`. The loss uses log-sum-exp
//! (`log y_k = x_k - max - log Σ exp(x_j - max)`), which never takes `log 0`
//! and is the exact function whose gradient is `(y - t) / N`, so the gradient
//! check holds to 1e-6 (the textbook's `log(y + 1e-7)` would bias it).
//!
//! ```
//! use backprop::layers::{Labels, SoftmaxWithLoss};
//! use backprop::tensor::Tensor;
//! let mut last = SoftmaxWithLoss::<f64>::new();
//! let x = Tensor::from_vec(&[1, 2], vec![0.0, 0.0]).unwrap();
//! let loss = last.forward(&x, Labels::Index(&[1]));
//! assert!((loss - 2f64.ln()).abs() < 1e-12);
//! assert_eq!(last.backward(1.0).data(), &[0.5, -0.5]);
//! ```

use crate::tensor::{Float, Tensor};

/// Targets: class indices, or one-hot (or any probability) rows.
#[derive(Clone, Copy)]
pub enum Labels<'a, T> {
    Index(&'a [usize]),
    OneHot(&'a Tensor<T>),
}

impl<T: Float> Labels<'_, T> {
    pub fn len(&self) -> usize {
        match self {
            Labels::Index(t) => t.len(),
            Labels::OneHot(t) => t.rows(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class of example `i` (the largest entry of a one-hot row).
    pub fn class(&self, i: usize) -> usize {
        match self {
            Labels::Index(t) => t[i],
            Labels::OneHot(t) => {
                let row = t.row(i);
                (0..row.len()).fold(0, |best, j| if row[j] > row[best] { j } else { best })
            }
        }
    }
}

#[derive(Clone, Default)]
pub struct SoftmaxWithLoss<T> {
    /// Softmax output `y`, needed by backward.
    y: Tensor<T>,
    /// Targets as given: one of the two is used, per `one_hot`.
    t_index: Vec<usize>,
    t_one_hot: Tensor<T>,
    one_hot: bool,
    loss: T,
    dx: Tensor<T>,
}

impl<T: Float> SoftmaxWithLoss<T> {
    pub fn new() -> Self {
        SoftmaxWithLoss {
            y: Tensor::default(),
            t_index: Vec::new(),
            t_one_hot: Tensor::default(),
            one_hot: false,
            loss: T::zero(),
            dx: Tensor::default(),
        }
    }

    /// Mean cross-entropy of `softmax(x)` against `t`.
    pub fn forward(&mut self, x: &Tensor<T>, t: Labels<'_, T>) -> T {
        let (n, c) = (x.rows(), x.cols());
        assert_eq!(
            t.len(),
            n,
            "SoftmaxWithLoss forward: {} labels for {n} rows of scores {:?}",
            t.len(),
            x.shape()
        );
        match t {
            Labels::Index(t) => {
                self.one_hot = false;
                self.t_index.clear();
                self.t_index.extend_from_slice(t);
                if let Some(&bad) = t.iter().find(|&&k| k >= c) {
                    panic!("SoftmaxWithLoss forward: label {bad} out of range for {c} classes");
                }
            }
            Labels::OneHot(t) => {
                assert_eq!(
                    t.shape(),
                    &[n, c],
                    "SoftmaxWithLoss forward: one-hot labels {:?}, scores {:?}",
                    t.shape(),
                    x.shape()
                );
                self.one_hot = true;
                self.t_one_hot.copy_from(t);
            }
        }
        self.y.resize(&[n, c]);
        let mut total = 0.0f64;
        for (i, (xr, yr)) in x
            .data()
            .chunks_exact(c)
            .zip(self.y.data_mut().chunks_exact_mut(c))
            .enumerate()
        {
            let max = xr.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
            let mut sum = T::zero();
            for (y, &v) in yr.iter_mut().zip(xr) {
                *y = (v - max).exp();
                sum += *y;
            }
            let log_sum = sum.ln();
            let inv = T::one() / sum;
            for y in yr.iter_mut() {
                *y *= inv;
            }
            // -log y_k = log_sum - (x_k - max)
            total += if self.one_hot {
                let tr = self.t_one_hot.row(i);
                xr.iter()
                    .zip(tr)
                    .map(|(&v, &tk)| tk.as_f64() * (log_sum - (v - max)).as_f64())
                    .sum::<f64>()
            } else {
                (log_sum - (xr[self.t_index[i]] - max)).as_f64()
            };
        }
        self.loss = T::of(total / n.max(1) as f64);
        self.loss
    }

    /// `dx = dout · (y - t) / N`. The net passes `dout = 1`.
    pub fn backward(&mut self, dout: T) -> &Tensor<T> {
        let (n, c) = (self.y.rows(), self.y.cols());
        let scale = dout / T::of(n.max(1) as f64);
        self.dx.resize(&[n, c]);
        let dx = self.dx.data_mut();
        for (d, &y) in dx.iter_mut().zip(self.y.data()) {
            *d = y * scale;
        }
        if self.one_hot {
            for (d, &t) in dx.iter_mut().zip(self.t_one_hot.data()) {
                *d -= t * scale;
            }
        } else {
            for (i, &k) in self.t_index.iter().enumerate() {
                dx[i * c + k] -= scale;
            }
        }
        &self.dx
    }

    /// The softmax probabilities of the last forward.
    pub fn probabilities(&self) -> &Tensor<T> {
        &self.y
    }

    pub fn loss(&self) -> T {
        self.loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check_softmax_with_loss, random_tensor};

    #[test]
    fn stable_for_huge_scores() {
        let mut l = SoftmaxWithLoss::<f32>::new();
        let x = Tensor::from_vec(&[1, 3], vec![1000.0, 0.0, -1000.0]).unwrap();
        let loss = l.forward(&x, Labels::Index(&[2]));
        assert!((loss - 2000.0).abs() < 1e-2, "loss {loss}");
        assert!(l.probabilities().data().iter().all(|p| p.is_finite()));
    }

    #[test]
    fn index_and_one_hot_labels_agree() {
        let x = random_tensor(&[4, 5], 2.0, 20);
        let idx = [0usize, 4, 2, 2];
        let mut one_hot = Tensor::zeros(&[4, 5]);
        for (i, &k) in idx.iter().enumerate() {
            one_hot.data_mut()[i * 5 + k] = 1.0;
        }
        let mut a = SoftmaxWithLoss::<f64>::new();
        let mut b = SoftmaxWithLoss::<f64>::new();
        let la = a.forward(&x, Labels::Index(&idx));
        let lb = b.forward(&x, Labels::OneHot(&one_hot));
        assert!((la - lb).abs() < 1e-12);
        for (p, q) in a.backward(1.0).data().iter().zip(b.backward(1.0).data()) {
            assert!((p - q).abs() < 1e-15);
        }
    }

    #[test]
    fn gradient_check_both_label_kinds() {
        let x = random_tensor(&[4, 5], 2.0, 21);
        let report = check_softmax_with_loss(&x, Labels::Index(&[1, 3, 0, 4]));
        assert!(report.passed(1e-6), "{report}");

        // Soft targets: any rows of probabilities work, not only one-hot.
        let mut soft = random_tensor(&[4, 5], 1.0, 22);
        for r in 0..4 {
            let row: Vec<f64> = soft.row(r).iter().map(|v| v.abs()).collect();
            let s: f64 = row.iter().sum();
            for (v, a) in soft.data_mut()[r * 5..(r + 1) * 5].iter_mut().zip(&row) {
                *v = a / s;
            }
        }
        let report = check_softmax_with_loss(&x, Labels::OneHot(&soft));
        assert!(report.passed(1e-6), "{report}");
    }
}
