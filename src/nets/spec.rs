//! One description of a net, [`NetSpec`]: the chain of layers from input to
//! class scores, each a [`LayerSpec`], with the weight init and the weight
//! decay. The same schema is written by hand in TOML (`--net FILE.toml`,
//! `nets/*.toml`) and kept as JSON in every checkpoint's `net` metadata; the
//! textbook's nets ([`super::MultiLayerNet`], [`super::SimpleConvNet`],
//! [`super::DeepConvNet`]) are instances of it.
//!
//! A file need not say what the data decides: [`NetSpec::for_data`] fills in
//! the input shape and the size of the last Affine (one score per class).
//! Every size is checked with checked arithmetic before anything is
//! allocated, so a spec read from a file or a checkpoint cannot ask for more
//! than it is refused.
//!
//! ```
//! use backprop::nets::NetSpec;
//! let spec = NetSpec::from_toml(r#"
//!     weight_init_std = "he"
//!     layers = [
//!       { type = "Convolution", filter_num = 8, filter_size = 3, pad = 1 },
//!       { type = "Relu" },
//!       { type = "MaxPooling", pool_h = 2, pool_w = 2 },
//!       { type = "Affine", units = 32 },
//!       { type = "Relu" },
//!       { type = "Affine" },
//!     ]
//! "#).unwrap();
//! let spec = spec.for_data(&[1, 28, 28], 10).unwrap();
//! let net = spec.build::<f32>(42).unwrap();
//! assert_eq!(net.parameter_count(), (8 * 9 + 8) + (8 * 14 * 14 * 32 + 32) + (32 * 10 + 10));
//! ```

use std::fmt;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{DeepConvNet, MultiLayerNet, Network, SimpleConvNet, WeightInit};
use crate::layers::convolution::output_size;
use crate::layers::{
    Affine, BatchNorm, Convolution, Dropout, DropoutScaling, Flatten, Layer, MaxPooling, Relu,
    Sigmoid, Tanh, check_dropout_ratio,
};
use crate::tensor::{Float, Tensor};

/// Largest per-example buffer a convolution may need (its im2col matrix or its
/// output), in values. A checkpoint's padding and stride are not trusted: a
/// 1x1 filter with a padding of a million would ask for terabytes at the first
/// prediction. The textbook's nets on MNIST need at most 112,896
/// (DeepConvNet's second convolution); 2^22 leaves room for colour images.
pub const MAX_CONV_VALUES: usize = 1 << 22;

/// A net that cannot be built: a size that does not fit its input, a setting
/// out of range, a chain that does not end in class scores.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}{reason}", if net.is_empty() { String::new() } else { format!("{net}: ") })]
pub struct SpecError {
    /// What was being built: "MultiLayerNet", a file name; empty for a net
    /// the context names.
    pub net: String,
    pub reason: String,
}

impl SpecError {
    pub fn new(net: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError {
            net: net.into(),
            reason: reason.into(),
        }
    }
}

fn he() -> WeightInit {
    WeightInit::He
}

fn one() -> usize {
    1
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

/// A net: its layers in order, ending in class scores (SoftmaxWithLoss
/// follows; it is not listed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// One example's shape, `[C, H, W]` for images or `[D]` for vectors; a
    /// file may leave it to the data ([`NetSpec::for_data`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<Vec<usize>>,
    /// How the weights of Affine and Convolution layers start (the layer's own
    /// `weight_init_std` overrides it): "he", "xavier" or a standard deviation.
    #[serde(default = "he")]
    pub weight_init_std: WeightInit,
    /// L2 weight decay: `0.5 * lambda * Σ W²` in the loss, `lambda * W` in dW.
    #[serde(default)]
    pub weight_decay_lambda: f64,
    pub layers: Vec<LayerSpec>,
}

