//! The `train` job: load a data set, build the net `--net` names (a
//! MultiLayerNet by default, or a convnet), train it epoch by
//! epoch, print one line per epoch and write `metrics.jsonl`,
//! `summary.json` and the learning curves (`curves.svg`, `curves.png`) into
//! the run's folder, with a checkpoint after every epoch (`model.safetensors`
//! and `train_state.safetensors`, see [`crate::checkpoint`]) from which
//! `--resume` continues.
//!
//! Under `mpirun` ([`crate::dist`]) every rank trains its share of each
//! batch; rank 0 alone writes the files and prints, and every epoch the ranks
//! check that they hold the same weights.

use std::fs::{self, File};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::{EpochMetrics, NetKind, TrainConfig, TrainError, Trainer};
use crate::checkpoint::{self, ModelInfo};
use crate::data::split::check_fraction;
use crate::data::{self, Dataset, LoadOptions};
use crate::dist;
use crate::nets::{DeepConvNet, LayerSpec, MultiLayerNet, NetSpec, SimpleConvNet};
use crate::optim::{self, LrSchedule};
use crate::plot::{Corner, Figure, Panel, Series};

/// `summary.json`.
/// A run whose loss stopped being finite, with what to do about it. Under
/// `mpirun` every rank meets it at the same step: the loss is the allreduced one.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Diverged(pub String);

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub config: TrainConfig,
    /// The net that was trained, as its checkpoint describes it.
    pub net: NetSpec,
    /// The classes, in the order of the net's scores.
    pub classes: Vec<String>,
    pub train_examples: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_examples: Option<usize>,
    pub test_examples: usize,
    pub parameters: usize,
    /// The processes of the MPI job (1 without `mpirun`), each running
    /// `config.threads` threads.
    pub ranks: usize,
    /// Epochs trained (fewer than asked for after an early stop).
    pub epochs: usize,
    /// Whether `--early-stop` ended the run.
    pub stopped_early: bool,
    /// The epoch with the best validation accuracy, kept in `model-best.safetensors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_val_accuracy: Option<f64>,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub total_seconds: f64,
    /// What loading the data decided (a test split held out, columns left out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The file keeping the epoch with the best validation accuracy.
pub const BEST_MODEL_FILE: &str = "model-best.safetensors";

/// The training run's data, split.
struct RunData {
    train: Dataset,
    validation: Option<Dataset>,
    test: Dataset,
    notes: Vec<String>,
}

