//! The chain of layers and the textbook's `gradient`: run `loss` forward so each
//! layer records what it needs, feed `dout = 1` into the last layer, and walk
//! the layers in reverse. L2 weight decay adds `0.5 * lambda * Σ W²` to the loss
//! and `lambda * W` to each weight gradient.
//!
//! ```
//! use backprop::layers::Labels;
//! use backprop::nets::MultiLayerNet;
//! use backprop::tensor::Tensor;
//! let mut net = MultiLayerNet::new(4, &[5], 3).build::<f64>(0).unwrap();
//! let x = Tensor::from_vec(&[2, 4], vec![0.1; 8]).unwrap();
//! let loss = net.gradient(&x, Labels::Index(&[0, 2])).unwrap();
//! assert!(loss > 0.0);
//! assert_eq!(net.params()[0].name, "W1");
//! ```
//!
//! Inference has a second way in, [`Network::infer`]: the scores of
//! `predict(x, false)`, bit for bit, over `&self`, the activations in a
//! [`NetScratch`] of the caller's, so that one net serves many threads.
//!
//! ```
//! use backprop::nets::{MultiLayerNet, NetScratch};
//! use backprop::tensor::Tensor;
//! let mut net = MultiLayerNet::new(4, &[5], 3).build::<f32>(0).unwrap();
//! let x = Tensor::from_vec(&[2, 4], vec![0.1; 8]).unwrap();
//! let mut scratch = NetScratch::new();
//! let scores = net.infer(&x, &mut scratch).unwrap().clone();
//! assert_eq!(&scores, net.predict(&x, false).unwrap());
//! ```

use std::collections::HashMap;

use super::{NetSpec, NetSummary, SpecError};
use crate::gradcheck::H;
use crate::layers::{Labels, Layer, Scratch, SoftmaxWithLoss};
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
    /// The chain, first layer first. The input check remembers the last
    /// example shape it accepted: after replacing layers with others of
    /// different shapes, make a new net with [`Network::new`].
    pub layers: Vec<Box<dyn Layer<T>>>,
    pub last_layer: SoftmaxWithLoss<T>,
    pub weight_decay_lambda: f64,
    /// The architecture this net was built from, if it came from a [`NetSpec`].
    pub spec: Option<NetSpec>,
    /// One example's input shape and the classes it leads to, from the last
    /// successful [`Network::check_input`]: batch after batch has the same
    /// shape, so the chain is walked once, not on every step.
    checked: Option<(Vec<usize>, usize)>,
    /// Whether [`Network::set_fast_order`] is on.
    fast_order: bool,
    /// The order the layers ran in on the last forward (their indices).
    order: Vec<usize>,
}

/// The order to run `layers` in for [`Network::set_fast_order`]: the
/// chain's, with rewrites that change no value.
///
/// - With `fuse`, a Relu directly after a layer that can apply it itself
///   ([`Layer::can_fuse_relu`]: Convolution) is left out, unless a
///   MaxPooling follows it (the next rewrite does less there); the layer
///   applies it ([`fused_relu`]), saving a pass over the values both ways.
///   Only a net that may set its layers (not [`Network::infer`]'s shared one).
/// - A Relu directly followed by a MaxPooling runs after it. Max pooling
///   commutes with ReLU, `max_i relu(a_i) = relu(max_i a_i)` bit for bit, and
///   the gradient reaches the same input (the window's first maximum, when
///   it is positive), so the pair computes the same with the ReLU on a
///   quarter of the values (2x2 windows).
/// - A Flatten directly followed by an Affine is left out: Affine flattens
///   its input itself and gives `dx` the input's shape back, so the copies
///   Flatten makes, both ways, buy nothing.
fn run_order<T: Float>(layers: &[Box<dyn Layer<T>>], order: &mut Vec<usize>, fuse: bool) {
    use super::LayerSpec::{Affine, Flatten, MaxPooling, Relu};
    order.clear();
    let spec = |i: usize| layers.get(i).and_then(|l| l.spec());
    let mut i = 0;
    while i < layers.len() {
        let pooled = matches!(spec(i + 2), Some(MaxPooling { .. }));
        if fuse && layers[i].can_fuse_relu() && matches!(spec(i + 1), Some(Relu {})) && !pooled {
            order.push(i);
            i += 2;
            continue;
        }
        match (spec(i), spec(i + 1)) {
            (Some(Relu {}), Some(MaxPooling { .. })) => {
                order.extend([i + 1, i]);
                i += 2;
            }
            (Some(Flatten {}), Some(Affine { .. })) => i += 1,
            _ => {
                order.push(i);
                i += 1;
            }
        }
    }
}

