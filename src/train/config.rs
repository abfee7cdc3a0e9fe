//! What a training run is: the architecture chosen (`--net`), the run's
//! settings ([`TrainConfig`]) and one epoch's figures ([`EpochMetrics`]).
//! Checkpoints save them with the training state, so that `--resume`
//! continues a run without its flags.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::data::{DataSource, ReadOptions};
use crate::layers::DropoutScaling;
use crate::nets::{Activation, DeepConvNet, MultiLayerNet, NetSpec, SimpleConvNet, WeightInit};
use crate::optim::LrSchedule;

/// The architectures `--net` chooses between: the textbook's, or a net file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetKind {
    /// MultiLayerNet with `--hidden` sizes and `--activation`.
    #[default]
    Mlp,
    /// The textbook's SimpleConvNet.
    SimpleCnn,
    /// The textbook's DeepConvNet.
    DeepCnn,
    /// A [`NetSpec`] in TOML (or JSON, as a checkpoint's `net`).
    File(PathBuf),
}

impl FromStr for NetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "mlp" => Ok(NetKind::Mlp),
            "simple-cnn" => Ok(NetKind::SimpleCnn),
            "deep-cnn" => Ok(NetKind::DeepCnn),
            l if l.ends_with(".toml") || l.ends_with(".json") => Ok(NetKind::File(s.into())),
            _ => Err(format!(
                "unknown net '{s}': use mlp, simple-cnn or deep-cnn, or a net file such as nets/mlp.toml"
            )),
        }
    }
}

impl NetKind {
    /// A built-in net with the textbook's settings for examples of `shape` in
    /// `classes` classes (`--net` without other flags); for a file, its own
    /// chain, read.
    pub fn textbook_spec(&self, shape: &[usize], classes: usize) -> NetSpec {
        let image = match *shape {
            [c, h, w] => [c, h, w],
            _ => [1, 1, shape.iter().product()],
        };
        match self {
            NetKind::SimpleCnn => SimpleConvNet::new(image, classes).spec(),
            NetKind::DeepCnn => DeepConvNet::new(image, classes).spec(),
            _ => NetSpec {
                input_shape: None,
                ..MultiLayerNet::new(shape.iter().product(), &[100; 5], classes).spec()
            },
        }
    }

    /// The weight init each built-in net starts from unless `--init` says
    /// otherwise: the textbook's, He except for SimpleConvNet's 0.01.
    pub fn default_init(&self) -> WeightInit {
        match self {
            NetKind::SimpleCnn => WeightInit::Std(0.01),
            _ => WeightInit::He,
        }
    }
}

impl fmt::Display for NetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetKind::Mlp => f.write_str("mlp"),
            NetKind::SimpleCnn => f.write_str("simple-cnn"),
            NetKind::DeepCnn => f.write_str("deep-cnn"),
            NetKind::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Everything a training run depends on; saved in `summary.json`, and in the
/// training state so that `--resume` needs no flags.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    /// What `--dataset` named: a built-in data set, `idx`, a folder or a table.
    pub dataset: DataSource,
    /// How a folder or a table is read (the test split held out of data without one).
    #[serde(flatten)]
    pub read: ReadOptions,
    /// `--validation`: the share of each class of the training split held out
    /// to judge each epoch by (a folder's val/ is used as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<f64>,
    /// `--early-stop N`: stop when the validation loss has not improved for N epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<usize>,
    /// The architecture; `hidden` and `activation` apply to `mlp` only.
    /// (Training states saved before convnets existed have none: mlp.)
    #[serde(default)]
    pub net: NetKind,
    #[serde(skip)]
    pub data_dir: Option<PathBuf>,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    /// `--init`; `None`: the net's own (the textbook's for a built-in net,
    /// the file's for a net file).
    pub init: Option<WeightInit>,
    /// `--weight-decay`; `None`: the net's own (0, or the file's).
    pub weight_decay: Option<f64>,
    /// BatchNorm between each hidden Affine and its activation.
    pub batchnorm: bool,
    /// Dropout ratio after each hidden activation (0: none).
    pub dropout: f64,
    /// Where Dropout scales (runs saved before the choice existed: inverted).
    #[serde(default)]
    pub dropout_scaling: DropoutScaling,
    pub optimizer: String,
    pub lr: f64,
    /// How `lr` changes over the run (runs saved before schedules: constant).
    #[serde(default)]
    pub lr_schedule: LrSchedule,
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
    /// Fail when MNIST is not to be had, instead of training on the built-in sample.
    #[serde(skip)]
    pub no_sample: bool,
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// On the validation split, when the run has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    pub test_accuracy: f64,
    pub test_loss: f64,
    /// Learning rate at the epoch's first step (absent in runs saved before
    /// schedules existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Training time of this epoch, evaluation excluded.
    pub seconds: f64,
}
