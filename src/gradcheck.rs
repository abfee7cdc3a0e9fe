//! Gradient checking: backpropagation against the central difference
//! `(f(w + h) - f(w - h)) / 2h` with `h = 1e-4`, in f64.
//!
//! The error of one element is `|a - n| / max(|a|, |n|, 1e-8)` (relative, with a
//! floor so that two gradients that are both essentially zero count as equal);
//! a report gives the largest such error per parameter tensor, the way llm.c's
//! test prints OK / NOT OK per tensor.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::layers::{Labels, Layer};
use crate::nets::Network;
use crate::tensor::Tensor;

/// The step of the central difference.
pub const H: f64 = 1e-4;

/// The tolerance the tests hold f64 gradients to.
pub const TOLERANCE: f64 = 1e-6;

/// Largest elementwise relative error between two gradients of the same shape.
pub fn max_relative_error(analytic: &Tensor<f64>, numerical: &Tensor<f64>) -> f64 {
    assert_eq!(
        analytic.shape(),
        numerical.shape(),
        "gradient check: analytic {:?} vs numerical {:?}",
        analytic.shape(),
        numerical.shape()
    );
    analytic
        .data()
        .iter()
        .zip(numerical.data())
        .map(|(&a, &n)| (a - n).abs() / a.abs().max(n.abs()).max(1e-8))
        .fold(0.0, f64::max)
}

/// Uniform entries in `[-scale, scale]`, seeded.
pub fn random_tensor(shape: &[usize], scale: f64, seed: u64) -> Tensor<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = shape.iter().product();
    let data = (0..n).map(|_| rng.random_range(-scale..=scale)).collect();
    Tensor::from_vec(shape, data).expect("length matches shape")
}

/// Random entries with `|x| >= margin`, for layers with a kink at 0 (ReLU):
/// the central difference across a kink measures nothing useful.
pub fn inputs_away_from_zero(shape: &[usize], margin: f64, seed: u64) -> Tensor<f64> {
    let mut x = random_tensor(shape, 1.0, seed);
    for v in x.data_mut() {
        *v = v.signum() * (v.abs() + margin);
    }
    x
}

/// One line of a report: a parameter (or the input) and its largest error.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub max_relative_error: f64,
}

/// The result of a gradient check, one entry per tensor.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub subject: String,
    pub entries: Vec<Entry>,
}

impl Report {
    pub fn passed(&self, tolerance: f64) -> bool {
        self.entries
            .iter()
            .all(|e| e.max_relative_error < tolerance)
    }

    pub fn worst(&self) -> f64 {
        self.entries
            .iter()
            .map(|e| e.max_relative_error)
            .fold(0.0, f64::max)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            let verdict = if e.max_relative_error < TOLERANCE {
                "OK"
            } else {
                "NOT OK"
            };
            writeln!(
                f,
                "{:<40} {:<8} {:>12.3e}  {verdict}",
                self.subject, e.name, e.max_relative_error
            )?;
        }
        Ok(())
    }
}

/// Checks one layer: with a fixed random `R` of the output's shape, the scalar
/// `L = Σ forward(x) ⊙ R` has `dL/d(output) = R`, so `backward(R)` must give
/// `dL/dx` and the parameter gradients. Each is compared with the central
/// difference of `L`.
pub fn check_layer(layer: &mut dyn Layer<f64>, x: &Tensor<f64>, seed: u64) -> Report {
    let out_shape = layer.forward(x, true).shape().to_vec();
    let r = random_tensor(&out_shape, 1.0, seed);
    let scalar = |layer: &mut dyn Layer<f64>, x: &Tensor<f64>| -> f64 {
        layer
            .forward(x, true)
            .data()
            .iter()
            .zip(r.data())
            .map(|(a, b)| a * b)
            .sum()
    };

    layer.forward(x, true);
    layer.backward(&r);
    let analytic_dx = layer.grad_input().clone();
    let analytic: Vec<(&'static str, Tensor<f64>)> = layer
        .params()
        .iter()
        .map(|p| (p.name, p.grad.clone()))
        .collect();

    let mut entries = Vec::new();
    let mut xv = x.clone();
    let mut num_dx = Tensor::zeros(x.shape());
    for i in 0..xv.len() {
        let v = xv.data()[i];
        xv.data_mut()[i] = v + H;
        let fp = scalar(layer, &xv);
        xv.data_mut()[i] = v - H;
        let fm = scalar(layer, &xv);
        xv.data_mut()[i] = v;
        num_dx.data_mut()[i] = (fp - fm) / (2.0 * H);
    }
    entries.push(Entry {
        name: "dx".into(),
        max_relative_error: max_relative_error(&analytic_dx, &num_dx),
    });

    for (k, (name, grad)) in analytic.iter().enumerate() {
        let mut num = Tensor::zeros(grad.shape());
        for i in 0..grad.len() {
            let v = layer.params_mut()[k].value.data()[i];
            layer.params_mut()[k].value.data_mut()[i] = v + H;
            let fp = scalar(layer, x);
            layer.params_mut()[k].value.data_mut()[i] = v - H;
            let fm = scalar(layer, x);
            layer.params_mut()[k].value.data_mut()[i] = v;
            num.data_mut()[i] = (fp - fm) / (2.0 * H);
        }
        entries.push(Entry {
            name: format!("d{name}"),
            max_relative_error: max_relative_error(grad, &num),
        });
    }
    Report {
        subject: layer.name().to_string(),
        entries,
    }
}

/// Checks a whole network: `gradient` (backpropagation, with `lambda * W`)
/// against `numerical_gradient`, parameter by parameter.
pub fn check_network(
    net: &mut Network<f64>,
    x: &Tensor<f64>,
    t: Labels<'_, f64>,
    subject: &str,
) -> Report {
    let numerical = net.numerical_gradient(x, t);
    net.gradient(x, t);
    let entries = net
        .params()
        .iter()
        .zip(&numerical)
        .map(|(p, (_, num))| Entry {
            name: p.name.clone(),
            max_relative_error: max_relative_error(p.grad, num),
        })
        .collect();
    Report {
        subject: subject.to_string(),
        entries,
    }
}
