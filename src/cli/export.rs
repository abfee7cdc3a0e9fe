//! `backprop export --model FILE --onnx OUT.onnx [--precision f32|f16]`: a
//! saved model as an ONNX model ([`crate::export::onnx`]), with what was
//! written, and for f16 weights the accuracy they cost on the test set.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::{ModelOnTestSet, load_model_and_test_set};
use crate::checkpoint;
use crate::eval::{self, Precision};
use crate::export::onnx;

#[derive(Args)]
pub struct ExportArgs {
    /// The saved model, and for --precision f16 the test set its accuracy is measured on.
    #[command(flatten)]
    pub test: ModelOnTestSet,
    /// Where to write the ONNX model (the folder must exist).
    #[arg(long, value_name = "OUT.onnx")]
    pub onnx: PathBuf,
    /// Weights as trained (f32), or stored in half precision (f16: half the file; a Cast
    /// widens them, so the model computes in f32), with the accuracy change on the test set.
    #[arg(long, default_value_t = Precision::F32)]
    pub precision: Precision,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let (net, info) = checkpoint::load::<f32>(&a.test.model)?;
    let options = onnx::Options {
        precision: a.precision,
    };
    let bytes = onnx::write(&a.onnx, &net, &info, &options)?;
    let shape = |rest: &[usize]| {
        let dims: Vec<String> = rest.iter().map(usize::to_string).collect();
        format!("[{}, {}]", onnx::BATCH_AXIS, dims.join(", "))
    };
    println!(
        "wrote {}: {:.2} MiB ({bytes} bytes), ONNX opset {}, weights in {}",
        a.onnx.display(),
        bytes as f64 / f64::from(1u32 << 20),
        onnx::OPSET,
        a.precision
    );
    for input in onnx::inputs(&info) {
        println!(
            "input  {}: {} {} ({})",
            input.name,
            input.type_name(),
            shape(&input.shape),
            input.holds
        );
    }
    println!(
        "output {}: float32 {}; {}: float32 {} (softmax)",
        onnx::LOGITS,
        shape(&[info.classes()]),
        onnx::PROBABILITIES,
        shape(&[info.classes()])
    );
    if a.precision == Precision::F16 {
        let (mut net, _, dataset, test) = load_model_and_test_set(&a.test, true)?;
        let comparison = eval::compare_f16(&mut net, &test, test.len())?;
        println!("on the {dataset} test set: {comparison}");
    }
    Ok(())
}
