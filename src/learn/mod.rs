//! The textbook's chapters 2 to 5, and the two chapter-6 pictures that
//! explain them, one lesson each: `backprop learn NAME`. Each prints the
//! numbers the book prints (to its digits) and draws its figure as PNG and
//! SVG, with the library's own layers, nets, optimizers and numerical
//! gradient doing the work, so what a learner sees is what the library does.
//!
//! | lesson | chapter | the book's script |
//! |---|---|---|
//! | `perceptron` | 2 | `and_gate.py`, `nand_gate.py`, `or_gate.py`, `xor_gate.py` |
//! | `activations` | 3 | `sig_step_compare.py`, `relu.py`; the three-layer net and softmax of §3.4-3.5 |
//! | `numerical-diff` | 4 | `gradient_1d.py` |
//! | `gradient-field` | 4 | `gradient_2d.py` |
//! | `gradient-descent` | 4 | `gradient_method.py` |
//! | `computational-graph` | 5 | `layer_naive.py`, `buy_apple.py`, `buy_apple_orange.py` |
//! | `gradient-check` | 5 | `gradient_check.py` (MNIST) |
//! | `chain` | 5 | `two_layer_net.py`'s `gradient()`, layer by layer (MNIST) |
//! | `optimizer-paths` | 6 | `optimizer_compare_naive.py` |
//! | `why-relu` | 3, 6 | none: the spiral with and without an activation |
//!
//! Lessons take the experiments' [`Options`] and return their [`Outcome`]:
//! the printed text and the files written (figure and CSV).
//!
//! ```no_run
//! use backprop::experiments::Options;
//! use backprop::learn::{self, Lesson};
//! let outcome = learn::run(Lesson::GradientField, &Options::new("runs/field".into())).unwrap();
//! print!("{}", outcome.table);
//! ```

pub mod activations;
pub mod chain;
pub mod computational_graph;
pub mod gradient_check;
pub mod gradient_descent;
pub mod gradient_field;
pub mod numerical_diff;
pub mod numpy;
pub mod optimizer_paths;
pub mod perceptron;
pub mod why_relu;

use std::fs;

use anyhow::{Context, Result};

pub use crate::experiments::{Options, Outcome};
pub use computational_graph::{AddLayer, MulLayer};

/// The lessons, named as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lesson {
    /// Ch. 2: AND, NAND, OR as perceptrons, XOR from two layers of them.
    Perceptron,
    /// Ch. 3: step, sigmoid, tanh, ReLU; the three-layer net's forward pass; softmax.
    Activations,
    /// Ch. 4: the central difference of 0.01x^2 + 0.1x at 5 and 10, with tangent lines.
    NumericalDiff,
    /// Ch. 4: gradients of x0^2 + x1^2, and minus the gradient as arrows over contour lines.
    GradientField,
    /// Ch. 4: gradient descent from (-3, 4) with learning rates 0.1, 10 and 1e-10.
    GradientDescent,
    /// Ch. 5: MulLayer and AddLayer forward and back: the apple and orange examples.
    ComputationalGraph,
    /// Ch. 5: TwoLayerNet's backprop against numerical gradients on 3 MNIST images.
    GradientCheck,
    /// Ch. 5: one batch forward through a MultiLayerNet and dout = 1 back, layer by layer.
    Chain,
    /// Ch. 6: SGD, Momentum, AdaGrad, Adam (and Nesterov, RMSprop, AdamW) on x^2/20 + y^2.
    OptimizerPaths,
    /// The spiral trained with Affine layers only and with ReLU: decision regions.
    WhyRelu,
}

impl Lesson {
    pub const ALL: [Lesson; 10] = [
        Lesson::Perceptron,
        Lesson::Activations,
        Lesson::NumericalDiff,
        Lesson::GradientField,
        Lesson::GradientDescent,
        Lesson::ComputationalGraph,
        Lesson::GradientCheck,
        Lesson::Chain,
        Lesson::OptimizerPaths,
        Lesson::WhyRelu,
    ];

    /// The command-line name, also the stem of the files written.
    pub fn name(self) -> &'static str {
        match self {
            Lesson::Perceptron => "perceptron",
            Lesson::Activations => "activations",
            Lesson::NumericalDiff => "numerical-diff",
            Lesson::GradientField => "gradient-field",
            Lesson::GradientDescent => "gradient-descent",
            Lesson::ComputationalGraph => "computational-graph",
            Lesson::GradientCheck => "gradient-check",
            Lesson::Chain => "chain",
            Lesson::OptimizerPaths => "optimizer-paths",
            Lesson::WhyRelu => "why-relu",
        }
    }
}

/// Runs one lesson and writes its files into `opts.out`.
pub fn run(lesson: Lesson, opts: &Options) -> Result<Outcome> {
    fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create output folder {}", opts.out.display()))?;
    match lesson {
        Lesson::Perceptron => perceptron::run(opts),
        Lesson::Activations => activations::run(opts),
        Lesson::NumericalDiff => numerical_diff::run(opts),
        Lesson::GradientField => gradient_field::run(opts),
        Lesson::GradientDescent => gradient_descent::run(opts),
        Lesson::ComputationalGraph => computational_graph::run(opts),
        Lesson::GradientCheck => gradient_check::run(opts),
        Lesson::Chain => chain::run(opts),
        Lesson::OptimizerPaths => optimizer_paths::run(opts),
        Lesson::WhyRelu => why_relu::run(opts),
    }
}

/// `n + 1` evenly spaced points from `a` to `b`, both included.
fn linspace(a: f64, b: f64, n: usize) -> impl Iterator<Item = f64> {
    (0..=n).map(move |i| a + (b - a) * i as f64 / n as f64)
}

#[cfg(test)]
mod tests {
    //! Every lesson end to end into a temporary folder (the MNIST ones on the
    //! files of `BACKPROP_DATA`, else of the built-in sample): its figure
    //! decodes at the figure's size and its text is not empty. The numbers
    //! are checked in each lesson's file.
    use super::*;
    use crate::plot::tests::{assert_svg, png_size};

    pub(super) fn options(dir: &std::path::Path) -> Options {
        let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist-sample");
        Options {
            data_dir: std::env::var_os("BACKPROP_DATA")
                .is_none()
                .then_some(sample),
            out: dir.to_path_buf(),
            quick: true,
            seed: 42,
            threads: 2,
            progress: false,
        }
    }

    /// Runs `lesson` quick and checks its files.
    pub(super) fn run_quick(lesson: Lesson, dir: &std::path::Path) -> Outcome {
        let outcome = run(lesson, &options(dir)).unwrap();
        let png = dir.join(format!("{}.png", lesson.name()));
        let svg = dir.join(format!("{}.svg", lesson.name()));
        assert!(
            outcome.files.contains(&png) && outcome.files.contains(&svg),
            "{:?}",
            outcome.files
        );
        let size = png_size(&png);
        assert!(size.0 > 300 && size.1 > 200, "{size:?}");
        assert_svg(&svg, size);
        assert!(!outcome.table.is_empty());
        outcome
    }

    #[test]
    fn names_match_the_command_line() {
        use clap::ValueEnum;
        for l in Lesson::ALL {
            assert_eq!(Lesson::from_str(l.name(), false), Ok(l));
        }
    }
}
