//! MultiLayerNet: the textbook's fully connected net,
//! `Affine - act - Affine - act - ... - Affine - SoftmaxWithLoss`.
//!
//! Weights start Gaussian with a standard deviation chosen by [`WeightInit`]:
//! He `sqrt(2 / fan_in)` for ReLU, Xavier `sqrt(1 / fan_in)` for sigmoid and
//! tanh, or a fixed value such as the textbook's 0.01. Biases start at zero.
//!
//! The textbook's MultiLayerNetExtend options are here too: with
//! [`MultiLayerNet::batchnorm`] each hidden block is `Affine - BatchNorm - act`,
//! and with [`MultiLayerNet::dropout`] a Dropout layer follows each hidden
//! activation. Both behave differently in training and inference, which the
//! `train` flag of [`Network::loss`] and [`Network::predict`] selects.
//!
//! ```
//! use backprop::nets::{Activation, MultiLayerNet, WeightInit};
//! let spec = MultiLayerNet::new(784, &[100, 100], 10)
//!     .activation(Activation::Sigmoid)
//!     .weight_init(WeightInit::Xavier)
//!     .weight_decay_lambda(0.1);
//! let net = spec.build::<f32>(42).unwrap();
//! assert_eq!(net.parameter_count(), 784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10);
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{LayerSpec, NetSpec, Network, SpecError};
use crate::layers::{DropoutScaling, check_dropout_ratio};
use crate::tensor::Float;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
}

impl Activation {
    pub(crate) fn layer(self) -> LayerSpec {
        match self {
            Activation::Relu => LayerSpec::Relu {},
            Activation::Sigmoid => LayerSpec::Sigmoid {},
            Activation::Tanh => LayerSpec::Tanh {},
        }
    }
}

impl FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            "tanh" => Ok(Activation::Tanh),
            _ => Err(format!(
                "unknown activation '{s}': use relu, sigmoid or tanh"
            )),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        })
    }
}

/// How to scale the initial weights. Written `"he"`, `"xavier"` or a number
/// (the standard deviation), as the textbook's `weight_init_std`; files of
/// format version 1 wrote the number as `{"std": 0.01}`, which still reads.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "InitForm", into = "InitForm")]
pub enum WeightInit {
    /// `sqrt(2 / fan_in)`, for ReLU.
    He,
    /// `sqrt(1 / fan_in)`, for sigmoid and tanh.
    Xavier,
    /// A fixed standard deviation.
    Std(f64),
}

/// The forms a [`WeightInit`] is written in.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum InitForm {
    Name(String),
    Std(f64),
    Legacy { std: f64 },
}

impl TryFrom<InitForm> for WeightInit {
    type Error = String;
    fn try_from(form: InitForm) -> Result<Self, String> {
        match form {
            InitForm::Name(name) => name.parse(),
            InitForm::Std(std) | InitForm::Legacy { std } => format!("{std}").parse(),
        }
    }
}

impl From<WeightInit> for InitForm {
    fn from(init: WeightInit) -> Self {
        match init {
            WeightInit::Std(std) => InitForm::Std(std),
            named => InitForm::Name(named.to_string()),
        }
    }
}

impl WeightInit {
    pub fn std(self, fan_in: usize) -> f64 {
        match self {
            WeightInit::He => (2.0 / fan_in as f64).sqrt(),
            WeightInit::Xavier => (1.0 / fan_in as f64).sqrt(),
            WeightInit::Std(s) => s,
        }
    }
}

impl FromStr for WeightInit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "he" | "relu" => Ok(WeightInit::He),
            "xavier" | "sigmoid" => Ok(WeightInit::Xavier),
            other => match other.parse::<f64>() {
                Ok(v) if v > 0.0 && v.is_finite() => Ok(WeightInit::Std(v)),
                _ => Err(format!(
                    "unknown weight init '{s}': use he, xavier, or a positive standard deviation such as 0.01"
                )),
            },
        }
    }
}

