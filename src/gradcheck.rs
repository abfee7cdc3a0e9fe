//! Gradient checking: backpropagation against the central difference
//! `(f(w + h) - f(w - h)) / 2h` with `h = 1e-4`, in f64.
//!
//! The error of one element is `|a - n| / max(|a|, |n|, 1e-3 · max_j |n_j|, 1e-5)`:
//! relative, except that elements a thousand times smaller than the tensor's
//! largest gradient are judged on that tensor's scale. Without the floor, an
//! element that weight decay cancels to ~1e-8 would be judged by the central
//! difference's own truncation error (~1e-11, seen in the Tanh net) and fail
//! although backprop is exact. The absolute floor 1e-5 comes from the central
//! difference's own rounding noise: one ulp of a loss of order 1 over `2h` is
//! 1.1e-12, and a few ulps are common, so an element below 1e-5 cannot be
//! measured to 1e-6 relative; it must agree to 1e-11 absolute instead (still
//! stricter than the tensor-scale floor for gradients above 0.01). It matters for
//! gradients that are exactly zero: the bias of an Affine layer followed by
//! BatchNorm cancels in the mean subtraction, and the central difference gives
//! 0 or ~1e-12 of rounding. A report gives the largest error per tensor,
//! the way llm.c's test prints OK / NOT OK per tensor.

use std::fmt;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::layers::{
    Affine, BatchNorm, Convolution, Dropout, Flatten, Labels, Layer, MaxPooling, Relu, Sigmoid,
    SoftmaxWithLoss, Tanh,
};
use crate::nets::{
    Activation, ConvParam, DeepConvNet, InputError, MultiLayerNet, Network, SimpleConvNet,
    WeightInit,
};
use crate::tensor::{Float, Tensor};

/// The standard suite's nets and inputs are fixed here and fit each other.
const SUITE: &str = "the suite's inputs fit its nets";

/// The step of the central difference.
pub const H: f64 = 1e-4;

/// The tolerance the tests hold f64 gradients to.
pub const TOLERANCE: f64 = 1e-6;

/// The textbook's `numerical_diff(f, x)`: the central difference
/// `(f(x + h) - f(x - h)) / 2h`, the slope of `f` at the one point `x`.
///
/// ```
/// use backprop::gradcheck::numerical_diff;
/// let f = |x: f64| 0.01 * x * x + 0.1 * x;
/// assert_eq!(numerical_diff(f, 5.0), 0.1999999999990898); // the book's digits; exactly 0.2
/// ```
pub fn numerical_diff(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    (f(x + H) - f(x - H)) / (2.0 * H)
}

/// The textbook's `numerical_gradient(f, x)` (`common/gradient.py`) for any
/// function of a tensor: element by element, `x[i]` is moved by `±h` with the
/// others held, and the central difference of `f` is that element of the
/// gradient. [`Network::numerical_gradient`] is the same for a net's loss
/// with respect to each of its parameters.
///
/// ```
/// use backprop::gradcheck::numerical_gradient;
/// use backprop::tensor::Tensor;
/// let function_2 = |x: &Tensor<f64>| x.data().iter().map(|v| v * v).sum::<f64>();
/// let x = Tensor::from_vec(&[2], vec![3.0, 4.0]).unwrap();
/// let grad = numerical_gradient(function_2, &x);
/// assert_eq!(grad.data(), [6.00000000000378, 7.999999999999119]); // [6. 8.]
/// ```
pub fn numerical_gradient<T: Float>(
    mut f: impl FnMut(&Tensor<T>) -> T,
    x: &Tensor<T>,
) -> Tensor<T> {
    let h = T::of(H);
    let mut x = x.clone();
    let mut grad = Tensor::zeros(x.shape());
    for i in 0..x.len() {
        let v = x.data()[i];
        x.data_mut()[i] = v + h;
        let fxh1 = f(&x);
        x.data_mut()[i] = v - h;
        let fxh2 = f(&x);
        x.data_mut()[i] = v;
        grad.data_mut()[i] = (fxh1 - fxh2) / (h + h);
    }
    grad
}

