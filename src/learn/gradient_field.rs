//! Chapter 4, `gradient_2d.py`: the gradient of `f(x0, x1) = x0² + x1²` by
//! [`numerical_gradient`], at the book's three points, and as a field of
//! arrows of minus the gradient over the contour lines of `f`.
//!
//! A contour line joins points of equal `f`; along it `f` does not change,
//! so its slope along the line is 0 and the whole gradient points across the
//! line: at right angles to it (the line's normal direction), towards larger
//! `f`. Minus the gradient therefore crosses every contour at a right angle,
//! downhill, and each step against it lowers `f` fastest from where it
//! stands. For the round bowl `x0² + x1²` that also points at the minimum;
//! for the stretched bowl `x²/20 + y²` of chapter 6 (second panel) the
//! arrows are still perpendicular to the contours but miss the minimum,
//! which is why plain gradient descent zig-zags there.
//!
//! ```
//! use backprop::learn::gradient_field::{function_2, numerical_gradient};
//! use backprop::learn::numpy::array_str;
//! use backprop::tensor::Tensor;
//! let x = Tensor::from_vec(&[2], vec![3.0, 4.0]).unwrap();
//! assert_eq!(array_str(numerical_gradient(function_2, &x).data()), "[6. 8.]");
//! ```

use std::fmt::Write as _;

use anyhow::Result;

use super::numpy::array_str;
use super::{Options, Outcome};
use crate::experiments::figure_and_csv;
pub use crate::gradcheck::numerical_gradient;
use crate::plot::{Arrows, Field, Figure, INK, Mark, Panel, Points, palette};
use crate::tensor::Tensor;

/// `function_2(x) = x0² + x1²` (`np.sum(x**2)`).
pub fn function_2(x: &Tensor<f64>) -> f64 {
    x.data().iter().map(|v| v * v).sum()
}

/// The chapter-6 function `x²/20 + y²`.
pub fn stretched(x: &Tensor<f64>) -> f64 {
    let d = x.data();
    d[0] * d[0] / 20.0 + d[1] * d[1]
}

/// `f` at a point of the plane.
fn at(f: fn(&Tensor<f64>) -> f64, x: f64, y: f64) -> f64 {
    f(&point(x, y))
}

fn point(x: f64, y: f64) -> Tensor<f64> {
    Tensor::from_vec(&[2], vec![x, y]).expect("two values")
}

/// Arrows of `-scale · ∇f` (numerical) from every point of a grid.
pub fn field_arrows(
    f: fn(&Tensor<f64>) -> f64,
    xs: &[f64],
    ys: &[f64],
    scale: f64,
) -> Vec<[(f64, f64); 2]> {
    let mut arrows = Vec::new();
    for &x in xs {
        for &y in ys {
            let g = numerical_gradient(f, &point(x, y));
            let g = g.data();
            arrows.push([(x, y), (x - scale * g[0], y - scale * g[1])]);
        }
    }
    arrows
}

fn grid(from: f64, to: f64, step: f64) -> Vec<f64> {
    let n = ((to - from) / step).round() as usize;
    (0..=n).map(|i| from + step * i as f64).collect()
}