impl fmt::Display for WeightInit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightInit::He => f.write_str("he"),
            WeightInit::Xavier => f.write_str("xavier"),
            WeightInit::Std(s) => write!(f, "{s}"),
        }
    }
}

/// The architecture of a fully connected net; [`MultiLayerNet::build`] makes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MultiLayerNet {
    pub input_size: usize,
    pub hidden_size_list: Vec<usize>,
    pub output_size: usize,
    pub activation: Activation,
    pub weight_init_std: WeightInit,
    pub weight_decay_lambda: f64,
    /// BatchNorm between each hidden Affine and its activation.
    #[serde(default)]
    pub use_batchnorm: bool,
    /// Dropout ratio after each hidden activation; 0 means no Dropout layers.
    #[serde(default)]
    pub dropout_ratio: f64,
    /// Where Dropout scales; absent (inverted) unless textbook.
    #[serde(default, skip_serializing_if = "DropoutScaling::is_inverted")]
    pub dropout_scaling: DropoutScaling,
}

impl MultiLayerNet {
    /// ReLU, He init, no weight decay: the textbook's defaults.
    pub fn new(input_size: usize, hidden_size_list: &[usize], output_size: usize) -> Self {
        MultiLayerNet {
            input_size,
            hidden_size_list: hidden_size_list.to_vec(),
            output_size,
            activation: Activation::Relu,
            weight_init_std: WeightInit::He,
            weight_decay_lambda: 0.0,
            use_batchnorm: false,
            dropout_ratio: 0.0,
            dropout_scaling: DropoutScaling::Inverted,
        }
    }

    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    pub fn weight_init(mut self, w: WeightInit) -> Self {
        self.weight_init_std = w;
        self
    }

    pub fn weight_decay_lambda(mut self, lambda: f64) -> Self {
        self.weight_decay_lambda = lambda;
        self
    }

    pub fn batchnorm(mut self, on: bool) -> Self {
        self.use_batchnorm = on;
        self
    }

    /// Dropout with `ratio` in `[0, 1)` after each hidden activation (0: none).
    /// [`MultiLayerNet::build`] refuses a ratio outside that range.
    pub fn dropout(mut self, ratio: f64) -> Self {
        self.dropout_ratio = ratio;
        self
    }

    /// Scales Dropout the textbook's way or the inverted way (the default).
    pub fn dropout_scaling(mut self, scaling: DropoutScaling) -> Self {
        self.dropout_scaling = scaling;
        self
    }

    /// Checks the settings that come from users, with a message naming the fix.
    pub fn validate(&self) -> Result<(), SpecError> {
        let error = |reason: String| SpecError::new("MultiLayerNet", reason);
        if self.input_size == 0 || self.output_size < 2 || self.hidden_size_list.contains(&0) {
            return Err(error(format!(
                "sizes must be positive and the output at least 2 classes: input {}, hidden {:?}, output {}",
                self.input_size, self.hidden_size_list, self.output_size
            )));
        }
        check_dropout_ratio(self.dropout_ratio).map_err(error)?;
        if !(self.weight_decay_lambda >= 0.0 && self.weight_decay_lambda.is_finite()) {
            return Err(error(format!(
                "the weight decay must be zero or positive, got {}",
                self.weight_decay_lambda
            )));
        }
        Ok(())
    }

