//! The command line: argument parsing (clap) and dispatch to the library.
//! Every command returns `anyhow::Result`; `main` prints the error as one line.
//!
//! The doc comments on arguments are their `--help` text, written for a
//! terminal: `<dataset>` there is a placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

#[cfg(feature = "onnx")]
mod export;
mod predict;
mod show;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::bench;
use crate::checkpoint;
use crate::checkpoint::ModelInfo;
use crate::data::{self, DataSource, Dataset, InputKind, LoadOptions, ReadOptions};
use crate::eval::{self, Evaluation, Precision};
use crate::experiments::{self, Experiment};
use crate::gradcheck;
use crate::layers::DropoutScaling;
use crate::learn::{self, Lesson};
use crate::nets::{Activation, Network, WeightInit};
use crate::optim::LrSchedule;
use crate::plot;
use crate::train::{self, NetKind, TrainConfig};

#[derive(Parser)]
#[command(
    name = "backprop",
    version,
    about = "Train neural networks by explicit, layer-by-layer backpropagation",
    long_about = "Train neural networks by explicit, layer-by-layer backpropagation, \
                  after the textbook \"Deep Learning from Scratch\"."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a net (MultiLayerNet, a convnet or a net file) and report train/test accuracy
    /// per epoch.
    Train(Box<TrainArgs>),
    /// Compare backpropagation with numerical gradients for every layer and net.
    Gradcheck(GradcheckArgs),
    /// Test a saved model: accuracy, per-class precision/recall, confusion matrix.
    Eval(EvalArgs),
    /// Write a saved model as an ONNX model (onnxruntime, tract, ...).
    #[cfg(feature = "onnx")]
    Export(export::ExportArgs),
    /// Classify pictures (PNG, JPEG, BMP) or table rows (CSV) with a saved model.
    Predict(predict::PredictArgs),
    /// Serve a draw-a-digit web page backed by a saved model.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// Draw a saved model's first-layer filters or its misclassified test images (PNG).
    Show(show::ShowArgs),
    /// Run one of the textbook's training-technique experiments and draw its figure.
    Experiment(ExperimentArgs),
    /// Run one of the textbook's lessons (chapters 2-5): print the book's numbers and draw its figure.
    Learn(LearnArgs),
    /// Time the reference workloads on MNIST (defined in benches/README.md), or draw the chart
    /// of a PyTorch comparison.
    Bench(BenchArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    /// Data set: mnist, mnist-sample (the built-in first 10,000 training digits of MNIST
    /// and its test set), fashion-mnist, spiral (generated, needs no files), idx (the four
    /// IDX files in --data DIR, any image size), a folder of pictures (DIR/<class>/*.png,
    /// or DIR/train/ and DIR/test/ so), or a CSV table (FILE.csv).
    #[arg(long, default_value = "mnist")]
    pub dataset: DataSource,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Hold out this share of each class of the training split as a validation set,
    /// judged every epoch (a folder's val/ is used as it is).
    #[arg(long, value_name = "SHARE")]
    pub validation: Option<f64>,
    /// Stop when the validation loss has not improved for N epochs.
    #[arg(long, value_name = "N")]
    pub early_stop: Option<usize>,
    /// Folder holding the four IDX files (or a parent of <dataset>/). Default:
    /// $BACKPROP_DATA/<dataset>, then the per-user cache, then a download; for mnist,
    /// failing all of those, the built-in sample.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Architecture: mlp (MultiLayerNet), simple-cnn (SimpleConvNet), deep-cnn (DeepConvNet),
    /// or a net file (FILE.toml: any chain of Affine, Convolution, MaxPooling, BatchNorm, Dropout,
    /// Relu, Sigmoid, Tanh and Flatten layers; see nets/*.toml).
    #[arg(long, default_value = "mlp")]
    pub net: NetKind,
    /// Hidden layer sizes, comma-separated (mlp only).
    #[arg(long, value_delimiter = ',', default_value = "100,100,100,100,100")]
    pub hidden: Vec<usize>,
    /// Activation between Affine layers: relu, sigmoid or tanh (mlp only; the convnets use relu).
    #[arg(long, default_value = "relu")]
    pub activation: Activation,
    /// Weight init: he (sqrt(2/fan_in)), xavier (sqrt(1/fan_in)), or a standard deviation such as 0.01.
    /// Default: he, except 0.01 for simple-cnn (the textbook's), or a net file's own.
    #[arg(long)]
    pub init: Option<WeightInit>,
    /// L2 weight decay lambda: adds 0.5*lambda*sum(W^2) to the loss and lambda*W to dW
    /// [default: 0, or a net file's own].
    #[arg(long, value_name = "LAMBDA")]
    pub weight_decay: Option<f64>,
    /// Put BatchNorm between each hidden Affine layer and its activation.
    #[arg(long)]
    pub batchnorm: bool,
    /// Dropout after each hidden activation, dropping this fraction of units in training (0 = off).
    #[arg(long, value_name = "RATIO", default_value_t = 0.0)]
    pub dropout: f64,
    /// Where Dropout scales: inverted (kept units times 1/(1-RATIO) in training, as PyTorch) or
    /// textbook (inference times 1-RATIO, as the book's Dropout; a deep net then learns slower).
    #[arg(long, value_name = "SCALING", default_value = "inverted")]
    pub dropout_scaling: DropoutScaling,
    /// Optimizer: sgd, momentum, nesterov, adagrad, rmsprop, adam or adamw.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// How the learning rate changes over the run: constant (the textbook's), cosine (from --lr
    /// down to 0 at the last step, updated every step) or step:N:G (multiplied by G every N
    /// epochs, e.g. step:3:0.5).
    #[arg(long, value_name = "SCHEDULE", default_value = "constant")]
    pub lr_schedule: LrSchedule,
    /// Examples per mini-batch.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Passes over the training set [default: 10; with --resume: the run's own].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Train on the first N training examples only (the textbook's overfitting experiments use 300).
    #[arg(long, value_name = "N")]
    pub train_size: Option<usize>,
    /// Seed for the initial weights, the shuffles and generated data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads (default: all cores; under mpirun, shared among its ranks on the machine). Results are reproducible for a given seed and thread count.
    #[arg(long, value_name = "N", value_parser = thread_count)]
    pub threads: Option<usize>,
    /// Output folder for metrics.jsonl, summary.json and curves.svg/.png (default: runs/<timestamp>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Never draw progress bars, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Stop with an error when MNIST is neither on disk nor downloadable, instead of
    /// training on the built-in sample (10,000 training and 2,000 test digits).
    #[arg(long)]
    pub no_sample: bool,
    /// Continue the run in DIR from its last checkpoint (weights, optimizer state,
    /// generators, epoch) with its own settings; --epochs may raise its length.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "dataset", "hidden", "activation", "init", "weight_decay", "optimizer", "lr",
        "validation", "early_stop", "test_split", "image_size", "channels", "skip_bad", "label",
        "delimiter", "ignore",
        "lr_schedule", "batch_size", "train_size", "seed", "threads", "out", "batchnorm", "dropout", "dropout_scaling",
    ])]
    pub resume: Option<PathBuf>,
}