/// Largest elementwise relative error between two gradients of the same shape.
pub fn max_relative_error(analytic: &Tensor<f64>, numerical: &Tensor<f64>) -> f64 {
    assert_eq!(
        analytic.shape(),
        numerical.shape(),
        "gradient check: analytic {:?} vs numerical {:?}",
        analytic.shape(),
        numerical.shape()
    );
    let scale = numerical.data().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let floor = (1e-3 * scale).max(1e-5);
    analytic
        .data()
        .iter()
        .zip(numerical.data())
        .map(|(&a, &n)| (a - n).abs() / a.abs().max(n.abs()).max(floor))
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

/// Distinct values `spacing` apart, in random order, for max pooling: the
/// central difference must not change which element of a window is largest,
/// so no two may lie within `2 * H` of each other.
pub fn distinct_inputs(shape: &[usize], spacing: f64, seed: u64) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n)
        .map(|i| (i as f64 - n as f64 / 2.0) * spacing)
        .collect();
    v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    Tensor::from_vec(shape, v).expect("length matches shape")
}

/// Replaces every bias with random values in `[-0.5, 0.5]`. Freshly built
/// convnets have zero biases, and then a window that sees only zeros (padding,
/// or ReLU outputs that are all 0) has a pre-activation of exactly 0: ReLU's
/// kink, where the central difference measures half the slope.
pub fn randomize_biases(net: &mut Network<f64>, seed: u64) {
    for (k, p) in net.params_mut().into_iter().enumerate() {
        if !p.decay {
            *p.value = random_tensor(p.value.shape(), 0.5, seed + k as u64);
        }
    }
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
) -> Result<Report, InputError> {
    let numerical = net.numerical_gradient(x, t)?;
    net.gradient(x, t)?;
    let entries = net
        .params()
        .iter()
        .zip(&numerical)
        .map(|(p, (_, num))| Entry {
            name: p.name.clone(),
            max_relative_error: max_relative_error(p.grad, num),
        })
        .collect();
    Ok(Report {
        subject: subject.to_string(),
        entries,
    })
}

/// [`check_network`] for nets with Dropout: a mask drawn afresh on every
/// forward would make the central differences meaningless, so each Dropout
/// layer (of drop ratio `ratio`) is first replaced by one with a fixed random
/// mask for inputs shaped like `x`.
pub fn check_network_with_fixed_dropout(
    net: &mut Network<f64>,
    x: &Tensor<f64>,
    t: Labels<'_, f64>,
    ratio: f64,
    seed: u64,
    subject: &str,
) -> Result<Report, InputError> {
    net.predict(x, false)?;
    for i in 0..net.layers.len() {
        if net.layers[i].name() != "Dropout" {
            continue;
        }
        let shape = match i {
            0 => x.shape().to_vec(),
            _ => net.layers[i - 1].output().shape().to_vec(),
        };
        let mut keep = random_tensor(&shape, 1.0, seed + i as u64);
        let cols = keep.cols().max(1);
        for row in keep.data_mut().chunks_mut(cols) {
            // A row with every unit dropped would pass the check vacuously.
            if row.iter().all(|&v| v <= 0.0) {
                row[0] = 1.0;
            }
            for v in row {
                *v = if *v > 0.0 { 1.0 } else { 0.0 };
            }
        }
        let mut fixed = Dropout::new(ratio, 0);
        fixed.set_fixed_mask(&keep);
        net.layers[i] = Box::new(fixed);
    }
    check_network(net, x, t, subject)
}

/// Checks SoftmaxWithLoss: `dx` from `backward(1)` against the central
/// difference of the loss with respect to each score.
pub fn check_softmax_with_loss(x: &Tensor<f64>, t: Labels<'_, f64>) -> Report {
    let mut layer = SoftmaxWithLoss::new();
    layer.forward(x, t);
    let analytic = layer.backward(1.0).clone();
    let mut xv = x.clone();
    let mut numerical = Tensor::zeros(x.shape());
    for i in 0..x.len() {
        let v = xv.data()[i];
        xv.data_mut()[i] = v + H;
        let fp = layer.forward(&xv, t);
        xv.data_mut()[i] = v - H;
        let fm = layer.forward(&xv, t);
        xv.data_mut()[i] = v;
        numerical.data_mut()[i] = (fp - fm) / (2.0 * H);
    }
    let label_kind = match t {
        Labels::Index(_) => "SoftmaxWithLoss (class labels)",
        Labels::OneHot(_) => "SoftmaxWithLoss (one-hot labels)",
    };
    Report {
        subject: label_kind.to_string(),
        entries: vec![Entry {
            name: "dx".into(),
            max_relative_error: max_relative_error(&analytic, &numerical),
        }],
    }
}

