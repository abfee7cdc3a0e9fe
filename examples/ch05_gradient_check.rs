//! Chapter 5, `gradient_check.py`: the book's TwoLayerNet (784-50-10) on the
//! first 3 MNIST training images, backprop against numerical gradients, the
//! mean absolute difference per parameter, in f64.
//!
//! `cargo run --release --example ch05_gradient_check`

use backprop::data::{self, DatasetName, LoadOptions};
use backprop::layers::Labels;
use backprop::learn::numpy::py2_str;
use backprop::nets::{MultiLayerNet, WeightInit};
use backprop::tensor::Tensor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = LoadOptions {
        allow_download: true,
        progress: true,
        sample_fallback: true,
        ..LoadOptions::default()
    };
    let train = data::load(DatasetName::Mnist, &options)?.train;
    let mut x = vec![0.0f64; 3 * train.dim()];
    let mut t = vec![0usize; 3];
    train.gather(&[0, 1, 2], &mut x, &mut t);
    let x_batch = Tensor::from_vec(&[3, train.dim()], x)?;

    let mut network = MultiLayerNet::new(784, &[50], 10)
        .weight_init(WeightInit::Std(0.01))
        .build::<f64>(42)?;
    let grad_numerical = network.numerical_gradient(&x_batch, Labels::Index(&t))?;
    network.gradient(&x_batch, Labels::Index(&t))?;
    for (p, (key, numerical)) in network.params().iter().zip(&grad_numerical) {
        let sum: f64 = p
            .grad
            .data()
            .iter()
            .zip(numerical.data())
            .map(|(a, b)| (a - b).abs())
            .sum();
        println!("{key}:{}", py2_str(sum / numerical.len() as f64));
    }
    Ok(())
}