/// One layer of a [`NetSpec`], named as the library's layer types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum LayerSpec {
    /// `y = x · W + b` on the flattened input. `units` may be left out on the
    /// last Affine: one per class of the data.
    Affine {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        units: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight_init_std: Option<WeightInit>,
    },
    /// `filter_num` square filters of `filter_size`, with `stride` and zero
    /// padding `pad` (the textbook's `conv_param`).
    Convolution {
        filter_num: usize,
        filter_size: usize,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        stride: usize,
        #[serde(default, skip_serializing_if = "is_zero")]
        pad: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight_init_std: Option<WeightInit>,
    },
    /// The largest value in each `pool_h x pool_w` window, moved by `stride`
    /// (default: the window, so windows do not overlap, as PyTorch's).
    MaxPooling {
        pool_h: usize,
        pool_w: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        #[serde(default, skip_serializing_if = "is_zero")]
        pad: usize,
    },
    /// Normalises every input value over the batch (the textbook's
    /// BatchNormalization, per feature of the flattened input).
    BatchNorm {},
    Dropout {
        dropout_ratio: f64,
        #[serde(default, skip_serializing_if = "DropoutScaling::is_inverted")]
        scaling: DropoutScaling,
    },
    Relu {},
    Sigmoid {},
    Tanh {},
    /// `(C, H, W)` to `C·H·W` values.
    Flatten {},
}

impl LayerSpec {
    /// The library's name of the layer type.
    pub fn name(&self) -> &'static str {
        match self {
            LayerSpec::Affine { .. } => "Affine",
            LayerSpec::Convolution { .. } => "Convolution",
            LayerSpec::MaxPooling { .. } => "MaxPooling",
            LayerSpec::BatchNorm {} => "BatchNorm",
            LayerSpec::Dropout { .. } => "Dropout",
            LayerSpec::Relu {} => "Relu",
            LayerSpec::Sigmoid {} => "Sigmoid",
            LayerSpec::Tanh {} => "Tanh",
            LayerSpec::Flatten {} => "Flatten",
        }
    }
}

impl fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerSpec::Affine { units: Some(u), .. } => write!(f, "Affine {u}"),
            LayerSpec::Convolution {
                filter_num,
                filter_size,
                stride,
                pad,
                ..
            } => {
                write!(f, "Convolution {filter_num}x{filter_size}x{filter_size}")?;
                if *stride > 1 {
                    write!(f, " stride {stride}")?;
                }
                if *pad > 0 {
                    write!(f, " pad {pad}")?;
                }
                Ok(())
            }
            LayerSpec::MaxPooling { pool_h, pool_w, .. } => {
                write!(f, "MaxPooling {pool_h}x{pool_w}")
            }
            LayerSpec::Dropout { dropout_ratio, .. } => write!(f, "Dropout {dropout_ratio}"),
            other => f.write_str(other.name()),
        }
    }
}

/// What one layer of a spec makes: its output, its tensors and its cost.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSummary {
    /// Position in the chain from 0: the module index in PyTorch's names.
    pub index: usize,
    pub name: &'static str,
    /// One example's output shape.
    pub output_shape: Vec<usize>,
    /// Parameters and buffers as a checkpoint names and shapes them
    /// (PyTorch's `state_dict`: Affine's weight is (out, in)).
    pub tensors: Vec<(String, Vec<usize>)>,
    /// Learnable values (BatchNorm's running statistics are not).
    pub params: usize,
    /// Multiply-adds per example in the layer's products (Affine, Convolution).
    pub macs: usize,
}

/// A whole net's layers, shapes, parameter counts and cost, as Keras's
/// `summary()` and torchsummary print them ([`NetSpec::summary`],
/// [`Network::summary`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NetSummary {
    pub input_shape: Vec<usize>,
    pub layers: Vec<LayerSummary>,
}

impl NetSummary {
    /// Learnable values.
    pub fn params(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// Multiply-adds per example in the forward pass.
    pub fn macs(&self) -> usize {
        self.layers.iter().map(|l| l.macs).sum()
    }

    /// Values every layer outputs for one example.
    pub fn activations(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.output_shape.iter().product::<usize>())
            .sum()
    }

