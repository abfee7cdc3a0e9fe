//! The results file that `benches/pytorch/compare` writes (benches/README.md):
//! per workload PyTorch's figure, backprop's, and backprop's speed as a
//! multiple of PyTorch's (`speedup`, median and range of the rounds), with
//! the machine and how busy it was. Read here for `backprop bench chart`;
//! fields the chart does not use are kept in the file but not read.
//!
//! ```
//! let json = r#"{"date": "2026-12-02T07:00:00+00:00", "rounds": 1,
//!   "machine": {"cpu": "AMD EPYC", "cores": 2, "threads": 2, "torch": "2.15.0"},
//!   "load": {"other_cores_mean": 0.1},
//!   "workloads": [{"workload": "w1", "label": "W1: MLP", "unit": "s/epoch",
//!     "pytorch": 0.5, "backprop": 0.1, "speedup": 5.0,
//!     "speedup_min": 5.0, "speedup_max": 5.0}]}"#;
//! let c = backprop::bench::results::parse(json).unwrap();
//! assert_eq!(c.workloads[0].speedup, 5.0);
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
pub struct Comparison {
    /// When the run started, RFC 3339.
    pub date: String,
    pub rounds: usize,
    pub machine: Machine,
    pub load: Load,
    pub workloads: Vec<WorkloadResult>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Machine {
    pub cpu: Option<String>,
    pub cores: Option<usize>,
    /// Threads each side used.
    pub threads: usize,
    /// PyTorch's version.
    pub torch: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Load {
    /// CPU time other processes took during the run, in cores (0: quiet; 1:
    /// one core kept busy).
    pub other_cores_mean: f64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WorkloadResult {
    pub workload: String,
    /// What it is, e.g. "W2: SimpleConvNet, Adam".
    pub label: String,
    /// "s/epoch" or "images/s".
    pub unit: String,
    /// Medians of the rounds, in `unit`.
    pub pytorch: f64,
    pub backprop: f64,
    /// backprop's speed over PyTorch's: median, lowest and highest round.
    pub speedup: f64,
    pub speedup_min: f64,
    pub speedup_max: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is not a results file of benches/pytorch/compare ({message}); run that command \
         to write one",
        path.display()
    )]
    Malformed { path: PathBuf, message: String },
}

/// Reads and checks a results file.
pub fn read(path: &Path) -> Result<Comparison, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|message| ResultsError::Malformed {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses a results file's text; the error says what is wrong and where.
pub fn parse(text: &str) -> Result<Comparison, String> {
    let c: Comparison = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if c.workloads.is_empty() {
        return Err("it lists no workloads".into());
    }
    for w in &c.workloads {
        let [median, low, high] = [w.speedup, w.speedup_min, w.speedup_max];
        if ![median, low, high, w.pytorch, w.backprop]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
        {
            return Err(format!(
                "workload {}: the figures must be positive numbers",
                w.workload
            ));
        }
        if !(low <= median && median <= high) {
            return Err(format!(
                "workload {}: speedup {median} lies outside its range {low}-{high}",
                w.workload
            ));
        }
    }
    Ok(c)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::testutil::TempDir;

    /// A results file of two workloads, as `compare` writes it (with fields
    /// the chart does not read).
    pub const SMALL: &str = r#"{
 "date": "2026-12-02T07:00:00+00:00", "command": "benches/pytorch/compare w1 1", "rounds": 2,
 "machine": {"cpu": "AMD EPYC", "cores": 2, "logical_cpus": 2, "threads": 2,
             "torch": "2.15.0+cpu", "numpy": "2.4.6", "rustc": "rustc 1.95.0"},
 "load": {"other_cores_mean": 0.25, "wall_s": 60.0},
 "workloads": [
  {"workload": "w1", "label": "W1: MLP, SGD", "unit": "s/epoch", "higher_is_better": false,
   "pytorch": 0.5, "backprop": 0.125, "ratio": 0.25,
   "speedup": 4.0, "speedup_min": 3.5, "speedup_max": 4.5, "rounds": []},
  {"workload": "w5", "label": "W5: DeepConvNet inference", "unit": "images/s",
   "pytorch": 4000, "backprop": 3000, "ratio": 0.75,
   "speedup": 0.75, "speedup_min": 0.7, "speedup_max": 0.8, "rounds": []}
 ]
}"#;

    #[test]
    fn reads_what_compare_writes() {
        let c = parse(SMALL).unwrap();
        assert_eq!(c.workloads.len(), 2);
        assert_eq!(c.workloads[1].unit, "images/s");
        assert_eq!(c.machine.threads, 2);
        assert_eq!(c.load.other_cores_mean, 0.25);
    }

    #[test]
    fn malformed_files_are_refused_with_the_reason() {
        let dir = TempDir::new("results");
        let path = dir.path().join("broken.json");
        std::fs::write(&path, r#"{"date": "2026-12-02", "rounds": 1}"#).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains("broken.json is not a results file of benches/pytorch/compare")
                && err.contains("missing field `machine`")
                && err.contains("run that command"),
            "{err}"
        );

        let truncated = &SMALL[..SMALL.len() / 2];
        assert!(parse(truncated).unwrap_err().contains("EOF"));
        let empty = SMALL.replace(
            &SMALL[SMALL.find("\"workloads\"").unwrap()..],
            "\"workloads\": []}",
        );
        assert_eq!(parse(&empty).unwrap_err(), "it lists no workloads");
        let negative = SMALL.replace("\"speedup\": 4.0", "\"speedup\": -4.0");
        assert!(parse(&negative).unwrap_err().contains("positive numbers"));
        let outside = SMALL.replace("\"speedup\": 4.0", "\"speedup\": 5.0");
        assert!(parse(&outside).unwrap_err().contains("outside its range"));
        let text = SMALL.replace("\"pytorch\": 0.5", "\"pytorch\": \"fast\"");
        assert!(parse(&text).unwrap_err().contains("invalid type"));

        let missing = dir.path().join("missing.json");
        assert!(
            read(&missing)
                .unwrap_err()
                .to_string()
                .starts_with("cannot read")
        );
    }
}
