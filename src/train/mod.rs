//! Training: the data-parallel [`Trainer`] and the `train` job behind the
//! command line ([`run`]), which logs every epoch and writes the run's files.

mod run;
mod trainer;

pub use run::{EpochMetrics, NetKind, Summary, TrainConfig, run};
pub use trainer::{MAX_THREADS, TrainError, Trainer, flush_denormals};