/// How to read a folder of pictures or a table.
#[derive(Args, Clone)]
pub struct ReadArgs {
    /// Share of each class held out as the test set of data that has none (a folder
    /// without test/, a table).
    #[arg(long, value_name = "SHARE", default_value_t = 0.2)]
    pub test_split: f64,
    /// Pictures: the size the net sees [default: the size most pictures have].
    #[arg(long, value_name = "WxH")]
    pub image_size: Option<ImageSize>,
    /// Pictures: 1 (grey) or 3 (RGB) [default: 1 if every picture is grey, else 3].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub channels: Option<u8>,
    /// Pictures: leave out files that do not decode (and say how many) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Tables: the label column [default: label, class, target or y, else the last column].
    #[arg(long, value_name = "COLUMN")]
    pub label: Option<String>,
    /// Tables: the field separator, such as ';' or '\t' [default: ',', tab for .tsv].
    #[arg(long, value_name = "CHAR", value_parser = delimiter)]
    pub delimiter: Option<char>,
    /// Tables: columns to leave out, comma-separated.
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',')]
    pub ignore: Vec<String>,
}

impl ReadArgs {
    pub fn options(&self) -> Result<ReadOptions> {
        if self.channels == Some(2) {
            bail!("--channels takes 1 (grey) or 3 (RGB)");
        }
        Ok(ReadOptions {
            test_split: self.test_split,
            image_size: self.image_size.map(|s| (s.0, s.1)),
            channels: self.channels,
            skip_bad: self.skip_bad,
            label: self.label.clone(),
            delimiter: self.delimiter,
            ignore: self.ignore.clone(),
        })
    }
}

