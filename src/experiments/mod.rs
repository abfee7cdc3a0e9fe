//! The experiments of the textbook's chapter on training techniques, one
//! command each: `backprop experiment NAME`. Each trains (or, for the
//! histograms, only runs forward) with the library's own Trainer, nets and
//! optimizers, then writes its figure (`NAME.png`, `NAME.svg`), the numbers
//! behind it (`NAME.csv` or `NAME.jsonl`) and prints a short table.
//!
//! Every run is seeded: the same seed and thread count give the same files.
//! `--quick` shrinks each experiment (fewer iterations, epochs, trials or
//! test images) to run in seconds, for tests; the full runs take minutes on
//! two cores.
//!
//! ```no_run
//! use backprop::experiments::{self, Experiment, Options};
//! let opts = Options { quick: true, ..Options::new("runs/hist".into()) };
//! let outcome = experiments::run(Experiment::ActivationHistograms, &opts).unwrap();
//! println!("{}", outcome.table);
//! ```

mod batchnorm;
mod histograms;
mod hyperparameter_search;
mod loss_curves;
mod overfitting;

use std::fmt::Write as _;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::{self, Dataset, DatasetName, LoadOptions, Split};
use crate::nets::MultiLayerNet;
use crate::optim;
use crate::plot::Figure;
use crate::train::{TrainError, Trainer};

/// The experiments, named as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Experiment {
    /// SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam, AdamW on MNIST.
    Optimizers,
    /// Weight init std 0.01 vs Xavier vs He on a 5x100 ReLU net.
    WeightInit,
    /// Hidden activations for 1000 random inputs, per layer and init.
    ActivationHistograms,
    /// With vs without BatchNorm over 16 weight-init scales, 1000 images.
    Batchnorm,
    /// Overfitting 300 images, with and without weight decay 0.1.
    WeightDecay,
    /// Overfitting 300 images, with and without Dropout 0.2.
    Dropout,
    /// Random search for lr and weight decay on a validation split.
    HyperparameterSearch,
}

impl Experiment {
    pub const ALL: [Experiment; 7] = [
        Experiment::Optimizers,
        Experiment::WeightInit,
        Experiment::ActivationHistograms,
        Experiment::Batchnorm,
        Experiment::WeightDecay,
        Experiment::Dropout,
        Experiment::HyperparameterSearch,
    ];

    /// The command-line name, also the stem of the files written.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::Optimizers => "optimizers",
            Experiment::WeightInit => "weight-init",
            Experiment::ActivationHistograms => "activation-histograms",
            Experiment::Batchnorm => "batchnorm",
            Experiment::WeightDecay => "weight-decay",
            Experiment::Dropout => "dropout",
            Experiment::HyperparameterSearch => "hyperparameter-search",
        }
    }
}

/// Settings shared by all experiments.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where MNIST is (as `train --data`); `None` searches the usual places.
    pub data_dir: Option<PathBuf>,
    /// Folder for the figure and the numbers.
    pub out: PathBuf,
    /// A short version for tests: seconds instead of minutes.
    pub quick: bool,
    pub seed: u64,
    pub threads: usize,
    /// Show progress (a bar on a terminal, plain lines otherwise).
    pub progress: bool,
}

impl Options {
    /// Full runs, seed 42, every core, progress on.
    pub fn new(out: PathBuf) -> Self {
        Options {
            data_dir: None,
            out,
            quick: false,
            seed: 42,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress: true,
        }
    }

    /// `full` normally, `quick` with `--quick`.
    pub(crate) fn pick<V>(&self, full: V, quick: V) -> V {
        if self.quick { quick } else { full }
    }
}

/// What an experiment produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The printed summary.
    pub table: String,
    /// The files written: figure (SVG, PNG) and data.
    pub files: Vec<PathBuf>,
}

