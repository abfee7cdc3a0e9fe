//! Chapter 4, `gradient_method.py`: gradient descent, `x ← x - lr · ∇f(x)`
//! with the numerical gradient, on `f(x0, x1) = x0² + x1²` from `(-3, 4)`.
//!
//! With `lr = 0.1` each step keeps 0.8 of `x`: after 100 steps the book's
//! `[-6.11110793e-10  8.14814391e-10]`, practically the minimum (0, 0). With
//! `lr = 10` each step multiplies `x` by -19 and it flies off to the book's
//! `[-2.58983747e+13 -1.29524862e+12]`, where it stops only because `x + h`
//! rounds back to `x` (h = 1e-4 is below the spacing of doubles that large),
//! so the numerical gradient becomes 0. With `lr = 1e-10` it hardly moves:
//! `[-2.99999994  3.99999992]`.
//!
//! ```
//! use backprop::learn::gradient_descent::gradient_descent;
//! use backprop::learn::gradient_field::function_2;
//! use backprop::learn::numpy::array_str;
//! let (x, _) = gradient_descent(function_2, &[-3.0, 4.0], 0.1, 100);
//! assert_eq!(array_str(&x), "[-6.11110793e-10  8.14814391e-10]");
//! ```

use std::fmt::Write as _;

use anyhow::Result;

use super::gradient_field::{function_2, numerical_gradient};
use super::numpy::array_str;
use super::{Options, Outcome};
use crate::experiments::figure_and_csv;
use crate::plot::{Corner, Field, Figure, Mark, Panel, Points, Series, palette};
use crate::tensor::Tensor;

/// The book's `gradient_descent(f, init_x, lr, step_num)`: returns the end
/// point and the points before each step (`x_history`).
pub fn gradient_descent(
    f: fn(&Tensor<f64>) -> f64,
    init_x: &[f64],
    lr: f64,
    step_num: usize,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut x = Tensor::from_vec(&[init_x.len()], init_x.to_vec()).expect("a vector");
    let mut history = Vec::with_capacity(step_num);
    for _ in 0..step_num {
        history.push(x.data().to_vec());
        let grad = numerical_gradient(f, &x);
        for (v, g) in x.data_mut().iter_mut().zip(grad.data()) {
            *v -= lr * g;
        }
    }
    (x.into_vec(), history)
}

const START: [f64; 2] = [-3.0, 4.0];

/// A descent drawn on the contour lines of `x0² + x1²` within `half` of 0.
fn path_panel(title: &str, history: &[Vec<f64>], half: (f64, f64), color: usize) -> Panel {
    let field = Field::sample(-half.0..half.0, -half.1..half.1, 201, 201, |x, y| {
        x * x + y * y
    });
    let top = half.0.max(half.1);
    let levels = (1..=6)
        .map(|k| (top * f64::from(k) / 6.0).powi(2))
        .collect();
    let points: Vec<(f64, f64)> = history.iter().map(|x| (x[0], x[1])).collect();
    Panel::marks(
        title,
        "x0",
        "x1",
        vec![
            Mark::Contours { field, levels },
            Mark::Line(Series::new("", points.clone()).color(color)),
            Mark::Points(Points::new("", points, palette(color))),
            Mark::Points(
                Points::new("start (-3, 4)", vec![(START[0], START[1])], palette(3)).size(6),
            ),
        ],
    )
    .x_range(-half.0..half.0)
    .y_range(-half.1..half.1)
    .equal_aspect()
    .legend_corner(Corner::LowerRight)
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let mut table = String::new();
    let mut distance = Vec::new();
    let mut rows = Vec::new();
    for (k, lr) in [0.1, 10.0, 1e-10].into_iter().enumerate() {
        let (x, history) = gradient_descent(function_2, &START, lr, 100);
        writeln!(
            table,
            "gradient_descent(function_2, init_x=np.array([-3.0, 4.0]), lr={lr:?}, step_num=100) = {}",
            array_str(&x)
        )
        .expect("writing to a String");
        let norms = history
            .iter()
            .chain(std::iter::once(&x))
            .map(|p| p[0].hypot(p[1]));
        distance.push(
            Series::new(
                format!("lr = {lr:?}"),
                norms
                    .enumerate()
                    .map(|(i, d)| (i as f64, d.log10()))
                    .collect(),
            )
            .color(k),
        );
        for (i, p) in history.iter().chain(std::iter::once(&x)).enumerate() {
            rows.push(format!("{lr},{i},{},{}", p[0], p[1]));
        }
    }
    let (x20, path) = gradient_descent(function_2, &START, 0.1, 20);
    writeln!(
        table,
        "after 20 steps with lr=0.1 (the book's figure): {}",
        array_str(&x20)
    )
    .expect("writing to a String");
    let (_, far) = gradient_descent(function_2, &START, 10.0, 20);
    let (_, stuck) = gradient_descent(function_2, &START, 1e-10, 20);
    table.push_str(
        "lr=10 multiplies x by -19 each step until x + h rounds to x and the numerical gradient is 0\n",
    );
    let figure = Figure::new(
        vec![
            path_panel(
                "lr = 0.1, 20 steps (gradient_method.py)",
                &path,
                (3.5, 4.5),
                0,
            ),
            path_panel(
                "lr = 10: too large, leaves after one step",
                &far,
                (80.0, 80.0),
                1,
            ),
            path_panel(
                "lr = 1e-10: too small, does not move",
                &stuck,
                (3.5, 4.5),
                2,
            ),
            Panel::lines("distance from the minimum", "step", "log10 |x|", distance)
                .legend_corner(Corner::LowerLeft),
        ],
        4,
    )
    .panel_size(420, 460);
    figure_and_csv(
        &figure,
        opts,
        "gradient-descent",
        "lr,step,x0,x1",
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
    fn the_books_end_points() {
        let end = |lr, steps| array_str(&gradient_descent(function_2, &START, lr, steps).0);
        assert_eq!(end(0.1, 100), "[-6.11110793e-10  8.14814391e-10]");
        assert_eq!(end(10.0, 100), "[-2.58983747e+13 -1.29524862e+12]");
        assert_eq!(end(1e-10, 100), "[-2.99999994  3.99999992]");
        assert_eq!(end(0.1, 20), "[-0.03458765  0.04611686]");
        let (_, history) = gradient_descent(function_2, &START, 0.1, 20);
        assert_eq!((history.len(), history[0].as_slice()), (20, &START[..]));
    }

    #[test]
    fn the_lesson_prints_and_draws() {
        let dir = TempDir::new("learn-descent");
        let outcome = run_quick(Lesson::GradientDescent, dir.path());
        assert!(
            outcome
                .table
                .contains("lr=10.0, step_num=100) = [-2.58983747e+13 -1.29524862e+12]\n"),
            "{}",
            outcome.table
        );
    }
}