    /// Bytes (f32) a training step on `batch` examples needs about: the
    /// parameters with their gradients and two optimizer slots (Adam's), and
    /// per example the input and every layer's output and its gradient.
    pub fn training_bytes(&self, batch: usize) -> u128 {
        let per_example = self.input_shape.iter().product::<usize>() + 2 * self.activations();
        4 * (4 * self.params() as u128 + batch as u128 * per_example as u128)
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u128) -> String {
    format!("{:.2} MiB", bytes as f64 / f64::from(1u32 << 20))
}

impl fmt::Display for NetSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = |s: &[usize]| {
            let dims: Vec<String> = s.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        };
        let line = |index: &str, name: &str, out: &[usize], counts: Option<(usize, usize)>| {
            let counts = counts.map_or_else(String::new, |(p, m)| {
                format!("{:>14} {:>16}", grouped(p as u128), grouped(m as u128))
            });
            let text = format!("{index:<4} {name:<16} {:<18} {counts}", shape(out));
            text.trim_end().to_owned()
        };
        let rule = "-".repeat(72);
        writeln!(
            f,
            "{:<4} {:<16} {:<18} {:>14} {:>16}",
            "#", "layer", "output shape", "parameters", "multiply-adds"
        )?;
        writeln!(f, "{rule}")?;
        writeln!(f, "{}", line("", "input", &self.input_shape, None))?;
        for l in &self.layers {
            let counts = Some((l.params, l.macs));
            writeln!(
                f,
                "{}",
                line(&l.index.to_string(), l.name, &l.output_shape, counts)
            )?;
        }
        let scores = self.layers.last().map_or(&[][..], |l| &l.output_shape[..]);
        writeln!(f, "{}", line("", "SoftmaxWithLoss", scores, None))?;
        writeln!(f, "{rule}")?;
        let params = self.params() as u128;
        writeln!(
            f,
            "parameters: {} ({} in f32)",
            grouped(params),
            mib(4 * params)
        )?;
        writeln!(
            f,
            "multiply-adds per example: {}",
            grouped(self.macs() as u128)
        )?;
        writeln!(
            f,
            "activations per example: {} values ({} in f32)",
            grouped(self.activations() as u128),
            mib(4 * self.activations() as u128)
        )?;
        write!(
            f,
            "a training step on a batch of 100 needs about {} (weights, gradients and Adam's \
             moments; inputs, outputs and their gradients)",
            mib(self.training_bytes(100))
        )
    }
}

impl fmt::Display for NetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                f.write_str(" - ")?;
            }
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