/// Runs one experiment and writes its files into `opts.out`.
pub fn run(experiment: Experiment, opts: &Options) -> Result<Outcome> {
    fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create output folder {}", opts.out.display()))?;
    match experiment {
        Experiment::Optimizers => loss_curves::optimizers(opts),
        Experiment::WeightInit => loss_curves::weight_init(opts),
        Experiment::ActivationHistograms => histograms::run(opts),
        Experiment::Batchnorm => batchnorm::run(opts),
        Experiment::WeightDecay => overfitting::weight_decay(opts),
        Experiment::Dropout => overfitting::dropout(opts),
        Experiment::HyperparameterSearch => hyperparameter_search::run(opts),
    }
}

pub(crate) fn load_mnist(opts: &Options) -> Result<Split> {
    let split = data::load(
        DatasetName::Mnist,
        &LoadOptions {
            data_dir: opts.data_dir.clone(),
            allow_download: true,
            progress: opts.progress,
            seed: opts.seed,
            sample_fallback: true,
            read: Default::default(),
        },
    )?;
    if split.dataset() == Some(DatasetName::MnistSample) && opts.progress {
        println!("{}", data::sample::notice("running on"));
    }
    Ok(split)
}

/// Overall progress of an experiment over `total` units (iterations or
/// epochs): a bar like `train`'s when stderr is a terminal, otherwise one
/// plain line on stderr per finished run.
struct Progress {
    name: &'static str,
    bar: Option<ProgressBar>,
    plain: bool,
    runs_done: usize,
    runs: usize,
    started: Instant,
}

