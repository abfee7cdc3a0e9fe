//! Evaluation of a trained net on a test set: accuracy, per-class precision
//! and recall, and the confusion matrix (printed, as JSON, and drawn).
//!
//! For class `k`: precision = `C[k][k] / Σ_i C[i][k]` (of the examples predicted
//! `k`, the share that are `k`), recall = `C[k][k] / Σ_j C[k][j]` (of the
//! examples that are `k`, the share found), where `C[true][predicted]` counts.
//!
//! ```
//! use backprop::eval::Evaluation;
//! let names = ["cat".to_string(), "dog".to_string()];
//! let e = Evaluation::new(&names, &[0, 0, 1, 1], &[0, 1, 1, 1]);
//! assert_eq!(e.accuracy(), 0.75);
//! assert_eq!(e.confusion, vec![vec![1, 1], vec![0, 2]]);
//! assert_eq!((e.precision(1), e.recall(1)), (2.0 / 3.0, 1.0));
//! ```

#[cfg(feature = "plots")]
mod confusion_png;
mod precision;

#[cfg(feature = "plots")]
pub use confusion_png::{draw_confusion, render_confusion};
pub use precision::{F16Comparison, F16Rounding, Precision, compare_f16, round_to_f16};

use std::fmt::Write;

use serde_json::json;

use crate::data::Dataset;
use crate::nets::{InputError, Network};
use crate::tensor::{Float, Tensor};

/// Predictions against labels, summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The classes' names, in label order.
    pub class_names: Vec<String>,
    /// `confusion[true][predicted]`: how many examples.
    pub confusion: Vec<Vec<usize>>,
    pub predictions: Vec<usize>,
}

impl Evaluation {
    pub fn new(class_names: &[String], labels: &[usize], predictions: &[usize]) -> Self {
        let classes = class_names.len();
        let mut confusion = vec![vec![0; classes]; classes];
        for (&t, &p) in labels.iter().zip(predictions) {
            confusion[t][p] += 1;
        }
        Evaluation {
            class_names: class_names.to_vec(),
            confusion,
            predictions: predictions.to_vec(),
        }
    }

    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    pub fn examples(&self) -> usize {
        self.predictions.len()
    }

    pub fn correct(&self) -> usize {
        (0..self.classes()).map(|k| self.confusion[k][k]).sum()
    }

    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.examples().max(1) as f64
    }

    /// Examples whose true class is `k`.
    pub fn support(&self, k: usize) -> usize {
        self.confusion[k].iter().sum()
    }

    /// 0 when nothing was predicted as `k` (no claim was made, none was right).
    pub fn precision(&self, k: usize) -> f64 {
        let predicted: usize = self.confusion.iter().map(|row| row[k]).sum();
        self.confusion[k][k] as f64 / predicted.max(1) as f64
    }

    /// 0 when no example is of class `k`.
    pub fn recall(&self, k: usize) -> f64 {
        self.confusion[k][k] as f64 / self.support(k).max(1) as f64
    }

    /// The per-class table and the confusion matrix, for a terminal. Rows
    /// are named; the matrix's columns are numbered as its rows (names would
    /// not fit), and when the names are the numbers they show once.
    pub fn report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "accuracy {:.4} ({}/{})\n",
            self.accuracy(),
            self.correct(),
            self.examples()
        );
        let numbered = self
            .class_names
            .iter()
            .enumerate()
            .all(|(k, n)| *n == k.to_string());
        let label = |k: usize| {
            if numbered {
                k.to_string()
            } else {
                format!("{k} {}", self.class_names[k])
            }
        };
        let name_width = (0..self.classes())
            .map(|k| label(k).chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        let _ = writeln!(s, "{:<name_width$}  precision  recall  support", "class");
        for k in 0..self.classes() {
            let _ = writeln!(
                s,
                "{:<name_width$}  {:>9.4}  {:>6.4}  {:>7}",
                label(k),
                self.precision(k),
                self.recall(k),
                self.support(k)
            );
        }
        let width = self
            .confusion
            .iter()
            .flatten()
            .max()
            .map_or(1, |m| m.to_string().len())
            .max(self.classes().to_string().len())
            + 1;
        let _ = writeln!(
            s,
            "\nconfusion matrix (rows: true class, columns: predicted class, numbered as the rows)"
        );
        let _ = write!(s, "{:<name_width$}", "");
        for k in 0..self.classes() {
            let _ = write!(s, "{k:>width$}");
        }
        s.push('\n');
        for (t, row) in self.confusion.iter().enumerate() {
            let _ = write!(s, "{:<name_width$}", label(t));
            for n in row {
                let _ = write!(s, "{n:>width$}");
            }
            s.push('\n');
        }
        s
    }

    pub fn to_json(&self) -> serde_json::Value {
        let per_class: Vec<_> = (0..self.classes())
            .map(|k| {
                json!({
                    "class": k,
                    "name": self.class_names[k],
                    "precision": self.precision(k),
                    "recall": self.recall(k),
                    "support": self.support(k),
                })
            })
            .collect();
        json!({
            "examples": self.examples(),
            "accuracy": self.accuracy(),
            "classes": self.class_names,
            "per_class": per_class,
            "confusion": self.confusion,
            "predictions": self.predictions,
        })
    }
}

