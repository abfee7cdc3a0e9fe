//! Chapter 2: the perceptron, `y = 1 if w1·x1 + w2·x2 + b > 0, else 0`. With
//! hand-set weights it is an AND, NAND or OR gate; each draws one straight
//! line through the input plane and answers 1 on one side of it. XOR's ones
//! (`(1, 0)`, `(0, 1)`) and zeros (`(0, 0)`, `(1, 1)`) cannot be split by any
//! line, but two layers can: `XOR(x1, x2) = AND(NAND(x1, x2), OR(x1, x2))`.
//!
//! ```
//! use backprop::learn::perceptron::{AND, NAND, OR, xor};
//! assert_eq!(AND.output(1.0, 1.0), 1);
//! assert_eq!(NAND.output(1.0, 1.0), 0);
//! assert_eq!(OR.output(0.0, 1.0), 1);
//! assert_eq!([xor(0.0, 0.0), xor(1.0, 0.0), xor(0.0, 1.0), xor(1.0, 1.0)], [0, 1, 1, 0]);
//! ```

use std::fmt::Write as _;

use anyhow::Result;

use super::{Options, Outcome};
use crate::experiments::figure_and_csv;
use crate::plot::{Field, Figure, Mark, Marker, Panel, Picture, Points, Series, palette};

/// A perceptron of two inputs, as the book's `AND(x1, x2)` and friends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Perceptron {
    pub w: [f64; 2],
    pub b: f64,
}

impl Perceptron {
    /// `np.sum(w * x) + b <= 0` gives 0, else 1.
    pub fn output(&self, x1: f64, x2: f64) -> u8 {
        let tmp = self.w[0] * x1 + self.w[1] * x2 + self.b;
        u8::from(tmp > 0.0)
    }

    /// The line `w1·x1 + w2·x2 + b = 0` between its two answers, as points
    /// at `x1 = from` and `x1 = to`.
    pub fn boundary(&self, from: f64, to: f64) -> Vec<(f64, f64)> {
        let x2 = |x1: f64| -(self.w[0] * x1 + self.b) / self.w[1];
        vec![(from, x2(from)), (to, x2(to))]
    }
}

/// The book's weights (`and_gate.py`, `nand_gate.py`, `or_gate.py`).
pub const AND: Perceptron = Perceptron {
    w: [0.5, 0.5],
    b: -0.7,
};
pub const NAND: Perceptron = Perceptron {
    w: [-0.5, -0.5],
    b: 0.7,
};
pub const OR: Perceptron = Perceptron {
    w: [0.5, 0.5],
    b: -0.2,
};

/// `xor_gate.py`: NAND and OR in the first layer, AND in the second.
pub fn xor(x1: f64, x2: f64) -> u8 {
    let s1 = NAND.output(x1, x2);
    let s2 = OR.output(x1, x2);
    AND.output(f64::from(s1), f64::from(s2))
}

/// The four inputs in the book's order.
pub const INPUTS: [(u8, u8); 4] = [(0, 0), (1, 0), (0, 1), (1, 1)];

/// A gate's truth table as the scripts print it: `(0, 0) -> 0`, one line per input.
pub fn truth_table(gate: impl Fn(f64, f64) -> u8) -> String {
    INPUTS
        .iter()
        .map(|&(a, b)| format!("({a}, {b}) -> {}\n", gate(f64::from(a), f64::from(b))))
        .collect()
}

/// A gate of two inputs.
type Gate = dyn Fn(f64, f64) -> u8;

