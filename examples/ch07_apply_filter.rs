//! Chapter 7, `apply_filter.py`: a trained convnet's first filters run over
//! a picture (`backprop show activations` draws the responses).
//!
//! ```sh
//! backprop train --net simple-cnn --optimizer adam --lr 0.001 --epochs 1 --out runs/scnn
//! cargo run --release --example ch07_apply_filter -- runs/scnn/model.safetensors picture.png
//! ```

use backprop::checkpoint;
use backprop::predict::load_gray;
use backprop::show::filter_responses;
use backprop::tensor::Tensor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, picture] = args.as_slice() else {
        return Err("usage: ch07_apply_filter MODEL PICTURE".into());
    };
    let (network, _) = checkpoint::load::<f32>(model.as_ref())?;
    let (grey, width, height) = load_gray(picture.as_ref())?;
    let img = Tensor::from_vec(
        &[1, 1, height, width],
        grey.iter().map(|g| g / 255.0).collect(),
    )?;
    let responses = filter_responses(&network, &img, 16)?;
    for (i, out) in responses.maps.iter().enumerate() {
        let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = out.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "filter {:>2}: {:?} response from {min:.3} to {max:.3}",
            i + 1,
            responses.map_size
        );
    }
    Ok(())
}