    /// Layer widths from input to output: `[784, 100, ..., 10]`.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.input_size];
        s.extend(&self.hidden_size_list);
        s.push(self.output_size);
        s
    }

    /// The net as a chain of layers: `Affine - [BatchNorm] - act - [Dropout]`
    /// per hidden layer, then the last Affine.
    pub fn spec(&self) -> NetSpec {
        let sizes = self.sizes();
        let mut layers = Vec::new();
        for (i, pair) in sizes.windows(2).enumerate() {
            layers.push(LayerSpec::Affine {
                units: Some(pair[1]),
                weight_init_std: None,
            });
            if i + 2 < sizes.len() {
                if self.use_batchnorm {
                    layers.push(LayerSpec::BatchNorm {});
                }
                layers.push(self.activation.layer());
                if self.dropout_ratio > 0.0 {
                    layers.push(LayerSpec::Dropout {
                        dropout_ratio: self.dropout_ratio,
                        scaling: self.dropout_scaling,
                    });
                }
            }
        }
        NetSpec {
            input_shape: Some(vec![self.input_size]),
            weight_init_std: self.weight_init_std,
            weight_decay_lambda: self.weight_decay_lambda,
            layers,
        }
    }

    /// Builds the net with weights drawn from a generator seeded with `seed`,
    /// or says which setting [`MultiLayerNet::validate`] rejects.
    pub fn build<T: Float>(&self, seed: u64) -> Result<Network<T>, SpecError> {
        self.validate()?;
        self.spec().build(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{TOLERANCE, check_multi_layer_nets, check_network, random_tensor};
    use crate::layers::Labels;

    #[test]
    fn layer_order_and_names_follow_the_textbook() {
        let net = MultiLayerNet::new(6, &[5, 4], 3).build::<f64>(1).unwrap();
        let names: Vec<_> = net.layers.iter().map(|l| l.name()).collect();
        assert_eq!(names, ["Affine", "Relu", "Affine", "Relu", "Affine"]);
        let params: Vec<_> = net.params().iter().map(|p| p.name.clone()).collect();
        assert_eq!(params, ["W1", "b1", "W2", "b2", "W3", "b3"]);
    }

    #[test]
    fn he_init_has_the_right_spread() {
        let net = MultiLayerNet::new(400, &[300], 10).build::<f64>(3).unwrap();
        let w1 = net.params()[0].value.clone();
        let var = w1.sum_squares() / w1.len() as f64;
        assert!(
            (var - 2.0 / 400.0).abs() < 0.1 * 2.0 / 400.0,
            "variance {var}"
        );
    }

    #[test]
    fn same_seed_same_net_in_f32_and_f64() {
        let spec = MultiLayerNet::new(5, &[4], 3);
        let a = spec.build::<f32>(9).unwrap();
        let b = spec.build::<f64>(9).unwrap();
        for (p, q) in a.params().iter().zip(b.params()) {
            for (&x, &y) in p.value.data().iter().zip(q.value.data()) {
                assert_eq!(x, y as f32);
            }
        }
    }

    #[test]
    fn weight_decay_is_in_the_loss() {
        let spec = MultiLayerNet::new(4, &[3], 2);
        let x = random_tensor(&[2, 4], 1.0, 1);
        let t = [0usize, 1];
        let mut plain = spec.clone().build::<f64>(5).unwrap();
        let mut decayed = spec.weight_decay_lambda(0.1).build::<f64>(5).unwrap();
        let sum_w2: f64 = plain
            .params()
            .iter()
            .filter(|p| p.decay)
            .map(|p| p.value.sum_squares())
            .sum();
        let diff = decayed.loss(&x, Labels::Index(&t), false).unwrap()
            - plain.loss(&x, Labels::Index(&t), false).unwrap();
        assert!((diff - 0.05 * sum_w2).abs() < 1e-12);
    }

    /// The core claim of the project: backpropagation equals the numerical
    /// derivative, for every parameter, with and without weight decay.
    #[test]
    fn whole_net_gradient_check() {
        // Seed 13 as in `backprop gradcheck`. Other draws can put an element
        // right at the error floor, where the central difference's own
        // truncation error (h² f'''/6) shows: seed 31 gives 1.07e-6 on one Tanh
        // weight at h = 1e-4, 7e-9 at h = 1e-5 (backprop is the exact one).
        for report in check_multi_layer_nets(13) {
            assert!(report.passed(TOLERANCE), "{report}");
        }
    }

    #[test]
    fn extended_net_places_batchnorm_and_dropout_like_the_textbook() {
        let net = MultiLayerNet::new(6, &[5, 4], 3)
            .batchnorm(true)
            .dropout(0.2)
            .build::<f64>(1)
            .unwrap();
        let names: Vec<_> = net.layers.iter().map(|l| l.name()).collect();
        assert_eq!(
            names,
            [
                "Affine",
                "BatchNorm",
                "Relu",
                "Dropout",
                "Affine",
                "BatchNorm",
                "Relu",
                "Dropout",
                "Affine"
            ]
        );
        let params: Vec<_> = net.params().iter().map(|p| p.name.clone()).collect();
        assert_eq!(
            params,
            [
                "W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"
            ]
        );
        // gamma and beta are not weights: no decay.
        assert!(
            net.params()
                .iter()
                .all(|p| p.decay == p.name.starts_with('W'))
        );
    }

    #[test]
    fn extended_spec_round_trips_and_old_specs_still_load() {
        let spec = MultiLayerNet::new(6, &[5], 3).batchnorm(true).dropout(0.5);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<MultiLayerNet>(&json).unwrap(), spec);
        // A spec written before these options existed means "neither".
        let old = r#"{"input_size":6,"hidden_size_list":[5],"output_size":3,
            "activation":"relu","weight_init_std":"he","weight_decay_lambda":0.0}"#;
        let old: MultiLayerNet = serde_json::from_str(old).unwrap();
        assert!(!old.use_batchnorm && old.dropout_ratio == 0.0);
    }

    #[test]
    fn validate_rejects_bad_ratios() {
        let base = MultiLayerNet::new(6, &[5], 3);
        assert!(base.clone().dropout(0.5).validate().is_ok());
        for bad in [1.0, -0.1, f64::NAN] {
            let err = base.clone().dropout(bad).validate().unwrap_err();
            assert!(err.to_string().contains("dropout ratio"), "{err}");
        }
    }

    /// Backpropagation through BatchNorm in a whole net, every activation,
    /// with and without weight decay (gamma and beta get no decay).
    #[test]
    fn whole_net_gradient_check_with_batchnorm() {
        let x = random_tensor(&[6, 6], 1.0, 32);
        let t = [0usize, 2, 1, 2, 0, 1];
        for activation in [Activation::Relu, Activation::Sigmoid, Activation::Tanh] {
            for lambda in [0.0, 0.1] {
                let mut net = MultiLayerNet::new(6, &[5, 4], 3)
                    .activation(activation)
                    .weight_init(WeightInit::Std(0.5))
                    .weight_decay_lambda(lambda)
                    .batchnorm(true)
                    .build::<f64>(33)
                    .unwrap();
                let report = check_network(&mut net, &x, Labels::Index(&t), "net").unwrap();
                assert_eq!(report.entries.len(), 10);
                assert!(
                    report.passed(TOLERANCE),
                    "{activation} lambda={lambda}\n{report}"
                );
            }
        }
    }

    /// Dropout in a whole net, with its masks fixed so that the numerical
    /// derivative sees the same function as backpropagation.
    #[test]
    fn whole_net_gradient_check_with_batchnorm_and_fixed_dropout_masks() {
        let x = random_tensor(&[6, 6], 1.0, 34);
        let t = [1usize, 0, 2, 2, 1, 0];
        let mut net = MultiLayerNet::new(6, &[5, 4], 3)
            .activation(Activation::Tanh)
            .weight_init(WeightInit::Std(0.5))
            .batchnorm(true)
            .dropout(0.3)
            .build::<f64>(35)
            .unwrap();
        let dropouts = net.layers.iter_mut().filter(|l| l.name() == "Dropout");
        for ((layer, width), seed) in dropouts.zip([5usize, 4]).zip(36..) {
            let mut keep = random_tensor(&[6, width], 1.0, seed);
            for v in keep.data_mut() {
                *v = if *v > -0.4 { 1.0 } else { 0.0 };
            }
            let mut d = crate::layers::Dropout::new(0.3, 0);
            d.set_fixed_mask(&keep);
            *layer = Box::new(d);
        }
        let report = check_network(&mut net, &x, Labels::Index(&t), "net").unwrap();
        assert!(report.passed(TOLERANCE), "{report}");
    }
}
