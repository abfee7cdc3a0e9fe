//! `backprop bench`: the reference workloads, defined in benches/README.md
//! precisely enough to reimplement, and measured the way PyTorch's side
//! (benches/pytorch/bench.py) measures them, so the figures compare as ratios
//! (`benches/pytorch/compare`). [`results`] reads what that comparison writes.
//!
//! - `w1`: 784-100x5-10 ReLU MLP, He init, weight decay 0.1, SGD lr 0.01,
//!   batch 100: seconds per training epoch (shuffle, gather and normalise,
//!   forward, backward, update; evaluation excluded), median of epochs 2..N.
//! - `w1-adam`: the same net without decay, Adam lr 0.001.
//! - `w2`: the textbook's SimpleConvNet (conv 30x5x5 - ReLU - pool 2x2 -
//!   affine 100 - ReLU - affine 10), He init, Adam lr 0.001, batch 100: seconds
//!   per training epoch as for `w1`.
//! - `w3`: the W1 net's forward pass and argmax over the 10,000 test images
//!   in batches of 1,000: images per second of the median of 20 passes,
//!   after 2 warm-up passes (a fresh He-initialised net, as PyTorch's side uses).
//! - `w4`: the textbook's DeepConvNet (`--net deep-cnn`), Adam lr 0.001, batch
//!   100: 10 warm-up steps, then `epochs` rounds of 200 timed steps on
//!   consecutive batches of a shuffled training set (each round handed to
//!   the worker threads at once, as an epoch of `train` is), each scaled to
//!   the 600 batches of an epoch; the median round.
//! - `w3-classifier`: W3 through the embedding API, [`crate::Classifier`]:
//!   the same net, passes and batches, each batch split between the threads
//!   as the trainer splits it, every thread calling the one classifier.
//! - `w5`: DeepConvNet's forward pass and argmax over the 10,000 test images
//!   in batches of 1,000: images per second of the median of 5 passes after 1
//!   warm-up pass.
//!
//! `conv` is not a workload but one Convolution layer at a time
//! ([`convolutions`]).

pub mod convolutions;
pub mod results;

use std::time::Instant;

use anyhow::Result;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use rayon::prelude::*;

use crate::Classifier;
use crate::checkpoint::ModelInfo;
use crate::data::{DatasetName, LoadOptions, Split};
use crate::nets::{DeepConvNet, MultiLayerNet, SimpleConvNet, WeightInit};
use crate::optim;
use crate::train::{MAX_THREADS, Trainer, flush_denormals, share};

pub const WORKLOADS: &[&str] = &["w1", "w1-adam", "w2", "w3", "w4", "w5"];

/// Workloads that `all` leaves out: other ways to run one of [`WORKLOADS`].
pub const VARIANTS: &[&str] = &["w3-classifier"];

/// One measured workload; serialised as one JSON line with `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub workload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_per_epoch: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images_per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Every timed epoch or pass, in seconds, for anyone checking the median.
    pub samples: Vec<f64>,
    pub threads: usize,
    /// Peak resident memory of this process so far, in MiB.
    pub max_rss_mib: Option<f64>,
}

