//! Chapter 6, `optimizer_compare_naive.py`: the library's optimizers on
//! `f(x, y) = x²/20 + y²` from `(-7, 2)`, 30 updates each, drawn as paths
//! over the contour lines. The bowl is twenty times flatter along x than
//! along y, so the gradient points mostly across the valley: SGD (lr 0.95)
//! zig-zags in y while it crawls along x; Momentum (0.1) rolls like a ball,
//! overshooting and coming back; AdaGrad (1.5) scales each coordinate's
//! step by its own history and heads straight in; Adam (0.3) combines both.
//! Nesterov, RMSprop and AdamW are the other three optimizers of
//! `src/optim`, at rates picked for this function.

use std::fmt::Write as _;

use anyhow::{Result, anyhow};

use super::{Options, Outcome};
use crate::experiments::figure_and_csv;
use crate::optim;
use crate::plot::{Field, Figure, Mark, Panel, Points, Series, palette};

/// `f(x, y) = x²/20 + y²`.
pub fn f(x: f64, y: f64) -> f64 {
    x * x / 20.0 + y * y
}

/// Its gradient, `(x/10, 2y)` (the book's `df`).
pub fn df(x: f64, y: f64) -> [f64; 2] {
    [x / 10.0, 2.0 * y]
}

/// The optimizers and learning rates drawn: the book's four, then three more.
pub const SETTINGS: [(&str, f64); 7] = [
    ("sgd", 0.95),
    ("momentum", 0.1),
    ("adagrad", 1.5),
    ("adam", 0.3),
    ("nesterov", 0.1),
    ("rmsprop", 0.1),
    ("adamw", 0.3),
];

/// The points before each of `steps` updates by the optimizer `name` (as
/// the book's `x_history`), from `(-7, 2)`: the library's own update rule
/// on the two parameters `x` and `y`.
pub fn path(name: &str, lr: f64, steps: usize) -> Result<Vec<(f64, f64)>> {
    let mut rule = optim::by_name::<f64>(name, lr).map_err(|e| anyhow!(e))?;
    let mut w = [-7.0, 2.0];
    let mut state = vec![vec![0.0; 2]; rule.slots()];
    let mut history = Vec::with_capacity(steps);
    for _ in 0..steps {
        history.push((w[0], w[1]));
        let g = df(w[0], w[1]);
        let mut views: Vec<&mut [f64]> = state.iter_mut().map(|s| s.as_mut_slice()).collect();
        rule.begin_step();
        // x and y count as weights, so AdamW's decoupled decay acts on them.
        rule.update(&mut w, &g, &mut views, true);
    }
    Ok(history)
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let field = Field::sample(-10.0..10.0, -5.0..5.0, 201, 101, f);
    let levels: Vec<f64> = [0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0].to_vec();
    let mut table = format!(
        "{:<9} {:>5}  {:>22}  {:>10}\n",
        "optimizer", "lr", "point after 30 steps", "f"
    );
    let mut rows = Vec::new();
    let mut panels = Vec::new();
    for (k, (name, lr)) in SETTINGS.into_iter().enumerate() {
        let history = path(name, lr, 30)?;
        let &(x, y) = history.last().expect("30 points");
        writeln!(
            table,
            "{name:<9} {lr:>5}  ({x:>9.5}, {y:>9.5})  {:>10.3e}",
            f(x, y)
        )
        .expect("writing to a String");
        for (i, (x, y)) in history.iter().enumerate() {
            rows.push(format!("{name},{lr},{i},{x},{y}"));
        }
        let title = if k < 4 {
            format!("{name} (lr {lr})")
        } else {
            format!("{name} (lr {lr}), not in the book")
        };
        panels.push(
            Panel::marks(
                &title,
                "x",
                "y",
                vec![
                    Mark::Contours {
                        field: field.clone(),
                        levels: levels.clone(),
                    },
                    Mark::Line(Series::new("", history.clone()).color(3)),
                    Mark::Points(Points::new("", history, palette(3)).size(3)),
                    Mark::Points(Points::new("", vec![(0.0, 0.0)], (0, 0, 0)).size(3)),
                ],
            )
            .x_range(-10.0..10.0)
            .y_range(-5.0..5.0)
            .equal_aspect(),
        );
    }
    table.push_str("(the minimum is (0, 0); the point printed is the last of the 30 drawn, as in the book's figure)\n");
    let figure = Figure::new(panels, 4)
        .title("optimizer_compare_naive.py: 30 steps on f(x, y) = x²/20 + y² from (-7, 2)")
        .panel_size(420, 300);
    figure_and_csv(
        &figure,
        opts,
        "optimizer-paths",
        "optimizer,lr,step,x,y",
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
    fn the_paths_behave_as_the_book_describes() {
        let sgd = path("sgd", 0.95, 30).unwrap();
        assert_eq!(sgd[0], (-7.0, 2.0));
        // SGD: y flips sign every step (1 - 0.95·2 = -0.9), x crawls (0.905 per step).
        assert!((sgd[1].1 + 1.8).abs() < 1e-12 && (sgd[1].0 + 6.335).abs() < 1e-12);
        let adagrad = path("adagrad", 1.5, 30).unwrap();
        // AdaGrad's first step is lr·sign(g) in each coordinate: straight in.
        assert!((adagrad[1].0 + 5.5).abs() < 1e-6 && (adagrad[1].1 - 0.5).abs() < 1e-6);
        for (name, lr) in SETTINGS {
            let p = path(name, lr, 30).unwrap();
            let &(x, y) = p.last().unwrap();
            assert!(f(x, y) < f(-7.0, 2.0) / 4.0, "{name} ended at ({x}, {y})");
        }
    }

    #[test]
    fn the_lesson_prints_and_draws() {
        let dir = TempDir::new("learn-paths");
        let outcome = run_quick(Lesson::OptimizerPaths, dir.path());
        assert_eq!(outcome.table.lines().count(), 9, "{}", outcome.table);
    }
}
