//! Chapter 4, `gradient_method.py`: gradient descent on `x0² + x1²` from
//! (-3, 4), 100 steps, with a good, a too large and a too small learning
//! rate (`backprop learn gradient-descent` draws the paths).
//!
//! `cargo run --release --example ch04_gradient_method`

use backprop::gradcheck::numerical_gradient;
use backprop::learn::numpy::array_str;
use backprop::tensor::Tensor;

fn function_2(x: &Tensor<f64>) -> f64 {
    x.data().iter().map(|v| v * v).sum()
}

fn gradient_descent(init_x: &[f64], lr: f64, step_num: usize) -> Vec<f64> {
    let mut x = Tensor::from_vec(&[init_x.len()], init_x.to_vec()).unwrap();
    for _ in 0..step_num {
        let grad = numerical_gradient(function_2, &x);
        for (v, g) in x.data_mut().iter_mut().zip(grad.data()) {
            *v -= lr * g;
        }
    }
    x.into_vec()
}

fn main() {
    for lr in [0.1, 10.0, 1e-10] {
        println!("{}", array_str(&gradient_descent(&[-3.0, 4.0], lr, 100)));
    }
}