/// What the epochs so far say about validation: the best accuracy's epoch,
/// and whether the loss has not improved for `patience` epochs. Worked out
/// from the history alone, so that a resumed run decides as an
/// uninterrupted one does.
fn judge(history: &[EpochMetrics], patience: Option<usize>) -> (Option<(usize, f64)>, bool) {
    let mut best_accuracy: Option<(usize, f64)> = None;
    let mut best_loss: Option<(usize, f64)> = None;
    for m in history {
        if let (Some(acc), Some(loss)) = (m.val_accuracy, m.val_loss) {
            if best_accuracy.is_none_or(|(_, a)| acc > a) {
                best_accuracy = Some((m.epoch, acc));
            }
            if best_loss.is_none_or(|(_, l)| loss < l) {
                best_loss = Some((m.epoch, loss));
            }
        }
    }
    let last = history.last().map_or(0, |m| m.epoch);
    let stop = match (patience, best_loss) {
        (Some(n), Some((epoch, _))) => last - epoch >= n,
        _ => false,
    };
    (best_accuracy, stop)
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
    if let Some(d) = config.weight_decay
        && !(d >= 0.0 && d.is_finite())
    {
        bail!("--weight-decay must be zero or positive, got {d}");
    }
    let rule = optim::by_name::<f32>(&config.optimizer, config.lr).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let (config, data) = &load_data(config)?;
    let RunData {
        train,
        validation,
        test,
        notes,
    } = data;
    if config.batch_size > train.len() {
        bail!(
            "--batch-size {} is larger than the {} training examples; pass --batch-size {} or less",
            config.batch_size,
            train.len(),
            train.len()
        );
    }

    let spec = if config.resume {
        // The net the run started with, whatever the flags or files say now.
        checkpoint::read_spec(&config.out.join(checkpoint::MODEL_FILE))?
    } else {
        net_spec(config, train)?
    };
    check_memory(&spec, config.threads)?;
    let net = spec.build::<f32>(config.seed)?;
    let parameters = net.parameter_count();
    let comm = dist::world();
    // Rank 0 writes the run's files; the others only train.
    let lead = comm.rank() == 0;
    let mut trainer =
        Trainer::distributed(net, rule, config.threads, config.seed, Arc::clone(&comm))?;
    let (done, mut history) = if config.resume {
        let state = checkpoint::restore_training(&config.out, &mut trainer)?;
        println!(
            "resuming {} after epoch {}",
            config.out.display(),
            state.epoch
        );
        (state.epoch, state.history)
    } else {
        (0, Vec::new())
    };
    trainer.set_schedule(config.lr_schedule, config.lr, config.epochs, done);
    let summary = |history: &[EpochMetrics], trainer: &mut Trainer<f32>, seconds: f64| {
        let (best, stopped_early) = judge(history, config.early_stop);
        let (train_accuracy, test_accuracy) = last_accuracies(history, trainer, train, test)?;
        let epochs = history.last().map_or(0, |m| m.epoch);
        anyhow::Ok(Summary {
            // A finished run resumed with fewer epochs keeps its own count.
            config: TrainConfig {
                epochs: config.epochs.max(done),
                ..config.clone()
            },
            net: spec.clone(),
            classes: train.class_names.clone(),
            train_examples: train.len(),
            validation_examples: validation.as_ref().map(Dataset::len),
            test_examples: test.len(),
            parameters,
            ranks: trainer.ranks(),
            epochs,
            stopped_early,
            best_epoch: best.map(|b| b.0),
            best_val_accuracy: best.map(|b| b.1),
            train_accuracy,
            test_accuracy,
            total_seconds: seconds,
            notes: notes.clone(),
        })
    };
    if config.resume && (config.epochs <= done || judge(&history, config.early_stop).1) {
        // Leave the finished run's files as they are: its summary.json
        // describes the epochs it trained, not the --epochs asked for now.
        if config.epochs <= done {
            println!(
                "nothing to do: {} has trained {done} epoch(s) already; pass --epochs with more than {done} to train further",
                config.out.display()
            );
        } else {
            println!(
                "nothing to do: {} stopped early after epoch {done}: the validation loss had not improved for {} epochs",
                config.out.display(),
                config.early_stop.unwrap_or(0)
            );
        }
        let seconds = history.iter().map(|m| m.seconds).sum();
        return summary(&history, &mut trainer, seconds);
    }
    let info = |epoch| {
        ModelInfo::of(
            config.dataset.clone(),
            train,
            config.seed,
            config.read.test_split,
            epoch,
        )
    };

    let metrics_path = config.out.join("metrics.jsonl");
    let mut metrics = if lead {
        fs::create_dir_all(&config.out)
            .with_context(|| format!("cannot create output folder {}", config.out.display()))?;
        Some(open_metrics(&metrics_path, &history)?)
    } else {
        None
    };
    if !config.resume {
        // The starting point is a checkpoint too: a run that diverges or is
        // killed in its first epoch still has one to fall back on.
        save_training(lead, &mut trainer, config, &info(0), &history)?;
    }

    let description = describe(config, &spec, parameters);
    let validation_note = validation
        .as_ref()
        .map_or_else(String::new, |v| format!(", {} validation", v.len()));
    println!(
        "{}: {} training{validation_note} and {} test examples; net {description}; {} lr {}{} weight decay {}; {}",
        config.dataset,
        train.len(),
        test.len(),
        config.optimizer,
        config.lr,
        match config.lr_schedule {
            LrSchedule::Constant => String::new(),
            s => format!(" ({s})"),
        },
        spec.weight_decay_lambda,
        match trainer.ranks() {
            1 => format!("{} thread(s)", trainer.threads()),
            k => format!("{k} ranks x {} thread(s)", trainer.threads()),
        },
    );

    let show_bar = lead && config.progress && std::io::stderr().is_terminal();
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
        let lr = trainer.next_lr();
        let t0 = Instant::now();
        let result = trainer.train_epoch(train, config.batch_size, |done, _| {
            if let Some(bar) = &bar {
                bar.set_position(done as u64);
            }
        });
        let seconds = t0.elapsed().as_secs_f64();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let train_loss = match result {
            Ok(loss) => loss,
            Err(TrainError::Diverged {
                iteration,
                iterations,
                loss,
            }) => return Err(Diverged(format!(
                "training diverged in epoch {epoch}, iteration {iteration} of {iterations}: the loss became {loss}. \
                 The learning rate is likely too high (--lr {}): try a tenth of it or less \
                 (SGD trains MNIST well at 0.1, Adam at 0.001). \
                 The last good checkpoint ({}) is kept in {}",
                config.lr,
                if epoch == 1 {
                    "the initial weights".to_owned()
                } else {
                    format!("after epoch {}", epoch - 1)
                },
                config.out.display()
            ))
            .into()),
            Err(e) => return Err(e.into()),
        };
        trainer.check_ranks_agree()?;
        let (_, train_accuracy) = trainer.evaluate(train, EVAL_BATCH)?;
        let (val_loss, val_accuracy) = match validation {
            Some(v) => {
                let (loss, acc) = trainer.evaluate(v, EVAL_BATCH)?;
                (Some(loss), Some(acc))
            }
            None => (None, None),
        };
        let (test_loss, test_accuracy) = trainer.evaluate(test, EVAL_BATCH)?;
        let m = EpochMetrics {
            epoch,
            train_loss,
            train_accuracy,
            val_loss,
            val_accuracy,
            test_accuracy,
            test_loss,
            lr: Some(lr),
            seconds,
        };
        history.push(m.clone());
        let (best, stop) = judge(&history, config.early_stop);
        // The best model first, then the state: a run killed between the two
        // writes resumes from the epoch before, and writes this one again.
        if lead && best.is_some_and(|(e, _)| e == epoch) {
            checkpoint::save(
                &config.out.join(BEST_MODEL_FILE),
                trainer.net(),
                &info(epoch),
            )?;
        }
        // Checkpoint before the log line: an epoch in metrics.jsonl always has
        // its checkpoint, so a killed run loses at most the epoch under way.
        save_training(lead, &mut trainer, config, &info(epoch), &history)?;
        if let Some(metrics) = &mut metrics {
            writeln!(metrics, "{}", serde_json::to_string(&m)?)
                .with_context(|| format!("cannot write {}", metrics_path.display()))?;
        }
        let lr_note = match config.lr_schedule {
            LrSchedule::Constant => String::new(),
            _ => format!("  lr {lr:.3e}"),
        };
        let val_note = val_accuracy.map_or_else(String::new, |a| {
            format!(
                "  val loss {:.4}  val acc {a:.4}",
                val_loss.unwrap_or(f64::NAN)
            )
        });
        println!(
            "epoch {epoch:>3}/{}  loss {train_loss:.4}  train acc {train_accuracy:.4}{val_note}  test acc {test_accuracy:.4}{lr_note}  ({seconds:.2} s)",
            config.epochs
        );
        if stop {
            println!(
                "stopping early: the validation loss has not improved for {} epochs",
                config.early_stop.unwrap_or(0)
            );
            break;
        }
    }

    let summary = summary(&history, &mut trainer, started.elapsed().as_secs_f64())?;
    if !lead {
        return Ok(summary);
    }
    let summary_path = config.out.join("summary.json");
    fs::write(
        &summary_path,
        serde_json::to_string_pretty(&summary)? + "\n",
    )
    .with_context(|| format!("cannot write {}", summary_path.display()))?;
    println!("test accuracy: {:.4}", summary.test_accuracy);
    if let (Some(epoch), Some(acc)) = (summary.best_epoch, summary.best_val_accuracy) {
        println!(
            "best validation accuracy {acc:.4} after epoch {epoch}, kept in {}",
            config.out.join(BEST_MODEL_FILE).display()
        );
    }
    println!(
        "wrote {}, {} and {}",
        metrics_path.display(),
        summary_path.display(),
        config.out.join(checkpoint::MODEL_FILE).display()
    );
    if !history.is_empty() {
        let [svg, png] =
            curves_figure(&history, &config.dataset.to_string()).save(&config.out, "curves")?;
        println!("wrote {} and {}", svg.display(), png.display());
    }
    Ok(summary)
}

