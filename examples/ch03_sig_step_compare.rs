//! Chapter 3, `step_function.py`, `sigmoid.py`, `relu.py`: the activation
//! functions, here the library's own layers run forward on a few values
//! (`backprop learn activations` draws them).
//!
//! `cargo run --release --example ch03_sig_step_compare`

use backprop::layers::{Layer, Relu, Sigmoid, Tanh};
use backprop::learn::numpy::{array_str, int_array_str};
use backprop::tensor::Tensor;

fn main() {
    let x = Tensor::from_vec(&[1, 3], vec![-1.0, 1.0, 2.0]).unwrap();
    let step: Vec<i64> = x.data().iter().map(|&v| i64::from(v > 0.0)).collect();
    println!("step_function: {}", int_array_str(&step));
    println!(
        "sigmoid:       {}",
        array_str(Sigmoid::new().forward(&x, false).data())
    );
    println!(
        "tanh:          {}",
        array_str(Tanh::new().forward(&x, false).data())
    );
    println!(
        "relu:          {}",
        array_str(Relu::new().forward(&x, false).data())
    );
}
