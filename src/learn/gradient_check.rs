//! Chapter 5, `gradient_check.py`: backpropagation against numerical
//! gradients on real data. The book's TwoLayerNet (784-50-10, ReLU, weights
//! `0.01 · randn`) takes the first 3 MNIST training images; for each
//! parameter the mean absolute difference between `gradient()` (one forward
//! pass, one backward pass) and `numerical_gradient()` (two forward passes
//! per weight, 79,520 in all) is printed as the book prints it
//! (`W1:2.2232446644e-13`). The book's values come from its own random
//! weights; what carries over is their size: 1e-10 and below, the central
//! difference's own error (rounding, and its h² term), so backprop is right.

use std::fmt::Write as _;

use anyhow::Result;

use super::numpy::py2_str;
use super::{Options, Outcome};
use crate::data::Dataset;
use crate::experiments::{figure_and_csv, load_mnist};
use crate::layers::Labels;
use crate::nets::{MultiLayerNet, Network, WeightInit};
use crate::plot::{self, Figure, Panel};
use crate::tensor::Tensor;

/// The book's `TwoLayerNet(input_size=784, hidden_size=50, output_size=10)`
/// (`weight_init_std=0.01`), in f64.
pub fn two_layer_net(seed: u64) -> Network<f64> {
    MultiLayerNet::new(784, &[50], 10)
        .weight_init(WeightInit::Std(0.01))
        .build(seed)
        .expect("784-50-10 builds")
}

/// The first `n` examples of `data` as an f64 batch and their labels.
pub fn first_batch(data: &Dataset, n: usize) -> (Tensor<f64>, Vec<usize>) {
    let indices: Vec<usize> = (0..n.min(data.len())).collect();
    let mut x = vec![0.0; indices.len() * data.dim()];
    let mut t = vec![0; indices.len()];
    data.gather(&indices, &mut x, &mut t);
    let x = Tensor::from_vec(&[indices.len(), data.dim()], x).expect("n rows of dim");
    (x, t)
}

/// One parameter's comparison.
#[derive(Clone, Debug)]
pub struct Difference {
    pub name: String,
    /// `np.average(np.abs(grad_backprop - grad_numerical))`.
    pub mean_abs: f64,
    /// Every element's `|backprop - numerical|`.
    pub abs: Vec<f64>,
}

/// Backprop and numerical gradients of `net` on `(x, t)`, compared per
/// parameter.
pub fn compare(net: &mut Network<f64>, x: &Tensor<f64>, t: &[usize]) -> Result<Vec<Difference>> {
    let numerical = net.numerical_gradient(x, Labels::Index(t))?;
    net.gradient(x, Labels::Index(t))?;
    Ok(net
        .params()
        .iter()
        .zip(&numerical)
        .map(|(p, (name, num))| {
            let abs: Vec<f64> = p
                .grad
                .data()
                .iter()
                .zip(num.data())
                .map(|(a, n)| (a - n).abs())
                .collect();
            Difference {
                name: name.clone(),
                mean_abs: abs.iter().sum::<f64>() / abs.len() as f64,
                abs,
            }
        })
        .collect())
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let split = load_mnist(opts)?;
    let (x, t) = first_batch(&split.train, 3);
    let mut net = two_layer_net(opts.seed);
    let diffs = compare(&mut net, &x, &t)?;
    let mut table = String::new();
    writeln!(
        table,
        "TwoLayerNet 784-50-10 on x_train[:3] (labels {t:?}), f64:"
    )
    .expect("writing to a String");
    for d in &diffs {
        writeln!(table, "{}:{}", d.name, py2_str(d.mean_abs)).expect("writing to a String");
    }
    table.push_str(
        "(mean |backprop - numerical| per parameter; the book's run gives 1e-10 to 1e-13)\n",
    );
    let range = -16.0..-8.0;
    let panels = diffs
        .iter()
        .map(|d| {
            let exact = d.abs.iter().filter(|&&v| v == 0.0).count();
            let logs = d.abs.iter().filter(|&&v| v > 0.0).map(|v| v.log10());
            Panel::histogram(
                &format!(
                    "{}: {} values, {} equal exactly",
                    d.name,
                    d.abs.len(),
                    exact
                ),
                "log10 |backprop - numerical|",
                range.clone(),
                plot::histogram(logs, &range, 48),
            )
        })
        .collect();
    let figure = Figure::new(panels, 2)
        .title("gradient_check.py: backprop and numerical gradients differ by the central difference's own error")
        .panel_size(520, 340);
    let rows: Vec<String> = diffs
        .iter()
        .map(|d| {
            let max = d.abs.iter().copied().fold(0.0, f64::max);
            format!("{},{},{},{max}", d.name, d.abs.len(), d.mean_abs)
        })
        .collect();
    figure_and_csv(
        &figure,
        opts,
        "gradient-check",
        "param,values,mean_abs_diff,max_abs_diff",
        &rows,
        table,
    )
}

#[cfg(test)]
mod tests {
    use crate::data::testutil::TempDir;
    use crate::learn::{Lesson, tests::run_quick};

    #[test]
    fn backprop_agrees_with_the_central_difference_on_mnist() {
        let dir = TempDir::new("learn-gradcheck");
        let outcome = run_quick(Lesson::GradientCheck, dir.path());
        let csv = std::fs::read_to_string(dir.path().join("gradient-check.csv")).unwrap();
        let rows: Vec<Vec<&str>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        let names: Vec<&str> = rows.iter().map(|r| r[0]).collect();
        assert_eq!(names, ["W1", "b1", "W2", "b2"]);
        for r in &rows {
            let mean: f64 = r[2].parse().unwrap();
            // The book's four: 2.2e-13, 9.7e-13, 8.4e-13, 1.2e-10.
            assert!(mean > 0.0 && mean < 1e-9, "{r:?}");
        }
        assert!(outcome.table.contains("\nW1:"), "{}", outcome.table);
    }
}
