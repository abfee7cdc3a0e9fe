//! MNIST-style preprocessing of any picture of a single digit, as LeCun et al.
//! made MNIST: light ink on a dark background, the digit scaled (keeping its
//! aspect) to fit a 20x20 box, then placed in a 28x28 field so that its centre
//! of mass is at the centre.
//!
//! Steps: the background level is the median of the border pixels; if it is
//! light the picture is inverted; ink = grey level above the background,
//! stretched so the darkest stroke is 1; cropped to the pixels with at least
//! [`INK`] of that; resized (triangle filter, which averages when shrinking);
//! shifted by whole pixels to centre the mass.
//!
//! ```
//! use backprop::predict::preprocess::{SIDE, mnist_like};
//! // A black bar on a white 40x60 picture: a "1".
//! let (w, h) = (40, 60);
//! let gray: Vec<f32> = (0..w * h)
//!     .map(|i| if (18..22).contains(&(i % w)) && (10..50).contains(&(i / w)) { 0.0 } else { 255.0 })
//!     .collect();
//! let x = mnist_like(&gray, w, h).unwrap();
//! assert_eq!(x.len(), SIDE * SIDE);
//! assert!(x[14 * SIDE + 14] > 0.5 && x[0] == 0.0); // bright ink in the middle, dark corner
//! ```

use image::{ImageBuffer, Luma, imageops};

/// The output is `SIDE x SIDE`; the digit fits in `BOX x BOX`.
pub const SIDE: usize = 28;
pub const BOX: usize = 20;

/// Share of the strongest ink that counts as ink when cropping: keeps JPEG
/// ringing and paper grain from widening the crop.
pub const INK: f32 = 0.2;

/// Grey levels (of 255) the ink must stand out from the background by.
const MIN_CONTRAST: f32 = 32.0;

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    #[error("the image has {got} pixel values, but {width}x{height} needs {}", width.saturating_mul(*height))]
    Size {
        width: usize,
        height: usize,
        got: usize,
    },
    #[error("the image is empty ({width}x{height})")]
    Empty { width: usize, height: usize },
    #[error(
        "no digit found: the image is blank (ink stands out by {contrast:.0} of 255 grey levels, at least {MIN_CONTRAST} needed)"
    )]
    Blank { contrast: f32 },
}