/// Examples per forward pass.
const BATCH: usize = 500;

/// The predicted class of each of the first `limit` examples of `data`, or
/// why the data does not fit the net.
pub fn predict_classes<T: Float>(
    net: &mut Network<T>,
    data: &Dataset,
    limit: usize,
) -> Result<Vec<usize>, InputError> {
    net.check_input(&data.shape)?;
    let n = limit.min(data.len());
    let [c, h, w] = data.shape;
    let mut x = Tensor::default();
    let mut t = Vec::new();
    let mut out = Vec::with_capacity(n);
    let indices: Vec<usize> = (0..n).collect();
    for batch in indices.chunks(BATCH) {
        x.resize(&[batch.len(), c, h, w]);
        t.resize(batch.len(), 0);
        data.gather(batch, x.data_mut(), &mut t);
        out.extend(net.forward(&x, false).argmax_rows());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        // 3 classes: true 0,0,0,1,1,2 predicted 0,1,0,1,1,0.
        let names = crate::data::numbered_classes(3);
        let e = Evaluation::new(&names, &[0, 0, 0, 1, 1, 2], &[0, 1, 0, 1, 1, 0]);
        assert_eq!(e.confusion, [[2, 1, 0], [0, 2, 0], [1, 0, 0]]);
        assert_eq!(e.correct(), 4);
        assert!((e.precision(0) - 2.0 / 3.0).abs() < 1e-12);
        assert!((e.recall(0) - 2.0 / 3.0).abs() < 1e-12);
        assert!((e.precision(1) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(e.recall(1), 1.0);
        // Class 2 is never predicted and never found: both 0, not NaN.
        assert_eq!((e.precision(2), e.recall(2)), (0.0, 0.0));
        let j = e.to_json();
        assert_eq!(j["per_class"][1]["support"], 2);
        assert_eq!(j["predictions"][1], 1);
    }

    #[test]
    fn report_lists_every_class_and_the_matrix() {
        let e = Evaluation::new(&crate::data::numbered_classes(2), &[0, 1, 1], &[0, 1, 0]);
        let r = e.report();
        assert!(r.contains("accuracy 0.6667 (2/3)"), "{r}");
        assert!(r.contains("1         1.0000  0.5000        2"), "{r}");
        assert!(r.contains("\n1     1 1\n"), "{r}");
        // Named classes: the rows say both.
        let names = ["Ankle boot".to_string(), "T-shirt/top".to_string()];
        let r = Evaluation::new(&names, &[0, 1, 1], &[0, 1, 0]).report();
        assert!(
            r.contains("1 T-shirt/top     1.0000  0.5000        2"),
            "{r}"
        );
        assert!(r.contains("\n0 Ankle boot  1 0\n"), "{r}");
    }
}
