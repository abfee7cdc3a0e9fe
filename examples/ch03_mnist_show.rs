//! Chapter 3, `mnist_show.py`: the first MNIST training image and its label,
//! printed as text (`backprop show examples` draws a grid of them). MNIST is
//! found as `backprop train` finds it (`BACKPROP_DATA`, the cache, a
//! download, else the built-in sample).
//!
//! `cargo run --release --example ch03_mnist_show`

use backprop::data::{self, DatasetName, LoadOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = LoadOptions {
        allow_download: true,
        progress: true,
        sample_fallback: true,
        ..LoadOptions::default()
    };
    let train = data::load(DatasetName::Mnist, &options)?.train;
    let mut img = vec![0.0f32; train.dim()];
    let mut label = [0usize];
    train.gather(&[0], &mut img, &mut label);
    println!("{}", label[0]);
    println!("({},)", img.len());
    let [_, h, w] = train.shape;
    println!("({h}, {w})");
    for row in img.chunks(w) {
        let line: String = row
            .iter()
            .map(|&v| {
                if v > 0.5 {
                    '#'
                } else if v > 0.0 {
                    '+'
                } else {
                    '.'
                }
            })
            .collect();
        println!("{line}");
    }
    Ok(())
}
