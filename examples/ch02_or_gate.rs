//! Chapter 2, `or_gate.py`: the OR gate as a perceptron with hand-set weights.
//!
//! `cargo run --release --example ch02_or_gate`

use backprop::learn::perceptron::{INPUTS, OR};

fn main() {
    println!("w = {:?}, b = {}", OR.w, OR.b);
    for (x1, x2) in INPUTS {
        let y = OR.output(f64::from(x1), f64::from(x2));
        println!("({x1}, {x2}) -> {y}");
    }
}