/// Contours of `f` and arrows of minus its gradient, on equal axes (right
/// angles look right only when both axes have one scale).
fn field_panel(
    title: &str,
    f: fn(&Tensor<f64>) -> f64,
    (x_half, y_half): (f64, f64),
    step: (f64, f64),
    levels: Vec<f64>,
    scale: f64,
) -> Panel {
    let field = Field::sample(-x_half..x_half, -y_half..y_half, 201, 201, |x, y| {
        at(f, x, y)
    });
    let arrows = field_arrows(
        f,
        &grid(-x_half, x_half, step.0),
        &grid(-y_half, y_half, step.1),
        scale,
    );
    Panel::marks(
        title,
        "x0",
        "x1",
        vec![
            Mark::Contours { field, levels },
            Mark::Arrows(Arrows::new(arrows, INK).head(6.0)),
            Mark::Points(Points::new("minimum", vec![(0.0, 0.0)], palette(3))),
        ],
    )
    .x_range(-x_half..x_half)
    .y_range(-y_half..y_half)
    .equal_aspect()
    .legend(false)
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let mut table = String::new();
    let mut rows = Vec::new();
    for (x0, x1) in [(3.0, 4.0), (0.0, 2.0), (3.0, 0.0)] {
        let g = numerical_gradient(function_2, &point(x0, x1));
        writeln!(
            table,
            "numerical_gradient(function_2, np.array([{x0:?}, {x1:?}])) = {}",
            array_str(g.data())
        )
        .expect("writing to a String");
        rows.push(format!("{x0},{x1},{},{}", g.data()[0], g.data()[1]));
    }
    table.push_str(
        "the arrows (minus the gradient) cross every contour line at a right angle, downhill\n",
    );
    // Wide panels: the stretched bowl is wider than tall, and both fill them.
    let circles = (1..=16).map(|k| (0.25 * f64::from(k)).powi(2)).collect();
    let ellipses = (1..=10).map(|k| 0.3 * f64::from(k * k) / 4.0).collect();
    let figure = Figure::new(
        vec![
            field_panel("-∇f of f = x0² + x1² (gradient_2d.py): towards the minimum", function_2, (4.0, 2.0), (0.25, 0.25), circles, 0.03),
            field_panel("-∇f of f = x0²/20 + x1²: still at right angles to the contours, but not towards the minimum", stretched, (8.0, 3.5), (0.8, 0.5), ellipses, 0.06),
        ],
        1,
    )
    .panel_size(880, 460);
    figure_and_csv(
        &figure,
        opts,
        "gradient-field",
        "x0,x1,df/dx0,df/dx1",
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
    fn the_books_gradients() {
        let grad = |x0, x1| array_str(numerical_gradient(function_2, &point(x0, x1)).data());
        assert_eq!(grad(3.0, 4.0), "[6. 8.]");
        assert_eq!(grad(0.0, 2.0), "[0. 4.]");
        assert_eq!(grad(3.0, 0.0), "[6. 0.]");
    }

    /// The lesson's claim: along every piece of a contour line the gradient
    /// has no component, for both functions drawn.
    #[test]
    fn the_gradient_is_perpendicular_to_the_contours() {
        for (f, half, level) in [
            (function_2 as fn(&Tensor<f64>) -> f64, (2.0, 2.0), 1.1),
            (stretched, (8.0, 3.0), 2.1),
        ] {
            let field = Field::sample(-half.0..half.0, -half.1..half.1, 201, 201, |x, y| {
                at(f, x, y)
            });
            let segments = field.isolines(level);
            assert!(segments.len() > 100);
            for [a, b] in segments {
                let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                // A piece cut off near a grid point is too short to have a
                // direction of its own.
                if dx.hypot(dy) < 1e-3 {
                    continue;
                }
                let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
                let g = numerical_gradient(f, &point(mid.0, mid.1));
                let (gx, gy) = (g.data()[0], g.data()[1]);
                let cos = (gx * dx + gy * dy) / (gx.hypot(gy) * dx.hypot(dy));
                assert!(cos.abs() < 0.05, "cos {cos} at {mid:?}");
                // Minus the gradient points to lower f: inside the contour.
                assert!(at(f, mid.0 - 0.01 * gx, mid.1 - 0.01 * gy) < level);
            }
        }
    }

    #[test]
    fn the_lesson_prints_and_draws() {
        let dir = TempDir::new("learn-field");
        let outcome = run_quick(Lesson::GradientField, dir.path());
        assert!(
            outcome.table.starts_with(
                "numerical_gradient(function_2, np.array([3.0, 4.0])) = [6. 8.]\n\
             numerical_gradient(function_2, np.array([0.0, 2.0])) = [0. 4.]\n\
             numerical_gradient(function_2, np.array([3.0, 0.0])) = [6. 0.]\n"
            ),
            "{}",
            outcome.table
        );
    }
}