impl NetSpec {
    /// Parses the TOML form (see `nets/*.toml`). Unknown layer types and keys
    /// are errors, with the line they are on.
    pub fn from_toml(text: &str) -> Result<NetSpec, SpecError> {
        toml::from_str(text).map_err(|e| {
            // One line: where, then what (toml's own message draws the line).
            let at = e.span().map_or_else(String::new, |span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: ")
            });
            SpecError::new("", format!("{at}{}", e.message().trim_end()))
        })
    }

    /// Parses the JSON form a checkpoint keeps, including the older form of the
    /// textbook's nets (`{"kind": "mlp", ...}`, format version 1).
    pub fn from_json(text: &str) -> Result<NetSpec, SpecError> {
        #[derive(Deserialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        enum Textbook {
            Mlp(MultiLayerNet),
            SimpleCnn(SimpleConvNet),
            DeepCnn(DeepConvNet),
        }
        let error = |e: serde_json::Error| SpecError::new("", e.to_string());
        let value: serde_json::Value = serde_json::from_str(text).map_err(error)?;
        if value.get("kind").is_some() {
            return Ok(match serde_json::from_value(value).map_err(error)? {
                Textbook::Mlp(m) => m.spec(),
                Textbook::SimpleCnn(s) => s.spec(),
                Textbook::DeepCnn(d) => d.spec(),
            });
        }
        serde_json::from_value(value).map_err(error)
    }

    /// Reads a net file: TOML, or JSON (a checkpoint's `net`) if it ends in `.json`.
    pub fn load(path: &Path) -> Result<NetSpec, SpecError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SpecError::new(&name, format!("cannot read it: {e}")))?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            NetSpec::from_json(&text)
        } else {
            NetSpec::from_toml(&text)
        };
        parsed.map_err(|e| SpecError::new(&name, e.reason))
    }

    /// The TOML form, as `nets/*.toml` are written.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a NetSpec is TOML")
    }

    /// The spec with what the data decides filled in: the input shape (which
    /// must agree with one the spec names) and the last Affine's units (one
    /// per class, which must agree with units it names).
    pub fn for_data(mut self, input_shape: &[usize], classes: usize) -> Result<NetSpec, SpecError> {
        let error = |reason: String| SpecError::new("", reason);
        match &self.input_shape {
            Some(s) if s.as_slice() != input_shape => {
                return Err(error(format!(
                    "it takes inputs of shape {s:?}, the data's examples are {input_shape:?}"
                )));
            }
            _ => self.input_shape = Some(input_shape.to_vec()),
        }
        let last = self
            .layers
            .iter_mut()
            .rev()
            .find_map(|l| match l {
                LayerSpec::Affine { units, .. } => Some(units),
                _ => None,
            })
            .ok_or_else(|| error(ends_in_scores()))?;
        match last {
            Some(u) if *u != classes => {
                return Err(error(format!(
                    "its last Affine gives {u} scores, but the data has {classes} classes: \
                     leave out its `units` to get one per class"
                )));
            }
            _ => *last = Some(classes),
        }
        Ok(self)
    }

    /// Every layer's output shape, tensors and cost, or why the chain cannot
    /// be built. Counts in checked arithmetic and allocates in proportion to
    /// the number of layers only.
    pub fn summary(&self) -> Result<NetSummary, SpecError> {
        let error = |reason: String| SpecError::new("", reason);
        let Some(input) = &self.input_shape else {
            return Err(error(
                "its input shape is unknown: train it on data, or give input_shape".into(),
            ));
        };
        if input.is_empty() || input.contains(&0) {
            return Err(error(format!(
                "input_shape {input:?} must have positive sizes"
            )));
        }
        if !(self.weight_decay_lambda >= 0.0 && self.weight_decay_lambda.is_finite()) {
            return Err(error(format!(
                "the weight decay must be zero or positive, got {}",
                self.weight_decay_lambda
            )));
        }
        let overflow = || "sizes overflow".to_string();
        let mut shape = input.clone();
        let mut rows = Vec::with_capacity(self.layers.len());
        for (index, layer) in self.layers.iter().enumerate() {
            let at =
                |reason: String| error(format!("{} (layer {}): {reason}", layer.name(), index + 1));
            let values = shape
                .iter()
                .try_fold(1usize, |p, &d| p.checked_mul(d))
                .ok_or_else(|| at(overflow()))?;
            let tensor = |name: &str, dims: Vec<usize>| (format!("{index}.{name}"), dims);
            let mut row = LayerSummary {
                index,
                name: layer.name(),
                output_shape: shape.clone(),
                tensors: Vec::new(),
                params: 0,
                macs: 0,
            };
            match layer {
                LayerSpec::Affine { units, .. } => {
                    let units =
                        units.ok_or_else(|| {
                            at("`units` is missing (only the last Affine may leave it to the data)"
                            .into())
                        })?;
                    if units == 0 {
                        return Err(at("`units` must be at least 1".into()));
                    }
                    let weights = values.checked_mul(units).ok_or_else(|| at(overflow()))?;
                    row.output_shape = vec![units];
                    row.tensors = vec![
                        tensor("weight", vec![units, values]),
                        tensor("bias", vec![units]),
                    ];
                    row.params = weights.checked_add(units).ok_or_else(|| at(overflow()))?;
                    row.macs = weights;
                }
                LayerSpec::Convolution {
                    filter_num,
                    filter_size,
                    stride,
                    pad,
                    ..
                } => {
                    let &[c, h, w] = shape.as_slice() else {
                        return Err(at(format!(
                            "expects (C, H, W) images, found examples of shape {shape:?}"
                        )));
                    };
                    let (n, k) = (*filter_num, *filter_size);
                    if n == 0 || k == 0 || *stride == 0 {
                        return Err(at(format!(
                            "filter_num {n}, filter_size {k} and stride {stride} must be at least 1"
                        )));
                    }
                    let (Some(oh), Some(ow)) = (
                        output_size(h, k, *stride, *pad),
                        output_size(w, k, *stride, *pad),
                    ) else {
                        return Err(at(format!(
                            "a {k}x{k} filter with pad {pad} does not fit its input {shape:?}"
                        )));
                    };
                    let positions = oh.checked_mul(ow);
                    let taps = c.checked_mul(k).and_then(|v| v.checked_mul(k));
                    let columns = positions.zip(taps).and_then(|(p, t)| p.checked_mul(t));
                    let out = positions.and_then(|p| p.checked_mul(n));
                    match (columns, out) {
                        (Some(a), Some(b)) if a <= MAX_CONV_VALUES && b <= MAX_CONV_VALUES => {}
                        _ => {
                            return Err(at(format!(
                                "on input {shape:?} it needs buffers of more than {MAX_CONV_VALUES} values per example"
                            )));
                        }
                    }
                    let taps = taps.ok_or_else(|| at(overflow()))?;
                    let weights = taps.checked_mul(n).ok_or_else(|| at(overflow()))?;
                    row.output_shape = vec![n, oh, ow];
                    row.tensors = vec![tensor("weight", vec![n, c, k, k]), tensor("bias", vec![n])];
                    row.params = weights.checked_add(n).ok_or_else(|| at(overflow()))?;
                    row.macs = out
                        .and_then(|o| o.checked_mul(taps))
                        .ok_or_else(|| at(overflow()))?;
                }
                LayerSpec::MaxPooling {
                    pool_h,
                    pool_w,
                    stride,
                    pad,
                } => {
                    let &[c, h, w] = shape.as_slice() else {
                        return Err(at(format!(
                            "expects (C, H, W) maps, found examples of shape {shape:?}"
                        )));
                    };
                    let s = stride.unwrap_or(*pool_h);
                    if *pool_h == 0 || *pool_w == 0 || s == 0 {
                        return Err(at("the window and the stride must be at least 1".into()));
                    }
                    if *pad >= *pool_h || *pad >= *pool_w {
                        return Err(at(format!(
                            "pad {pad} must be smaller than the window {pool_h}x{pool_w}"
                        )));
                    }
                    let (Some(oh), Some(ow)) = (
                        output_size(h, *pool_h, s, *pad),
                        output_size(w, *pool_w, s, *pad),
                    ) else {
                        return Err(at(format!(
                            "a {pool_h}x{pool_w} window is larger than its input {shape:?}"
                        )));
                    };
                    row.output_shape = vec![c, oh, ow];
                }
                LayerSpec::BatchNorm {} => {
                    row.tensors = ["weight", "bias", "running_mean", "running_var"]
                        .into_iter()
                        .map(|n| tensor(n, vec![values]))
                        .collect();
                    row.params = values.checked_mul(2).ok_or_else(|| at(overflow()))?;
                }
                LayerSpec::Dropout { dropout_ratio, .. } => {
                    check_dropout_ratio(*dropout_ratio).map_err(at)?;
                }
                LayerSpec::Flatten {} => row.output_shape = vec![values],
                LayerSpec::Relu {} | LayerSpec::Sigmoid {} | LayerSpec::Tanh {} => {}
            }
            shape = row.output_shape.clone();
            rows.push(row);
        }
        // SoftmaxWithLoss turns scores into probabilities: the chain must end
        // in them, from an Affine (a Dropout after it changes no shape).
        let last = self
            .layers
            .iter()
            .rposition(|l| !matches!(l, LayerSpec::Dropout { .. }))
            .map(|i| &self.layers[i]);
        if !matches!(last, Some(LayerSpec::Affine { .. })) || shape.len() != 1 || shape[0] < 2 {
            return Err(error(match last {
                Some(l) if !matches!(l, LayerSpec::Affine { .. }) => {
                    format!("{} (its last layer is {})", ends_in_scores(), l.name())
                }
                _ => ends_in_scores(),
            }));
        }
        Ok(NetSummary {
            input_shape: input.clone(),
            layers: rows,
        })
    }

    /// Whether the net can be built.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.summary().map(|_| ())
    }

    /// Learnable values in the net.
    pub fn parameter_count(&self) -> Result<usize, SpecError> {
        Ok(self.summary()?.params())
    }

    /// Builds the net with weights drawn from a generator seeded with `seed`:
    /// each Affine and Convolution in turn draws its `W` from a Gaussian with
    /// the standard deviation of its init for its fan-in; biases start at 0.
    pub fn build<T: Float>(&self, seed: u64) -> Result<Network<T>, SpecError> {
        let summary = self.summary()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut shape = self.input_shape.clone().expect("checked by summary");
        let mut dropouts = 0u64;
        let mut layers: Vec<Box<dyn Layer<T>>> = Vec::with_capacity(self.layers.len());
        for (spec, row) in self.layers.iter().zip(&summary.layers) {
            let values: usize = shape.iter().product();
            let init = |own: &Option<WeightInit>| own.unwrap_or(self.weight_init_std);
            layers.push(match spec {
                LayerSpec::Affine {
                    units,
                    weight_init_std,
                } => {
                    let units = units.expect("checked by summary");
                    let w = Tensor::randn(
                        &[values, units],
                        init(weight_init_std).std(values),
                        &mut rng,
                    );
                    Box::new(Affine::from_params(w, Tensor::zeros(&[units])))
                }
                LayerSpec::Convolution {
                    filter_num,
                    filter_size,
                    stride,
                    pad,
                    weight_init_std,
                } => {
                    let (c, k) = (shape[0], *filter_size);
                    let w = Tensor::randn(
                        &[*filter_num, c, k, k],
                        init(weight_init_std).std(c * k * k),
                        &mut rng,
                    );
                    Box::new(Convolution::from_params(
                        w,
                        Tensor::zeros(&[*filter_num]),
                        *stride,
                        *pad,
                    ))
                }
                LayerSpec::MaxPooling {
                    pool_h,
                    pool_w,
                    stride,
                    pad,
                } => Box::new(MaxPooling::new(
                    *pool_h,
                    *pool_w,
                    stride.unwrap_or(*pool_h),
                    *pad,
                )),
                LayerSpec::BatchNorm {} => Box::new(BatchNorm::new(values)),
                LayerSpec::Dropout {
                    dropout_ratio,
                    scaling,
                } => {
                    // Each Dropout its own mask stream; the trainer reseeds
                    // every replica's anyway.
                    let stream = seed ^ (0xd50_u64 << 32 | dropouts);
                    dropouts += 1;
                    Box::new(Dropout::with_scaling(*dropout_ratio, stream, *scaling))
                }
                LayerSpec::Relu {} => Box::new(Relu::new()),
                LayerSpec::Sigmoid {} => Box::new(Sigmoid::new()),
                LayerSpec::Tanh {} => Box::new(Tanh::new()),
                LayerSpec::Flatten {} => Box::new(Flatten::new()),
            });
            shape.clone_from(&row.output_shape);
        }
        let mut net = Network::new(layers, self.weight_decay_lambda);
        net.spec = Some(self.clone());
        Ok(net)
    }

    /// The spec of a net built in code from the library's layers, for
    /// `input_shape` (a layer type of the user's own cannot be described, and
    /// the error names it). Weights start as the default He init if rebuilt.
    pub fn from_layers<T: Float>(
        layers: &[Box<dyn Layer<T>>],
        weight_decay_lambda: f64,
        input_shape: &[usize],
    ) -> Result<NetSpec, SpecError> {
        let layers = layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                l.spec().ok_or_else(|| {
                    SpecError::new(
                        "",
                        format!(
                            "layer {} ({}) is not one of the library's layer types, so a \
                             checkpoint cannot describe it",
                            i + 1,
                            l.name()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let spec = NetSpec {
            input_shape: Some(input_shape.to_vec()),
            weight_init_std: WeightInit::He,
            weight_decay_lambda,
            layers,
        };
        spec.validate()?;
        Ok(spec)
    }
}

fn ends_in_scores() -> String {
    "the chain must end in class scores: an Affine layer (optionally followed by Dropout) \
     with at least 2 outputs, one per class"
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Labels;

    fn toml(text: &str) -> Result<NetSpec, SpecError> {
        NetSpec::from_toml(text)
    }

    #[test]
    fn toml_and_json_are_one_schema() {
        let spec = toml(
            r#"
            weight_init_std = 0.01
            weight_decay_lambda = 0.1
            layers = [
              { type = "Convolution", filter_num = 4, filter_size = 3, stride = 2, pad = 1, weight_init_std = "he" },
              { type = "BatchNorm" },
              { type = "Tanh" },
              { type = "MaxPooling", pool_h = 2, pool_w = 2, stride = 1 },
              { type = "Flatten" },
              { type = "Affine", units = 7 },
              { type = "Sigmoid" },
              { type = "Dropout", dropout_ratio = 0.25, scaling = "textbook" },
              { type = "Affine" },
              { type = "Dropout", dropout_ratio = 0.5 },
            ]
            "#,
        )
        .unwrap();
        assert_eq!(spec.weight_init_std, WeightInit::Std(0.01));
        let spec = spec.for_data(&[3, 9, 9], 4).unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(NetSpec::from_json(&json).unwrap(), spec);
        assert_eq!(NetSpec::from_toml(&spec.to_toml()).unwrap(), spec);
        let rows = spec.summary().unwrap().layers;
        let shapes: Vec<&[usize]> = rows.iter().map(|r| r.output_shape.as_slice()).collect();
        assert_eq!(
            shapes,
            [
                &[4, 5, 5][..],
                &[4, 5, 5],
                &[4, 5, 5],
                &[4, 4, 4],
                &[64],
                &[7],
                &[7],
                &[7],
                &[4],
                &[4]
            ]
        );
        let net = spec.build::<f64>(1).unwrap();
        let names: Vec<_> = net.layers.iter().map(|l| l.name()).collect();
        let spec_names: Vec<_> = spec.layers.iter().map(LayerSpec::name).collect();
        assert_eq!(names, spec_names);
        assert_eq!(
            net.parameter_count(),
            spec.parameter_count().unwrap(),
            "{rows:?}"
        );
    }

    #[test]
    fn unknown_layers_and_keys_are_named() {
        let e = toml(r#"layers = [{ type = "Convolutoin", filter_num = 1, filter_size = 1 }]"#)
            .unwrap_err();
        assert!(e.reason.contains("Convolutoin"), "{e}");
        let e = toml(r#"layers = [{ type = "Affine", unit = 3 }]"#).unwrap_err();
        assert!(e.reason.contains("unit"), "{e}");
        let e = toml("layer = []").unwrap_err();
        assert!(e.reason.contains("layer"), "{e}");
        let e = toml(r#"layers = [{ type = "Relu", size = 3 }]"#).unwrap_err();
        assert!(e.reason.contains("size"), "{e}");
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused_before_building() {
        let with = |layers: &str| {
            toml(&format!("layers = [{layers}]"))
                .unwrap()
                .for_data(&[1, 6, 6], 3)
                .and_then(|s| s.validate().map(|()| s))
        };
        let e = with(r#"{ type = "MaxPooling", pool_h = 7, pool_w = 7 }, { type = "Affine" }"#)
            .unwrap_err();
        assert!(
            e.reason.contains("MaxPooling (layer 1)") && e.reason.contains("larger"),
            "{e}"
        );
        let e = with(
            r#"{ type = "Convolution", filter_num = 2, filter_size = 9 }, { type = "Affine" }"#,
        )
        .unwrap_err();
        assert!(e.reason.contains("does not fit"), "{e}");
        let e = with(r#"{ type = "Affine", units = 3 }, { type = "Relu" }"#).unwrap_err();
        assert!(
            e.reason.contains("must end in class scores") && e.reason.contains("Relu"),
            "{e}"
        );
        let e = with(r#"{ type = "Flatten" }, { type = "Affine", units = 4 }"#).unwrap_err();
        assert!(
            e.reason.contains("4 scores") && e.reason.contains("3 classes"),
            "{e}"
        );
        let e = with(r#"{ type = "Affine" }, { type = "Relu" }, { type = "Affine" }"#).unwrap_err();
        assert!(e.reason.contains("`units` is missing"), "{e}");
        let e = with(r#"{ type = "Affine", units = 4 }, { type = "Convolution", filter_num = 1, filter_size = 1 }, { type = "Affine" }"#)
            .unwrap_err();
        assert!(e.reason.contains("expects (C, H, W)"), "{e}");
        let e =
            with(r#"{ type = "Dropout", dropout_ratio = 1.0 }, { type = "Affine" }"#).unwrap_err();
        assert!(e.reason.contains("dropout ratio"), "{e}");
        // Four billion units are described, not allocated; a padding of a
        // million is refused by the buffer cap; products that overflow are
        // errors, not wraps.
        let huge = with(r#"{ type = "Affine", units = 4000000000 }, { type = "Affine" }"#).unwrap();
        assert_eq!(
            huge.summary().unwrap().layers[0].tensors[0].1,
            [4_000_000_000, 36]
        );
        let e = with(r#"{ type = "Convolution", filter_num = 1, filter_size = 1, pad = 1000000 }, { type = "Affine" }"#)
            .unwrap_err();
        assert!(e.reason.contains("more than 4194304 values"), "{e}");
        let e = with(&format!(
            r#"{{ type = "Affine", units = {} }}, {{ type = "Affine", units = {} }}, {{ type = "Affine" }}"#,
            1u64 << 40,
            1u64 << 40
        ))
        .unwrap_err();
        assert!(e.reason.contains("overflow"), "{e}");
    }

    #[test]
    fn a_net_built_in_code_describes_itself() {
        let spec = MultiLayerNet::new(4, &[3], 2)
            .batchnorm(true)
            .dropout(0.2)
            .spec();
        let net = spec.build::<f64>(1).unwrap();
        let derived = NetSpec::from_layers(&net.layers, 0.0, &[4]).unwrap();
        assert_eq!(derived.layers, spec.layers);
        assert_eq!(derived.input_shape, spec.input_shape);
    }

    #[test]
    fn a_spec_net_computes_a_loss() {
        let spec = toml(
            r#"layers = [{ type = "Affine", units = 3 }, { type = "Relu" }, { type = "Affine" }]"#,
        )
        .unwrap()
        .for_data(&[2], 2)
        .unwrap();
        let mut net = spec.build::<f64>(0).unwrap();
        let x = Tensor::from_vec(&[1, 2], vec![0.5, -1.0]).unwrap();
        assert!(net.loss(&x, Labels::Index(&[1]), false).unwrap() > 0.0);
    }

    /// The repository's `nets/*.toml` are the textbook's nets, layer for layer.
    #[test]
    fn the_net_files_are_the_textbook_nets() {
        let file = |name: &str| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("nets")
                .join(name);
            NetSpec::load(&path).unwrap()
        };
        for (name, shape, textbook) in [
            (
                "mlp.toml",
                vec![1, 28, 28],
                MultiLayerNet::new(784, &[100; 5], 10).spec(),
            ),
            (
                "simple-cnn.toml",
                vec![3, 32, 32],
                SimpleConvNet::new([3, 32, 32], 10).spec(),
            ),
            (
                "deep-cnn.toml",
                vec![1, 28, 28],
                DeepConvNet::new([1, 28, 28], 10).spec(),
            ),
        ] {
            let spec = file(name).for_data(&shape, 10).unwrap();
            assert_eq!(spec.layers, textbook.layers, "{name}");
            assert_eq!(spec.weight_init_std, textbook.weight_init_std, "{name}");
            assert_eq!(
                spec.weight_decay_lambda, textbook.weight_decay_lambda,
                "{name}"
            );
        }
    }

    #[test]
    fn summary_counts_simple_conv_nets_parameters_as_the_textbook() {
        let summary = SimpleConvNet::new([1, 28, 28], 10)
            .spec()
            .summary()
            .unwrap();
        let params: Vec<usize> = summary.layers.iter().map(|l| l.params).collect();
        assert_eq!(params, [780, 0, 0, 0, 432_100, 0, 1_010]);
        assert_eq!(summary.params(), 433_890);
        // 30 filters of 1x5x5 at 24x24 positions; 4320 x 100; 100 x 10.
        assert_eq!(summary.macs(), 30 * 25 * 576 + 432_000 + 1_000);
        let text = summary.to_string();
        assert!(text.contains("parameters: 433,890"), "{text}");
        assert!(
            text.contains("(30, 24, 24)") && text.contains("432,100"),
            "{text}"
        );
        let net = SimpleConvNet::new([1, 28, 28], 10).build::<f32>(0).unwrap();
        assert_eq!(net.summary().unwrap(), summary);
        // A net built in code knows its shapes once it has seen a batch.
        let mut bare = Network::<f32>::new(net.layers.clone(), 0.0);
        assert!(bare.summary().is_err());
        bare.predict(&Tensor::zeros(&[1, 1, 28, 28]), false)
            .unwrap();
        assert_eq!(bare.summary().unwrap().params(), 433_890);
    }
}
