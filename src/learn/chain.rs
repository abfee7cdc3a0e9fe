//! Chapter 5, the net's `gradient()` made visible: one small batch of MNIST
//! through a MultiLayerNet (784-30-20-10, ReLU), layer by layer forward,
//! then `dout = 1` into SoftmaxWithLoss and back through every layer.
//!
//! The backward pass is not the cross-entropy formula turned inside out: it
//! is a walk. SoftmaxWithLoss hands back `(y - t) / N` (softmax minus the
//! one-hot labels, over the batch size), each Affine turns the `dout` it
//! receives into `dW = xᵀ · dout`, `db = Σ dout` and `dx = dout · Wᵀ` for the
//! layer before it, and each ReLU lets `dout` through where its input was
//! positive and stops it elsewhere. The input's own gradient is not needed
//! by anyone, so the first layer does not compute it. At the end, `W1`'s
//! gradient by this walk is compared with the numerical one.

use std::fmt::Write as _;

use anyhow::Result;

use super::computational_graph::{End, Graph};
use super::gradient_check::first_batch;
use super::{Options, Outcome};
use crate::experiments::{figure_and_csv, load_mnist};
use crate::gradcheck::max_relative_error;
use crate::layers::Labels;
use crate::nets::{MultiLayerNet, Network};
use crate::plot::{Anchor, Figure, Node};
use crate::tensor::Tensor;

/// The net of the lesson, in f64 for the comparison with numerical gradients.
pub fn net(seed: u64) -> Network<f64> {
    MultiLayerNet::new(784, &[30, 20], 10)
        .build(seed)
        .expect("784-30-20-10 builds")
}

/// One step of the walk.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// `Affine1`, `Relu1`, ..., `SoftmaxWithLoss`.
    pub layer: String,
    /// Shape of the forward output (the loss is a scalar: `[]`).
    pub output: Vec<usize>,
    /// Shape of the gradient it passes back to the layer before it (`None`:
    /// not computed, the first layer).
    pub dx: Option<Vec<usize>>,
    /// Its parameters' gradients: name and shape.
    pub grads: Vec<(String, Vec<usize>)>,
    /// Mean, standard deviation, smallest and largest value of the output.
    pub stats: [f64; 4],
    /// Fraction of exact zeros in the output.
    pub zeros: f64,
}

fn stats(v: &[f64]) -> ([f64; 4], f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let zeros = v.iter().filter(|&&x| x == 0.0).count() as f64 / n;
    ([mean, var.sqrt(), lo, hi], zeros)
}

/// What the walk found, forward and back.
pub struct Trace {
    pub steps: Vec<Step>,
    pub loss: f64,
    /// SoftmaxWithLoss's `dx`, checked to be `(softmax - one-hot) / N`.
    pub softmax_dx_error: f64,
    /// W1's gradient by backprop against the central difference.
    pub w1_max_abs_diff: f64,
    pub w1_max_relative_error: f64,
}

