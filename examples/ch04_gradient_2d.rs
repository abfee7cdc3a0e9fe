//! Chapter 4, `gradient_2d.py`: the gradient of `x0² + x1²` by
//! `numerical_gradient(f, x)` at three points (`backprop learn
//! gradient-field` draws minus the gradient over the contour lines).
//!
//! `cargo run --release --example ch04_gradient_2d`

use backprop::gradcheck::numerical_gradient;
use backprop::learn::numpy::array_str;
use backprop::tensor::Tensor;

fn function_2(x: &Tensor<f64>) -> f64 {
    x.data().iter().map(|v| v * v).sum()
}

fn main() {
    for point in [[3.0, 4.0], [0.0, 2.0], [3.0, 0.0]] {
        let x = Tensor::from_vec(&[2], point.to_vec()).unwrap();
        println!("{}", array_str(numerical_gradient(function_2, &x).data()));
    }
}
