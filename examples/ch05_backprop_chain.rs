//! Chapter 5, the net's `gradient()` layer by layer: one batch of 3 MNIST
//! images forward through a MultiLayerNet, then `dout = 1` back through
//! SoftmaxWithLoss and every layer, printing what each passes on
//! (`backprop learn chain` prints more and draws the chain).
//!
//! `cargo run --release --example ch05_backprop_chain`

use backprop::data::{self, DatasetName, LoadOptions};
use backprop::layers::Labels;
use backprop::nets::MultiLayerNet;
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
    let x = Tensor::from_vec(&[3, train.dim()], x)?;

    let mut net = MultiLayerNet::new(784, &[30, 20], 10).build::<f64>(42)?;
    let loss = net.loss(&x, Labels::Index(&t), true)?;
    for layer in &net.layers {
        println!(
            "forward  {:<8} output {:?}",
            layer.name(),
            layer.output().shape()
        );
    }
    println!("forward  SoftmaxWithLoss loss {loss:.4}");

    net.backward(1.0);
    for (i, layer) in net.layers.iter().enumerate().rev() {
        let grads: Vec<String> = layer
            .params()
            .iter()
            .map(|p| format!("d{} {:?}", p.name, p.grad.shape()))
            .collect();
        let dx = if i == 0 {
            "not needed".to_string()
        } else {
            format!("{:?}", layer.grad_input().shape())
        };
        println!("backward {:<8} dx {dx} {}", layer.name(), grads.join(" "));
    }
    Ok(())
}
