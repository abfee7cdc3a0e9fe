//! The textbook's convolutional nets (chapters 7 and 8):
//!
//! - [`SimpleConvNet`]: `Convolution - Relu - Pooling - Affine - Relu - Affine - SoftmaxWithLoss`
//!   (`simple_convnet.py`; 30 filters of 5x5, hidden 100).
//! - [`DeepConvNet`]: `(Convolution - Relu - Convolution - Relu - Pooling) x 3 -
//!   Affine - Relu - Dropout - Affine - Dropout - SoftmaxWithLoss` (`deep_convnet.py`;
//!   16, 16, 32, 32, 64, 64 filters of 3x3, hidden 50).
//!
//! Pooling is 2x2 with stride 2 in both, as in the textbook. A [`Flatten`]
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

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{NetSpec, Network, WeightInit};
use crate::layers::convolution::output_size;
use crate::layers::{
    Affine, Convolution, Dropout, Flatten, Layer, MaxPooling, Relu, check_dropout_ratio,
};
use crate::tensor::{Float, Tensor};

/// An architecture that cannot be built for its input, such as a filter
/// larger than the padded image (e.g. a convnet on the 2-d spiral data).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{net}: {reason}")]
pub struct SpecError {
    pub net: &'static str,
    pub reason: String,
}

