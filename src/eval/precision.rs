//! Half-precision inference, as the textbook's `half_float_network.py` tries
//! it: the weights are stored in f16 and accuracy barely changes.
//!
//! What is f16 here: every parameter (W, b, BatchNorm's gamma and beta) and
//! every buffer (BatchNorm's running mean and variance) is rounded to the
//! nearest IEEE 754 binary16 value (`half::f16`, round to nearest even) and
//! widened back, so the net computes with exactly the values an f16 file would
//! hold. What stays f32: the inputs, every activation, and the sums inside
//! the matrix products. This measures what storing the model in f16 costs,
//! not f16 arithmetic (which this CPU's GEMM does not offer).
//!
//! ```
//! use backprop::eval::round_to_f16;
//! use backprop::nets::MultiLayerNet;
//! let mut net = MultiLayerNet::new(4, &[3], 2).build::<f32>(0).unwrap();
//! let rounding = round_to_f16(&mut net);
//! assert_eq!(rounding.values, net.parameter_count());
//! let w = net.params()[0].value.data()[0];
//! assert_eq!(half::f16::from_f32(w).to_f32(), w);
//! ```

use std::fmt;
use std::str::FromStr;

use half::f16;

use super::{Evaluation, predict_classes};
use crate::data::Dataset;
use crate::nets::{InputError, Network};
use crate::tensor::{Float, Tensor};

/// The precision the weights are stored in for `eval`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// As trained and saved.
    #[default]
    F32,
    /// Rounded to half precision (see the module documentation).
    F16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            _ => Err(format!("unknown precision '{s}': use f32 or f16")),
        }
    }
}

/// What rounding a net to f16 did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct F16Rounding {
    /// Values rounded (parameters and buffers).
    pub values: usize,
    /// The largest `|w - f16(w)|`.
    pub max_abs_change: f64,
    /// Finite values beyond f16's range (±65504) that became infinite.
    pub overflowed: usize,
}

/// Rounds every parameter and buffer of `net` to f16 and back, in place.
pub fn round_to_f16<T: Float>(net: &mut Network<T>) -> F16Rounding {
    let mut r = F16Rounding::default();
    let mut round = |t: &mut Tensor<T>| {
        for v in t.data_mut() {
            let before = v.as_f64();
            let after = f16::from_f64(before).to_f64();
            if before.is_finite() && !after.is_finite() {
                r.overflowed += 1;
            } else if before.is_finite() {
                r.max_abs_change = r.max_abs_change.max((after - before).abs());
            }
            *v = T::of(after);
            r.values += 1;
        }
    };
    for layer in &mut net.layers {
        for p in layer.params_mut() {
            round(p.value);
        }
        for (_, b) in layer.buffers_mut() {
            round(b);
        }
    }
    r
}

/// A net's predictions with its weights as saved and rounded to f16, as
/// `eval --precision f16` and `export --precision f16` report them.
#[derive(Clone, Debug, PartialEq)]
pub struct F16Comparison {
    pub f32: Evaluation,
    pub f16: Evaluation,
    pub rounding: F16Rounding,
    /// Examples whose predicted class changed.
    pub changed: usize,
}

/// Predicts the first `limit` examples of `data` with `net` as it is, then
/// rounds its weights to f16 ([`round_to_f16`], in place) and predicts them
/// again.
pub fn compare_f16<T: Float>(
    net: &mut Network<T>,
    data: &Dataset,
    limit: usize,
) -> Result<F16Comparison, InputError> {
    let n = limit.min(data.len());
    let labels: Vec<usize> = data.labels[..n].iter().map(|&l| usize::from(l)).collect();
    let before = predict_classes(net, data, n)?;
    let rounding = round_to_f16(net);
    let after = predict_classes(net, data, n)?;
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    Ok(F16Comparison {
        f32: Evaluation::new(&data.class_names, &labels, &before),
        f16: Evaluation::new(&data.class_names, &labels, &after),
        rounding,
        changed,
    })
}

impl fmt::Display for F16Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.f16.examples();
        write!(
            f,
            "f16 weights: accuracy {:.4} ({}/{n}); f32 weights: {:.4} ({}/{n}); {} of {n} predictions changed\n\
             ({} parameters and buffers rounded to f16, largest change {:.2e}; inputs and activations stay f32)",
            self.f16.accuracy(),
            self.f16.correct(),
            self.f32.accuracy(),
            self.f32.correct(),
            self.changed,
            self.rounding.values,
            self.rounding.max_abs_change
        )?;
        if self.rounding.overflowed > 0 {
            write!(
                f,
                "\nwarning: {} weights exceed f16's range (65504) and became infinite",
                self.rounding.overflowed
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::MultiLayerNet;

    #[test]
    fn parameters_and_buffers_land_on_f16_values() {
        let mut net = MultiLayerNet::new(3, &[4], 2)
            .batchnorm(true)
            .build::<f64>(3)
            .unwrap();
        let buffers: usize = net
            .layers
            .iter()
            .flat_map(|l| l.buffers())
            .map(|(_, t)| t.len())
            .sum();
        assert!(buffers > 0, "the net has BatchNorm's running statistics");
        // f16 keeps 10 fraction bits: 1 + 2^-12 lies a quarter of the way
        // from 1 to the next f16 value, 1 + 2^-10, so it rounds to 1; 1e5 is
        // beyond f16's largest finite value, 65504.
        net.params_mut()[0].value.data_mut()[0] = 1.0 + 2f64.powi(-12);
        net.params_mut()[0].value.data_mut()[1] = 1e5;
        let largest_finite = net
            .params()
            .iter()
            .flat_map(|p| p.value.data())
            .filter(|v| v.abs() < 65504.0)
            .fold(1.0f64, |m, v| m.max(v.abs()));
        let r = round_to_f16(&mut net);
        assert_eq!(r.values, net.parameter_count() + buffers);
        assert_eq!(r.overflowed, 1);
        // At least the planted change; at most half a step of f16 (2^-11
        // relative) at the largest weight.
        let bound = largest_finite * 2f64.powi(-11);
        assert!(
            r.max_abs_change >= 2f64.powi(-12) && r.max_abs_change <= bound,
            "{r:?}"
        );
        assert_eq!(net.params()[0].value.data()[0], 1.0);
        assert_eq!(net.params()[0].value.data()[1], f64::INFINITY);
        for layer in &net.layers {
            let values = layer
                .params()
                .into_iter()
                .map(|p| p.value)
                .chain(layer.buffers().into_iter().map(|(_, t)| t));
            for t in values {
                for &v in t.data() {
                    assert_eq!(f16::from_f64(v).to_f64(), v);
                }
            }
        }
    }

    #[test]
    fn precision_names() {
        assert_eq!("F16".parse::<Precision>(), Ok(Precision::F16));
        assert_eq!(Precision::default().to_string(), "f32");
        assert!(
            "bf16"
                .parse::<Precision>()
                .unwrap_err()
                .contains("f32 or f16")
        );
    }
}
