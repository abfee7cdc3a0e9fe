//! The chain of layers and the textbook's `gradient`: run `loss` forward so each
//! layer records what it needs, feed `dout = 1` into the last layer, and walk
//! the layers in reverse. L2 weight decay adds `0.5 * lambda * Σ W²` to the loss
//! and `lambda * W` to each weight gradient.
//!
//! ```
//! use backprop::layers::Labels;
//! use backprop::nets::MultiLayerNet;
//! use backprop::tensor::Tensor;
//! let mut net = MultiLayerNet::new(4, &[5], 3).build::<f64>(0);
//! let x = Tensor::from_vec(&[2, 4], vec![0.1; 8]).unwrap();
//! let loss = net.gradient(&x, Labels::Index(&[0, 2]));
//! assert!(loss > 0.0);
//! assert_eq!(net.params()[0].name, "W1");
//! ```

use std::collections::HashMap;

use super::NetSpec;
use crate::gradcheck::H;
use crate::layers::{Labels, Layer, SoftmaxWithLoss};
use crate::tensor::{Float, Tensor};

/// A parameter of the whole net, numbered as in the textbook: `W1, b1, W2, ...`.
pub struct NamedParam<'a, T> {
    pub name: String,
    pub value: &'a Tensor<T>,
    pub grad: &'a Tensor<T>,
    pub decay: bool,
}

pub struct NamedParamMut<'a, T> {
    pub name: String,
    pub value: &'a mut Tensor<T>,
    pub grad: &'a mut Tensor<T>,
    pub decay: bool,
}

#[derive(Clone)]
pub struct Network<T: Float> {
    pub layers: Vec<Box<dyn Layer<T>>>,
    pub last_layer: SoftmaxWithLoss<T>,
    pub weight_decay_lambda: f64,
    /// The architecture this net was built from, if it came from a [`NetSpec`].
    pub spec: Option<NetSpec>,
}

/// Textbook numbering: the k-th parameter called `W` is `Wk`.
fn numbered<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    names
        .map(|n| {
            let c = counts.entry(n).or_insert(0);
            *c += 1;
            format!("{n}{c}")
        })
        .collect()
}

impl<T: Float> Network<T> {
    /// A net from its layers. The first layer's input gradient is not computed:
    /// nothing uses it, and for MNIST it is a fifth of the arithmetic.
    pub fn new(mut layers: Vec<Box<dyn Layer<T>>>, weight_decay_lambda: f64) -> Self {
        if let Some(first) = layers.first_mut() {
            first.set_input_grad_needed(false);
        }
        Network {
            layers,
            last_layer: SoftmaxWithLoss::new(),
            weight_decay_lambda,
            spec: None,
        }
    }

    /// Class scores (before softmax) for a batch `x`.
    pub fn predict(&mut self, x: &Tensor<T>, train: bool) -> &Tensor<T> {
        let n = self.layers.len();
        if n == 0 {
            panic!("Network::predict: the net has no layers");
        }
        self.layers[0].forward(x, train);
        for i in 1..n {
            let (done, rest) = self.layers.split_at_mut(i);
            rest[0].forward(done[i - 1].output(), train);
        }
        self.layers[n - 1].output()
    }

    /// Mean cross-entropy over the batch plus `0.5 * lambda * Σ W²`.
    pub fn loss(&mut self, x: &Tensor<T>, t: Labels<'_, T>, train: bool) -> T {
        self.predict(x, train);
        let scores = self.layers.last().expect("non-empty").output();
        let data_loss = self.last_layer.forward(scores, t);
        data_loss + T::of(self.weight_decay_loss())
    }

    /// `0.5 * lambda * Σ W²` over the weights (not the biases).
    pub fn weight_decay_loss(&self) -> f64 {
        if self.weight_decay_lambda == 0.0 {
            return 0.0;
        }
        let sum: f64 = self
            .params()
            .iter()
            .filter(|p| p.decay)
            .map(|p| p.value.sum_squares())
            .sum();
        0.5 * self.weight_decay_lambda * sum
    }

