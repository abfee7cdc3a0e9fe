//! Training: the data-parallel [`Trainer`], what a run is ([`TrainConfig`]),
//! and, with the feature `cli`, the `train` job behind the command line
//! (`run`), which logs every epoch and writes the run's files and figures.

mod config;
#[cfg(feature = "cli")]
mod run;
mod trainer;

pub use config::{EpochMetrics, NetKind, TrainConfig};
#[cfg(feature = "cli")]
pub use run::{Diverged, Summary, run};
pub use trainer::{MAX_THREADS, TrainError, Trainer, flush_denormals};
pub(crate) use trainer::{infer_rows, share};