/// Runs the batch forward and back through `net`, recording every layer.
pub fn trace(net: &mut Network<f64>, x: &Tensor<f64>, t: &[usize]) -> Result<Trace> {
    let numerical = net.numerical_gradient(x, Labels::Index(t))?;
    let loss = net.loss(x, Labels::Index(t), true)?;
    net.backward(1.0);
    let mut counts = std::collections::HashMap::new();
    let mut steps = Vec::new();
    for (i, layer) in net.layers.iter().enumerate() {
        let k = counts.entry(layer.name()).or_insert(0);
        *k += 1;
        let (stats, zeros) = stats(layer.output().data());
        let grads = layer
            .params()
            .iter()
            .map(|p| (format!("d{}{k}", p.name), p.grad.shape().to_vec()))
            .collect();
        steps.push(Step {
            layer: format!("{}{k}", layer.name()),
            output: layer.output().shape().to_vec(),
            dx: (i > 0).then(|| layer.grad_input().shape().to_vec()),
            grads,
            stats,
            zeros,
        });
    }
    let y = net.last_layer.probabilities().clone();
    let dx = net.last_layer.backward(1.0).clone();
    let n = t.len() as f64;
    let classes = y.cols();
    let softmax_dx_error = dx
        .data()
        .iter()
        .enumerate()
        .map(|(k, &d)| {
            let one_hot = if t[k / classes] == k % classes {
                1.0
            } else {
                0.0
            };
            (d - (y.data()[k] - one_hot) / n).abs()
        })
        .fold(0.0, f64::max);
    let (ds, dz) = stats(dx.data());
    steps.push(Step {
        layer: "SoftmaxWithLoss".into(),
        output: Vec::new(),
        dx: Some(dx.shape().to_vec()),
        grads: Vec::new(),
        stats: ds,
        zeros: dz,
    });
    let w1 = net.params()[0].grad.clone();
    let w1_num = &numerical[0].1;
    let w1_max_abs_diff = w1
        .data()
        .iter()
        .zip(w1_num.data())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    Ok(Trace {
        steps,
        loss,
        softmax_dx_error,
        w1_max_abs_diff,
        w1_max_relative_error: max_relative_error(&w1, w1_num),
    })
}