/// Whether layer `i` applies the Relu after it in `order` (of
/// [`run_order`]): a Relu follows it that the order leaves out.
fn fused_relu<T: Float>(layers: &[Box<dyn Layer<T>>], order: &[usize], i: usize) -> bool {
    let relu = layers.get(i + 1).and_then(|l| l.spec()) == Some(super::LayerSpec::Relu {});
    relu && !order.contains(&(i + 1))
}

/// Layer `from`, to read, and layer `to`, to write (`from != to`).
fn two_layers<T: Float>(
    layers: &mut [Box<dyn Layer<T>>],
    from: usize,
    to: usize,
) -> (&dyn Layer<T>, &mut dyn Layer<T>) {
    if from < to {
        let (a, b) = layers.split_at_mut(to);
        (&*a[from], &mut *b[0])
    } else {
        let (a, b) = layers.split_at_mut(from);
        (&*b[0], &mut *a[to])
    }
}

/// What [`Network::infer`] works in, so that the net it runs is only read:
/// one per thread (or per call), for one net. Its buffers grow to the largest
/// batch they have seen and are then reused.
pub struct NetScratch<T> {
    /// Each layer's working memory.
    layers: Vec<Scratch<T>>,
    /// The order the layers run in.
    order: Vec<usize>,
    /// The activations, each layer reading one and writing the other.
    ping: Tensor<T>,
    pong: Tensor<T>,
    /// The net (where its layers live, and how many) and the example shape
    /// last checked, so that checking the same again is a comparison (the
    /// net's own memory of it, in [`Network::check_input`], would need
    /// `&mut`), and a scratch handed to another net checks again.
    checked: Option<(usize, usize, Vec<usize>)>,
}

impl<T: Float> NetScratch<T> {
    pub fn new() -> Self {
        NetScratch {
            layers: Vec::new(),
            order: Vec::new(),
            ping: Tensor::default(),
            pong: Tensor::default(),
            checked: None,
        }
    }
}

impl<T: Float> Default for NetScratch<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Input that does not fit the net: the wrong example shape, labels that do
/// not match the batch or name a class the net does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("the net has no layers; build one with MultiLayerNet or a NetSpec")]
    NoLayers,
    #[error("the batch is empty: expected at least one example")]
    EmptyBatch,
    #[error(
        "{layer} (layer {index}) expects {expected}, found examples of shape {found:?}{hint}",
        hint = if *index == 1 { "" } else { " (the output of the layer before it)" }
    )]
    Shape {
        /// 1-based position in the chain.
        index: usize,
        layer: &'static str,
        expected: String,
        found: Vec<usize>,
    },
    #[error("{labels} labels for a batch of {rows} examples: expected one label per example")]
    LabelCount { labels: usize, rows: usize },
    #[error(
        "label {label} of example {example} is out of range: the net has {classes} classes (0 to {})",
        classes - 1
    )]
    LabelOutOfRange {
        example: usize,
        label: usize,
        classes: usize,
    },
    #[error("one-hot labels of shape {found:?} for scores of shape {expected:?}")]
    OneHotShape {
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error(
        "{layer} (layer {index}) has no Layer::infer: implement it (and has_infer) to run the net with Network::infer, or use Network::predict"
    )]
    NoInfer {
        /// 1-based position in the chain.
        index: usize,
        layer: &'static str,
    },
}

