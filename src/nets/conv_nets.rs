//! The textbook's convolutional nets (chapters 7 and 8):
//!
//! - [`SimpleConvNet`]: `Convolution - Relu - Pooling - Affine - Relu - Affine - SoftmaxWithLoss`
//!   (`simple_convnet.py`; 30 filters of 5x5, hidden 100).
//! - [`DeepConvNet`]: `(Convolution - Relu - Convolution - Relu - Pooling) x 3 -
//!   Affine - Relu - Dropout - Affine - Dropout - SoftmaxWithLoss` (`deep_convnet.py`;
//!   16, 16, 32, 32, 64, 64 filters of 3x3, hidden 50).
//!
//! Pooling is 2x2 with stride 2 in both, as in the textbook. A Flatten
//! stands between the convolutional and the dense part. Weights start
//! Gaussian with the standard deviation of a [`WeightInit`] of each layer's
//! fan-in (`C·FH·FW` for a convolution), biases at zero.
//!
//! ```
//! use backprop::nets::SimpleConvNet;
//! let spec = SimpleConvNet::new([1, 28, 28], 10);
//! spec.validate().unwrap();
//! let net = spec.build::<f32>(0).unwrap();
//! // conv 30x1x5x5 + 30, affine 30*12*12 x 100 + 100, affine 100 x 10 + 10
//! assert_eq!(net.parameter_count(), 780 + 432_100 + 1010);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{LayerSpec, NetSpec, Network, SpecError, WeightInit};
use crate::tensor::Float;

/// One convolution: the textbook's `conv_param` dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvParam {
    pub filter_num: usize,
    pub filter_size: usize,
    pub pad: usize,
    pub stride: usize,
}

impl ConvParam {
    pub fn new(filter_num: usize, filter_size: usize, pad: usize, stride: usize) -> Self {
        ConvParam {
            filter_num,
            filter_size,
            pad,
            stride,
        }
    }

    fn layer(&self) -> LayerSpec {
        LayerSpec::Convolution {
            filter_num: self.filter_num,
            filter_size: self.filter_size,
            stride: self.stride,
            pad: self.pad,
            weight_init_std: None,
        }
    }
}

impl fmt::Display for ConvParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conv{}x{}", self.filter_num, self.filter_size)?;
        if self.pad > 0 {
            write!(f, "p{}", self.pad)?;
        }
        if self.stride > 1 {
            write!(f, "s{}", self.stride)?;
        }
        Ok(())
    }
}

/// 2x2 max pooling with stride 2, as both nets use.
const POOL2: LayerSpec = LayerSpec::MaxPooling {
    pool_h: 2,
    pool_w: 2,
    stride: Some(2),
    pad: 0,
};

fn affine(units: usize) -> LayerSpec {
    LayerSpec::Affine {
        units: Some(units),
        weight_init_std: None,
    }
}

/// Why a convnet's sizes cannot make a net, if one is zero.
fn positive_sizes(input_dim: [usize; 3], hidden: usize, output: usize) -> Result<(), String> {
    if input_dim.contains(&0) || hidden == 0 || output == 0 {
        return Err(format!(
            "sizes must be positive: input {input_dim:?}, hidden {hidden}, output {output}"
        ));
    }
    Ok(())
}

/// `spec` checked, its errors named after `net`.
fn checked(net: &str, spec: NetSpec) -> Result<NetSpec, SpecError> {
    spec.validate()
        .map(|()| spec)
        .map_err(|e| SpecError::new(net, e.reason))
}

/// The textbook's SimpleConvNet; [`SimpleConvNet::build`] makes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimpleConvNet {
    /// `(C, H, W)` of one input image.
    pub input_dim: [usize; 3],
    pub conv_param: ConvParam,
    pub hidden_size: usize,
    pub output_size: usize,
    pub weight_init_std: WeightInit,
    pub weight_decay_lambda: f64,
}