/// Loads the run's data and splits it: the test set held out of data without
/// one, `--train-size`, the validation set. Returns the configuration as
/// the run records it (`mnist-sample` after a fallback to the sample).
fn load_data(config: &TrainConfig) -> Result<(TrainConfig, RunData)> {
    check_fraction(config.read.test_split, "test-split").map_err(anyhow::Error::msg)?;
    if let Some(v) = config.validation {
        check_fraction(v, "validation").map_err(anyhow::Error::msg)?;
        if v == 0.0 {
            bail!("--validation takes a share above 0, such as 0.1");
        }
    }
    let split = data::load(
        config.dataset.clone(),
        &LoadOptions {
            data_dir: config.data_dir.clone(),
            allow_download: true,
            progress: config.progress,
            seed: config.seed,
            // A resumed run continues on the data it started on, or not at all.
            sample_fallback: !config.resume && !config.no_sample,
            read: config.read.clone(),
        },
    )?;
    // After a fallback the run is one on the sample, in its summary and checkpoints too.
    let mut config = config.clone();
    if let Some(loaded) = split.dataset()
        && config
            .dataset
            .builtin()
            .is_some_and(|asked| asked != loaded)
    {
        println!("{}", data::sample::notice("training on"));
        config.dataset = loaded.into();
    }
    for note in &split.notes {
        println!("{note}");
    }
    let mut notes = split.notes;
    let mut train = match config.train_size {
        Some(0) => bail!("--train-size must be at least 1"),
        Some(n) if n < split.train.len() => split.train.take(n),
        _ => split.train,
    };
    let validation = match (split.validation, config.validation) {
        (Some(_), Some(_)) => bail!(
            "{} has a val/ folder, which is the validation set: drop --validation",
            config.dataset
        ),
        (Some(v), None) => Some(v),
        (None, Some(share)) => {
            // A seed of its own, so the validation set is not the test set's draw.
            let (kept, held) = train.hold_out(
                share,
                config.seed.wrapping_add(1),
                "the validation set",
                "validation",
            )?;
            let note = format!(
                "{} of the {} training examples ({}% of each class) are the validation set",
                held.len(),
                train.len(),
                share * 100.0
            );
            println!("{note}");
            notes.push(note);
            train = kept;
            Some(held)
        }
        (None, None) => None,
    };
    if config.early_stop.is_some() && validation.is_none() {
        bail!("--early-stop watches the validation loss: pass --validation, such as 0.1");
    }
    if config.early_stop == Some(0) {
        bail!("--early-stop takes a number of epochs of at least 1");
    }
    let test = split.test;
    for (set, data) in [("training", &train), ("test", &test)] {
        if data.is_empty() {
            bail!(
                "the {set} set of {} has no examples; check the files in --data (or BACKPROP_DATA)",
                config.dataset
            );
        }
    }
    Ok((
        config,
        RunData {
            train,
            validation,
            test,
            notes,
        },
    ))
}

