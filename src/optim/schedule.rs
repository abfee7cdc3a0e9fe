//! Learning-rate schedules: how `lr` changes over a run. The textbook keeps
//! it constant; a decaying rate lets a run settle into a minimum instead of
//! rattling around it at the full step size (the last epochs of Adam at 0.001
//! on MNIST move test accuracy by ±0.5% from one epoch to the next).
//!
//! A schedule is a pure function of how far the run is, so a resumed run
//! gets the same rates as an uninterrupted one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `constant`, `cosine`, or `step:N:G`, as written on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum LrSchedule {
    /// `lr` throughout (the textbook's).
    #[default]
    Constant,
    /// Cosine annealing from `lr` to 0 over the run, one value per step:
    /// `lr · (1 + cos(π · progress)) / 2` (Loshchilov & Hutter's SGDR without
    /// restarts, PyTorch's `CosineAnnealingLR` with `eta_min = 0`).
    Cosine,
    /// `lr · gamma^⌊epoch / every⌋` (PyTorch's `StepLR`).
    Step { every: usize, gamma: f64 },
}

impl LrSchedule {
    /// The rate for a step taken `progress` of the way through the run
    /// (`0` at its first step, approaching `1` at its last), in epoch `epoch`
    /// (counted from 0).
    pub fn lr(&self, base: f64, epoch: usize, progress: f64) -> f64 {
        match *self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine => {
                base * 0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos())
            }
            LrSchedule::Step { every, gamma } => {
                let drops = i32::try_from(epoch / every.max(1)).unwrap_or(i32::MAX);
                base * gamma.powi(drops)
            }
        }
    }

    /// The rate of step `i` of `steps_per_epoch` in epoch `epoch` of `epochs`.
    pub fn lr_at(
        &self,
        base: f64,
        epoch: usize,
        epochs: usize,
        i: usize,
        steps_per_epoch: usize,
    ) -> f64 {
        let done = epoch as f64 + i as f64 / steps_per_epoch.max(1) as f64;
        self.lr(base, epoch, done / epochs.max(1) as f64)
    }
}

impl fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LrSchedule::Constant => f.write_str("constant"),
            LrSchedule::Cosine => f.write_str("cosine"),
            LrSchedule::Step { every, gamma } => write!(f, "step:{every}:{gamma}"),
        }
    }
}

impl FromStr for LrSchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "expected constant, cosine, or step:N:G (multiply the rate by G every N epochs, e.g. step:3:0.5)";
        match s.to_ascii_lowercase().as_str() {
            "constant" => Ok(LrSchedule::Constant),
            "cosine" => Ok(LrSchedule::Cosine),
            other => {
                let parts: Vec<&str> = other.split(':').collect();
                let ["step", every, gamma] = parts[..] else {
                    return Err(format!("unknown schedule '{s}': {usage}"));
                };
                let every = every
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| {
                        format!("'{s}': N must be a whole number of epochs ≥ 1; {usage}")
                    })?;
                let gamma = gamma
                    .parse::<f64>()
                    .ok()
                    .filter(|g| *g > 0.0 && *g <= 1.0)
                    .ok_or_else(|| format!("'{s}': G must be a number in (0, 1]; {usage}"))?;
                Ok(LrSchedule::Step { every, gamma })
            }
        }
    }
}

impl From<LrSchedule> for String {
    fn from(s: LrSchedule) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for LrSchedule {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_starts_at_lr_halves_midway_and_ends_at_zero() {
        let c = LrSchedule::Cosine;
        assert_eq!(c.lr(0.1, 0, 0.0), 0.1);
        assert!((c.lr(0.1, 5, 0.5) - 0.05).abs() < 1e-15);
        assert!(c.lr(0.1, 9, 1.0).abs() < 1e-15);
        // Step 300 of 600 in epoch 2 of 10 is 25% of the way.
        let quarter = 0.1 * 0.5 * (1.0 + std::f64::consts::FRAC_PI_4.cos());
        assert!((c.lr_at(0.1, 2, 10, 300, 600) - quarter).abs() < 1e-15);
    }

    #[test]
    fn step_multiplies_every_n_epochs() {
        let s: LrSchedule = "step:3:0.5".parse().unwrap();
        let rates: Vec<f64> = (0..7).map(|e| s.lr_at(1.0, e, 7, 0, 10)).collect();
        assert_eq!(rates, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
        assert_eq!(LrSchedule::Constant.lr_at(0.3, 4, 5, 7, 10), 0.3);
    }

    #[test]
    fn parses_and_prints_alike_and_refuses_nonsense() {
        for s in ["constant", "cosine", "step:3:0.5", "step:1:1"] {
            assert_eq!(s.parse::<LrSchedule>().unwrap().to_string(), s);
        }
        for bad in [
            "linear",
            "step",
            "step:0:0.5",
            "step:3:0",
            "step:3:2",
            "step:x:0.5",
        ] {
            let e = bad.parse::<LrSchedule>().unwrap_err();
            assert!(e.contains("step:N:G"), "{bad}: {e}");
        }
        let json = serde_json::to_string(&LrSchedule::Step {
            every: 2,
            gamma: 0.1,
        })
        .unwrap();
        assert_eq!(json, "\"step:2:0.1\"");
        assert!(serde_json::from_str::<LrSchedule>("\"sometimes\"").is_err());
    }
}