impl SimpleConvNet {
    /// The textbook's `simple_convnet.py`: 30 filters of 5x5, stride 1, no
    /// padding, hidden 100, weights drawn with standard deviation 0.01. (The
    /// W2 workload and PyTorch's peer use He init instead; on MNIST with Adam
    /// lr 0.001 He overfits sooner: 0.9864 against 0.9897 after 20 epochs.)
    pub fn new(input_dim: [usize; 3], output_size: usize) -> Self {
        SimpleConvNet {
            input_dim,
            conv_param: ConvParam::new(30, 5, 0, 1),
            hidden_size: 100,
            output_size,
            weight_init_std: WeightInit::Std(0.01),
            weight_decay_lambda: 0.0,
        }
    }

    pub fn weight_init(mut self, w: WeightInit) -> Self {
        self.weight_init_std = w;
        self
    }

    pub fn weight_decay_lambda(mut self, lambda: f64) -> Self {
        self.weight_decay_lambda = lambda;
        self
    }

    /// The net as a chain of layers:
    /// `Convolution - Relu - MaxPooling - Flatten - Affine - Relu - Affine`.
    pub fn spec(&self) -> NetSpec {
        NetSpec {
            input_shape: Some(self.input_dim.to_vec()),
            weight_init_std: self.weight_init_std,
            weight_decay_lambda: self.weight_decay_lambda,
            layers: vec![
                self.conv_param.layer(),
                LayerSpec::Relu {},
                POOL2,
                LayerSpec::Flatten {},
                affine(self.hidden_size),
                LayerSpec::Relu {},
                affine(self.output_size),
            ],
        }
    }

    /// Whether the net can be built for its input size.
    pub fn validate(&self) -> Result<(), SpecError> {
        positive_sizes(self.input_dim, self.hidden_size, self.output_size)
            .map_err(|r| SpecError::new("SimpleConvNet", r))?;
        checked("SimpleConvNet", self.spec()).map(|_| ())
    }

    /// Builds the net with weights drawn from `seed`, or says why
    /// [`SimpleConvNet::validate`] rejects it.
    pub fn build<T: Float>(&self, seed: u64) -> Result<Network<T>, SpecError> {
        self.validate()?;
        self.spec().build(seed)
    }
}

impl fmt::Display for SimpleConvNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-relu-pool2-affine{}-relu-affine{} ({} init)",
            self.conv_param, self.hidden_size, self.output_size, self.weight_init_std
        )
    }
}

/// The textbook's DeepConvNet; [`DeepConvNet::build`] makes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeepConvNet {
    /// `(C, H, W)` of one input image.
    pub input_dim: [usize; 3],
    /// The convolutions, in pairs: 2x2 pooling follows every second one.
    pub conv_params: Vec<ConvParam>,
    pub hidden_size: usize,
    pub output_size: usize,
    /// Dropout after the hidden Affine layer and after the last one.
    pub dropout_ratio: f64,
    pub weight_init_std: WeightInit,
    pub weight_decay_lambda: f64,
}

impl DeepConvNet {
    /// The textbook's `deep_convnet.py`: 16, 16, 32, 32, 64, 64 filters of 3x3
    /// with padding 1, except 2 for the fourth (so that 28x28 MNIST ends in
    /// 64x4x4 after the third pooling), hidden 50, dropout 0.5, He init.
    pub fn new(input_dim: [usize; 3], output_size: usize) -> Self {
        let conv = |n, pad| ConvParam::new(n, 3, pad, 1);
        DeepConvNet {
            input_dim,
            conv_params: vec![
                conv(16, 1),
                conv(16, 1),
                conv(32, 1),
                conv(32, 2),
                conv(64, 1),
                conv(64, 1),
            ],
            hidden_size: 50,
            output_size,
            dropout_ratio: 0.5,
            weight_init_std: WeightInit::He,
            weight_decay_lambda: 0.0,
        }
    }

    pub fn weight_init(mut self, w: WeightInit) -> Self {
        self.weight_init_std = w;
        self
    }

    pub fn weight_decay_lambda(mut self, lambda: f64) -> Self {
        self.weight_decay_lambda = lambda;
        self
    }