/// What the plane looks like to a gate: its ones shaded, the inputs as
/// filled (1) and hollow (0) circles, and its lines.
fn gate_panel(title: &str, gate: &Gate, lines: &[Perceptron]) -> Panel {
    let (lo, hi, n) = (-0.5, 1.5, 200);
    let region = Field::sample(lo..hi, lo..hi, n, n, |x, y| f64::from(gate(x, y)));
    let classes: Vec<usize> = region.values.iter().map(|&v| v as usize).collect();
    let mut marks = vec![Mark::Picture(Picture::regions(
        &classes,
        n,
        n,
        lo..hi,
        lo..hi,
    ))];
    for line in lines {
        let s = Series::new("", line.boundary(lo, hi)).color(7);
        marks.push(Mark::Line(if lines.len() > 1 { s.dashed() } else { s }));
    }
    let (ones, zeros): (Vec<_>, Vec<_>) = INPUTS
        .iter()
        .map(|&(a, b)| (f64::from(a), f64::from(b)))
        .partition(|&(a, b)| gate(a, b) == 1);
    marks.push(Mark::Points(
        Points::new("0", zeros, palette(0))
            .marker(Marker::Hollow)
            .size(7),
    ));
    marks.push(Mark::Points(Points::new("1", ones, palette(1)).size(7)));
    Panel::marks(title, "x1", "x2", marks)
        .x_range(lo..hi)
        .y_range(lo..hi)
        .equal_aspect()
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let gates: [(&str, &Gate); 4] = [
        ("AND", &|a, b| AND.output(a, b)),
        ("NAND", &|a, b| NAND.output(a, b)),
        ("OR", &|a, b| OR.output(a, b)),
        ("XOR", &xor),
    ];
    let mut table = String::new();
    for (name, gate) in gates {
        writeln!(table, "{name}").expect("writing to a String");
        table.push_str(&truth_table(gate));
    }
    table.push_str(
        "AND, NAND and OR each split the plane with one line; XOR's ones lie on a diagonal\n\
         and its zeros on the other, so it needs two lines: NAND and OR, then AND.\n",
    );
    let figure = Figure::new(
        vec![
            gate_panel("AND: w = (0.5, 0.5), b = -0.7", gates[0].1, &[AND]),
            gate_panel("NAND: w = (-0.5, -0.5), b = 0.7", gates[1].1, &[NAND]),
            gate_panel("OR: w = (0.5, 0.5), b = -0.2", gates[2].1, &[OR]),
            gate_panel("XOR = AND(NAND, OR): two lines", gates[3].1, &[NAND, OR]),
        ],
        4,
    )
    .title("perceptrons: orange where the gate answers 1, blue where it answers 0")
    .panel_size(380, 400);
    let rows: Vec<String> = INPUTS
        .iter()
        .map(|&(a, b)| {
            let (a, b) = (f64::from(a), f64::from(b));
            format!(
                "{a},{b},{},{},{},{}",
                AND.output(a, b),
                NAND.output(a, b),
                OR.output(a, b),
                xor(a, b)
            )
        })
        .collect();
    figure_and_csv(
        &figure,
        opts,
        "perceptron",
        "x1,x2,AND,NAND,OR,XOR",
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
    fn the_truth_tables_are_the_books() {
        assert_eq!(
            truth_table(|a, b| AND.output(a, b)),
            "(0, 0) -> 0\n(1, 0) -> 0\n(0, 1) -> 0\n(1, 1) -> 1\n"
        );
        assert_eq!(
            truth_table(|a, b| NAND.output(a, b)),
            "(0, 0) -> 1\n(1, 0) -> 1\n(0, 1) -> 1\n(1, 1) -> 0\n"
        );
        assert_eq!(
            truth_table(|a, b| OR.output(a, b)),
            "(0, 0) -> 0\n(1, 0) -> 1\n(0, 1) -> 1\n(1, 1) -> 1\n"
        );
        assert_eq!(
            truth_table(xor),
            "(0, 0) -> 0\n(1, 0) -> 1\n(0, 1) -> 1\n(1, 1) -> 0\n"
        );
    }

    #[test]
    fn a_boundary_is_where_the_answer_flips() {
        for gate in [AND, NAND, OR] {
            for (x1, x2) in gate.boundary(-0.5, 1.5) {
                assert!((gate.w[0] * x1 + gate.w[1] * x2 + gate.b).abs() < 1e-12);
                assert_ne!(gate.output(x1, x2 - 0.01), gate.output(x1, x2 + 0.01));
            }
        }
    }

    #[test]
    fn the_lesson_draws_four_panels() {
        let dir = TempDir::new("learn-perceptron");
        let outcome = run_quick(Lesson::Perceptron, dir.path());
        assert!(outcome.table.starts_with("AND\n(0, 0) -> 0\n"));
        let csv = std::fs::read_to_string(dir.path().join("perceptron.csv")).unwrap();
        assert_eq!(csv.lines().nth(4), Some("1,1,1,0,1,0"));
    }
}