// Layers hold tensors of thousands of numbers; show the chain instead.
impl<T: Float> std::fmt::Debug for Network<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layers: Vec<&str> = self.layers.iter().map(|l| l.name()).collect();
        f.debug_struct("Network")
            .field("layers", &layers)
            .field("parameters", &self.parameter_count())
            .field("weight_decay_lambda", &self.weight_decay_lambda)
            .field("spec", &self.spec)
            .finish()
    }
}

/// Checks class indices against the number of classes.
pub(crate) fn check_labels(
    labels: impl Iterator<Item = usize>,
    classes: usize,
) -> Result<(), InputError> {
    for (example, label) in labels.enumerate() {
        if label >= classes {
            return Err(InputError::LabelOutOfRange {
                example,
                label,
                classes,
            });
        }
    }
    Ok(())
}

/// The rows of a batch and one example's shape; no rows is an error.
fn examples<T: Float>(x: &Tensor<T>) -> Result<(usize, &[usize]), InputError> {
    match x.shape().split_first() {
        Some((&rows, example)) if rows > 0 => Ok((rows, example)),
        _ => Err(InputError::EmptyBatch),
    }
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
    /// Every layer with its output shape, parameter count and multiply-adds,
    /// the totals and the memory a batch needs (Keras's `summary()`): from
    /// the spec the net was built from, or, for a net built in code, from its
    /// layers and the example shape it last accepted.
    pub fn summary(&self) -> Result<NetSummary, SpecError> {
        let spec = match (&self.spec, &self.checked) {
            (Some(spec), _) => spec.clone(),
            (None, Some((input, _))) => {
                NetSpec::from_layers(&self.layers, self.weight_decay_lambda, input)?
            }
            (None, None) => {
                return Err(SpecError::new(
                    "",
                    "its input shape is unknown: run a batch through it first",
                ));
            }
        };
        spec.summary()
    }

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
            checked: None,
            fast_order: false,
            order: Vec::new(),
        }
    }

    /// Checks that examples of shape `example` (one example, without the batch
    /// axis) pass through every layer, and returns the number of classes the
    /// net scores. Remembers the last shape that passed, so checking the same
    /// shape again is a comparison, not a walk (and allocates nothing).
    pub fn check_input(&mut self, example: &[usize]) -> Result<usize, InputError> {
        if let Some((shape, classes)) = &self.checked
            && shape == example
        {
            return Ok(*classes);
        }
        let classes = self.classes_for(example)?;
        self.checked = Some((example.to_vec(), classes));
        Ok(classes)
    }

    /// The most values per example that any activation holds, the input
    /// `example` included (as far as the layers take that shape): what
    /// inference sizes its slices by.
    pub fn widest_values(&self, example: &[usize]) -> usize {
        let mut shape = example.to_vec();
        let mut widest: usize = shape.iter().product();
        for layer in &self.layers {
            let Ok(next) = layer.output_shape(&shape) else {
                break;
            };
            shape = next;
            widest = widest.max(shape.iter().product());
        }
        widest
    }

    /// [`Network::check_input`]'s walk through the layers, remembering nothing.
    fn classes_for(&self, example: &[usize]) -> Result<usize, InputError> {
        if self.layers.is_empty() {
            return Err(InputError::NoLayers);
        }
        let mut shape = example.to_vec();
        for (i, layer) in self.layers.iter().enumerate() {
            shape = layer
                .output_shape(&shape)
                .map_err(|expected| InputError::Shape {
                    index: i + 1,
                    layer: layer.name(),
                    expected,
                    found: shape.clone(),
                })?;
        }
        Ok(shape.iter().product())
    }

    /// Checks a batch `x` and its labels `t` against the net.
    fn check_batch(&mut self, x: &Tensor<T>, t: Option<Labels<'_, T>>) -> Result<(), InputError> {
        let (rows, example) = examples(x)?;
        let classes = self.check_input(example)?;
        match t {
            None => {}
            Some(Labels::Index(t)) => {
                if t.len() != rows {
                    return Err(InputError::LabelCount {
                        labels: t.len(),
                        rows,
                    });
                }
                check_labels(t.iter().copied(), classes)?;
            }
            Some(Labels::OneHot(t)) if t.shape() != [rows, classes] => {
                return Err(InputError::OneHotShape {
                    expected: vec![rows, classes],
                    found: t.shape().to_vec(),
                });
            }
            Some(Labels::OneHot(_)) => {}
        }
        Ok(())
    }

    /// Class scores (before softmax) for a batch `x` of shape `(N, ...)`,
    /// where each example has the shape the first layer takes.
    pub fn predict(&mut self, x: &Tensor<T>, train: bool) -> Result<&Tensor<T>, InputError> {
        self.check_batch(x, None)?;
        Ok(self.forward(x, train))
    }

    /// The scores of [`Network::predict`]`(x, false)`, bit for bit, without
    /// changing the net: the layers' [`Layer::infer`] in turn, their
    /// activations and working memory in `scratch` (one per thread, for this
    /// net), so one net serves many threads at once. The input is checked
    /// as `predict` checks it; a net with a layer type of the user's own
    /// that has no `infer` is [`InputError::NoInfer`].
    pub fn infer<'s>(
        &self,
        x: &Tensor<T>,
        scratch: &'s mut NetScratch<T>,
    ) -> Result<&'s Tensor<T>, InputError> {
        let (_, example) = examples(x)?;
        let net = (self.layers.as_ptr() as usize, self.layers.len());
        let same = |(at, len, shape): &(usize, usize, Vec<usize>)| {
            (*at, *len) == net && shape.as_slice() == example
        };
        if !scratch.checked.as_ref().is_some_and(same) {
            self.classes_for(example)?;
            if let Some(i) = self.layers.iter().position(|l| !l.has_infer()) {
                return Err(InputError::NoInfer {
                    index: i + 1,
                    layer: self.layers[i].name(),
                });
            }
            scratch.checked = Some((net.0, net.1, example.to_vec()));
        }
        let NetScratch {
            layers,
            ping,
            pong,
            order,
            ..
        } = scratch;
        layers.resize_with(self.layers.len(), Scratch::default);
        // The fast order gives the same scores, bit for bit, sooner.
        run_order(&self.layers, order, false);
        self.layers[order[0]].infer(x, ping, &mut layers[order[0]]);
        let (mut src, mut dst) = (ping, pong);
        for &i in &order[1..] {
            self.layers[i].infer(src, dst, &mut layers[i]);
            std::mem::swap(&mut src, &mut dst);
        }
        Ok(src)
    }

    /// Whether every layer has a [`Layer::infer`], so that
    /// [`Network::infer`] can run the net.
    pub fn has_infer(&self) -> bool {
        self.layers.iter().all(|l| l.has_infer())
    }

    /// [`Network::predict`] without the checks, for callers that made them
    /// (the trainer checks a data set once, not every batch).
    pub(crate) fn forward(&mut self, x: &Tensor<T>, train: bool) -> &Tensor<T> {
        if self.fast_order {
            run_order(&self.layers, &mut self.order, true);
        } else {
            self.order.clear();
            self.order.extend(0..self.layers.len());
        }
        for i in 0..self.layers.len() {
            if self.layers[i].can_fuse_relu() {
                let fused = fused_relu(&self.layers, &self.order, i);
                self.layers[i].fuse_relu(fused);
            }
        }
        self.layers[self.order[0]].forward(x, train);
        for k in 1..self.order.len() {
            let (from, to) = two_layers(&mut self.layers, self.order[k - 1], self.order[k]);
            to.forward(from.output(), train);
        }
        self.layers[self.last_run()].output()
    }

    /// The layer that ran last in the last forward, whose output is the scores.
    fn last_run(&self) -> usize {
        self.order.last().copied().unwrap_or(self.layers.len() - 1)
    }

    /// The scores of the last forward and the loss layer that takes them.
    pub(crate) fn scores_and_loss_layer(&mut self) -> (&Tensor<T>, &mut SoftmaxWithLoss<T>) {
        let last = self.last_run();
        (self.layers[last].output(), &mut self.last_layer)
    }

    /// Whether forward and backward take two shortcuts that change no value
    /// of the loss or the gradients: a Relu directly followed by a MaxPooling
    /// runs after it, on a quarter of the values, and a Flatten directly
    /// followed by an Affine is skipped (see `run_order`). Off by default, so
    /// that every layer's output is what the chain says (the Relu's would be
    /// pooled, the Flatten's stale). The trainer turns it on;
    /// [`Network::infer`] always runs that way, as only its scores are seen.
    pub fn set_fast_order(&mut self, on: bool) {
        self.fast_order = on;
    }

    /// Mean cross-entropy over the batch plus `0.5 * lambda * Σ W²`.
    pub fn loss(&mut self, x: &Tensor<T>, t: Labels<'_, T>, train: bool) -> Result<T, InputError> {
        self.check_batch(x, Some(t))?;
        Ok(self.loss_unchecked(x, t, train))
    }

    fn loss_unchecked(&mut self, x: &Tensor<T>, t: Labels<'_, T>, train: bool) -> T {
        self.forward(x, train);
        let (scores, loss_layer) = self.scores_and_loss_layer();
        let data_loss = loss_layer.forward(scores, t);
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
        let n = self.order.len();
        assert!(n > 0, "backward: run forward first");
        let dx = self.last_layer.backward(dout);
        self.layers[self.order[n - 1]].backward(dx);
        for k in (1..n).rev() {
            let (from, to) = two_layers(&mut self.layers, self.order[k], self.order[k - 1]);
            to.backward(from.grad_input());
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
    pub fn gradient(&mut self, x: &Tensor<T>, t: Labels<'_, T>) -> Result<T, InputError> {
        let loss = self.loss(x, t, true)?;
        self.backward(T::one());
        self.add_weight_decay_gradient();
        Ok(loss)
    }

    /// The same gradients by central differences on the loss (slow; for checks).
    pub fn numerical_gradient(
        &mut self,
        x: &Tensor<T>,
        t: Labels<'_, T>,
    ) -> Result<Vec<(String, Tensor<T>)>, InputError> {
        self.check_batch(x, Some(t))?;
        let h = T::of(H);
        let names: Vec<String> = self.params().into_iter().map(|p| p.name).collect();
        let mut grads = Vec::with_capacity(names.len());
        for (k, name) in names.into_iter().enumerate() {
            let len = self.params()[k].value.len();
            let mut g = Tensor::zeros(self.params()[k].value.shape());
            for i in 0..len {
                let v = self.params_mut()[k].value.data()[i];
                self.params_mut()[k].value.data_mut()[i] = v + h;
                let fp = self.loss_unchecked(x, t, true);
                self.params_mut()[k].value.data_mut()[i] = v - h;
                let fm = self.loss_unchecked(x, t, true);
                self.params_mut()[k].value.data_mut()[i] = v;
                g.data_mut()[i] = (fp - fm) / (h + h);
            }
            grads.push((name, g));
        }
        Ok(grads)
    }

    /// Fraction of rows whose highest score is the label.
    pub fn accuracy(&mut self, x: &Tensor<T>, t: Labels<'_, T>) -> Result<f64, InputError> {
        self.check_batch(x, Some(t))?;
        let n = t.len();
        let correct = self
            .forward(x, false)
            .argmax_rows()
            .enumerate()
            .filter(|&(i, k)| k == t.class(i))
            .count();
        Ok(correct as f64 / n as f64)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::random_tensor;
    use crate::layers::{Affine, Convolution, MaxPooling, Relu, same_bits};
    use crate::layers::{DropoutScaling, convolution::Algorithm};
    use crate::nets::{Activation, DeepConvNet, MultiLayerNet, SimpleConvNet};

    fn mlp() -> Network<f64> {
        MultiLayerNet::new(4, &[5], 3).build(0).unwrap()
    }

    /// `infer` against `predict(x, false)`, bit for bit, in f32, on batches
    /// of 13, 1, 2 and 13 examples (13: no multiple of any block of the
    /// kernels), all with one scratch, as a thread reuses it. The net's
    /// parameters are moved off their start first, and a few training passes
    /// give BatchNorm running statistics of its own.
    fn infers_as_it_predicts(name: &str, mut net: Network<f32>, example: &[usize]) {
        let batch = |n: usize, seed: u64| {
            let shape: Vec<usize> = std::iter::once(n).chain(example.iter().copied()).collect();
            random_tensor(&shape, 1.0, seed).cast::<f32>()
        };
        for (k, p) in net.params_mut().into_iter().enumerate() {
            let noise = random_tensor(p.value.shape(), 0.1, 100 + k as u64);
            for (v, e) in p.value.data_mut().iter_mut().zip(noise.data()) {
                *v += *e as f32;
            }
        }
        for seed in 0..3 {
            net.predict(&batch(8, seed), true).unwrap();
        }
        let mut scratch = NetScratch::new();
        for (k, n) in [13, 1, 2, 13].into_iter().enumerate() {
            let x = batch(n, 10 + k as u64);
            let got = net.infer(&x, &mut scratch).unwrap().clone();
            let want = net.predict(&x, false).unwrap();
            assert!(same_bits(&got, want), "{name}, {n} examples");
        }
    }

    #[test]
    fn inference_over_a_shared_net_is_predict_bit_for_bit() {
        for activation in [Activation::Relu, Activation::Sigmoid, Activation::Tanh] {
            let spec = MultiLayerNet::new(20, &[16, 12], 5).activation(activation);
            infers_as_it_predicts(&format!("{activation} MLP"), spec.build(1).unwrap(), &[20]);
        }
        for scaling in [DropoutScaling::Inverted, DropoutScaling::Textbook] {
            let spec = MultiLayerNet::new(20, &[16, 12], 5)
                .batchnorm(true)
                .dropout(0.3)
                .dropout_scaling(scaling);
            let name = format!("BatchNorm and {scaling} Dropout MLP");
            infers_as_it_predicts(&name, spec.build(2).unwrap(), &[20]);
        }
        let mnist = [1, 28, 28];
        let simple = SimpleConvNet::new(mnist, 10).build(3).unwrap();
        infers_as_it_predicts("SimpleConvNet", simple, &mnist);
        let deep = DeepConvNet::new(mnist, 10).build(4).unwrap();
        infers_as_it_predicts("DeepConvNet", deep, &mnist);
        let spec = NetSpec::from_toml(
            r#"
            layers = [
              { type = "Convolution", filter_num = 6, filter_size = 5, stride = 2, pad = 2 },
              { type = "BatchNorm" },
              { type = "Relu" },
              { type = "Convolution", filter_num = 9, filter_size = 3, stride = 2, pad = 2 },
              { type = "Tanh" },
              { type = "MaxPooling", pool_h = 3, pool_w = 3, stride = 1, pad = 1 },
              { type = "Dropout", dropout_ratio = 0.3, scaling = "textbook" },
              { type = "Flatten" },
              { type = "Affine", units = 20 },
              { type = "Sigmoid" },
              { type = "Affine" },
            ]
            "#,
        )
        .unwrap()
        .for_data(&[3, 13, 11], 4)
        .unwrap();
        infers_as_it_predicts("strided NetSpec", spec.build(5).unwrap(), &[3, 13, 11]);
        // The textbook's im2col, which a convolution may be set to.
        let mut conv = Convolution::<f32>::from_params(
            random_tensor(&[4, 3, 3, 3], 0.5, 6).cast(),
            random_tensor(&[4], 0.5, 7).cast(),
            2,
            1,
        );
        conv.algorithm = Algorithm::Im2col;
        let layers: Vec<Box<dyn Layer<f32>>> = vec![
            Box::new(conv),
            Box::new(Relu::new()),
            Box::new(MaxPooling::new(2, 2, 2, 0)),
            Box::new(Affine::<f32>::from_params(
                random_tensor(&[16, 3], 0.5, 8).cast(),
                Tensor::zeros(&[3]),
            )),
        ];
        infers_as_it_predicts("im2col", Network::new(layers, 0.0), &[3, 9, 9]);
    }

    /// The trainer's order (pooling before ReLU, a convolution's ReLU in the
    /// convolution, no Flatten before Affine) against the chain's: the same
    /// loss and gradients (equal values; a zero may change sign), and
    /// backpropagation against central differences in that order too.
    #[test]
    fn the_fast_order_gives_the_chains_loss_and_gradients() {
        let spec = NetSpec::from_toml(
            r#"
            layers = [
              { type = "Convolution", filter_num = 4, filter_size = 3, stride = 1, pad = 1 },
              { type = "Relu" },
              { type = "MaxPooling", pool_h = 2, pool_w = 2, stride = 2 },
              { type = "Convolution", filter_num = 5, filter_size = 3, stride = 1, pad = 1 },
              { type = "Relu" },
              { type = "Convolution", filter_num = 5, filter_size = 3, stride = 1, pad = 1 },
              { type = "Relu" },
              { type = "MaxPooling", pool_h = 3, pool_w = 3, stride = 1, pad = 1 },
              { type = "Relu" },
              { type = "Flatten" },
              { type = "Affine", units = 6 },
              { type = "Relu" },
              { type = "Affine" },
            ]
            "#,
        )
        .unwrap()
        .for_data(&[2, 9, 9], 3)
        .unwrap();
        let mut chain: Network<f64> = spec.build(7).unwrap();
        crate::gradcheck::randomize_biases(&mut chain, 8);
        let mut pooled = chain.clone();
        pooled.set_fast_order(true);
        let x = random_tensor(&[3, 2, 9, 9], 1.0, 9);
        let t = [0, 2, 1];
        let want = chain.gradient(&x, Labels::Index(&t)).unwrap();
        let got = pooled.gradient(&x, Labels::Index(&t)).unwrap();
        assert_eq!(pooled.order, [0, 2, 1, 3, 5, 7, 6, 8, 10, 11, 12]);
        assert_eq!(got, want);
        for (a, b) in pooled.params().iter().zip(&chain.params()) {
            assert_eq!(a.grad.data(), b.grad.data(), "d{}", a.name);
        }
        let report =
            crate::gradcheck::check_network(&mut pooled, &x, Labels::Index(&t), "pooled").unwrap();
        assert!(report.passed(1e-6), "{report}");
    }

    #[test]
    fn inference_checks_the_input_as_predict_does() {
        let mut net = mlp();
        let mut scratch = NetScratch::new();
        let wrong = Tensor::from_vec(&[2, 5], vec![0.1; 10]).unwrap();
        assert_eq!(
            net.infer(&wrong, &mut scratch).unwrap_err(),
            net.predict(&wrong, false).unwrap_err()
        );
        let empty = Tensor::zeros(&[0, 4]);
        assert_eq!(
            net.infer(&empty, &mut scratch).unwrap_err(),
            InputError::EmptyBatch
        );
        // A shape that passed is remembered by the scratch, not the net; a
        // wrong one after it is still refused.
        let x = Tensor::from_vec(&[1, 2, 2], vec![0.1; 4]).unwrap();
        assert_eq!(net.infer(&x, &mut scratch).unwrap().shape(), &[1, 3]);
        assert!(net.infer(&wrong, &mut scratch).is_err());
        assert!(net.checked.is_none());
        // The same scratch handed to a net that takes 5 values checks again:
        // the shape that passed the first net is an error here, not a panic.
        let other = MultiLayerNet::new(5, &[3], 3).build::<f64>(1).unwrap();
        assert!(net.infer(&x, &mut scratch).is_ok());
        assert!(matches!(
            other.infer(&x, &mut scratch),
            Err(InputError::Shape { .. })
        ));
        assert_eq!(other.infer(&wrong, &mut scratch).unwrap().shape(), &[2, 3]);
    }

    #[test]
    fn input_of_the_wrong_shape_is_an_error_naming_both_shapes() {
        let mut net = mlp();
        let x = Tensor::from_vec(&[2, 5], vec![0.1; 10]).unwrap();
        let e = net.predict(&x, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Affine (layer 1) expects 4 values per example, found examples of shape [5]"
        );
        let mut cnn = SimpleConvNet::new([1, 8, 8], 3).build::<f64>(0).unwrap();
        let e = cnn.predict(&x, false).unwrap_err().to_string();
        assert!(
            e.starts_with("Convolution (layer 1) expects (C, H, W) images"),
            "{e}"
        );
        // The same net still takes what fits, and examples of any layout with
        // the right number of values (Affine flattens, as in the textbook).
        let ok = Tensor::from_vec(&[1, 2, 2], vec![0.1; 4]).unwrap();
        assert_eq!(net.predict(&ok, false).unwrap().shape(), &[1, 3]);
    }

    #[test]
    fn a_chain_whose_layers_do_not_fit_each_other_is_an_error() {
        let mut layers = mlp().layers;
        layers.push(Box::new(crate::layers::Affine::from_params(
            Tensor::zeros(&[7, 2]),
            Tensor::zeros(&[2]),
        )));
        let mut net = Network::new(layers, 0.0);
        let e = net.check_input(&[4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Affine (layer 4) expects 7 values per example, found examples of shape [3] (the output of the layer before it)"
        );
        assert_eq!(
            Network::<f64>::new(Vec::new(), 0.0).check_input(&[4]),
            Err(InputError::NoLayers)
        );
    }

    #[test]
    fn labels_that_do_not_fit_are_errors() {
        let mut net = mlp();
        let x = Tensor::from_vec(&[2, 4], vec![0.1; 8]).unwrap();
        assert_eq!(
            net.loss(&x, Labels::Index(&[0, 3]), true),
            Err(InputError::LabelOutOfRange {
                example: 1,
                label: 3,
                classes: 3
            })
        );
        assert_eq!(
            net.gradient(&x, Labels::Index(&[0])),
            Err(InputError::LabelCount { labels: 1, rows: 2 })
        );
        let one_hot = Tensor::zeros(&[2, 4]);
        assert!(matches!(
            net.accuracy(&x, Labels::OneHot(&one_hot)),
            Err(InputError::OneHotShape { .. })
        ));
        let empty = Tensor::zeros(&[0, 4]);
        assert_eq!(
            net.numerical_gradient(&empty, Labels::Index(&[]))
                .unwrap_err(),
            InputError::EmptyBatch
        );
        // After all those refusals the net still works.
        assert!(net.gradient(&x, Labels::Index(&[0, 2])).unwrap() > 0.0);
    }

    #[test]
    fn specs_that_cannot_be_built_are_errors() {
        let e = MultiLayerNet::new(4, &[5, 0], 3)
            .build::<f32>(0)
            .unwrap_err();
        assert!(e.to_string().contains("sizes must be positive"), "{e}");
        let e = SimpleConvNet::new([1, 2, 2], 3)
            .build::<f32>(0)
            .unwrap_err();
        assert!(
            e.to_string().contains("does not fit its input [1, 2, 2]"),
            "{e}"
        );
    }
}
