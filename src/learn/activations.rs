//! Chapter 3: activation functions and the forward pass.
//!
//! The step function answers 0 or 1 (a perceptron); sigmoid
//! `1 / (1 + exp(-x))` is its smooth version, tanh the same shape from -1
//! to 1, and ReLU `max(0, x)` passes positives through. Each is drawn here
//! by the library's own layer (`Sigmoid`, `Tanh`, `Relu`) run forward.
//!
//! The book's three-layer net (§3.4.3, `init_network()` and `forward()`) is
//! two inputs, hidden layers of 3 and 2 sigmoid units and an identity output:
//! as a [`Network`] it is `Affine - Sigmoid - Affine - Sigmoid - Affine`, and
//! `predict` of `x = [1.0, 0.5]` is the book's `[0.31682708 0.69627909]`.
//!
//! ```
//! use backprop::learn::activations::{init_network, softmax};
//! use backprop::learn::numpy::array_str;
//! use backprop::tensor::Tensor;
//! let mut net = init_network();
//! let x = Tensor::from_vec(&[1, 2], vec![1.0, 0.5]).unwrap();
//! assert_eq!(array_str(net.predict(&x, false).unwrap().data()), "[0.31682708 0.69627909]");
//! assert_eq!(array_str(&softmax(&[0.3, 2.9, 4.0])), "[0.01821127 0.24519181 0.73659691]");
//! ```

use std::fmt::Write as _;

use anyhow::Result;

use super::numpy::{array_str, int_array_str, short};
use super::{Options, Outcome, linspace};
use crate::experiments::figure_and_csv;
use crate::layers::{Affine, Labels, Layer, Relu, Sigmoid, SoftmaxWithLoss, Tanh};
use crate::nets::Network;
use crate::plot::{Anchor, Arrows, Corner, Figure, GREY, Label, Mark, Node, Panel, Series};
use crate::tensor::Tensor;

/// `step_function.py`: 1 where `x > 0`, else 0.
pub fn step_function(x: &[f64]) -> Vec<i64> {
    x.iter().map(|&v| i64::from(v > 0.0)).collect()
}

/// A layer's forward pass over the values `x` (a batch of one row).
pub fn apply(layer: &mut dyn Layer<f64>, x: &[f64]) -> Vec<f64> {
    let x = Tensor::from_vec(&[1, x.len()], x.to_vec()).expect("one row");
    layer.forward(&x, false).data().to_vec()
}

/// The book's `init_network()` as a [`Network`] of the library's layers:
/// `W1` (2x3), `b1`, `W2` (3x2), `b2`, `W3` (2x2), `b3`, with Sigmoid after
/// the first two Affine layers and the identity after the last.
pub fn init_network() -> Network<f64> {
    let t = |shape: &[usize], v: &[f64]| Tensor::from_vec(shape, v.to_vec()).expect("fits");
    let layers: Vec<Box<dyn Layer<f64>>> = vec![
        Box::new(Affine::from_params(
            t(&[2, 3], &[0.1, 0.3, 0.5, 0.2, 0.4, 0.6]),
            t(&[3], &[0.1, 0.2, 0.3]),
        )),
        Box::new(Sigmoid::new()),
        Box::new(Affine::from_params(
            t(&[3, 2], &[0.1, 0.4, 0.2, 0.5, 0.3, 0.6]),
            t(&[2], &[0.1, 0.2]),
        )),
        Box::new(Sigmoid::new()),
        Box::new(Affine::from_params(
            t(&[2, 2], &[0.1, 0.3, 0.2, 0.4]),
            t(&[2], &[0.1, 0.2]),
        )),
    ];
    Network::new(layers, 0.0)
}

/// Softmax, as the library's SoftmaxWithLoss computes it (shifted by the
/// maximum, so large scores do not overflow).
pub fn softmax(a: &[f64]) -> Vec<f64> {
    let mut layer = SoftmaxWithLoss::new();
    let x = Tensor::from_vec(&[1, a.len()], a.to_vec()).expect("one row");
    // The label only enters the loss, not the probabilities.
    layer.forward(&x, Labels::Index(&[0]));
    layer.probabilities().data().to_vec()
}

