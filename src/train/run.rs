//! The `train` job: load a data set, build a MultiLayerNet, train it epoch by
//! epoch, print one line per epoch and write `metrics.jsonl` and
//! `summary.json` into the run's folder, with a checkpoint after every epoch
//! (`model.safetensors` and `train_state.safetensors`, see [`crate::checkpoint`])
//! from which `--resume` continues.

use std::fs::{self, File};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::Trainer;
use crate::checkpoint::{self, ModelInfo};
use crate::data::{self, DatasetName, LoadOptions};
use crate::nets::{Activation, MultiLayerNet, WeightInit};
use crate::optim;

/// Everything a training run depends on; saved in `summary.json`, and in the
/// training state so that `--resume` needs no flags.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    pub dataset: DatasetName,
    #[serde(skip)]
    pub data_dir: Option<PathBuf>,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub init: WeightInit,
    pub weight_decay: f64,
    pub optimizer: String,
    pub lr: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub train_size: Option<usize>,
    pub seed: u64,
    pub threads: usize,
    pub out: PathBuf,
    /// Draw a progress bar per epoch (only when stderr is a terminal).
    #[serde(skip)]
    pub progress: bool,
    /// Continue the run whose checkpoint is in `out` instead of starting anew.
    #[serde(skip)]
    pub resume: bool,
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Serialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub test_loss: f64,
    /// Training time of this epoch, evaluation excluded.
    pub seconds: f64,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub config: TrainConfig,
    pub train_examples: usize,
    pub test_examples: usize,
    pub parameters: usize,
    pub epochs: usize,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub total_seconds: f64,
}

/// Evaluation batches: big enough to keep both threads busy.
const EVAL_BATCH: usize = 1000;

pub fn run(config: &TrainConfig) -> Result<Summary> {
    if config.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if !(config.lr > 0.0 && config.lr.is_finite()) {
        bail!("--lr must be a positive number, got {}", config.lr);
    }
    if !(config.weight_decay >= 0.0 && config.weight_decay.is_finite()) {
        bail!(
            "--weight-decay must be zero or positive, got {}",
            config.weight_decay
        );
    }
    let rule = optim::by_name::<f32>(&config.optimizer, config.lr).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let split = data::load(
        config.dataset,
        &LoadOptions {
            data_dir: config.data_dir.clone(),
            allow_download: true,
            progress: config.progress,
            seed: config.seed,
        },
    )?;
    let train = match config.train_size {
        Some(0) => bail!("--train-size must be at least 1"),
        Some(n) if n < split.train.len() => split.train.take(n),
        _ => split.train,
    };
    let test = split.test;

    let spec = MultiLayerNet::new(train.dim(), &config.hidden, train.classes)
        .activation(config.activation)
        .weight_init(config.init)
        .weight_decay_lambda(config.weight_decay);
    let net = spec.build::<f32>(config.seed);
    let parameters = net.parameter_count();
    let mut trainer = Trainer::new(net, rule, config.threads, config.seed);
    let done = if config.resume {
        let state = checkpoint::restore_training(&config.out, &mut trainer)?;
        println!(
            "resuming {} after epoch {}",
            config.out.display(),
            state.epoch
        );
        state.epoch
    } else {
        0
    };
    let info = |epoch| ModelInfo {
        dataset: config.dataset,
        classes: train.classes,
        input_shape: train.shape,
        seed: config.seed,
        epoch,
    };

    fs::create_dir_all(&config.out)
        .with_context(|| format!("cannot create output folder {}", config.out.display()))?;
    let metrics_path = config.out.join("metrics.jsonl");
    let mut metrics = open_metrics(&metrics_path, done)?;

    let sizes: Vec<String> = spec.sizes().iter().map(|s| s.to_string()).collect();
    println!(
        "{}: {} training and {} test examples; net {} ({}, {} init, {} parameters); {} lr {} weight decay {}; {} thread(s)",
        config.dataset,
        train.len(),
        test.len(),
        sizes.join("-"),
        config.activation,
        config.init,
        parameters,
        config.optimizer,
        config.lr,
        config.weight_decay,
        trainer.threads(),
    );

    let show_bar = config.progress && std::io::stderr().is_terminal();
    let mut last = None;
    for epoch in done + 1..=config.epochs {
        let bar = if show_bar {
            let bar = ProgressBar::new(train.len().div_ceil(config.batch_size) as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} batches {elapsed_precise} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{}", config.epochs));
            Some(bar)
        } else {
            None
        };
        let t0 = Instant::now();
        let train_loss = trainer.train_epoch(&train, config.batch_size, |done, _| {
            if let Some(bar) = &bar {
                bar.set_position(done as u64);
            }
        });
        let seconds = t0.elapsed().as_secs_f64();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if !train_loss.is_finite() {
            bail!(
                "training diverged in epoch {epoch} (loss is {train_loss}); try a smaller --lr (now {})",
                config.lr
            );
        }
        let (_, train_accuracy) = trainer.evaluate(&train, EVAL_BATCH);
        let (test_loss, test_accuracy) = trainer.evaluate(&test, EVAL_BATCH);
        println!(
            "epoch {epoch:>3}/{}  loss {train_loss:.4}  train acc {train_accuracy:.4}  test acc {test_accuracy:.4}  ({seconds:.2} s)",
            config.epochs
        );
        let m = EpochMetrics {
            epoch,
            train_loss,
            train_accuracy,
            test_accuracy,
            test_loss,
            seconds,
        };
        writeln!(metrics, "{}", serde_json::to_string(&m)?)
            .with_context(|| format!("cannot write {}", metrics_path.display()))?;
        last = Some(m);
        checkpoint::save_training(&config.out, &trainer, config, &info(epoch))?;
    }
    if last.is_none() {
        // No epoch ran (--epochs 0, or resumed at the end): the end state still
        // gets its checkpoint.
        checkpoint::save_training(&config.out, &trainer, config, &info(done))?;
    }

    let (train_accuracy, test_accuracy) = match &last {
        Some(m) => (m.train_accuracy, m.test_accuracy),
        None => (
            trainer.evaluate(&train, EVAL_BATCH).1,
            trainer.evaluate(&test, EVAL_BATCH).1,
        ),
    };
    let summary = Summary {
        config: config.clone(),
        train_examples: train.len(),
        test_examples: test.len(),
        parameters,
        epochs: config.epochs,
        train_accuracy,
        test_accuracy,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    let summary_path = config.out.join("summary.json");
    fs::write(
        &summary_path,
        serde_json::to_string_pretty(&summary)? + "\n",
    )
    .with_context(|| format!("cannot write {}", summary_path.display()))?;
    println!("test accuracy: {test_accuracy:.4}");
    println!(
        "wrote {}, {} and {}",
        metrics_path.display(),
        summary_path.display(),
        config.out.join(checkpoint::MODEL_FILE).display()
    );
    Ok(summary)
}

/// Opens `metrics.jsonl` for the epochs after `done`: a new run starts it
/// afresh; a resumed run keeps the lines of epochs up to `done` (a run stopped
/// after logging an epoch but before its checkpoint redoes that epoch).
fn open_metrics(path: &Path, done: usize) -> Result<File> {
    let kept = if done == 0 {
        String::new()
    } else {
        let old = fs::read_to_string(path).unwrap_or_default();
        old.lines()
            .filter(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v["epoch"].as_u64())
                    .is_some_and(|e| e as usize <= done)
            })
            .map(|line| format!("{line}\n"))
            .collect()
    };
    fs::write(path, kept).with_context(|| format!("cannot write {}", path.display()))?;
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))
}
