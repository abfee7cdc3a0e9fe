//! Chapter 3, §3.4.3: the book's three-layer net (`init_network()`,
//! `forward()`), built from the library's Affine and Sigmoid layers.
//!
//! `cargo run --release --example ch03_three_layer_net`

use backprop::layers::{Affine, Layer, Sigmoid};
use backprop::learn::numpy::array_str;
use backprop::nets::Network;
use backprop::tensor::Tensor;

fn main() {
    let t = |shape: &[usize], v: &[f64]| Tensor::from_vec(shape, v.to_vec()).unwrap();
    let layers: Vec<Box<dyn Layer<f64>>> = vec![
        Box::new(Affine::from_params(
            t(&[2, 3], &[0.1, 0.3, 0.5, 0.2, 0.4, 0.6]),
            t(&[3], &[0.1, 0.2, 0.3]),
        )),
        Box::new(Sigmoid::new()),
        Box::new(Affine::from_params(
            t(&[3, 2], &[0.1, 0.4, 0.2, 0.5, 0.3, 0.6]),
            t(&[2], &[0.1, 0.2]),
        )),
        Box::new(Sigmoid::new()),
        // The identity output: the net's scores before softmax.
        Box::new(Affine::from_params(
            t(&[2, 2], &[0.1, 0.3, 0.2, 0.4]),
            t(&[2], &[0.1, 0.2]),
        )),
    ];
    let mut network = Network::new(layers, 0.0);
    let x = t(&[1, 2], &[1.0, 0.5]);
    let y = network.predict(&x, false).unwrap();
    println!("{}", array_str(y.data()));
}
