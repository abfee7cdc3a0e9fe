//! The textbook's `batch_norm_test.py`: a 784-100x5-10 ReLU net trained on
//! 1000 MNIST images (SGD, lr 0.01, batch 100, 20 epochs) with and without
//! BatchNorm, for 16 initial weight scales from 1 down to 1e-4
//! (`logspace(0, -4, 16)`). One small plot per scale shows the training
//! accuracy (inference mode, on the 1000 images) per epoch; the textbook's
//! finding is that BatchNorm learns faster and at almost every scale.
//! `--quick`: 4 scales, 10 epochs.

use anyhow::Result;

use super::{
    Curves, Experiment, Options, Outcome, Progress, figure_and_csv, last, load_mnist, per_epoch,
    train_epochs,
};
use crate::nets::{MultiLayerNet, WeightInit};
use crate::plot::{Corner, Figure, Panel, Series};

const TRAIN_IMAGES: usize = 1000;
const LR: f64 = 0.01;
const BATCH: usize = 100;

pub fn run(opts: &Options) -> Result<Outcome> {
    let split = load_mnist(opts)?;
    let train = split.train.take(TRAIN_IMAGES);
    let test = split.test.take(opts.pick(10_000, 2000));
    let (scales, epochs) = opts.pick((16, 20), (4, 10));
    // logspace(0, -4, n): 1, ..., 1e-4.
    let stds: Vec<f64> = (0..scales)
        .map(|i| 10f64.powf(-4.0 * i as f64 / (scales - 1) as f64))
        .collect();

    let mut progress = Progress::new(
        Experiment::Batchnorm,
        opts,
        2 * scales,
        (2 * scales * epochs) as u64,
    );
    let mut rows = Vec::new();
    let mut panels = Vec::new();
    let mut table = format!(
        "{:>10} {:>24} {:>24}\n",
        "weight std", "train/test acc, no BN", "train/test acc, BN"
    );
    let mut wins = 0;
    for (k, &std) in stds.iter().enumerate() {
        let mut runs: Vec<Curves> = Vec::new();
        for bn in [false, true] {
            let label = format!("std {std:.2e} {}", if bn { "BN" } else { "no BN" });
            progress.start(&label);
            let spec = MultiLayerNet::new(784, &[100; 5], 10)
                .weight_init(WeightInit::Std(std))
                .batchnorm(bn);
            let curves = train_epochs(&spec, LR, &train, &test, epochs, BATCH, opts, &progress)?;
            for (e, (tr, te)) in curves
                .train_accuracy
                .iter()
                .zip(&curves.test_accuracy)
                .enumerate()
            {
                rows.push(format!("{std},{bn},{},{tr},{te}", e + 1));
            }
            progress.run_done(&label);
            runs.push(curves);
        }
        let (plain, bn) = (&runs[0], &runs[1]);
        let cell = |c: &Curves| {
            let mark = if c.diverged { " (diverged)" } else { "" };
            format!(
                "{:.3}/{:.3}{mark}",
                last(&c.train_accuracy),
                last(&c.test_accuracy)
            )
        };
        if last(&bn.train_accuracy) > last(&plain.train_accuracy) {
            wins += 1;
        }
        table.push_str(&format!(
            "{std:>10.2e} {:>24} {:>24}\n",
            cell(plain),
            cell(bn)
        ));
        panels.push(
            Panel::lines(
                &format!("W std {std:.2e}"),
                "epoch",
                "train accuracy",
                vec![
                    Series::new("Batch Normalization", per_epoch(&bn.train_accuracy)),
                    Series::new("Normal (without BN)", per_epoch(&plain.train_accuracy)).dashed(),
                ],
            )
            .x_range(1.0..epochs as f64)
            .y_range(0.0..1.0)
            .legend(k == 0)
            .legend_corner(Corner::LowerRight),
        );
    }
    table.push_str(&format!(
        "BatchNorm ends with the higher training accuracy at {wins} of {scales} scales\n"
    ));

    let name = Experiment::Batchnorm.name();
    let figure = Figure::new(panels, 4)
        .title(format!(
            "with vs without BatchNorm: {TRAIN_IMAGES} MNIST images, 784-100x5-10 ReLU, SGD lr {LR}"
        ))
        .panel_size(330, 250);
    figure_and_csv(
        &figure,
        opts,
        name,
        "weight_std,batchnorm,epoch,train_accuracy,test_accuracy",
        &rows,
        table,
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{read, run_quick};
    use super::*;
    use crate::data::testutil::TempDir;

    #[test]
    fn batchnorm_quick() {
        let dir = TempDir::new("exp-bn");
        let outcome = run_quick(Experiment::Batchnorm, dir.path(), (1320, 290));
        assert_eq!(
            read(dir.path(), "batchnorm.csv").lines().count(),
            1 + 4 * 2 * 10
        );
        // Even ten epochs show it: BatchNorm ahead at most scales.
        let summary = outcome.table.lines().last().unwrap();
        let wins: usize = summary.split_whitespace().nth(8).unwrap().parse().unwrap();
        assert!(wins >= 3, "{}", outcome.table);
    }
}
