//! Chapter 2, `xor_gate.py`: XOR from two layers of perceptrons,
//! `AND(NAND(x1, x2), OR(x1, x2))`; no single perceptron can do it.
//!
//! `cargo run --release --example ch02_xor_gate`

use backprop::learn::perceptron::{AND, INPUTS, NAND, OR};

fn main() {
    for (x1, x2) in INPUTS {
        let (x1f, x2f) = (f64::from(x1), f64::from(x2));
        let s1 = NAND.output(x1f, x2f);
        let s2 = OR.output(x1f, x2f);
        let y = AND.output(f64::from(s1), f64::from(s2));
        println!("({x1}, {x2}) -> {y}");
    }
}