/// Whole MultiLayerNets 6-5-4-3 on a batch of 4: ReLU, Sigmoid and Tanh, each
/// with weight decay 0 and 0.1, weights drawn from `seed`.
pub fn check_multi_layer_nets(seed: u64) -> Vec<Report> {
    let x = random_tensor(&[4, 6], 1.0, 12);
    let t = [0usize, 2, 1, 2];
    let mut reports = Vec::new();
    for activation in [Activation::Relu, Activation::Sigmoid, Activation::Tanh] {
        for lambda in [0.0, 0.1] {
            let spec = MultiLayerNet::new(6, &[5, 4], 3)
                .activation(activation)
                .weight_init(WeightInit::Std(0.5))
                .weight_decay_lambda(lambda);
            let mut net = spec.build::<f64>(seed).expect(SUITE);
            let subject = format!("MultiLayerNet 6-5-4-3 {activation} lambda={lambda}");
            reports.push(check_network(&mut net, &x, Labels::Index(&t), &subject).expect(SUITE));
        }
    }
    reports
}

/// The checks `backprop gradcheck` runs: every layer type on its own, then
/// whole MultiLayerNets (ReLU, Sigmoid and Tanh; weight decay 0 and 0.1) on a
/// small batch, then MultiLayerNets with BatchNorm, then SimpleConvNet and DeepConvNet with
/// few channels.
pub fn standard_suite() -> Vec<Report> {
    let mut reports = vec![
        check_layer(
            &mut Affine::from_params(random_tensor(&[6, 4], 1.0, 1), random_tensor(&[4], 1.0, 2)),
            &random_tensor(&[5, 6], 1.0, 3),
            4,
        ),
        check_layer(
            &mut Relu::new(),
            &inputs_away_from_zero(&[5, 6], 0.05, 5),
            6,
        ),
        check_layer(&mut Sigmoid::new(), &random_tensor(&[5, 6], 2.0, 7), 8),
        check_layer(&mut Tanh::new(), &random_tensor(&[5, 6], 1.5, 9), 10),
    ];
    let mut dropout = Dropout::new(0.5, 0);
    let keep = random_tensor(&[5, 6], 1.0, 14)
        .data()
        .iter()
        .map(|&v| if v > 0.0 { 1.0 } else { 0.0 })
        .collect();
    dropout.set_fixed_mask(&Tensor::from_vec(&[5, 6], keep).expect("5x6"));
    reports.push(check_layer(
        &mut dropout,
        &random_tensor(&[5, 6], 1.0, 15),
        16,
    ));
    // Convolution: non-square input, stride 1 without padding and stride 2
    // with padding; pooling: the nets' 2x2/2 and a padded, overlapping 3x3/2.
    for (k, (stride, pad)) in [(1, 0), (2, 1)].into_iter().enumerate() {
        let seed = 20 + 4 * k as u64;
        let mut report = check_layer(
            &mut Convolution::from_params(
                random_tensor(&[3, 2, 3, 2], 1.0, seed),
                random_tensor(&[3], 1.0, seed + 1),
                stride,
                pad,
            ),
            &random_tensor(&[2, 2, 6, 5], 1.0, seed + 2),
            seed + 3,
        );
        report.subject = format!("Convolution 3x2 stride {stride} pad {pad}");
        reports.push(report);
    }
    for (k, (size, stride, pad)) in [(2, 2, 0), (3, 2, 1)].into_iter().enumerate() {
        let seed = 30 + 2 * k as u64;
        let mut report = check_layer(
            &mut MaxPooling::new(size, size, stride, pad),
            &distinct_inputs(&[2, 2, 7, 6], 0.01, seed),
            seed + 1,
        );
        report.subject = format!("MaxPooling {size}x{size} stride {stride} pad {pad}");
        reports.push(report);
    }
    reports.push(check_layer(
        &mut Flatten::new(),
        &random_tensor(&[2, 3, 2, 2], 1.0, 34),
        35,
    ));
    let mut batch_norm = BatchNorm::new(6);
    batch_norm.gamma = random_tensor(&[6], 1.5, 17);
    batch_norm.beta = random_tensor(&[6], 1.0, 18);
    reports.push(check_layer(
        &mut batch_norm,
        &random_tensor(&[5, 6], 2.0, 19),
        20,
    ));
    let scores = random_tensor(&[5, 4], 2.0, 11);
    let labels = [3usize, 0, 1, 3, 2];
    reports.push(check_softmax_with_loss(&scores, Labels::Index(&labels)));
    let mut one_hot = Tensor::zeros(&[5, 4]);
    for (i, &k) in labels.iter().enumerate() {
        one_hot.data_mut()[i * 4 + k] = 1.0;
    }
    reports.push(check_softmax_with_loss(&scores, Labels::OneHot(&one_hot)));

    reports.extend(check_multi_layer_nets(13));
    let x = random_tensor(&[4, 6], 1.0, 12);
    let t = [0usize, 2, 1, 2];
    // The extended net: Affine - BatchNorm - act per hidden layer, lambda 0.1.
    for activation in [Activation::Relu, Activation::Sigmoid] {
        let mut net = MultiLayerNet::new(6, &[5, 4], 3)
            .activation(activation)
            .weight_init(WeightInit::Std(0.5))
            .weight_decay_lambda(0.1)
            .batchnorm(true)
            .build::<f64>(13)
            .expect(SUITE);
        // The textbook calls this net MultiLayerNetExtend; the name fits the report column.
        let subject = format!("MultiLayerNetExtend 6-5-4-3 {activation} BN");
        reports.push(check_network(&mut net, &x, Labels::Index(&t), &subject).expect(SUITE));
    }

    // The convnets' own layouts with few channels on small images.
    let mut simple = SimpleConvNet::new([2, 7, 6], 3)
        .weight_init(WeightInit::He)
        .weight_decay_lambda(0.1);
    simple.conv_param = ConvParam::new(3, 3, 1, 1);
    simple.hidden_size = 5;
    let mut net = simple.build::<f64>(40).expect(SUITE);
    randomize_biases(&mut net, 41);
    reports.push(
        check_network(
            &mut net,
            &random_tensor(&[2, 2, 7, 6], 1.0, 42),
            Labels::Index(&[2, 0]),
            "SimpleConvNet 2x7x6 conv3x3p1 lambda=0.1",
        )
        .expect(SUITE),
    );
    let mut deep = DeepConvNet::new([1, 8, 8], 3);
    for (p, n) in deep.conv_params.iter_mut().zip([2, 2, 3, 3, 4, 4]) {
        p.filter_num = n;
    }
    deep.hidden_size = 5;
    let mut net = deep.build::<f64>(43).expect(SUITE);
    randomize_biases(&mut net, 44);
    reports.push(
        check_network_with_fixed_dropout(
            &mut net,
            &random_tensor(&[2, 1, 8, 8], 1.0, 45),
            Labels::Index(&[1, 2]),
            deep.dropout_ratio,
            46,
            "DeepConvNet 1x8x8 filters 2-2-3-3-4-4",
        )
        .expect(SUITE),
    );
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_suite_passes() {
        for report in standard_suite() {
            assert!(report.passed(TOLERANCE), "{report}");
        }
    }

    #[test]
    fn a_wrong_gradient_is_caught() {
        let a = Tensor::from_vec(&[2], vec![1.0, 2.0]).unwrap();
        let b = Tensor::from_vec(&[2], vec![1.0, 2.001]).unwrap();
        assert!(max_relative_error(&a, &b) > 1e-4);
        assert_eq!(max_relative_error(&a, &a), 0.0);
        // The absolute floor forgives rounding, not a small wrong gradient.
        let zero = Tensor::from_vec(&[2], vec![0.0, 1e-17]).unwrap();
        let noise = Tensor::from_vec(&[2], vec![1.1e-12, 0.0]).unwrap();
        let wrong = Tensor::from_vec(&[2], vec![1e-7, 0.0]).unwrap();
        assert!(max_relative_error(&zero, &noise) < TOLERANCE);
        assert!(max_relative_error(&zero, &wrong) > 1e-3);
    }
}