/// The net `config` asks for, sized for `train`: a built-in net with the
/// flags, or a net file with `--init` and `--weight-decay` over its own.
fn net_spec(config: &TrainConfig, train: &Dataset) -> Result<NetSpec> {
    let init = config.init.unwrap_or_else(|| config.net.default_init());
    let decay = config.weight_decay.unwrap_or(0.0);
    let spec = match &config.net {
        NetKind::Mlp => {
            let mlp = MultiLayerNet::new(train.dim(), &config.hidden, train.classes())
                .activation(config.activation)
                .weight_init(init)
                .weight_decay_lambda(decay)
                .batchnorm(config.batchnorm)
                .dropout(config.dropout)
                .dropout_scaling(config.dropout_scaling);
            if let Err(e) = mlp.validate() {
                bail!("{e} (--dropout takes a ratio such as 0.2)");
            }
            // The flattened size is what the MLP names; the net takes images.
            NetSpec {
                input_shape: None,
                ..mlp.spec()
            }
        }
        NetKind::SimpleCnn => SimpleConvNet::new(train.shape, train.classes())
            .weight_init(init)
            .weight_decay_lambda(decay)
            .spec(),
        NetKind::DeepCnn => DeepConvNet::new(train.shape, train.classes())
            .weight_init(init)
            .weight_decay_lambda(decay)
            .spec(),
        NetKind::File(path) => {
            let mut spec = NetSpec::load(path)?;
            if let Some(init) = config.init {
                spec.weight_init_std = init;
            }
            if let Some(decay) = config.weight_decay {
                spec.weight_decay_lambda = decay;
            }
            spec
        }
    };
    let spec = spec
        .for_data(&train.shape, train.classes())
        .and_then(|s| s.validate().map(|()| s))
        .with_context(|| {
            format!(
                "--net {} cannot take {} examples of shape {:?} in {} classes",
                config.net,
                config.dataset,
                train.shape,
                train.classes()
            )
        })?;
    Ok(spec)
}