fn shape(s: &[usize]) -> String {
    match s {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            s.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The chain as boxes, forward shapes above the arrows and the shapes of the
/// gradients flowing back below them.
fn chain_panel(trace: &Trace, input: &[usize]) -> crate::plot::Panel {
    let mut g = Graph::default();
    let gap = 150.0;
    let mut x = 40.0;
    g.text((x, 0.0), "x", Anchor::Left);
    let mut previous = End::Point(x, 0.0);
    let mut forward = shape(input);
    for step in &trace.steps {
        let half = 9.0 * step.layer.len() as f64 / 2.0 + 14.0;
        x += gap + half;
        let node = g.node(Node::boxed((x, 0.0), half, 22.0, step.layer.clone()));
        // The gradient flowing back along an edge is the dx of the layer it enters.
        let backward = step
            .dx
            .as_ref()
            .map_or("not needed".to_string(), |s| shape(s));
        g.edge(previous, End::Node(node), &forward, &backward);
        for (k, (name, s)) in step.grads.iter().enumerate() {
            let text = format!("{} {}", name, shape(s));
            let y = if k == 0 { 30.0 } else { -30.0 };
            let anchor = if k == 0 { Anchor::Above } else { Anchor::Below };
            g.text((x, y), &text, anchor);
        }
        previous = End::Node(node);
        forward = shape(&step.output);
        x += half;
    }
    x += gap;
    g.edge(
        previous,
        End::Point(x, 0.0),
        &format!("L = {:.4}", trace.loss),
        "dout = 1",
    );
    g.text((x, 0.0), "L", Anchor::Right);
    g.panel("forward: output shapes above the arrows; backward: the gradients' shapes below (red); each Affine's dW above it, db below")
        .x_range(0.0..x + 30.0)
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let split = load_mnist(opts)?;
    let (x, t) = first_batch(&split.train, 3);
    let mut net = net(opts.seed);
    let trace = trace(&mut net, &x, &t)?;
    let mut table = String::new();
    let mut line = |s: String| writeln!(table, "{s}").expect("writing to a String");
    line(format!(
        "forward: x_train[:3] {} (labels {t:?}) through MultiLayerNet 784-30-20-10",
        shape(x.shape())
    ));
    let (input_stats, _) = stats(x.data());
    line(format!(
        "  {:<16} {:<10} mean {:>8.4} std {:>7.4} min {:>8.4} max {:>7.4}",
        "x",
        shape(x.shape()),
        input_stats[0],
        input_stats[1],
        input_stats[2],
        input_stats[3]
    ));
    let layers = &trace.steps[..trace.steps.len() - 1];
    for s in layers {
        let [mean, std, lo, hi] = s.stats;
        let zeros = if s.layer.starts_with("Relu") {
            format!("  ({:.0}% zeros)", 100.0 * s.zeros)
        } else {
            String::new()
        };
        line(format!(
            "  {:<16} {:<10} mean {mean:>8.4} std {std:>7.4} min {lo:>8.4} max {hi:>7.4}{zeros}",
            s.layer,
            shape(&s.output)
        ));
    }
    line(format!(
        "  {:<16} loss {:.6}",
        "SoftmaxWithLoss", trace.loss
    ));
    line("backward: dout = 1 into SoftmaxWithLoss, then every layer in reverse".into());
    let softmax = trace.steps.last().expect("SoftmaxWithLoss is recorded");
    line(format!(
        "  {:<16} dx {:<10} = (softmax - one-hot) / 3 (to {:.1e})",
        softmax.layer,
        shape(softmax.dx.as_deref().unwrap_or(&[])),
        trace.softmax_dx_error
    ));
    for s in layers.iter().rev() {
        let dx = match &s.dx {
            Some(d) => format!("dx {}", shape(d)),
            None => "dx not computed (nothing needs the input's gradient)".into(),
        };
        let grads: Vec<String> = s
            .grads
            .iter()
            .map(|(n, sh)| format!("{n} {}", shape(sh)))
            .collect();
        let grads = if grads.is_empty() {
            String::new()
        } else {
            format!(", {}", grads.join(", "))
        };
        line(format!("  {:<16} {dx}{grads}", s.layer));
    }
    line(format!(
        "W1 by backprop vs numerically: largest |difference| {:.2e}, largest relative error {:.2e}",
        trace.w1_max_abs_diff, trace.w1_max_relative_error
    ));
    let figure = Figure::new(vec![chain_panel(&trace, x.shape())], 1).panel_size(1700, 260);
    let rows: Vec<String> = trace
        .steps
        .iter()
        .map(|s| {
            let [mean, std, lo, hi] = s.stats;
            format!(
                "{},{},{mean},{std},{lo},{hi}",
                s.layer,
                shape(&s.output).replace(", ", "x")
            )
        })
        .collect();
    figure_and_csv(
        &figure,
        opts,
        "chain",
        "layer,output,mean,std,min,max",
        &rows,
        table,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;
    use crate::gradcheck::random_tensor;
    use crate::learn::{Lesson, tests::run_quick};

    #[test]
    fn the_walk_visits_every_layer_with_the_right_shapes() {
        // Any batch shows the shapes; random inputs keep the test offline.
        let x = random_tensor(&[3, 784], 1.0, 1);
        let mut net = net(1);
        let trace = trace(&mut net, &x, &[5, 0, 4]).unwrap();
        let names: Vec<&str> = trace.steps.iter().map(|s| s.layer.as_str()).collect();
        assert_eq!(
            names,
            [
                "Affine1",
                "Relu1",
                "Affine2",
                "Relu2",
                "Affine3",
                "SoftmaxWithLoss"
            ]
        );
        let outputs: Vec<&[usize]> = trace.steps.iter().map(|s| s.output.as_slice()).collect();
        assert_eq!(
            outputs,
            [&[3, 30][..], &[3, 30], &[3, 20], &[3, 20], &[3, 10], &[]]
        );
        assert_eq!(trace.steps[0].dx, None);
        assert_eq!(trace.steps[2].dx, Some(vec![3, 30]));
        assert_eq!(
            trace.steps[0].grads,
            [("dW1".into(), vec![784, 30]), ("db1".into(), vec![30])]
        );
        assert_eq!(trace.steps[5].dx, Some(vec![3, 10]));
        assert!(trace.softmax_dx_error < 1e-15);
        assert!(
            trace.w1_max_relative_error < 1e-6,
            "{}",
            trace.w1_max_relative_error
        );
    }

    #[test]
    fn the_lesson_on_mnist() {
        let dir = TempDir::new("learn-chain");
        let outcome = run_quick(Lesson::Chain, dir.path());
        assert!(
            outcome.table.contains("(labels [5, 0, 4])"),
            "{}",
            outcome.table
        );
        assert!(
            outcome.table.contains("Affine1          dx not computed"),
            "{}",
            outcome.table
        );
    }
}
