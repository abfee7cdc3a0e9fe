//! Contour lines of a function of two variables: the function sampled on a
//! grid ([`Field`]), and the line where it equals a level traced through the
//! grid's cells by marching squares, with the crossing on each cell edge
//! found by linear interpolation.
//!
//! ```
//! use backprop::plot::Field;
//! // x² + y² = 1 is the unit circle: every point of its contour is at radius 1.
//! let field = Field::sample(-2.0..2.0, -2.0..2.0, 81, 81, |x, y| x * x + y * y);
//! let segments = field.isolines(1.0);
//! assert!(segments.len() > 50);
//! for [(x, y), _] in segments {
//!     assert!(((x * x + y * y).sqrt() - 1.0).abs() < 0.01);
//! }
//! ```
//!
//! (Not the `contour` crate: it closes every line along the grid's border,
//! d3-contour's convention for filled bands, which draws lines along the
//! frame that are no contour of the function.)

use std::ops::Range;

/// A function sampled on an `nx` by `ny` grid spanning `x` and `y`, corners
/// included: `values[j * nx + i]` is `f(x_i, y_j)`, row 0 at `y.start`.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub x: Range<f64>,
    pub y: Range<f64>,
    pub nx: usize,
    pub ny: usize,
    pub values: Vec<f64>,
}

impl Field {
    /// Samples `f` at `nx` by `ny` points (at least 2 each way).
    pub fn sample(
        x: Range<f64>,
        y: Range<f64>,
        nx: usize,
        ny: usize,
        f: impl Fn(f64, f64) -> f64,
    ) -> Field {
        let (nx, ny) = (nx.max(2), ny.max(2));
        let mut values = Vec::with_capacity(nx * ny);
        for j in 0..ny {
            for i in 0..nx {
                let (px, py) = Self::point_of(&x, &y, nx, ny, i, j);
                values.push(f(px, py));
            }
        }
        Field {
            x,
            y,
            nx,
            ny,
            values,
        }
    }

    fn point_of(
        x: &Range<f64>,
        y: &Range<f64>,
        nx: usize,
        ny: usize,
        i: usize,
        j: usize,
    ) -> (f64, f64) {
        (
            x.start + (x.end - x.start) * i as f64 / (nx - 1) as f64,
            y.start + (y.end - y.start) * j as f64 / (ny - 1) as f64,
        )
    }

    /// The grid point `(i, j)`.
    pub fn point(&self, i: usize, j: usize) -> (f64, f64) {
        Self::point_of(&self.x, &self.y, self.nx, self.ny, i, j)
    }

    fn value(&self, i: usize, j: usize) -> f64 {
        self.values[j * self.nx + i]
    }

    /// The contour `f = level` as line segments, one or two per grid cell
    /// that it crosses.
    pub fn isolines(&self, level: f64) -> Vec<[(f64, f64); 2]> {
        let mut segments = Vec::new();
        for j in 0..self.ny - 1 {
            for i in 0..self.nx - 1 {
                // Corners counter-clockwise from the lower left; edge k runs
                // from corner k to corner k + 1.
                let corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
                let v = corners.map(|(a, b)| self.value(a, b));
                if v.iter().any(|v| !v.is_finite()) {
                    continue;
                }
                let above = v.map(|v| v > level);
                let crossing = |k: usize| {
                    let (a, b) = (k, (k + 1) % 4);
                    let (pa, pb) = (
                        self.point(corners[a].0, corners[a].1),
                        self.point(corners[b].0, corners[b].1),
                    );
                    let t = (level - v[a]) / (v[b] - v[a]);
                    (pa.0 + t * (pb.0 - pa.0), pa.1 + t * (pb.1 - pa.1))
                };
                let edges: Vec<usize> =
                    (0..4).filter(|&k| above[k] != above[(k + 1) % 4]).collect();
                // A line through a corner gives a segment of no length there.
                let mut push = |a: (f64, f64), b: (f64, f64)| {
                    if a != b {
                        segments.push([a, b]);
                    }
                };
                match edges.as_slice() {
                    [a, b] => push(crossing(*a), crossing(*b)),
                    [e0, e1, e2, e3] => {
                        // A saddle: the centre's value decides which
                        // corners the line separates.
                        let centre_above = v.iter().sum::<f64>() / 4.0 > level;
                        let (first, second) = if centre_above == above[0] {
                            ([*e0, *e1], [*e2, *e3])
                        } else {
                            ([*e3, *e0], [*e1, *e2])
                        };
                        push(crossing(first[0]), crossing(first[1]));
                        push(crossing(second[0]), crossing(second[1]));
                    }
                    _ => {}
                }
            }
        }
        segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plane_has_straight_contours_where_it_should() {
        // f = x + 2y: the level 1 line is x = 1 - 2y.
        let field = Field::sample(-1.0..1.0, -1.0..1.0, 5, 5, |x, y| x + 2.0 * y);
        let segments = field.isolines(1.0);
        assert!(!segments.is_empty());
        for [a, b] in segments {
            for (x, y) in [a, b] {
                assert!((x + 2.0 * y - 1.0).abs() < 1e-12, "({x}, {y})");
            }
        }
        assert!(field.isolines(10.0).is_empty(), "above the whole field");
    }

    #[test]
    fn a_saddle_gives_two_segments_and_the_grid_is_sampled_at_its_corners() {
        let field = Field::sample(0.0..1.0, 0.0..1.0, 2, 2, |x, y| (x - 0.5) * (y - 0.5));
        assert_eq!(field.point(1, 1), (1.0, 1.0));
        assert_eq!(field.values, [0.25, -0.25, -0.25, 0.25]);
        assert_eq!(field.isolines(0.0).len(), 2);
    }
}
