//! The textbook's `hyperparameter_optimization.py`: random search over the
//! learning rate (`10^U(-6, -2)`) and the weight decay (`10^U(-8, -4)`) for a
//! 784-100x6-10 ReLU net trained with SGD on 400 MNIST images for 50 epochs,
//! judged by the accuracy on 100 validation images carved out of the
//! training set (the first 500 training images, shuffled and split 80/20).
//! The test set is never touched: choosing by test accuracy would make the
//! test accuracy an optimistic estimate.
//!
//! 100 trials; the figure shows the best 20 (validation accuracy solid,
//! training accuracy dashed), the JSONL every trial with its curves, and the
//! table the ranking. `--quick`: 10 trials of 20 epochs.
//!
//! Under `mpirun` the ranks share the trials (trial `i` on rank `i mod K`),
//! every rank drawing the whole list alike; rank 0 gathers the results and
//! writes the files a single process writes with the same seed and threads.

use std::fmt::Write as _;
use std::fs;

use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{
    Experiment, Options, Outcome, Progress, last, load_mnist, per_epoch, save_figure, train_epochs,
};
use crate::dist::{self, Collective};
use crate::nets::MultiLayerNet;
use crate::plot::{Figure, Panel, Series};

const IMAGES: usize = 500;
const VALIDATION_FRACTION: f64 = 0.2;
const BATCH: usize = 100;
const SHOWN: usize = 20;

/// One line of `hyperparameter-search.jsonl`.
#[derive(Serialize)]
struct Trial {
    trial: usize,
    lr: f64,
    weight_decay: f64,
    val_accuracy: Vec<f64>,
    train_accuracy: Vec<f64>,
}

/// Shuffles `0..n` with `seed` and splits it into (train, validation), the
/// validation part `fraction` of the whole.
fn validation_split(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_val = (n as f64 * fraction).round() as usize;
    let val = order.split_off(n - n_val);
    (order, val)
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let split = load_mnist(opts)?;
    let pool = split.train.take(IMAGES);
    let (train_idx, val_idx) = validation_split(pool.len(), VALIDATION_FRACTION, opts.seed);
    let (train, val) = (pool.subset(&train_idx), pool.subset(&val_idx));
    let (trials, epochs) = opts.pick((100, 50), (10, 20));

    let mut progress = Progress::new(
        Experiment::HyperparameterSearch,
        opts,
        trials,
        (trials * epochs) as u64,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x4b7f);
    let draws: Vec<(f64, f64)> = (0..trials)
        .map(|_| {
            let weight_decay = 10f64.powf(rng.random_range(-8.0..-4.0));
            let lr = 10f64.powf(rng.random_range(-6.0..-2.0));
            (weight_decay, lr)
        })
        .collect();
    let comm = dist::world();
    let mut results = Vec::with_capacity(trials);
    for (i, &(weight_decay, lr)) in draws.iter().enumerate() {
        if i % comm.size() != comm.rank() {
            continue;
        }
        let trial = i + 1;
        let what = format!("trial {trial} (lr {lr:.2e}, weight decay {weight_decay:.2e})");
        progress.start(&what);
        let spec = MultiLayerNet::new(784, &[100; 6], 10).weight_decay_lambda(weight_decay);
        // The "test" of train_epochs is the validation split here.
        let curves = train_epochs(&spec, lr, &train, &val, epochs, BATCH, opts, &progress)?;
        results.push(Trial {
            trial,
            lr,
            weight_decay,
            val_accuracy: curves.test_accuracy,
            train_accuracy: curves.train_accuracy,
        });
        progress.run_done(&what);
    }
    let Some(mut results) = gather_trials(&*comm, &results, epochs) else {
        // Rank 0 writes the files.
        return Ok(Outcome {
            table: String::new(),
            files: Vec::new(),
        });
    };

    let name = Experiment::HyperparameterSearch.name();
    let jsonl = opts.out.join(format!("{name}.jsonl"));
    let mut text = String::new();
    for t in &results {
        writeln!(text, "{}", serde_json::to_string(t)?).expect("writing to a String");
    }
    fs::write(&jsonl, text).with_context(|| format!("cannot write {}", jsonl.display()))?;

    // Best first; a diverged trial (NaN) ranks last.
    let score = |t: &Trial| {
        let v = last(&t.val_accuracy);
        if v.is_nan() { -1.0 } else { v }
    };
    results.sort_by(|a, b| score(b).total_cmp(&score(a)));
    let mut table = format!(
        "{:>4} {:>6} {:>9} {:>10} {:>13} {:>9}\n",
        "rank", "trial", "val acc", "lr", "weight decay", "train acc"
    );
    for (rank, t) in results.iter().enumerate().take(10) {
        table.push_str(&format!(
            "{:>4} {:>6} {:>9.3} {:>10.2e} {:>13.2e} {:>9.3}\n",
            rank + 1,
            t.trial,
            last(&t.val_accuracy),
            t.lr,
            t.weight_decay,
            last(&t.train_accuracy)
        ));
    }
    let top = &results[..results.len().min(SHOWN)];
    if let (Some(lo), Some(hi)) = (
        top.iter().map(|t| t.lr).reduce(f64::min),
        top.iter().map(|t| t.lr).reduce(f64::max),
    ) {
        table.push_str(&format!(
            "learning rates of the best {}: {lo:.2e} to {hi:.2e}\n",
            top.len()
        ));
    }

    let panels = top
        .iter()
        .enumerate()
        .map(|(rank, t)| {
            Panel::lines(
                &format!(
                    "best-{} val {:.2}: lr {:.1e}, wd {:.1e}",
                    rank + 1,
                    last(&t.val_accuracy),
                    t.lr,
                    t.weight_decay
                ),
                "epoch",
                "accuracy",
                vec![
                    Series::new("validation", per_epoch(&t.val_accuracy)),
                    Series::new("train", per_epoch(&t.train_accuracy)).dashed(),
                ],
            )
            .x_range(1.0..epochs as f64)
            .y_range(0.0..1.0)
            .legend(rank == 0)
            .legend_corner(crate::plot::Corner::LowerRight)
        })
        .collect();
    let figure = Figure::new(panels, 5)
        .title(format!(
            "random search, best {} of {trials} trials: {} training, {} validation images, {epochs} epochs",
            top.len(),
            train.len(),
            val.len()
        ))
        .panel_size(300, 230);
    let mut files = save_figure(&figure, opts, name)?;
    files.push(jsonl);
    Ok(Outcome { table, files })
}

