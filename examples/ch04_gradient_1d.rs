//! Chapter 4, `gradient_1d.py`: the derivative of `0.01x² + 0.1x` at 5 and
//! 10 by the central difference (`backprop learn numerical-diff` draws the
//! tangent lines).
//!
//! `cargo run --release --example ch04_gradient_1d`

use backprop::gradcheck::numerical_diff;

fn function_1(x: f64) -> f64 {
    0.01 * (x * x) + 0.1 * x
}

fn main() {
    println!("{}", numerical_diff(function_1, 5.0));
    println!("{}", numerical_diff(function_1, 10.0));
}