fn median(mut v: Vec<f32>) -> f32 {
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// Turns grey levels `gray` (0 black ... 255 white, row-major `width x height`)
/// into `SIDE * SIDE` inputs in `[0, 1]`, ink bright.
pub fn mnist_like(gray: &[f32], width: usize, height: usize) -> Result<Vec<f32>, PreprocessError> {
    if width.checked_mul(height) != Some(gray.len()) {
        return Err(PreprocessError::Size {
            width,
            height,
            got: gray.len(),
        });
    }
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty { width, height });
    }
    let border: Vec<f32> = (0..width * height)
        .filter(|i| {
            let (x, y) = (i % width, i / width);
            x == 0 || y == 0 || x + 1 == width || y + 1 == height
        })
        .map(|i| gray[i])
        .collect();
    let mut background = median(border);
    let light = background > 127.5;
    if light {
        background = 255.0 - background;
    }
    let mut ink: Vec<f32> = gray
        .iter()
        .map(|&v| {
            let v = if light { 255.0 - v } else { v };
            (v - background).max(0.0)
        })
        .collect();
    let peak = ink.iter().copied().fold(0.0, f32::max);
    if peak < MIN_CONTRAST {
        return Err(PreprocessError::Blank { contrast: peak });
    }
    for v in &mut ink {
        *v /= peak;
    }

    // Crop to the ink.
    let (mut x0, mut y0, mut x1, mut y1) = (width, height, 0, 0);
    for (i, &v) in ink.iter().enumerate() {
        if v >= INK {
            let (x, y) = (i % width, i / width);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
        }
    }
    let (cw, ch) = (x1 - x0, y1 - y0);
    let crop: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_fn(cw as u32, ch as u32, |x, y| {
            Luma([ink[(y0 + y as usize) * width + x0 + x as usize]])
        });

    // Longer side to BOX, keeping the aspect ratio.
    let scale = BOX as f64 / cw.max(ch) as f64;
    let nw = ((cw as f64 * scale).round() as u32).clamp(1, BOX as u32);
    let nh = ((ch as f64 * scale).round() as u32).clamp(1, BOX as u32);
    let small = imageops::resize(&crop, nw, nh, imageops::FilterType::Triangle);

    // Centre of mass to pixel (14, 14): measured over the MNIST test set, the
    // mean centre of mass in pixel indices is (14.01, 13.99).
    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y, p) in small.enumerate_pixels() {
        let v = f64::from(p[0].max(0.0));
        mass += v;
        mx += v * f64::from(x);
        my += v * f64::from(y);
    }
    let half = (SIDE / 2) as f64;
    let (ox, oy) = if mass > 0.0 {
        (
            (half - mx / mass).round() as i64,
            (half - my / mass).round() as i64,
        )
    } else {
        (
            (SIDE as i64 - i64::from(nw)) / 2,
            (SIDE as i64 - i64::from(nh)) / 2,
        )
    };
    let mut out = vec![0.0f32; SIDE * SIDE];
    for (x, y, p) in small.enumerate_pixels() {
        let (tx, ty) = (i64::from(x) + ox, i64::from(y) + oy);
        if (0..SIDE as i64).contains(&tx) && (0..SIDE as i64).contains(&ty) {
            out[ty as usize * SIDE + tx as usize] = p[0].clamp(0.0, 1.0);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ellipse ring ("0") of grey `ink` on `paper`, `w x h`.
    fn ring(w: usize, h: usize, ink: f32, paper: f32) -> Vec<f32> {
        let (cx, cy) = (w as f32 * 0.4, h as f32 * 0.55);
        let (rx, ry) = (w as f32 * 0.2, h as f32 * 0.3);
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let r = ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2);
                if (0.7..1.3).contains(&r) { ink } else { paper }
            })
            .collect()
    }

    fn bbox(x: &[f32]) -> (usize, usize, usize, usize) {
        let on: Vec<(usize, usize)> = (0..x.len())
            .filter(|&i| x[i] > 0.05)
            .map(|i| (i % SIDE, i / SIDE))
            .collect();
        let xs = on.iter().map(|p| p.0);
        let ys = on.iter().map(|p| p.1);
        (
            xs.clone().min().unwrap(),
            ys.clone().min().unwrap(),
            xs.max().unwrap() + 1,
            ys.max().unwrap() + 1,
        )
    }

    #[test]
    fn fits_the_box_and_centres_the_mass() {
        let x = mnist_like(&ring(300, 200, 10.0, 240.0), 300, 200).unwrap();
        let (x0, y0, x1, y1) = bbox(&x);
        assert!(
            x1 - x0 <= BOX + 1 && y1 - y0 <= BOX + 1,
            "{x0} {y0} {x1} {y1}"
        );
        // Taller than wide: the height takes the whole box.
        assert!(y1 - y0 >= BOX - 1, "{y0} {y1}");
        let mass: f32 = x.iter().sum();
        let cx: f32 = x
            .iter()
            .enumerate()
            .map(|(i, v)| v * (i % SIDE) as f32)
            .sum::<f32>()
            / mass;
        let cy: f32 = x
            .iter()
            .enumerate()
            .map(|(i, v)| v * (i / SIDE) as f32)
            .sum::<f32>()
            / mass;
        assert!(
            (cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5,
            "{cx} {cy}"
        );
        assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn polarity_does_not_matter() {
        let dark_on_light = mnist_like(&ring(90, 120, 0.0, 255.0), 90, 120).unwrap();
        let light_on_dark = mnist_like(&ring(90, 120, 255.0, 0.0), 90, 120).unwrap();
        assert_eq!(dark_on_light, light_on_dark);
        // Grey paper and grey ink give the same shape, stretched to full strength.
        let grey = mnist_like(&ring(90, 120, 60.0, 200.0), 90, 120).unwrap();
        let diff = grey
            .iter()
            .zip(&dark_on_light)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn an_mnist_digit_is_almost_unchanged() {
        // A digit already preprocessed like MNIST: 20 high, its centre of
        // mass at (14.05, 13.95), which rounds to the target pixel (14, 14).
        let mut img = vec![0.0f32; SIDE * SIDE];
        for y in 4..24 {
            img[y * SIDE + 14] = 255.0;
        }
        img[23 * SIDE + 15] = 255.0;
        let x = mnist_like(&img, SIDE, SIDE).unwrap();
        let same = x
            .iter()
            .zip(&img)
            .filter(|(a, b)| (**a - **b / 255.0).abs() < 1e-6)
            .count();
        assert_eq!(same, SIDE * SIDE);
    }

    #[test]
    fn blank_and_malformed_inputs_are_errors() {
        assert!(matches!(
            mnist_like(&[200.0; 100], 10, 10),
            Err(PreprocessError::Blank { .. })
        ));
        assert_eq!(
            mnist_like(&[0.0; 5], 2, 3),
            Err(PreprocessError::Size {
                width: 2,
                height: 3,
                got: 5
            })
        );
        assert_eq!(
            mnist_like(&[], 0, 5),
            Err(PreprocessError::Empty {
                width: 0,
                height: 5
            })
        );
        // A single dot is ink, not an error.
        let mut dot = vec![255.0f32; 49];
        dot[24] = 0.0;
        let x = mnist_like(&dot, 7, 7).unwrap();
        assert!(x.iter().any(|&v| v > 0.5));
    }
}