    /// Backpropagation from the last forward: `dout` into SoftmaxWithLoss, then
    /// every layer in reverse. Leaves `dW`, `db` on the layers, without decay.
    pub fn backward(&mut self, dout: T) {
        let mut i = self.layers.len();
        let dx = self.last_layer.backward(dout);
        self.layers[i - 1].backward(dx);
        while i > 1 {
            i -= 1;
            let (before, after) = self.layers.split_at_mut(i);
            before[i - 1].backward(after[0].grad_input());
        }
    }

    /// Adds `lambda * W` to every weight gradient.
    pub fn add_weight_decay_gradient(&mut self) {
        let lambda = T::of(self.weight_decay_lambda);
        if self.weight_decay_lambda == 0.0 {
            return;
        }
        for p in self.params_mut().into_iter().filter(|p| p.decay) {
            for (g, &w) in p.grad.data_mut().iter_mut().zip(p.value.data()) {
                *g += lambda * w;
            }
        }
    }

    /// The textbook's `gradient(x, t)`: forward in training mode, `dout = 1`
    /// backwards, weight decay added. Returns the loss; the gradients are on
    /// the layers, read them with [`Network::params`].
    pub fn gradient(&mut self, x: &Tensor<T>, t: Labels<'_, T>) -> T {
        let loss = self.loss(x, t, true);
        self.backward(T::one());
        self.add_weight_decay_gradient();
        loss
    }

    /// The same gradients by central differences on the loss (slow; for checks).
    pub fn numerical_gradient(
        &mut self,
        x: &Tensor<T>,
        t: Labels<'_, T>,
    ) -> Vec<(String, Tensor<T>)> {
        let h = T::of(H);
        let names: Vec<String> = self.params().into_iter().map(|p| p.name).collect();
        let mut grads = Vec::with_capacity(names.len());
        for (k, name) in names.into_iter().enumerate() {
            let len = self.params()[k].value.len();
            let mut g = Tensor::zeros(self.params()[k].value.shape());
            for i in 0..len {
                let v = self.params_mut()[k].value.data()[i];
                self.params_mut()[k].value.data_mut()[i] = v + h;
                let fp = self.loss(x, t, true);
                self.params_mut()[k].value.data_mut()[i] = v - h;
                let fm = self.loss(x, t, true);
                self.params_mut()[k].value.data_mut()[i] = v;
                g.data_mut()[i] = (fp - fm) / (h + h);
            }
            grads.push((name, g));
        }
        grads
    }

    /// Fraction of rows whose highest score is the label.
    pub fn accuracy(&mut self, x: &Tensor<T>, t: Labels<'_, T>) -> f64 {
        let n = t.len();
        let correct = self
            .predict(x, false)
            .argmax_rows()
            .enumerate()
            .filter(|&(i, k)| k == t.class(i))
            .count();
        correct as f64 / n.max(1) as f64
    }

    /// All parameters with their gradients, named `W1, b1, ..., Wn, bn`.
    pub fn params(&self) -> Vec<NamedParam<'_, T>> {
        let raw: Vec<_> = self.layers.iter().flat_map(|l| l.params()).collect();
        let names = numbered(raw.iter().map(|p| p.name));
        raw.into_iter()
            .zip(names)
            .map(|(p, name)| NamedParam {
                name,
                value: p.value,
                grad: p.grad,
                decay: p.decay,
            })
            .collect()
    }

    pub fn params_mut(&mut self) -> Vec<NamedParamMut<'_, T>> {
        let raw: Vec<_> = self
            .layers
            .iter_mut()
            .flat_map(|l| l.params_mut())
            .collect();
        let names = numbered(raw.iter().map(|p| p.name));
        raw.into_iter()
            .zip(names)
            .map(|(p, name)| NamedParamMut {
                name,
                value: p.value,
                grad: p.grad,
                decay: p.decay,
            })
            .collect()
    }

    /// Total number of learnable scalars.
    pub fn parameter_count(&self) -> usize {
        self.params().iter().map(|p| p.value.len()).sum()
    }

    /// Copies the parameter values of `other`, a net of the same architecture.
    pub fn copy_params_from(&mut self, other: &Network<T>) {
        for (dst, src) in self.params_mut().into_iter().zip(other.params()) {
            dst.value.copy_from(src.value);
        }
    }
}
