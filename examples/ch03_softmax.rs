//! Chapter 3, §3.5: softmax, as the library's SoftmaxWithLoss computes it.
//!
//! `cargo run --release --example ch03_softmax`

use backprop::learn::activations::softmax;
use backprop::learn::numpy::{array_str, short};

fn main() {
    let y = softmax(&[0.3, 2.9, 4.0]);
    println!("{}", array_str(&y));
    println!("{}", short(y.iter().sum()));
    // Shifted by the maximum, so large scores do not overflow.
    println!("{}", array_str(&softmax(&[1010.0, 1000.0, 990.0])));
}