/// Every rank's trials on rank 0, in trial order (`None` on the others).
/// They travel as f64 values, which keeps a diverged trial's NaN (JSON has none):
/// trial, lr, weight decay, then `epochs` validation and training accuracies.
fn gather_trials(comm: &dyn Collective, mine: &[Trial], epochs: usize) -> Option<Vec<Trial>> {
    let values: Vec<f64> = mine
        .iter()
        .flat_map(|t| {
            [t.trial as f64, t.lr, t.weight_decay]
                .into_iter()
                .chain(t.val_accuracy.iter().copied())
                .chain(t.train_accuracy.iter().copied())
        })
        .collect();
    let all = comm.gather(0, dist::bytes_of(&values))?;
    let mut trials: Vec<Trial> = all
        .iter()
        .flat_map(|bytes| bytes.chunks_exact(8 * (3 + 2 * epochs)))
        .map(|record| {
            let v: Vec<f64> = record
                .chunks_exact(8)
                .map(|b| f64::from_ne_bytes(b.try_into().expect("8 bytes")))
                .collect();
            Trial {
                trial: v[0] as usize,
                lr: v[1],
                weight_decay: v[2],
                val_accuracy: v[3..3 + epochs].to_vec(),
                train_accuracy: v[3 + epochs..].to_vec(),
            }
        })
        .collect();
    trials.sort_by_key(|t| t.trial);
    Some(trials)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{read, run_quick};
    use super::*;
    use crate::data::testutil::TempDir;

    #[test]
    fn validation_is_carved_from_the_training_images() {
        let (train, val) = validation_split(500, 0.2, 3);
        assert_eq!((train.len(), val.len()), (400, 100));
        let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..500).collect::<Vec<_>>());
        assert_eq!(validation_split(500, 0.2, 3), (train, val));
    }

    #[test]
    fn hyperparameter_search_quick() {
        let dir = TempDir::new("exp-hyper");
        let outcome = run_quick(Experiment::HyperparameterSearch, dir.path(), (1500, 500));
        let jsonl = read(dir.path(), "hyperparameter-search.jsonl");
        assert_eq!(jsonl.lines().count(), 10);
        let mut ranked = Vec::new();
        for line in jsonl.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let lr = v["lr"].as_f64().unwrap();
            let wd = v["weight_decay"].as_f64().unwrap();
            assert!((1e-6..=1e-2).contains(&lr) && (1e-8..=1e-4).contains(&wd));
            assert_eq!(v["val_accuracy"].as_array().unwrap().len(), 20);
        }
        for line in outcome.table.lines().skip(1).take(10) {
            ranked.push(
                line.split_whitespace()
                    .nth(2)
                    .unwrap()
                    .parse::<f64>()
                    .unwrap(),
            );
        }
        assert!(ranked.windows(2).all(|w| w[0] >= w[1]), "{}", outcome.table);
    }
}