/// The net in the run's first line. The textbook's nets keep their
/// compact form ("784-100-10 (relu, he init, N parameters)").
fn describe(config: &TrainConfig, spec: &NetSpec, parameters: usize) -> String {
    match &config.net {
        NetKind::Mlp => {
            let input = spec.input_shape.iter().flatten().product::<usize>();
            let units = spec.layers.iter().filter_map(|l| match l {
                LayerSpec::Affine { units, .. } => *units,
                _ => None,
            });
            let sizes: Vec<String> = std::iter::once(input)
                .chain(units)
                .map(|s| s.to_string())
                .collect();
            let mut extras = String::new();
            if config.batchnorm {
                extras.push_str(", batchnorm");
            }
            if config.dropout > 0.0 {
                extras.push_str(&format!(", dropout {}", config.dropout));
                if !config.dropout_scaling.is_inverted() {
                    extras.push_str(" (textbook scaling)");
                }
            }
            format!(
                "{} ({}{extras}, {} init, {parameters} parameters)",
                sizes.join("-"),
                config.activation,
                spec.weight_init_std
            )
        }
        NetKind::SimpleCnn => format!("SimpleConvNet {spec}, {parameters} parameters"),
        NetKind::DeepCnn => format!("DeepConvNet {spec}, {parameters} parameters"),
        _ => format!(
            "{spec} ({} init, {parameters} parameters)",
            spec.weight_init_std
        ),
    }
}