    /// The net as a chain of layers: `(Convolution - Relu) x 2 - MaxPooling`
    /// per pair, then `Flatten - Affine - Relu - Dropout - Affine - Dropout`.
    pub fn spec(&self) -> NetSpec {
        let mut layers = Vec::new();
        for (i, p) in self.conv_params.iter().enumerate() {
            layers.push(p.layer());
            layers.push(LayerSpec::Relu {});
            if i % 2 == 1 {
                layers.push(POOL2);
            }
        }
        let dropout = LayerSpec::Dropout {
            dropout_ratio: self.dropout_ratio,
            scaling: Default::default(),
        };
        layers.extend([
            LayerSpec::Flatten {},
            affine(self.hidden_size),
            LayerSpec::Relu {},
            dropout.clone(),
            affine(self.output_size),
            dropout,
        ]);
        NetSpec {
            input_shape: Some(self.input_dim.to_vec()),
            weight_init_std: self.weight_init_std,
            weight_decay_lambda: self.weight_decay_lambda,
            layers,
        }
    }

    /// Whether the net can be built for its input size.
    pub fn validate(&self) -> Result<(), SpecError> {
        let error = |reason: String| SpecError::new("DeepConvNet", reason);
        if self.conv_params.is_empty() || !self.conv_params.len().is_multiple_of(2) {
            return Err(error(format!(
                "the convolutions come in pairs, got {}",
                self.conv_params.len()
            )));
        }
        positive_sizes(self.input_dim, self.hidden_size, self.output_size).map_err(error)?;
        checked("DeepConvNet", self.spec()).map(|_| ())
    }

    /// Builds the net with weights (and dropout masks) drawn from `seed`, or
    /// says why [`DeepConvNet::validate`] rejects it.
    pub fn build<T: Float>(&self, seed: u64) -> Result<Network<T>, SpecError> {
        self.validate()?;
        self.spec().build(seed)
    }
}

