//! Chapter 2, `and_gate.py`: the AND gate as a perceptron with hand-set weights.
//!
//! `cargo run --release --example ch02_and_gate`

use backprop::learn::perceptron::{AND, INPUTS};

fn main() {
    println!("w = {:?}, b = {}", AND.w, AND.b);
    for (x1, x2) in INPUTS {
        let y = AND.output(f64::from(x1), f64::from(x2));
        println!("({x1}, {x2}) -> {y}");
    }
}