/// Refuses a net whose weights alone would not fit in the memory this machine
/// has free: building it would abort the process ("memory allocation of N
/// bytes failed") instead of ending with an error. Counted from the spec, so
/// nothing is allocated to find out.
fn check_memory(spec: &NetSpec, threads: usize) -> Result<()> {
    let Ok(layout) = checkpoint::layout(spec) else {
        return Ok(()); // build() names what is wrong with the spec
    };
    let values = layout.tensors.iter().try_fold(0usize, |sum, (_, shape)| {
        shape
            .iter()
            .try_fold(1usize, |p, &d| p.checked_mul(d))
            .and_then(|n| sum.checked_add(n))
    });
    // f32 values and gradients in every replica, plus up to two optimizer slots.
    let bytes = values.and_then(|v| v.checked_mul(4 * (2 * threads.max(1) + 2)));
    if let Some(available) = available_memory()
        && bytes.is_none_or(|n| n as u64 > available)
    {
        let need = bytes.map_or_else(
            || "more than can be addressed".to_owned(),
            |n| gib(n as u64),
        );
        let count = values.map_or_else(|| "too many".to_owned(), |v| v.to_string());
        bail!(
            "the net has {count} parameters: training it on {threads} thread(s) needs at least {need}, \
             but this machine has {} available; use smaller layers (--hidden for mlp) or fewer --threads",
            gib(available)
        );
    }
    Ok(())
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// MemAvailable from /proc/meminfo, in bytes (None where there is no such file).
fn available_memory() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Train and test accuracy after the last epoch: logged, or measured when
/// no epoch has run.
fn last_accuracies(
    history: &[EpochMetrics],
    trainer: &mut Trainer<f32>,
    train: &Dataset,
    test: &Dataset,
) -> Result<(f64, f64)> {
    Ok(match history.last() {
        Some(m) => (m.train_accuracy, m.test_accuracy),
        None => (
            trainer.evaluate(train, EVAL_BATCH)?.1,
            trainer.evaluate(test, EVAL_BATCH)?.1,
        ),
    })
}

/// The checkpoint after `info.epoch` epochs: every rank sends its Dropout
/// generators to rank 0 (`lead`), which writes it.
fn save_training(
    lead: bool,
    trainer: &mut Trainer<f32>,
    config: &TrainConfig,
    info: &ModelInfo,
    history: &[EpochMetrics],
) -> Result<()> {
    trainer.gather_rngs();
    if lead {
        checkpoint::save_training(&config.out, trainer, config, info, history)?;
    }
    Ok(())
}

/// Writes `metrics.jsonl` afresh with the epochs of `history` (none for a
/// new run; those of the checkpoint for a resumed one) and opens it for the
/// epochs to come.
fn open_metrics(path: &Path, history: &[EpochMetrics]) -> Result<File> {
    let mut text = String::new();
    for m in history {
        text += &serde_json::to_string(m)?;
        text.push('\n');
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The learning curves: training loss, and train and test accuracy, per epoch.
pub fn curves_figure(history: &[EpochMetrics], dataset: &str) -> Figure {
    let per_epoch = |f: fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|m| (m.epoch as f64, f(m))).collect()
    };
    let loss = Panel::lines(
        "loss",
        "epoch",
        "loss",
        vec![
            Series::new("train (mean over batches)", per_epoch(|m| m.train_loss)),
            Series::new("test", per_epoch(|m| m.test_loss)).dashed(),
        ],
    );
    let accuracy = Panel::lines(
        "accuracy",
        "epoch",
        "accuracy",
        vec![
            Series::new("train", per_epoch(|m| m.train_accuracy)),
            Series::new("test", per_epoch(|m| m.test_accuracy)).dashed(),
        ],
    )
    .legend_corner(Corner::LowerRight);
    let mut panels = vec![loss, accuracy];
    // A scheduled rate gets its own panel, to read the curves against.
    let rates: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|m| Some((m.epoch as f64, m.lr?)))
        .collect();
    if rates.windows(2).any(|w| w[0].1 != w[1].1) {
        panels.push(
            Panel::lines(
                "learning rate",
                "epoch",
                "rate at the epoch's first step",
                vec![Series::new("lr", rates)],
            )
            .legend(false),
        );
    }
    let columns = panels.len();
    Figure::new(panels, columns).title(format!("training on {dataset}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;
    use crate::layers::DropoutScaling;
    use crate::nets::{Activation, WeightInit};
    use crate::plot::tests::{assert_svg, png_size};

    fn spiral_config(out: &std::path::Path) -> TrainConfig {
        TrainConfig {
            dataset: crate::data::DatasetName::Spiral.into(),
            read: Default::default(),
            validation: None,
            early_stop: None,
            net: NetKind::Mlp,
            data_dir: None,
            hidden: vec![10, 10],
            activation: Activation::Relu,
            init: Some(WeightInit::He),
            weight_decay: None,
            batchnorm: true,
            dropout: 0.1,
            dropout_scaling: DropoutScaling::Inverted,
            optimizer: "adam".into(),
            lr: 0.01,
            lr_schedule: LrSchedule::Constant,
            batch_size: 30,
            epochs: 3,
            train_size: None,
            seed: 1,
            threads: 2,
            out: out.to_path_buf(),
            progress: false,
            resume: false,
            no_sample: false,
        }
    }

    #[test]
    fn train_writes_metrics_summary_and_curves() {
        let dir = TempDir::new("train-run");
        let summary = run(&spiral_config(dir.path())).unwrap();
        assert_eq!(summary.epochs, 3);
        let metrics = fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.lines().count(), 3);
        let size = curves_figure(&[], "spiral").size();
        assert_eq!(size, (1280, 460));
        // A schedule adds a third panel with the rate.
        let history: Vec<EpochMetrics> = metrics
            .lines()
            .enumerate()
            .map(|(i, l)| EpochMetrics {
                lr: Some(0.1 / (i + 1) as f64),
                ..serde_json::from_str(l).unwrap()
            })
            .collect();
        assert_eq!(curves_figure(&history, "spiral").size(), (1920, 460));
        assert_eq!(png_size(&dir.path().join("curves.png")), size);
        assert_svg(&dir.path().join("curves.svg"), size);
    }

    #[test]
    fn a_bad_dropout_ratio_is_an_error() {
        let dir = TempDir::new("train-bad");
        let config = TrainConfig {
            dropout: 1.5,
            ..spiral_config(dir.path())
        };
        let err = run(&config).unwrap_err().to_string();
        assert!(err.contains("dropout ratio"), "{err}");
    }
}