impl fmt::Display for DeepConvNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pair in self.conv_params.chunks(2) {
            for p in pair {
                write!(f, "{p}-relu-")?;
            }
            write!(f, "pool2-")?;
        }
        write!(
            f,
            "affine{}-relu-dropout{}-affine{}-dropout{} ({} init)",
            self.hidden_size,
            self.dropout_ratio,
            self.output_size,
            self.dropout_ratio,
            self.weight_init_std
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{
        TOLERANCE, check_network_with_fixed_dropout, random_tensor, randomize_biases,
    };
    use crate::layers::Labels;
    use crate::tensor::Tensor;

    fn names<T: Float>(net: &Network<T>) -> Vec<&'static str> {
        net.layers.iter().map(|l| l.name()).collect()
    }

    #[test]
    fn simple_conv_net_follows_the_textbook() {
        let net = SimpleConvNet::new([1, 28, 28], 10).build::<f32>(1).unwrap();
        assert_eq!(
            names(&net),
            [
                "Convolution",
                "Relu",
                "MaxPooling",
                "Flatten",
                "Affine",
                "Relu",
                "Affine"
            ]
        );
        let params: Vec<_> = net
            .params()
            .iter()
            .map(|p| (p.name.clone(), p.value.shape().to_vec()))
            .collect();
        assert_eq!(
            params,
            [
                ("W1".to_string(), vec![30, 1, 5, 5]),
                ("b1".to_string(), vec![30]),
                ("W2".to_string(), vec![4320, 100]),
                ("b2".to_string(), vec![100]),
                ("W3".to_string(), vec![100, 10]),
                ("b3".to_string(), vec![10]),
            ]
        );
    }

    #[test]
    fn deep_conv_net_follows_the_textbook() {
        let spec = DeepConvNet::new([1, 28, 28], 10);
        let mut net = spec.build::<f32>(2).unwrap();
        let convs: Vec<_> = net
            .params()
            .iter()
            .filter(|p| p.value.shape().len() == 4)
            .map(|p| p.value.shape().to_vec())
            .collect();
        assert_eq!(
            convs,
            [
                [16, 1, 3, 3],
                [16, 16, 3, 3],
                [32, 16, 3, 3],
                [32, 32, 3, 3],
                [64, 32, 3, 3],
                [64, 64, 3, 3]
            ]
        );
        // 64 x 4 x 4 into the hidden layer, as the textbook's pre_node_nums.
        assert_eq!(net.params()[12].value.shape(), &[1024, 50]);
        assert_eq!(names(&net).iter().filter(|&&n| n == "Dropout").count(), 2);
        let x = Tensor::zeros(&[3, 1, 28, 28]);
        assert_eq!(net.predict(&x, false).unwrap().shape(), &[3, 10]);
        // He init: standard deviation sqrt(2 / fan_in) per layer.
        let w4 = net.params()[6].value.clone();
        let var = w4.sum_squares() / w4.len() as f64;
        let want = 2.0 / (32.0 * 9.0);
        assert!((var - want).abs() < 0.1 * want, "variance {var}");
    }

    #[test]
    fn specs_that_do_not_fit_are_refused() {
        // The spiral's 1x1x2 "images" are too small for a 5x5 filter.
        let e = SimpleConvNet::new([1, 1, 2], 3).validate().unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        // 2x2 pools to 1x1 at once; the fourth layer's padding 2 makes 3x3,
        // pooled to 1x1 again: no room for the third pooling.
        let e = DeepConvNet::new([1, 2, 2], 3).validate().unwrap_err();
        assert!(e.to_string().contains("MaxPooling"), "{e}");
        let mut odd = DeepConvNet::new([1, 28, 28], 10);
        odd.conv_params.pop();
        assert!(odd.validate().is_err());
        assert!(SimpleConvNet::new([1, 12, 10], 3).validate().is_ok());
    }

    #[test]
    fn specs_round_trip_through_json_and_old_checkpoints_still_read() {
        let simple = SimpleConvNet::new([1, 28, 28], 10);
        let deep = DeepConvNet::new([3, 32, 32], 10).weight_decay_lambda(0.01);
        for spec in [simple.spec(), deep.spec()] {
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(NetSpec::from_json(&json).unwrap(), spec);
        }
        // Format version 1 kept the textbook's parameters under a "kind".
        let mut old = serde_json::to_value(&deep).unwrap();
        old["kind"] = "deep-cnn".into();
        assert_eq!(NetSpec::from_json(&old.to_string()).unwrap(), deep.spec());
        let mut old = serde_json::to_value(&simple).unwrap();
        old["kind"] = "simple-cnn".into();
        assert_eq!(NetSpec::from_json(&old.to_string()).unwrap(), simple.spec());
    }

    #[test]
    fn simple_conv_net_gradient_check() {
        // Small sizes (3 filters of 3x3 on 2x7x6 images, stride 1 pad 1) keep
        // the central differences quick; the layers are the full ones.
        let mut spec = SimpleConvNet::new([2, 7, 6], 3)
            .weight_init(WeightInit::He)
            .weight_decay_lambda(0.1);
        spec.conv_param = ConvParam::new(3, 3, 1, 1);
        spec.hidden_size = 5;
        let mut net = spec.build::<f64>(3).unwrap();
        randomize_biases(&mut net, 4);
        let x = random_tensor(&[2, 2, 7, 6], 1.0, 4);
        let report =
            check_network_with_fixed_dropout(&mut net, &x, Labels::Index(&[2, 0]), 0.0, 5, "net")
                .unwrap();
        assert!(report.passed(TOLERANCE), "{report}");
        assert_eq!(report.entries.len(), 6);
    }

    #[test]
    fn deep_conv_net_gradient_check() {
        // The textbook's layout with 2/2/3/3/4/4 filters on 1x8x8 images
        // (8 -> 4 -> 6 with the fourth layer's padding 2 -> 3 -> 1).
        let mut spec = DeepConvNet::new([1, 8, 8], 3);
        for (p, n) in spec.conv_params.iter_mut().zip([2, 2, 3, 3, 4, 4]) {
            p.filter_num = n;
        }
        spec.hidden_size = 5;
        let mut net = spec.build::<f64>(6).unwrap();
        randomize_biases(&mut net, 7);
        let x = random_tensor(&[2, 1, 8, 8], 1.0, 8);
        let report = check_network_with_fixed_dropout(
            &mut net,
            &x,
            Labels::Index(&[1, 2]),
            spec.dropout_ratio,
            8,
            "net",
        )
        .unwrap();
        assert!(report.passed(TOLERANCE), "{report}");
        assert_eq!(report.entries.len(), 16);
        // Not vacuous: the dropout masks let gradient through to every layer.
        for p in net.params() {
            assert!(p.grad.sum_squares() > 1e-12, "{} has no gradient", p.name);
        }
    }
}