/// `--image-size 32x32`.
#[derive(Clone, Copy, Debug)]
pub struct ImageSize(pub u32, pub u32);

impl std::str::FromStr for ImageSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let size = |v: &str| {
            v.trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| (1..=4096).contains(&n))
        };
        match s.split_once(['x', 'X']) {
            Some((w, h)) => match (size(w), size(h)) {
                (Some(w), Some(h)) => Ok(ImageSize(w, h)),
                _ => Err(format!(
                    "expected a size such as 32x32 (1 to 4096 each), got '{s}'"
                )),
            },
            None => Err(format!("expected WIDTHxHEIGHT such as 32x32, got '{s}'")),
        }
    }
}

/// `;`, `\t` (or `tab`) as the character it names.
fn delimiter(s: &str) -> Result<char, String> {
    match s {
        "\\t" | "tab" | "\t" => Ok('\t'),
        _ => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii() => Ok(c),
                _ => Err(format!(
                    "expected one character such as ';' or '\\t', got '{s}'"
                )),
            }
        }
    }
}

/// A saved model and the test set to judge it on (`eval`, `show misclassified`).
#[derive(Args)]
pub struct ModelOnTestSet {
    /// A model.safetensors written by `backprop train` (or with the same metadata).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Test set to use [default: the one the model was trained on, split as it was].
    #[arg(long)]
    pub dataset: Option<DataSource>,
    /// Folder holding the data set's files (as for train).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub test: ModelOnTestSet,
    /// Only the first N test examples.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Where to draw the confusion matrix [default: confusion.png beside the model].
    #[arg(long, value_name = "FILE")]
    pub confusion: Option<PathBuf>,
    /// Print JSON (with every prediction) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Weights as saved (f32), or rounded to half precision (f16: parameters
    /// and buffers only, activations stay f32), reported beside f32.
    #[arg(long, default_value_t = Precision::F32)]
    pub precision: Precision,
}

#[cfg(feature = "serve")]
#[derive(Args)]
pub struct ServeArgs {
    /// A model.safetensors of 28x28 grayscale images (mnist, fashion-mnist).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on; the default serves this machine only.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
}

#[derive(Args)]
pub struct GradcheckArgs {
    /// Largest relative error accepted.
    #[arg(long, default_value_t = gradcheck::TOLERANCE)]
    pub tolerance: f64,
}

#[derive(Args)]
pub struct ExperimentArgs {
    /// Which experiment.
    #[arg(value_enum, value_name = "NAME")]
    pub name: Experiment,
    /// Folder holding MNIST's IDX files (or a parent of mnist/); default as for train.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output folder for the figure (PNG, SVG) and its numbers (default: runs/<name>-<timestamp>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A short version (fewer iterations, epochs or trials) that runs in seconds.
    #[arg(long)]
    pub quick: bool,
    /// Seed for weights, batches and sampled hyperparameters.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads (default: all cores; under mpirun, shared among its ranks on the machine). Results are reproducible for a given seed and thread count.
    #[arg(long, value_name = "N", value_parser = thread_count)]
    pub threads: Option<usize>,
    /// Never draw progress bars or progress lines.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args)]
pub struct LearnArgs {
    /// Which lesson.
    #[arg(value_enum, value_name = "NAME")]
    pub name: Lesson,
    /// Folder holding MNIST's IDX files, for gradient-check and chain; default as for train.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output folder for the figure (PNG, SVG) and its numbers (default: runs/<name>-<timestamp>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Train for fewer epochs (why-relu), for a run in seconds.
    #[arg(long)]
    pub quick: bool,
    /// Seed for weights, shuffles and the spiral.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads for training (why-relu); default: all cores.
    #[arg(long, value_name = "N", value_parser = thread_count)]
    pub threads: Option<usize>,
}

/// The workloads are defined in benches/README.md, precisely enough to reimplement;
/// benches/pytorch/compare runs PyTorch's side beside this one and prints the ratios.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Workload: w1 (SGD + weight decay), w1-adam, w2 (SimpleConvNet, Adam), w3 (inference),
    /// w4 (DeepConvNet, Adam), w5 (DeepConvNet inference), or all; w3-classifier (W3 through
    /// the embedding API); several, comma-separated, run in order on data loaded once
    /// (w3,w3-classifier); or conv (one convolution layer at a time;
    /// benches/pytorch/conv_shapes.py runs PyTorch beside it).
    #[arg(default_value = "all")]
    pub workload: String,
    /// Folder holding the MNIST IDX files (default: as for train).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, default_value_t = 2, value_parser = thread_count)]
    pub threads: usize,
    /// Training epochs per workload; seconds per epoch is the median of epochs 2..N
    /// (w4: the median of N rounds of 200 batches, each scaled to an epoch).
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    /// One JSON object per workload per line, instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Draw a results file of benches/pytorch/compare as a bar chart (PNG and SVG): backprop's
    /// speed relative to PyTorch's per workload.
    Chart(ChartArgs),
}