/// Largest per-example buffer a convolution may need (its im2col matrix or its
/// output), in values. A checkpoint's padding and stride are not trusted: a
/// 1x1 filter with a padding of a million would ask for terabytes at the first
/// prediction. The textbook's nets on MNIST need at most 112,896
/// (DeepConvNet's second convolution); 2^22 leaves room for colour images.
pub const MAX_CONV_VALUES: usize = 1 << 22;

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

    /// The output `(FN, OH, OW)` for input `(C, H, W)`, or why there is none:
    /// no filters, a filter that does not fit, or buffers (im2col columns or
    /// output) above [`MAX_CONV_VALUES`] per example.
    fn output(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3], String> {
        if self.filter_num == 0 {
            return Err(format!("{self} has no filters"));
        }
        let (k, s, p) = (self.filter_size, self.stride, self.pad);
        let (Some(oh), Some(ow)) = (output_size(h, k, s, p), output_size(w, k, s, p)) else {
            return Err(format!(
                "{self} (filter {k}, stride {s}, pad {p}) does not fit input {:?}",
                [c, h, w]
            ));
        };
        let positions = oh.checked_mul(ow);
        let columns = positions.and_then(|n| n.checked_mul(c)?.checked_mul(k)?.checked_mul(k));
        let output = positions.and_then(|n| n.checked_mul(self.filter_num));
        match (columns, output) {
            (Some(a), Some(b)) if a <= MAX_CONV_VALUES && b <= MAX_CONV_VALUES => {
                Ok([self.filter_num, oh, ow])
            }
            _ => Err(format!(
                "{self} on input {:?} needs buffers of more than {MAX_CONV_VALUES} values per example",
                [c, h, w]
            )),
        }
    }

    fn layer<T: Float>(
        &self,
        channels: usize,
        init: WeightInit,
        rng: &mut ChaCha8Rng,
    ) -> Convolution<T> {
        let k = self.filter_size;
        let w = Tensor::randn(
            &[self.filter_num, channels, k, k],
            init.std(channels * k * k),
            rng,
        );
        Convolution::from_params(w, Tensor::zeros(&[self.filter_num]), self.stride, self.pad)
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

/// The output of 2x2, stride 2 max pooling on `(C, H, W)`, if at least 2x2.
fn pooled([c, h, w]: [usize; 3]) -> Option<[usize; 3]> {
    Some([c, output_size(h, 2, 2, 0)?, output_size(w, 2, 2, 0)?])
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

fn affine<T: Float>(
    fan_in: usize,
    fan_out: usize,
    init: WeightInit,
    rng: &mut ChaCha8Rng,
) -> Affine<T> {
    let w = Tensor::randn(&[fan_in, fan_out], init.std(fan_in), rng);
    Affine::from_params(w, Tensor::zeros(&[fan_out]))
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

    /// Shapes after the convolution and after the pooling.
    pub(crate) fn shapes(&self) -> Result<([usize; 3], [usize; 3]), SpecError> {
        let error = |reason: String| SpecError {
            net: "SimpleConvNet",
            reason,
        };
        positive_sizes(self.input_dim, self.hidden_size, self.output_size).map_err(error)?;
        let conv = self.conv_param.output(self.input_dim).map_err(error)?;
        let pool = pooled(conv).ok_or_else(|| {
            error(format!(
                "2x2 pooling does not fit the convolution's output {conv:?}"
            ))
        })?;
        Ok((conv, pool))
    }

    /// Whether the net can be built for its input size.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.shapes().map(|_| ())
    }

    /// Builds the net with weights drawn from `seed`, or says why
    /// [`SimpleConvNet::validate`] rejects it.
    pub fn build<T: Float>(&self, seed: u64) -> Result<Network<T>, SpecError> {
        let (_, [pc, ph, pw]) = self.shapes()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let init = self.weight_init_std;
        let flat = pc * ph * pw;
        let layers: Vec<Box<dyn Layer<T>>> = vec![
            Box::new(self.conv_param.layer(self.input_dim[0], init, &mut rng)),
            Box::new(Relu::new()),
            Box::new(MaxPooling::new(2, 2, 2, 0)),
            Box::new(Flatten::new()),
            Box::new(affine(flat, self.hidden_size, init, &mut rng)),
            Box::new(Relu::new()),
            Box::new(affine(self.hidden_size, self.output_size, init, &mut rng)),
        ];
        let mut net = Network::new(layers, self.weight_decay_lambda);
        net.spec = Some(NetSpec::SimpleCnn(self.clone()));
        Ok(net)
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

    /// The input shape of every convolution, then the shape after the last
    /// pooling.
    pub(crate) fn shapes(&self) -> Result<Vec<[usize; 3]>, SpecError> {
        let error = |reason: String| SpecError {
            net: "DeepConvNet",
            reason,
        };
        if self.conv_params.is_empty() || !self.conv_params.len().is_multiple_of(2) {
            return Err(error(format!(
                "the convolutions come in pairs, got {}",
                self.conv_params.len()
            )));
        }
        positive_sizes(self.input_dim, self.hidden_size, self.output_size).map_err(error)?;
        check_dropout_ratio(self.dropout_ratio).map_err(error)?;
        let mut shapes = vec![self.input_dim];
        let mut shape = self.input_dim;
        for (i, p) in self.conv_params.iter().enumerate() {
            shape = p
                .output(shape)
                .map_err(|reason| error(format!("layer {}: {reason}", i + 1)))?;
            if i % 2 == 1 {
                shape = pooled(shape).ok_or_else(|| {
                    error(format!(
                        "2x2 pooling after layer {} does not fit {shape:?}",
                        i + 1
                    ))
                })?;
            }
            shapes.push(shape);
        }
        Ok(shapes)
    }

    /// Whether the net can be built for its input size.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.shapes().map(|_| ())
    }

    /// Builds the net with weights (and dropout masks) drawn from `seed`, or
    /// says why [`DeepConvNet::validate`] rejects it.
    pub fn build<T: Float>(&self, seed: u64) -> Result<Network<T>, SpecError> {
        let shapes = self.shapes()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let init = self.weight_init_std;
        let mut layers: Vec<Box<dyn Layer<T>>> = Vec::new();
        for (i, p) in self.conv_params.iter().enumerate() {
            layers.push(Box::new(p.layer(shapes[i][0], init, &mut rng)));
            layers.push(Box::new(Relu::new()));
            if i % 2 == 1 {
                layers.push(Box::new(MaxPooling::new(2, 2, 2, 0)));
            }
        }
        let flat: usize = shapes.last().expect("input shape").iter().product();
        layers.push(Box::new(Flatten::new()));
        layers.push(Box::new(affine(flat, self.hidden_size, init, &mut rng)));
        layers.push(Box::new(Relu::new()));
        layers.push(Box::new(Dropout::new(self.dropout_ratio, seed ^ 1)));
        layers.push(Box::new(affine(
            self.hidden_size,
            self.output_size,
            init,
            &mut rng,
        )));
        layers.push(Box::new(Dropout::new(self.dropout_ratio, seed ^ 2)));
        let mut net = Network::new(layers, self.weight_decay_lambda);
        net.spec = Some(NetSpec::DeepCnn(self.clone()));
        Ok(net)
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
        assert!(e.to_string().contains("pooling"), "{e}");
        let mut odd = DeepConvNet::new([1, 28, 28], 10);
        odd.conv_params.pop();
        assert!(odd.validate().is_err());
        assert!(SimpleConvNet::new([1, 12, 10], 3).validate().is_ok());
    }

    #[test]
    fn specs_round_trip_through_json() {
        let simple = NetSpec::SimpleCnn(SimpleConvNet::new([1, 28, 28], 10));
        let deep = NetSpec::DeepCnn(DeepConvNet::new([3, 32, 32], 10).weight_decay_lambda(0.01));
        for spec in [simple, deep] {
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(serde_json::from_str::<NetSpec>(&json).unwrap(), spec);
        }
        let json =
            serde_json::to_value(NetSpec::SimpleCnn(SimpleConvNet::new([1, 28, 28], 10))).unwrap();
        assert_eq!(json["kind"], "simple-cnn");
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
