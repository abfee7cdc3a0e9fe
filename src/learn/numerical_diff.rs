//! Chapter 4, `gradient_1d.py`: the derivative as the slope at one point,
//! measured by the central difference `(f(x + h) - f(x - h)) / 2h` with
//! `h = 1e-4` ([`numerical_diff`]). For `f(x) = 0.01x² + 0.1x` the true
//! slopes at 5 and 10 are 0.2 and 0.3; the book prints the rounding error
//! of the difference too: `0.1999999999990898` and `0.2999999999986347`. The
//! tangent line at a point is the straight line with that slope through
//! `(x, f(x))`: near the point, `f` and its tangent agree, far from it they
//! part, which is why a derivative says something about one point only.
//!
//! ```
//! use backprop::gradcheck::numerical_diff;
//! use backprop::learn::numerical_diff::function_1;
//! assert_eq!(numerical_diff(function_1, 10.0), 0.2999999999986347);
//! ```

use std::fmt::Write as _;

use anyhow::Result;

use super::{Options, Outcome, linspace};
use crate::experiments::figure_and_csv;
pub use crate::gradcheck::numerical_diff;
use crate::plot::{Corner, Figure, Mark, Panel, Points, Series, palette};

/// `function_1(x) = 0.01x² + 0.1x`, evaluated in the book's order
/// (`0.01*x**2`: the square first), which its printed digits depend on.
pub fn function_1(x: f64) -> f64 {
    0.01 * (x * x) + 0.1 * x
}

/// The book's `tangent_line(f, x)`: `t ↦ d·t + (f(x) - d·x)` with `d` the
/// numerical slope at `x`.
pub fn tangent_line(f: impl Fn(f64) -> f64, x: f64) -> impl Fn(f64) -> f64 {
    let d = numerical_diff(&f, x);
    let y = f(x) - d * x;
    move |t| d * t + y
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let xs: Vec<f64> = linspace(0.0, 20.0, 200).collect();
    let curve: Vec<(f64, f64)> = xs.iter().map(|&x| (x, function_1(x))).collect();
    let mut marks = vec![Mark::Line(
        Series::new("f(x) = 0.01x² + 0.1x", curve).color(0),
    )];
    let mut table = String::new();
    let mut rows = Vec::new();
    for (k, at) in [5.0, 10.0].into_iter().enumerate() {
        let d = numerical_diff(function_1, at);
        writeln!(table, "numerical_diff(function_1, {at}) = {d}").expect("writing to a String");
        let tangent = tangent_line(function_1, at);
        let line = xs.iter().map(|&x| (x, tangent(x))).collect();
        marks.push(Mark::Line(
            Series::new(format!("tangent at x = {at}: slope {d:.4}"), line)
                .dashed()
                .color(k + 1),
        ));
        marks.push(Mark::Points(Points::new(
            "",
            vec![(at, function_1(at))],
            palette(k + 1),
        )));
        rows.push(format!("{at},{},{d},{}", function_1(at), 0.02 * at + 0.1));
    }
    table.push_str(
        "(the true slopes 0.02x + 0.1 are 0.2 and 0.3; the tail is the rounding of f(x ± h))\n",
    );
    let panel = Panel::marks(
        "gradient_1d.py: slopes at x = 5 and x = 10",
        "x",
        "f(x)",
        marks,
    )
    .x_range(0.0..20.0)
    .y_range(-1.0..6.0)
    .legend_corner(Corner::UpperLeft);
    let figure = Figure::new(vec![panel], 1).panel_size(700, 480);
    figure_and_csv(
        &figure,
        opts,
        "numerical-diff",
        "x,f,numerical_diff,exact",
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
    fn the_books_digits() {
        assert_eq!(
            numerical_diff(function_1, 5.0).to_string(),
            "0.1999999999990898"
        );
        assert_eq!(
            numerical_diff(function_1, 10.0).to_string(),
            "0.2999999999986347"
        );
        let t = tangent_line(function_1, 5.0);
        assert!((t(5.0) - function_1(5.0)).abs() < 1e-12);
        assert!((t(6.0) - t(5.0) - 0.2).abs() < 1e-9);
    }

    #[test]
    fn the_lesson_prints_and_draws() {
        let dir = TempDir::new("learn-diff");
        let outcome = run_quick(Lesson::NumericalDiff, dir.path());
        assert!(
            outcome.table.starts_with(
                "numerical_diff(function_1, 5) = 0.1999999999990898\n\
             numerical_diff(function_1, 10) = 0.2999999999986347\n"
            ),
            "{}",
            outcome.table
        );
    }
}