impl Progress {
    fn new(experiment: Experiment, opts: &Options, runs: usize, units: u64) -> Self {
        let terminal = opts.progress && std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(units);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {percent}% {msg} {elapsed_precise} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(experiment.name());
            bar
        });
        Progress {
            name: experiment.name(),
            bar,
            plain: opts.progress && !terminal,
            runs_done: 0,
            runs,
            started: Instant::now(),
        }
    }

    /// One more unit of work done.
    fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Names the run now starting (shown in the bar).
    fn start(&self, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(what.to_string());
        }
    }

    fn run_done(&mut self, what: &str) {
        self.runs_done += 1;
        if self.plain {
            eprintln!(
                "{}: {what} done ({}/{} runs, {:.1} s)",
                self.name,
                self.runs_done,
                self.runs,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Per-epoch accuracy of one training run.
#[derive(Clone, Debug, Default)]
struct Curves {
    train_accuracy: Vec<f64>,
    test_accuracy: Vec<f64>,
    /// The training loss became infinite or NaN at some epoch.
    diverged: bool,
}

/// Trains `spec` with SGD at `lr` for `epochs` epochs of shuffled batches of
/// `batch_size`, recording train and test accuracy (inference mode) after
/// every epoch. A net whose loss diverges keeps going: its accuracy is then
/// that of NaN scores (class 0 everywhere, about 0.1), which is what the
/// textbook's curves show for such nets.
#[allow(clippy::too_many_arguments)]
fn train_epochs(
    spec: &MultiLayerNet,
    lr: f64,
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    batch_size: usize,
    opts: &Options,
    progress: &Progress,
) -> Result<Curves> {
    let net = spec.build::<f32>(opts.seed)?;
    let rule = Box::new(optim::Sgd::new(lr));
    let mut trainer = Trainer::new(net, rule, opts.threads, opts.seed);
    let mut curves = Curves::default();
    for _ in 0..epochs {
        // A diverged net goes on with its NaN weights: its curve shows the
        // collapse, as in the textbook's figures.
        match trainer.train_epoch(train, batch_size, |_, _| {}) {
            Ok(_) => {}
            Err(TrainError::Diverged { .. }) => curves.diverged = true,
            Err(e) => return Err(e.into()),
        }
        progress.tick();
        curves
            .train_accuracy
            .push(trainer.evaluate(train, EVAL_BATCH)?.1);
        curves
            .test_accuracy
            .push(trainer.evaluate(test, EVAL_BATCH)?.1);
    }
    Ok(curves)
}

/// Evaluation batches, as in `train`.
const EVAL_BATCH: usize = 1000;

/// Writes the figure and returns the files.
fn save_figure(figure: &Figure, opts: &Options, stem: &str) -> Result<Vec<PathBuf>> {
    Ok(figure.save(&opts.out, stem)?.to_vec())
}

/// Writes the figure and the numbers behind it (`<stem>.csv`: `header`, then
/// `rows`); returns them with the printed table.
pub(crate) fn figure_and_csv(
    figure: &Figure,
    opts: &Options,
    stem: &str,
    header: &str,
    rows: &[String],
    table: String,
) -> Result<Outcome> {
    let mut files = save_figure(figure, opts, stem)?;
    files.push(write_csv(&opts.out, stem, header, rows)?);
    Ok(Outcome { table, files })
}

/// Writes `rows` under `header` to `dir/<stem>.csv`.
fn write_csv(dir: &Path, stem: &str, header: &str, rows: &[String]) -> Result<PathBuf> {
    let path = dir.join(format!("{stem}.csv"));
    let mut text = String::with_capacity(rows.len() * 32);
    writeln!(text, "{header}").expect("writing to a String");
    for r in rows {
        writeln!(text, "{r}").expect("writing to a String");
    }
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// `(x, y)` points of a per-epoch curve, epochs counted from 1.
fn per_epoch(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| ((i + 1) as f64, v))
        .collect()
}

fn last(values: &[f64]) -> f64 {
    values.last().copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    //! Each experiment in its `--quick` form, on MNIST when `BACKPROP_DATA`
    //! points at it (CI sets it), else on the files of the built-in sample.
    //! Checked: the figure files decode at the
    //! figure's size, the data file has the expected rows, and the numbers
    //! show the experiment's effect where even the quick run shows it.
    use super::*;
    use crate::data::testutil::TempDir;
    use crate::plot::tests::{assert_svg, png_size};

    /// Quick, seeded, two threads, silent; MNIST found through `BACKPROP_DATA`,
    /// else the sample's folder (never the user's cache or a download).
    fn options(dir: &Path) -> Options {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist-sample");
        Options {
            data_dir: std::env::var_os("BACKPROP_DATA")
                .is_none()
                .then_some(sample),
            out: dir.to_path_buf(),
            quick: true,
            seed: 7,
            threads: 2,
            progress: false,
        }
    }

    /// Runs `e` quick and checks that its figure has `size` pixels.
    pub(super) fn run_quick(e: Experiment, dir: &Path, size: (u32, u32)) -> Outcome {
        let outcome = run(e, &options(dir)).unwrap();
        let png = dir.join(format!("{}.png", e.name()));
        let svg = dir.join(format!("{}.svg", e.name()));
        assert!(outcome.files.contains(&png) && outcome.files.contains(&svg));
        assert_eq!(png_size(&png), size);
        assert_svg(&svg, size);
        assert!(!outcome.table.is_empty());
        outcome
    }

    pub(super) fn read(dir: &Path, file: &str) -> String {
        fs::read_to_string(dir.join(file)).unwrap()
    }

    #[test]
    fn names_match_the_command_line() {
        use clap::ValueEnum;
        for e in Experiment::ALL {
            assert_eq!(Experiment::from_str(e.name(), false), Ok(e));
        }
    }

    #[test]
    fn progress_is_silent_when_off() {
        let opts = Options {
            progress: false,
            ..Options::new(PathBuf::from("unused"))
        };
        let mut p = Progress::new(Experiment::Dropout, &opts, 2, 10);
        p.tick();
        p.run_done("x");
        assert!(p.bar.is_none() && !p.plain);
    }

    #[test]
    fn an_unwritable_output_folder_is_an_error() {
        let dir = TempDir::new("exp-bad");
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let opts = Options {
            quick: true,
            progress: false,
            ..Options::new(file)
        };
        let err = run(Experiment::ActivationHistograms, &opts).unwrap_err();
        assert!(
            err.to_string().contains("cannot create output folder"),
            "{err}"
        );
    }
}
