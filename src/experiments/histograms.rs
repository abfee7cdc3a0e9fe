//! The textbook's `weight_init_activation_histogram.py`: 1000 random inputs
//! (standard normal, 100 features) through five layers of 100 units (Affine
//! without bias, then the activation), histograms of each layer's outputs in
//! 30 bins over (0, 1), as the textbook plots them.
//!
//! Rows: sigmoid with std 1 (outputs pile up at 0 and 1: vanishing
//! gradients), sigmoid with std 0.01 (all near 0.5: the units say the same
//! thing), sigmoid with Xavier (spread out), ReLU with He (spread out, half
//! exactly zero, that bar cut off as the textbook does). The table gives per layer the standard deviation of the
//! outputs and the fraction that is saturated (sigmoid below 0.01 or above
//! 0.99) or zero (ReLU). No data set needed, and it runs in well under a
//! second, so `--quick` changes nothing.

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Experiment, Options, Outcome, figure_and_csv};
use crate::layers::{Affine, Layer, Relu, Sigmoid};
use crate::nets::{Activation, WeightInit};
use crate::plot::{self, Figure, Panel};
use crate::tensor::Tensor;

const INPUTS: usize = 1000;
const NODES: usize = 100;
const LAYERS: usize = 5;
const BINS: usize = 30;

pub fn run(opts: &Options) -> Result<Outcome> {
    let configs = [
        (Activation::Sigmoid, WeightInit::Std(1.0), "sigmoid, std 1"),
        (
            Activation::Sigmoid,
            WeightInit::Std(0.01),
            "sigmoid, std 0.01",
        ),
        (Activation::Sigmoid, WeightInit::Xavier, "sigmoid, Xavier"),
        (Activation::Relu, WeightInit::He, "ReLU, He"),
    ];
    let range = 0.0..1.0;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let x = Tensor::<f64>::randn(&[INPUTS, NODES], 1.0, &mut rng);
    let mut panels = Vec::new();
    let mut rows = Vec::new();
    let mut table = format!(
        "{:<18} {}\n",
        "config",
        (1..=LAYERS)
            .map(|l| format!("{:>16}", format!("layer {l} std/sat")))
            .collect::<String>()
    );
    for (activation, init, label) in configs {
        let mut a = x.clone();
        let mut cells = String::new();
        for layer in 1..=LAYERS {
            let w = Tensor::randn(&[NODES, NODES], init.std(NODES), &mut rng);
            let mut affine = Affine::from_params(w, Tensor::zeros(&[NODES]));
            let z = affine.forward(&a, false);
            let mut act: Box<dyn Layer<f64>> = match activation {
                Activation::Sigmoid => Box::new(Sigmoid::new()),
                _ => Box::new(Relu::new()),
            };
            a = act.forward(z, false).clone();

            let v = a.data();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let std =
                (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64).sqrt();
            let saturated = v
                .iter()
                .filter(|&&x| match activation {
                    Activation::Sigmoid => !(0.01..=0.99).contains(&x),
                    _ => x == 0.0,
                })
                .count() as f64
                / v.len() as f64;
            cells.push_str(&format!("{:>16}", format!("{std:.3}/{saturated:.2}")));

            let counts = plot::histogram(v.iter().copied(), &range, BINS);
            let width = (range.end - range.start) / BINS as f64;
            for (i, c) in counts.iter().enumerate() {
                let lo = range.start + i as f64 * width;
                rows.push(format!("{label},{layer},{lo},{},{c}", lo + width));
            }
            let mut title = format!("{label}: layer {layer}");
            // Half of ReLU's outputs are exactly 0, a bar ten times the others;
            // the textbook cuts it off (ylim) to show the spread of the rest.
            let cut = match activation {
                Activation::Relu => {
                    let rest = counts[1..].iter().copied().max().unwrap_or(0);
                    (counts[0] > 2 * rest).then_some(1.25 * rest.max(1) as f64)
                }
                _ => None,
            };
            if cut.is_some() {
                title.push_str(&format!(" ({}k at 0, cut)", counts[0].div_ceil(1000)));
            }
            let mut panel = Panel::histogram(&title, "activation", range.clone(), counts);
            if let Some(top) = cut {
                panel = panel.y_range(0.0..top);
            }
            panels.push(panel);
        }
        table.push_str(&format!("{label:<18} {cells}\n"));
    }
    table.push_str("(std: standard deviation of the layer's outputs; sat: fraction below 0.01 or above 0.99 for sigmoid, exactly 0 for ReLU)\n");

    let name = Experiment::ActivationHistograms.name();
    let figure = Figure::new(panels, LAYERS)
        .title("activations of 5 layers of 100 units, 1000 random inputs (30 bins over 0..1)")
        .panel_size(320, 240);
    figure_and_csv(
        &figure,
        opts,
        name,
        "config,layer,bin_start,bin_end,count",
        &rows,
        table,
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{read, run_quick};
    use super::*;
    use crate::data::testutil::TempDir;

    /// The textbook's observations, as numbers: std 1 saturates the sigmoid,
    /// std 0.01 collapses it, Xavier keeps it spread; the run is reproducible.
    #[test]
    fn activation_histograms() {
        let (a, b) = (TempDir::new("exp-hist-a"), TempDir::new("exp-hist-b"));
        let outcome = run_quick(Experiment::ActivationHistograms, a.path(), (1600, 1000));
        run_quick(Experiment::ActivationHistograms, b.path(), (1600, 1000));
        let csv = read(a.path(), "activation-histograms.csv");
        assert_eq!(csv, read(b.path(), "activation-histograms.csv"));
        assert_eq!(csv.lines().count(), 1 + 4 * LAYERS * BINS);
        // Layer 5 of each config: (std, saturated fraction).
        let layer5 = |prefix: &str| -> (f64, f64) {
            let line = outcome
                .table
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap();
            let cell = line.split_whitespace().last().unwrap();
            let (s, f) = cell.split_once('/').unwrap();
            (s.parse().unwrap(), f.parse().unwrap())
        };
        assert!(layer5("sigmoid, std 1").1 > 0.5, "{}", outcome.table);
        let collapsed = layer5("sigmoid, std 0.01");
        assert!(
            collapsed.0 < 0.05 && collapsed.1 == 0.0,
            "{}",
            outcome.table
        );
        let xavier = layer5("sigmoid, Xavier");
        assert!(xavier.0 > 0.05 && xavier.1 < 0.05, "{}", outcome.table);
        let relu = layer5("ReLU, He").1;
        assert!((0.3..0.7).contains(&relu), "{}", outcome.table);
    }
}
