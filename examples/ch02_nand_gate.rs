//! Chapter 2, `nand_gate.py`: the NAND gate as a perceptron with hand-set weights.
//!
//! `cargo run --release --example ch02_nand_gate`

use backprop::learn::perceptron::{INPUTS, NAND};

fn main() {
    println!("w = {:?}, b = {}", NAND.w, NAND.b);
    for (x1, x2) in INPUTS {
        let y = NAND.output(f64::from(x1), f64::from(x2));
        println!("({x1}, {x2}) -> {y}");
    }
}
