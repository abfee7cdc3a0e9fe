//! Why a net needs an activation: the spiral data set with Affine layers
//! only, and with ReLU between them (`backprop learn why-relu` draws the
//! decision regions).
//!
//! `cargo run --release --example ch03_why_relu`

use backprop::data::spiral;
use backprop::layers::Layer;
use backprop::nets::{MultiLayerNet, Network};
use backprop::optim::Sgd;
use backprop::train::Trainer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = spiral::split(42);
    let relu = MultiLayerNet::new(2, &[100, 100], 3).build::<f32>(42)?;
    let affine_only: Vec<Box<dyn Layer<f32>>> = relu
        .layers
        .iter()
        .filter(|l| l.name() != "Relu")
        .cloned()
        .collect();
    for (name, net) in [
        ("Affine only", Network::new(affine_only, 0.0)),
        ("with ReLU", relu),
    ] {
        let mut trainer = Trainer::new(net, Box::new(Sgd::new(0.1)), 2, 42);
        for _ in 0..20 {
            trainer.train_epoch(&data.train, 32, |_, _| {})?;
        }
        let (_, accuracy) = trainer.evaluate(&data.test, 1000)?;
        println!("{name:<12} test accuracy {accuracy:.4}");
    }
    Ok(())
}