pub struct BenchOptions {
    pub threads: usize,
    pub epochs: usize,
    pub seed: u64,
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// Peak resident set size (VmHWM) from /proc, where there is one.
pub fn max_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn w1_spec(weight_decay: f64) -> MultiLayerNet {
    MultiLayerNet::new(784, &[100; 5], 10).weight_decay_lambda(weight_decay)
}

/// W1, W1-adam or W2: trains `epochs` epochs, times each.
fn train_workload(name: &str, data: &Split, opts: &BenchOptions) -> Result<BenchResult> {
    let (net, rule) = match name {
        "w1" => (
            w1_spec(0.1).build::<f32>(opts.seed),
            optim::by_name::<f32>("sgd", 0.01),
        ),
        "w2" => (
            SimpleConvNet::new(data.train.shape, data.train.classes())
                .weight_init(WeightInit::He)
                .build::<f32>(opts.seed),
            optim::by_name::<f32>("adam", 0.001),
        ),
        _ => (
            w1_spec(0.0).build::<f32>(opts.seed),
            optim::by_name::<f32>("adam", 0.001),
        ),
    };
    let rule = rule.map_err(anyhow::Error::msg)?;
    let mut trainer = Trainer::new(net?, rule, opts.threads, opts.seed);
    let mut samples = Vec::new();
    for _ in 0..opts.epochs {
        let t0 = Instant::now();
        trainer.train_epoch(&data.train, 100, |_, _| {})?;
        samples.push(t0.elapsed().as_secs_f64());
    }
    let timed = if samples.len() > 1 {
        &samples[1..]
    } else {
        &samples[..]
    };
    let (_, accuracy) = trainer.evaluate(&data.test, 1000)?;
    Ok(BenchResult {
        workload: name.to_string(),
        seconds_per_epoch: Some(median(timed)),
        images_per_second: None,
        test_accuracy: Some(accuracy),
        samples,
        threads: trainer.threads(),
        max_rss_mib: max_rss_mib(),
    })
}

/// W3 (the W1 net) or W5 (DeepConvNet): forward passes over the test set in
/// batches of 1,000, `warm_up` untimed and `passes` timed.
fn inference_workload(name: &str, data: &Split, opts: &BenchOptions) -> Result<BenchResult> {
    let rule = optim::by_name::<f32>("sgd", 0.01).map_err(anyhow::Error::msg)?;
    let (net, warm_up, passes) = match name {
        "w5" => (
            DeepConvNet::new(data.test.shape, data.test.classes()).build::<f32>(opts.seed)?,
            1,
            5,
        ),
        _ => (w1_spec(0.0).build::<f32>(opts.seed)?, 2, 20),
    };
    let mut trainer = Trainer::new(net, rule, opts.threads, opts.seed);
    for _ in 0..warm_up {
        trainer.predict_classes(&data.test, 1000)?;
    }
    let mut samples = Vec::new();
    for _ in 0..passes {
        let t0 = Instant::now();
        std::hint::black_box(trainer.predict_classes(&data.test, 1000)?);
        samples.push(t0.elapsed().as_secs_f64());
    }
    Ok(BenchResult {
        workload: name.into(),
        seconds_per_epoch: None,
        images_per_second: Some(data.test.len() as f64 / median(&samples)),
        test_accuracy: None,
        samples,
        threads: trainer.threads(),
        max_rss_mib: max_rss_mib(),
    })
}

/// W3 through [`Classifier`]: one classifier shared by a pool of `threads`
/// threads, each batch in slices of [`Classifier::slice_rows`] rows per thread (as
/// [`Trainer::predict_classes`] runs), each thread gathering its rows and
/// asking the classifier for their classes.
fn classifier_workload(data: &Split, opts: &BenchOptions) -> Result<BenchResult> {
    const BATCH: usize = 1000;
    let test = &data.test;
    let info = ModelInfo::builtin(DatasetName::Mnist, test.classes(), test.shape, opts.seed, 0);
    let classifier = Classifier::new(w1_spec(0.0).build::<f32>(opts.seed)?, info, "w3".as_ref())?;
    let threads = opts.threads.clamp(1, MAX_THREADS);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(|_| flush_denormals())
        .build()?;
    let indices: Vec<usize> = (0..test.len()).collect();
    // Each thread's gathered rows and labels, reused from slice to slice.
    let mut buffers = vec![(Vec::<f32>::new(), Vec::<usize>::new()); threads];
    let mut pass = || -> Result<usize> {
        let mut predicted = 0;
        pool.install(|| {
            for batch in indices.chunks(BATCH) {
                for slice in batch.chunks(threads * classifier.slice_rows()) {
                    predicted += buffers
                        .par_iter_mut()
                        .enumerate()
                        .map(|(t, (x, labels))| {
                            let rows = &slice[share(slice.len(), threads, t)];
                            if rows.is_empty() {
                                return Ok(0);
                            }
                            x.resize(rows.len() * test.dim(), 0.0);
                            labels.resize(rows.len(), 0);
                            test.gather(rows, x, labels);
                            Ok(std::hint::black_box(classifier.predict_classes(x)?).len())
                        })
                        .sum::<Result<usize, crate::nets::InputError>>()?;
                }
            }
            Ok(predicted)
        })
    };
    for _ in 0..2 {
        pass()?;
    }
    let mut samples = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        let predicted = pass()?;
        samples.push(t0.elapsed().as_secs_f64());
        anyhow::ensure!(
            predicted == test.len(),
            "w3-classifier predicted {predicted} of {} images",
            test.len()
        );
    }
    Ok(BenchResult {
        workload: "w3-classifier".into(),
        seconds_per_epoch: None,
        images_per_second: Some(test.len() as f64 / median(&samples)),
        test_accuracy: None,
        samples,
        threads,
        max_rss_mib: max_rss_mib(),
    })
}