/// The three-layer net drawn as units and connections, each unit showing
/// its value for `x = [1.0, 0.5]`.
fn network_panel(net: &mut Network<f64>) -> Panel {
    let x = Tensor::from_vec(&[1, 2], vec![1.0, 0.5]).expect("one row");
    net.predict(&x, false)
        .expect("the book's net takes two inputs");
    let mut columns = vec![vec![1.0, 0.5]];
    // The outputs of the Sigmoid layers and of the last Affine layer.
    for i in [1, 3, 4] {
        columns.push(net.layers[i].output().data().to_vec());
    }
    let names = ["x", "z1 = σ(a1)", "z2 = σ(a2)", "y = a3"];
    let radius = 0.5;
    let place = |c: usize, k: usize, n: usize| {
        (
            c as f64 * 3.0,
            (n as f64 - 1.0) / 2.0 * 1.4 - k as f64 * 1.4,
        )
    };
    let mut marks = Vec::new();
    for c in 0..columns.len() - 1 {
        let (n, m) = (columns[c].len(), columns[c + 1].len());
        for k in 0..n {
            for j in 0..m {
                let from = Node::circle(place(c, k, n), radius, "");
                let to = Node::circle(place(c + 1, j, m), radius, "");
                let arrow = [from.boundary_towards(to.at), to.boundary_towards(from.at)];
                marks.push(Mark::Arrows(Arrows::new(vec![arrow], GREY).head(6.0)));
            }
        }
    }
    for (c, values) in columns.iter().enumerate() {
        let n = values.len();
        for (k, &v) in values.iter().enumerate() {
            marks.push(Mark::Node(Node::circle(
                place(c, k, n),
                radius,
                format!("{v:.3}"),
            )));
        }
        let top = place(c, 0, 3);
        marks.push(Mark::Text(Label::new(
            (top.0, top.1 + radius + 0.2),
            names[c],
            Anchor::Above,
        )));
    }
    Panel::marks(
        "the three-layer net of §3.4 on x = (1.0, 0.5)",
        "",
        "",
        marks,
    )
    .no_axes()
    .equal_aspect()
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let xs: Vec<f64> = linspace(-5.0, 5.0, 1000).collect();
    let sigmoid = apply(&mut Sigmoid::new(), &xs);
    let tanh = apply(&mut Tanh::new(), &xs);
    let relu = apply(&mut Relu::new(), &xs);
    let zip = |ys: &[f64]| {
        xs.iter()
            .copied()
            .zip(ys.iter().copied())
            .collect::<Vec<_>>()
    };
    // The jump at 0 drawn upright.
    let step = vec![(-5.0, 0.0), (0.0, 0.0), (0.0, 1.0), (5.0, 1.0)];
    let functions = Panel::lines(
        "activation functions (the library's Sigmoid, Tanh, Relu layers)",
        "x",
        "y",
        vec![
            Series::new("step", step).dashed(),
            Series::new("sigmoid", zip(&sigmoid)),
            Series::new("tanh", zip(&tanh)),
            Series::new("ReLU", zip(&relu)),
        ],
    )
    .x_range(-5.0..5.0)
    .y_range(-1.1..2.0)
    .legend_corner(Corner::UpperLeft);

    let mut net = init_network();
    let x = Tensor::from_vec(&[1, 2], vec![1.0, 0.5]).expect("one row");
    let y = net.predict(&x, false)?.data().to_vec();
    let a = [0.3, 2.9, 4.0];
    let p = softmax(&a);
    let probe = [-1.0, 1.0, 2.0];
    let mut table = String::new();
    let mut line = |s: String| writeln!(table, "{s}").expect("writing to a String");
    line(format!(
        "step_function(np.array([-1.0, 1.0, 2.0])) = {}",
        int_array_str(&step_function(&probe))
    ));
    line(format!(
        "sigmoid(np.array([-1.0, 1.0, 2.0])) = {}",
        array_str(&apply(&mut Sigmoid::new(), &probe))
    ));
    line("three-layer net (init_network, forward) on x = [1.0 0.5]:".into());
    for (i, name) in [(0, "a1"), (1, "z1"), (2, "a2"), (3, "z2")] {
        line(format!(
            "  {name} = {}",
            array_str(net.layers[i].output().data())
        ));
    }
    line(format!("  y = {}", array_str(&y)));
    line(format!(
        "softmax(np.array([0.3, 2.9, 4.0])) = {}",
        array_str(&p)
    ));
    line(format!("np.sum(y) = {}", short(p.iter().sum())));

    let figure = Figure::new(vec![functions, network_panel(&mut net)], 2).panel_size(620, 440);
    let rows: Vec<String> = xs
        .iter()
        .enumerate()
        .step_by(10)
        .map(|(i, &x)| {
            format!(
                "{x},{},{},{},{}",
                u8::from(x > 0.0),
                sigmoid[i],
                tanh[i],
                relu[i]
            )
        })
        .collect();
    figure_and_csv(
        &figure,
        opts,
        "activations",
        "x,step,sigmoid,tanh,relu",
        &rows,
        table,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;
    use crate::learn::{Lesson, tests::run_quick};

    #[test]
    fn the_books_numbers() {
        let probe = [-1.0, 1.0, 2.0];
        assert_eq!(int_array_str(&step_function(&probe)), "[0 1 1]");
        assert_eq!(
            array_str(&apply(&mut Sigmoid::new(), &probe)),
            "[0.26894142 0.73105858 0.88079708]"
        );
        let mut net = init_network();
        let x = Tensor::from_vec(&[1, 2], vec![1.0, 0.5]).unwrap();
        let y = net.predict(&x, false).unwrap().data().to_vec();
        assert_eq!(array_str(&y), "[0.31682708 0.69627909]");
        assert_eq!(
            array_str(&softmax(&[0.3, 2.9, 4.0])),
            "[0.01821127 0.24519181 0.73659691]"
        );
        // Softmax does not change with a shift, and survives the book's
        // overflow example [1010, 1000, 990].
        let big = softmax(&[1010.0, 1000.0, 990.0]);
        assert_eq!(
            array_str(&big),
            "[9.99954600e-01 4.53978686e-05 2.06106005e-09]"
        );
    }

    #[test]
    fn the_lesson_prints_and_draws() {
        let dir = TempDir::new("learn-activations");
        let outcome = run_quick(Lesson::Activations, dir.path());
        assert!(
            outcome.table.contains("  y = [0.31682708 0.69627909]\n"),
            "{}",
            outcome.table
        );
        assert!(
            outcome.table.contains("np.sum(y) = 1\n"),
            "{}",
            outcome.table
        );
    }
}
