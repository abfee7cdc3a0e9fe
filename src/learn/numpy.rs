//! Numbers printed the way the textbook's Python prints them, so the output
//! can be held beside the book: numpy's default `print(array)` for 1-D float
//! and integer arrays ([`array_str`], [`int_array_str`]), and Python 2's
//! `str(float)`, which the book's `gradient_check.py` output shows
//! ([`py2_str`]).
//!
//! ```
//! use backprop::learn::numpy::array_str;
//! assert_eq!(array_str(&[0.3168270764110298, 0.6962790898619668]), "[0.31682708 0.69627909]");
//! assert_eq!(array_str(&[6.00000000000378, 7.999999999999119]), "[6. 8.]");
//! assert_eq!(array_str(&[-6.111107928998789e-10, 8.148143905314271e-10]), "[-6.11110793e-10  8.14814391e-10]");
//! ```

/// numpy's default precision: at most 8 digits after the point.
const PRECISION: usize = 8;

/// numpy's `str()` of a 1-D float64 array with default print options:
/// positional notation with at most 8 decimals (fewer if the value needs
/// fewer), unless the values span more than a factor 1000 or hold one below
/// 1e-4 or from 1e8 up, which switch to scientific notation with the same
/// number of digits for every value. Elements are padded to a common width.
pub fn array_str(values: &[f64]) -> String {
    let finite_abs: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite() && **v != 0.0)
        .map(|v| v.abs())
        .collect();
    let max = finite_abs.iter().copied().fold(0.0, f64::max);
    let min = finite_abs.iter().copied().fold(f64::INFINITY, f64::min);
    let scientific = !finite_abs.is_empty() && (max >= 1e8 || min < 1e-4 || max / min > 1e3);
    let parts: Vec<(String, String)> = if scientific {
        // As many mantissa digits as the value that needs the most.
        let digits = values
            .iter()
            .map(|v| trimmed_fraction(&format!("{v:.PRECISION$e}")).len())
            .max()
            .unwrap_or(0);
        values
            .iter()
            .map(|v| {
                let s = format!("{v:.digits$e}");
                let (mantissa, exponent) = s.split_once('e').expect("Rust's {:e} has an e");
                let exponent: i32 = exponent.parse().expect("an integer exponent");
                let sign = if exponent < 0 { '-' } else { '+' };
                let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
                (
                    int.to_string(),
                    format!(".{frac}e{sign}{:02}", exponent.abs()),
                )
            })
            .collect()
    } else {
        values
            .iter()
            .map(|v| {
                let s = format!("{v:.PRECISION$}");
                let (int, _) = s.split_once('.').expect("fixed notation has a point");
                (int.to_string(), format!(".{}", trimmed_fraction(&s)))
            })
            .collect()
    };
    let left = parts.iter().map(|(i, _)| i.len()).max().unwrap_or(0);
    let right = parts.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
    let cells: Vec<String> = parts
        .iter()
        .map(|(int, frac)| format!("{int:>left$}{frac:<right$}"))
        .collect();
    format!("[{}]", cells.join(" "))
}

/// The digits after the point of `s` (fixed or `{:e}` notation), trailing
/// zeros removed.
fn trimmed_fraction(s: &str) -> &str {
    let mantissa = s.split('e').next().unwrap_or(s);
    let fraction = mantissa.split_once('.').map_or("", |(_, f)| f);
    fraction.trim_end_matches('0')
}

/// numpy's `str()` of a 1-D integer array: `[0 1 1]`.
pub fn int_array_str(values: &[i64]) -> String {
    let cells: Vec<String> = values.iter().map(i64::to_string).collect();
    let width = cells.iter().map(String::len).max().unwrap_or(0);
    let cells: Vec<String> = cells.iter().map(|c| format!("{c:>width$}")).collect();
    format!("[{}]", cells.join(" "))
}

/// Python 2's `str(float)`, `'%.12g'`: 12 significant digits, trailing zeros
/// dropped, scientific below 1e-4 and from 1e12 up (`2.2232446644e-13`).
pub fn py2_str(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v:?}");
    }
    let s = format!("{v:.11e}");
    let (mantissa, exponent) = s.split_once('e').expect("Rust's {:e} has an e");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    if !(-4..12).contains(&exponent) {
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let decimals = (11 - exponent).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A value on a graph or in a table: 10 significant digits, trailing zeros
/// dropped, so float noise such as 1.1 * 3 = 3.3000000000000003 prints as
/// the book's text prints it (3.3).
pub fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (9 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expected string is what numpy 2.4 prints for the same values.
    #[test]
    fn arrays_print_as_numpy_prints_them() {
        let cases: &[(&[f64], &str)] = &[
            (
                &[0.26894142136999, 0.7310585786300049, 0.8807970779778823],
                "[0.26894142 0.73105858 0.88079708]",
            ),
            (
                &[0.01821127329554753, 0.24519181293507392, 0.7365969137693786],
                "[0.01821127 0.24519181 0.73659691]",
            ),
            (&[0.0, 4.000000000004], "[0. 4.]"),
            (&[6.000000000012662, 0.0], "[6. 0.]"),
            (
                &[-25898374737328.363, -1295248616896.5398],
                "[-2.58983747e+13 -1.29524862e+12]",
            ),
            (
                &[-2.999999939999995, 3.9999999199999934],
                "[-2.99999994  3.99999992]",
            ),
            (
                &[0.6262493703990729, 0.7710106968556123],
                "[0.62624937 0.7710107 ]",
            ),
            (&[0.5, 0.25], "[0.5  0.25]"),
            (&[-1e-5, 3.0], "[-1.e-05  3.e+00]"),
            (&[1.0, 2.0, 3.5], "[1.  2.  3.5]"),
            (&[1e8, 1.0], "[1.e+08 1.e+00]"),
            (&[123456.789, 1.5], "[1.23456789e+05 1.50000000e+00]"),
        ];
        for (values, want) in cases {
            assert_eq!(array_str(values), *want, "{values:?}");
        }
        assert_eq!(int_array_str(&[0, 1, 1]), "[0 1 1]");
        assert_eq!(int_array_str(&[-1, 10]), "[-1 10]");
    }

    #[test]
    fn python_2_floats_and_short_values() {
        assert_eq!(py2_str(2.2232446644031597e-13), "2.2232446644e-13");
        assert_eq!(py2_str(1.1945999745e-10), "1.1945999745e-10");
        assert_eq!(py2_str(0.5), "0.5");
        assert_eq!(py2_str(123.456), "123.456");
        assert_eq!(py2_str(0.1 + 0.2), "0.3");
        assert_eq!(short(1.1 * 3.0), "3.3");
        assert_eq!(short(650.0 * 1.1), "715");
        assert_eq!(short(1.1 * 100.0), "110");
        assert_eq!(short(2.2), "2.2");
        assert_eq!(short(0.000123456), "0.000123456");
    }
}