#[derive(Args)]
pub struct ChartArgs {
    /// The results file (benches/results/DATE.json).
    pub results: PathBuf,
    /// Folder for <results name>.png and .svg (default: the results file's folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

fn thread_count(s: &str) -> Result<usize, String> {
    use crate::train::MAX_THREADS;
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of worker threads from 1 to {MAX_THREADS}, got {s}"
        )),
    }
}

/// Default thread count: the machine's cores, shared among the ranks of an
/// MPI job on it.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / crate::dist::ranks_on_this_machine()).max(1)
}

/// `runs/<name>-<timestamp>`.
fn named_run_dir(name: &str) -> PathBuf {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    PathBuf::from("runs").join(format!("{name}-{stamp}"))
}

/// A folder or table by its absolute path, so that `--resume` and `eval`
/// find it from anywhere (left as given if it cannot be resolved: loading
/// then says why).
fn absolute(source: DataSource) -> DataSource {
    match source {
        DataSource::Folder(p) => DataSource::Folder(p.canonicalize().unwrap_or(p)),
        DataSource::Csv(p) => DataSource::Csv(p.canonicalize().unwrap_or(p)),
        other => other,
    }
}

fn timestamped_run_dir() -> PathBuf {
    PathBuf::from("runs").join(chrono::Local::now().format("%Y%m%d-%H%M%S").to_string())
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => {
            if a.hidden.contains(&0) {
                bail!("--hidden sizes must be positive, got {:?}", a.hidden);
            }
            if let Some(dir) = a.resume {
                let state = checkpoint::read_train_state(&dir)
                    .with_context(|| format!("cannot resume from {}", dir.display()))?;
                let mut config = state.config;
                config.out = dir;
                config.resume = true;
                config.data_dir = a.data;
                config.progress = !a.no_progress;
                config.epochs = a.epochs.unwrap_or(config.epochs);
                train::run(&config)?;
                return Ok(());
            }
            let config = TrainConfig {
                dataset: absolute(a.dataset),
                read: a.read.options()?,
                validation: a.validation,
                early_stop: a.early_stop,
                net: a.net,
                data_dir: a.data,
                hidden: a.hidden,
                activation: a.activation,
                init: a.init,
                weight_decay: a.weight_decay,
                batchnorm: a.batchnorm,
                dropout: a.dropout,
                dropout_scaling: a.dropout_scaling,
                optimizer: a.optimizer,
                lr: a.lr,
                lr_schedule: a.lr_schedule,
                batch_size: a.batch_size,
                epochs: a.epochs.unwrap_or(10),
                train_size: a.train_size,
                seed: a.seed,
                threads: a.threads.unwrap_or_else(default_threads),
                out: a.out.unwrap_or_else(timestamped_run_dir),
                progress: !a.no_progress,
                resume: false,
                no_sample: a.no_sample,
            };
            train::run(&config)?;
            Ok(())
        }
        Command::Bench(BenchArgs {
            command: Some(BenchCommand::Chart(a)),
            ..
        }) => {
            let results = bench::results::read(&a.results)?;
            let dir = match &a.out {
                Some(dir) => dir.clone(),
                None => a
                    .results
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            };
            let stem = a
                .results
                .file_stem()
                .map_or("speed".into(), |s| s.to_string_lossy());
            let [svg, png] = plot::speed_chart(&results).save(&dir, &stem)?;
            println!("wrote {} and {}", svg.display(), png.display());
            Ok(())
        }
        Command::Bench(a) if a.workload == "conv" => {
            if !a.json {
                println!(
                    "{:<24} {:>8} {:>12} {:>9} {:>16}",
                    "shape", "fwd ms", "fwd+bwd ms", "GFLOP/s", "im2col fwd+bwd"
                );
            }
            bench::convolutions::run(a.threads.max(1), 9, |t| {
                if a.json {
                    println!("{}", serde_json::to_string(t).expect("serialisable"));
                } else {
                    println!(
                        "{:<24} {:>8.3} {:>12.3} {:>9.1} {:>16.3}",
                        t.shape.name,
                        t.forward_ms,
                        t.forward_backward_ms,
                        t.gflops,
                        t.im2col_forward_backward_ms
                    );
                }
            });
            Ok(())
        }
        Command::Bench(a) => {
            let workloads: Vec<&str> = match a.workload.as_str() {
                "all" => bench::WORKLOADS.to_vec(),
                w => w.split(',').map(str::trim).collect(),
            };
            if a.epochs == 0 {
                bail!("--epochs must be at least 1");
            }
            let load = LoadOptions {
                data_dir: a.data,
                allow_download: true,
                progress: true,
                seed: 0,
                // The workloads are defined on all 60,000 images.
                sample_fallback: false,
                read: Default::default(),
            };
            let opts = bench::BenchOptions {
                threads: a.threads.max(1),
                epochs: a.epochs,
                seed: 0,
            };
            if !a.json {
                println!(
                    "{:<9} {:>7} {:>16} {:>9} {:>9}",
                    "workload", "threads", "result", "test acc", "RSS MiB"
                );
            }
            bench::run(&workloads, &load, &opts, |r| {
                if a.json {
                    println!("{}", serde_json::to_string(r).expect("serialisable"));
                    return;
                }
                let result = match (r.seconds_per_epoch, r.images_per_second) {
                    (Some(s), _) => format!("{s:.4} s/epoch"),
                    (_, Some(i)) => format!("{:.0}k img/s", i / 1000.0),
                    _ => "-".into(),
                };
                let acc = r.test_accuracy.map_or("-".into(), |a| format!("{a:.4}"));
                let rss = r.max_rss_mib.map_or("-".into(), |m| format!("{m:.0}"));
                println!(
                    "{:<9} {:>7} {result:>16} {acc:>9} {rss:>9}",
                    r.workload, r.threads
                );
            })?;
            Ok(())
        }
        Command::Gradcheck(a) => {
            println!("{:<40} {:<8} {:>12}", "check", "param", "max rel err");
            let mut failed = 0;
            for report in gradcheck::standard_suite() {
                print!("{report}");
                failed += report
                    .entries
                    .iter()
                    .filter(|e| e.max_relative_error >= a.tolerance)
                    .count();
            }
            if failed > 0 {
                bail!(
                    "{failed} gradient(s) exceed the tolerance {:e}",
                    a.tolerance
                );
            }
            println!("all gradients agree within {:e}", a.tolerance);
            Ok(())
        }
        Command::Eval(a) => run_eval(a),
        #[cfg(feature = "onnx")]
        Command::Export(a) => export::run(a),
        Command::Predict(a) => predict::run(a),
        #[cfg(feature = "serve")]
        Command::Serve(a) => crate::serve::serve(&a.model, &a.host, a.port),
        Command::Show(a) => show::run(a),
        Command::Learn(a) => {
            let opts = experiments::Options {
                data_dir: a.data,
                out: a.out.unwrap_or_else(|| named_run_dir(a.name.name())),
                quick: a.quick,
                seed: a.seed,
                threads: a.threads.unwrap_or_else(default_threads).max(1),
                progress: true,
            };
            let outcome = learn::run(a.name, &opts)?;
            print!("{}", outcome.table);
            for f in &outcome.files {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
        Command::Experiment(a) => {
            let name = a.name.name();
            let out = a.out.unwrap_or_else(|| named_run_dir(name));
            let opts = experiments::Options {
                data_dir: a.data,
                out,
                quick: a.quick,
                seed: a.seed,
                threads: a.threads.unwrap_or_else(default_threads).max(1),
                progress: !a.no_progress,
            };
            let outcome = experiments::run(a.name, &opts)?;
            print!("{}", outcome.table);
            for f in &outcome.files {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
    }
}

/// `name` in the folder of `model` (where `train` put it).
fn beside(model: &Path, name: &str) -> PathBuf {
    model.parent().unwrap_or(Path::new(".")).join(name)
}

/// The saved model and the test split of its `--dataset` (default: the
/// model's own, read and split as it was for training), checked to fit each
/// other.
fn load_model_and_test_set(
    args: &ModelOnTestSet,
    progress: bool,
) -> Result<(Network<f32>, ModelInfo, DataSource, Dataset)> {
    let model = &args.model;
    let (net, info) = checkpoint::load::<f32>(model)?;
    let dataset = args.dataset.clone().unwrap_or_else(|| info.dataset.clone());
    let split = data::load(
        dataset.clone(),
        &LoadOptions {
            data_dir: args.data.clone(),
            allow_download: true,
            progress,
            seed: info.seed,
            sample_fallback: true,
            read: info.read_options(),
        },
    )?;
    let dataset = match split.dataset() {
        Some(loaded) if dataset.builtin().is_some_and(|asked| asked != loaded) => {
            eprintln!("{}", data::sample::notice("testing on"));
            loaded.into()
        }
        _ => dataset,
    };
    let test = split.test;
    if test.shape != info.input_shape || test.class_names != info.class_names {
        bail!(
            "{} takes inputs {:?} in the classes {}, but the {dataset} test set has {:?} in {}: pick the data set it was trained on ({})",
            model.display(),
            info.input_shape,
            names(&info.class_names),
            test.shape,
            names(&test.class_names),
            info.dataset
        );
    }
    if let (InputKind::Table(_), true) = (&info.input, test.input != info.input) {
        bail!(
            "{dataset} has changed since {} was trained on it: its columns no longer encode as they did",
            model.display()
        );
    }
    Ok((net, info, dataset, test))
}

/// Class names for a message, at most ten of them.
fn names(classes: &[String]) -> String {
    let mut shown: Vec<&str> = classes.iter().take(10).map(String::as_str).collect();
    if classes.len() > 10 {
        shown.push("...");
    }
    format!("{} ({})", classes.len(), shown.join(", "))
}

fn run_eval(a: EvalArgs) -> Result<()> {
    let (mut net, info, dataset, test) = load_model_and_test_set(&a.test, !a.json)?;
    let model = &a.test.model;
    let n = a.limit.unwrap_or(test.len()).min(test.len());
    // With f16 the report, the matrix and the predictions are the f16 net's;
    // f32 is kept for the comparison line.
    let (result, f16) = match a.precision {
        Precision::F32 => {
            let labels: Vec<usize> = test.labels[..n].iter().map(|&l| usize::from(l)).collect();
            let predictions = eval::predict_classes(&mut net, &test, n)?;
            (
                Evaluation::new(&info.class_names, &labels, &predictions),
                None,
            )
        }
        Precision::F16 => {
            let comparison = eval::compare_f16(&mut net, &test, n)?;
            (comparison.f16.clone(), Some(comparison))
        }
    };
    let png = a
        .confusion
        .unwrap_or_else(|| beside(model, "confusion.png"));
    eval::draw_confusion(&result.confusion, &info.class_names, &png)
        .with_context(|| format!("cannot write {}", png.display()))?;
    if a.json {
        let mut j = result.to_json();
        j["model"] = model.display().to_string().into();
        j["dataset"] = dataset.to_string().into();
        j["confusion_png"] = png.display().to_string().into();
        j["precision"] = a.precision.as_str().into();
        if let Some(c) = &f16 {
            j["f32_accuracy"] = c.f32.accuracy().into();
            j["f16_accuracy"] = c.f16.accuracy().into();
            j["predictions_changed"] = c.changed.into();
            j["f16_max_weight_change"] = c.rounding.max_abs_change.into();
            j["f16_overflowed"] = c.rounding.overflowed.into();
        }
        println!("{j}");
    } else {
        println!(
            "{} (epoch {}) on the {dataset} test set, {n} examples, weights in {}",
            model.display(),
            info.epoch,
            a.precision
        );
        print!("{}", result.report());
        if let Some(c) = &f16 {
            println!("\n{c}");
        }
        println!("wrote {}", png.display());
    }
    Ok(())
}
