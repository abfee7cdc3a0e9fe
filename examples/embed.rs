//! A program with a model built in: classifies the pictures named on the
//! command line and prints each one's class and probability.
//!
//! ```sh
//! cargo run --release --example embed -- digit.png another.jpg
//! ```
//!
//! The model is `assets/mnist-mlp/model.safetensors`, an MNIST MLP that
//! `backprop train` wrote (assets/mnist-mlp/README.md gives the command);
//! `include_bytes!` puts it in the executable, which then needs no file
//! beside it. A picture of a digit may have any size and either polarity:
//! it is prepared as `backprop predict` prepares it.

use std::process::ExitCode;

use backprop::Classifier;

static MODEL: &[u8] = include_bytes!("../assets/mnist-mlp/model.safetensors");

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: embed PICTURE... (PNG, JPEG or BMP pictures of digits)");
        return ExitCode::from(2);
    }
    let classifier = Classifier::from_bytes(MODEL).expect("the built-in model is a model");
    let mut failed = false;
    for file in &files {
        match classifier.predict_image_file(file) {
            Ok(p) => println!("{file}: {} ({:.3})", p.name, p.probability()),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