/// W4: DeepConvNet training steps, timed in rounds of [`W4_BATCHES`] after
/// [`W4_WARM_UP`] and scaled to an epoch of 600 batches of 100.
fn deep_cnn_workload(data: &Split, opts: &BenchOptions) -> Result<BenchResult> {
    const BATCH: usize = 100;
    let net = DeepConvNet::new(data.train.shape, data.train.classes()).build::<f32>(opts.seed)?;
    let rule = optim::by_name::<f32>("adam", 0.001).map_err(anyhow::Error::msg)?;
    let mut trainer = Trainer::new(net, rule, opts.threads, opts.seed);
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(opts.seed));
    let batches: Vec<&[usize]> = order.chunks_exact(BATCH).collect();
    anyhow::ensure!(
        !batches.is_empty(),
        "w4 needs at least {BATCH} training images, found {}",
        data.train.len()
    );
    let per_epoch = batches.len() as f64;
    // Rounds handed to the trainer whole, as an epoch of `train` runs.
    let mut next = batches.iter().copied().cycle();
    let warm_up: Vec<&[usize]> = next.by_ref().take(W4_WARM_UP).collect();
    trainer.steps(&data.train, &warm_up, |_, _| {})?;
    let mut samples = Vec::new();
    for _ in 0..opts.epochs {
        let round: Vec<&[usize]> = next.by_ref().take(W4_BATCHES).collect();
        let t0 = Instant::now();
        trainer.steps(&data.train, &round, |_, _| {})?;
        samples.push(t0.elapsed().as_secs_f64() / W4_BATCHES as f64 * per_epoch);
    }
    Ok(BenchResult {
        workload: "w4".into(),
        seconds_per_epoch: Some(median(&samples)),
        images_per_second: None,
        test_accuracy: None,
        samples,
        threads: trainer.threads(),
        max_rss_mib: max_rss_mib(),
    })
}

/// W4's untimed steps before the timed ones.
const W4_WARM_UP: usize = 10;
/// W4's timed steps per round (a third of an epoch).
const W4_BATCHES: usize = 200;

/// Loads MNIST and runs the named workloads, calling `report` after each.
pub fn run(
    workloads: &[&str],
    load: &LoadOptions,
    opts: &BenchOptions,
    mut report: impl FnMut(&BenchResult),
) -> Result<Vec<BenchResult>> {
    let data = crate::data::load(DatasetName::Mnist, load)?;
    let mut results = Vec::new();
    for &w in workloads {
        let r = match w {
            "w1" | "w1-adam" | "w2" => train_workload(w, &data, opts)?,
            "w3" | "w5" => inference_workload(w, &data, opts)?,
            "w3-classifier" => classifier_workload(&data, opts)?,
            "w4" => deep_cnn_workload(&data, opts)?,
            other => anyhow::bail!(
                "unknown workload '{other}': use {}, {} or all",
                WORKLOADS.join(", "),
                VARIANTS.join(", ")
            ),
        };
        report(&r);
        results.push(r);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn rss_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(max_rss_mib().unwrap() > 0.0);
        }
    }
}
