//! Max pooling: each channel of an `(N, C, H, W)` input is cut into windows of
//! `PH x PW` moved by a stride, and each window gives its largest value:
//!
//! `y[n, c, oy, ox] = max_{i,j} x[n, c, oy·S + i - P, ox·S + j - P]`,
//! `OH = (H + 2P - PH) / S + 1`, `OW = (W + 2P - PW) / S + 1`.
//!
//! Backward: the max is the only input each output depends on, so
//! `dout[n, c, oy, ox]` goes to the position of that window's maximum and
//! every other position gets nothing (overlapping windows add up).
//!
//! Padding never wins: padded positions are left out of the window, as in
//! PyTorch's `MaxPool2d`. (The textbook pads with zeros through im2col, which
//! would clip negative inputs to 0 at the border.) The padding must be smaller
//! than the window, so every window holds at least one real pixel.
//!
//! ```
//! use backprop::layers::{Layer, MaxPooling};
//! use backprop::tensor::Tensor;
//! let mut pool = MaxPooling::new(2, 2, 2, 0);
//! let x = Tensor::from_vec(&[1, 1, 2, 4], vec![1.0f64, 5.0, 2.0, 0.0, 3.0, 4.0, 8.0, 7.0]).unwrap();
//! assert_eq!(pool.forward(&x, true).data(), &[5.0, 8.0]);
//! let dout = Tensor::from_vec(&[1, 1, 1, 2], vec![1.0, 2.0]).unwrap();
//! assert_eq!(pool.backward(&dout).data(), &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0]);
//! ```

use super::convolution::Geometry;
use super::{Layer, Scratch};
use crate::nets::LayerSpec;
use crate::tensor::{Float, Tensor};

#[derive(Clone)]
pub struct MaxPooling<T> {
    pub pool_h: usize,
    pub pool_w: usize,
    pub stride: usize,
    pub pad: usize,
    /// For each output, the index (within its `H x W` plane) of the input that
    /// won: backward sends the gradient there. Planes hold at most 2³² pixels.
    arg_max: Vec<u32>,
    /// The input's shape, which `dx` takes.
    x_shape: Vec<usize>,
    out: Tensor<T>,
    dx: Tensor<T>,
}

impl<T: Float> MaxPooling<T> {
    /// Windows of `pool_h x pool_w` moved by `stride` (at least 1), over an
    /// input padded by `pad` (smaller than the window) on every side.
    pub fn new(pool_h: usize, pool_w: usize, stride: usize, pad: usize) -> Self {
        assert!(
            pool_h >= 1 && pool_w >= 1 && stride >= 1,
            "MaxPooling: window {pool_h}x{pool_w} and stride {stride} must be at least 1"
        );
        assert!(
            pad < pool_h && pad < pool_w,
            "MaxPooling: padding {pad} must be smaller than the window {pool_h}x{pool_w}"
        );
        MaxPooling {
            pool_h,
            pool_w,
            stride,
            pad,
            arg_max: Vec::new(),
            x_shape: Vec::new(),
            out: Tensor::default(),
            dx: Tensor::default(),
        }
    }

    fn geometry(&self, s: &[usize]) -> Geometry {
        assert!(
            s.len() == 4,
            "MaxPooling forward: input {s:?} is not (N, C, H, W)"
        );
        let g = Geometry::new(
            [s[1], s[2], s[3]],
            (self.pool_h, self.pool_w),
            self.stride,
            self.pad,
        )
        .unwrap_or_else(|| {
            panic!(
                "MaxPooling forward: window {}x{} does not fit input {s:?}",
                self.pool_h, self.pool_w
            )
        });
        assert!(
            u32::try_from(g.h * g.w).is_ok(),
            "MaxPooling forward: plane {}x{} is too large",
            g.h,
            g.w
        );
        g
    }
}

/// Where pooling writes the position of each window's maximum within its
/// plane: the layer's `arg_max` in forward, nowhere in inference.
trait Winners {
    fn set(&mut self, i: usize, at: usize);

    /// The positions of output row `oy` (`ow` wide), for the 2x2 path to
    /// write a row at a time; `None` where nothing is kept.
    fn row(&mut self, oy: usize, ow: usize) -> Option<&mut [u32]>;
}

impl Winners for &mut [u32] {
    #[inline(always)]
    fn set(&mut self, i: usize, at: usize) {
        self[i] = at as u32;
    }

    #[inline(always)]
    fn row(&mut self, oy: usize, ow: usize) -> Option<&mut [u32]> {
        Some(&mut self[oy * ow..(oy + 1) * ow])
    }
}

/// Inference keeps no positions: backward never follows.
#[derive(Clone, Copy)]
struct Forget;

impl Winners for Forget {
    #[inline(always)]
    fn set(&mut self, _i: usize, _at: usize) {}

    #[inline(always)]
    fn row(&mut self, _oy: usize, _ow: usize) -> Option<&mut [u32]> {
        None
    }
}

/// Pools every plane of `x` into `out` (sized for it), each plane's
/// positions of maxima going to the next of `winners`.
fn pool_planes<T: Float, W: Winners>(
    x: &[T],
    g: &Geometry,
    out: &mut [T],
    winners: impl Iterator<Item = W>,
) {
    for ((xp, yp), arg) in x
        .chunks_exact(g.h * g.w)
        .zip(out.chunks_exact_mut(g.oh * g.ow))
        .zip(winners)
    {
        pool_plane(xp, g, yp, arg);
    }
}

/// The input rows (or columns) of window `o` along one axis: `o·S - P ..
/// o·S - P + window`, clipped to `0..len`. Never empty when `pad < window`.
fn window(o: usize, g_stride: usize, pad: usize, window: usize, len: usize) -> (usize, usize) {
    let start = o * g_stride;
    (start.saturating_sub(pad), (start + window - pad).min(len))
}

/// Max pooling of one `H x W` plane into `OH x OW` outputs, telling `arg`
/// where each maximum came from. The first of equal maxima wins, as numpy's
/// argmax.
fn pool_plane<T: Float>(x: &[T], g: &Geometry, y: &mut [T], arg: impl Winners) {
    if g.stride == 2 && g.fh == 2 && g.fw == 2 && g.pad == 0 {
        pool_plane_2x2(x, g, y, arg)
    } else {
        pool_plane_general(x, g, y, arg)
    }
}

/// Any window, stride and padding: the plain loop.
fn pool_plane_general<T: Float>(x: &[T], g: &Geometry, y: &mut [T], mut arg: impl Winners) {
    for oy in 0..g.oh {
        let (y0, y1) = window(oy, g.stride, g.pad, g.fh, g.h);
        for ox in 0..g.ow {
            let (x0, x1) = window(ox, g.stride, g.pad, g.fw, g.w);
            let mut best = y0 * g.w + x0;
            for r in y0..y1 {
                for c in x0..x1 {
                    if x[r * g.w + c] > x[best] {
                        best = r * g.w + c;
                    }
                }
            }
            y[oy * g.ow + ox] = x[best];
            arg.set(oy * g.ow + ox, best);
        }
    }
}

/// The larger of `a` and `b` with its position, `a` on a tie.
#[inline(always)]
fn first_max<T: Float>((a, at_a): (T, u32), (b, at_b): (T, u32)) -> (T, u32) {
    if b > a { (b, at_b) } else { (a, at_a) }
}

/// The 2x2, stride 2 case of [`pool_plane`] (SimpleConvNet and DeepConvNet),
/// branch-free so that it runs a vector of windows at a time; tested against
/// [`pool_plane_general`]. Each row's pair first, then the rows: the first
/// maximum in reading order still wins.
fn pool_plane_2x2<T: Float>(x: &[T], g: &Geometry, y: &mut [T], mut arg: impl Winners) {
    let (w, ow) = (g.w, g.ow);
    for (oy, out) in y.chunks_exact_mut(ow).enumerate() {
        let base = 2 * oy * w;
        let top = &x[base..base + 2 * ow];
        let bottom = &x[base + w..base + w + 2 * ow];
        let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
        let best = |(t, b): (&[T], &[T])| {
            let upper = first_max((t[0], 0), (t[1], 1));
            let lower = first_max((b[0], w as u32), (b[1], w as u32 + 1));
            first_max(upper, lower)
        };
        match arg.row(oy, ow) {
            Some(at) => {
                for (((o, a), win), ox) in out.iter_mut().zip(at).zip(windows).zip(0u32..) {
                    let (v, k) = best(win);
                    *o = v;
                    *a = base as u32 + 2 * ox + k;
                }
            }
            None => {
                for (o, win) in out.iter_mut().zip(windows) {
                    *o = best(win).0;
                }
            }
        }
    }
}

impl<T: Float> Layer<T> for MaxPooling<T> {
    fn name(&self) -> &'static str {
        "MaxPooling"
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::MaxPooling {
            pool_h: self.pool_h,
            pool_w: self.pool_w,
            stride: Some(self.stride),
            pad: self.pad,
        })
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let expected = || {
            format!(
                "(C, H, W) maps of at least {}x{} after padding {}",
                self.pool_h, self.pool_w, self.pad
            )
        };
        let &[c, h, w] = input else {
            return Err(expected());
        };
        let g = Geometry::new([c, h, w], (self.pool_h, self.pool_w), self.stride, self.pad)
            .ok_or_else(expected)?;
        Ok(vec![c, g.oh, g.ow])
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>, _scratch: &mut Scratch<T>) {
        let (s, g) = (x.shape(), self.geometry(x.shape()));
        out.resize(&[s[0], s[1], g.oh, g.ow]);
        pool_planes(x.data(), &g, out.data_mut(), std::iter::repeat(Forget));
    }

    fn has_infer(&self) -> bool {
        true
    }

    fn forward(&mut self, x: &Tensor<T>, _train: bool) -> &Tensor<T> {
        let (s, g) = (x.shape(), self.geometry(x.shape()));
        self.x_shape.clear();
        self.x_shape.extend_from_slice(s);
        self.out.resize(&[s[0], s[1], g.oh, g.ow]);
        self.arg_max.resize(self.out.len(), 0);
        let winners = self.arg_max.chunks_exact_mut(g.oh * g.ow);
        pool_planes(x.data(), &g, self.out.data_mut(), winners);
        &self.out
    }

    fn backward(&mut self, dout: &Tensor<T>) -> &Tensor<T> {
        assert_eq!(
            dout.shape(),
            self.out.shape(),
            "MaxPooling backward: dout {:?}, output was {:?}",
            dout.shape(),
            self.out.shape()
        );
        self.dx.resize(&self.x_shape);
        let plane: usize = self.x_shape.iter().skip(2).product();
        let out_plane: usize = self.out.shape().iter().skip(2).product();
        if plane == 0 || out_plane == 0 {
            self.dx.fill(T::zero());
            return &self.dx;
        }
        // Plane by plane, so that each is cleared and filled while in cache.
        for ((dxp, dp), ap) in self
            .dx
            .data_mut()
            .chunks_exact_mut(plane)
            .zip(dout.data().chunks_exact(out_plane))
            .zip(self.arg_max.chunks_exact(out_plane))
        {
            dxp.fill(T::zero());
            for (&d, &a) in dp.iter().zip(ap) {
                dxp[a as usize] += d;
            }
        }
        &self.dx
    }

    fn output(&self) -> &Tensor<T> {
        &self.out
    }

    fn grad_input(&self) -> &Tensor<T> {
        &self.dx
    }

    fn box_clone(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::infers_as_forward;
    use super::*;
    use crate::gradcheck::{check_layer, distinct_inputs};

    /// The definition: every window's max over its in-bounds pixels.
    fn naive_max_pool(x: &Tensor<f64>, ph: usize, pw: usize, s: usize, p: usize) -> Tensor<f64> {
        let [n, c, h, w] = x.shape().try_into().unwrap();
        let (oh, ow) = ((h + 2 * p - ph) / s + 1, (w + 2 * p - pw) / s + 1);
        let mut y = Tensor::zeros(&[n, c, oh, ow]);
        for k in 0..n * c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut m = f64::NEG_INFINITY;
                    for i in 0..ph {
                        for j in 0..pw {
                            let (r, q) = (
                                (oy * s + i) as isize - p as isize,
                                (ox * s + j) as isize - p as isize,
                            );
                            if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                                m = m.max(x.data()[k * h * w + r as usize * w + q as usize]);
                            }
                        }
                    }
                    y.data_mut()[(k * oh + oy) * ow + ox] = m;
                }
            }
        }
        y
    }

    /// (input shape, pool h, pool w, stride, pad): the nets' 2x2/2 (fast
    /// path, with an odd size that drops the last row), overlapping windows,
    /// padding, non-square windows and inputs.
    const CASES: &[([usize; 4], usize, usize, usize, usize)] = &[
        ([2, 3, 6, 4], 2, 2, 2, 0),
        ([1, 2, 7, 5], 2, 2, 2, 0),
        ([2, 2, 5, 6], 3, 3, 1, 0),
        ([1, 3, 7, 7], 3, 3, 2, 1),
        ([2, 1, 6, 9], 2, 3, 2, 1),
        ([1, 2, 5, 4], 3, 2, 3, 0),
    ];

    #[test]
    fn forward_matches_naive_pooling() {
        for (k, &(xs, ph, pw, s, p)) in CASES.iter().enumerate() {
            let x = distinct_inputs(&xs, 0.01, k as u64);
            let want = naive_max_pool(&x, ph, pw, s, p);
            let mut pool = MaxPooling::new(ph, pw, s, p);
            assert_eq!(pool.forward(&x, true), &want, "case {k}");
            let mut scratch = Scratch::default();
            assert!(infers_as_forward(&mut pool, &x, &mut scratch), "case {k}");
        }
    }

    #[test]
    fn fast_2x2_path_agrees_with_the_general_loop_including_ties() {
        // Ties and negative values: the first maximum must win in both.
        let v = [
            -1.0, -1.0, 3.0, 0.5, -1.0, 2.0, 3.0, 3.0, 4.0, -2.0, 1.0, 1.0,
        ];
        let x: Vec<f64> = v.iter().cycle().take(5 * 6).copied().collect();
        let g = Geometry::new([1, 5, 6], (2, 2), 2, 0).unwrap();
        let (mut y1, mut a1) = (vec![0.0; 6], vec![0u32; 6]);
        let (mut y2, mut a2) = (vec![0.0; 6], vec![0u32; 6]);
        pool_plane_2x2(&x, &g, &mut y1, &mut a1[..]);
        pool_plane_general(&x, &g, &mut y2, &mut a2[..]);
        assert_eq!((y1, a1), (y2, a2));
    }

    #[test]
    fn backward_sends_each_gradient_to_its_window_maximum() {
        // Odd height and width: the last row and column belong to no window.
        let x = distinct_inputs(&[2, 3, 7, 9], 0.01, 5);
        let mut pool = MaxPooling::new(2, 2, 2, 0);
        pool.forward(&x, true);
        let dout = distinct_inputs(&[2, 3, 3, 4], 0.1, 6);
        let fast = pool.backward(&dout).clone();
        let (plane, out_plane) = (7 * 9, 3 * 4);
        let mut want = vec![0.0; x.len()];
        for (k, (&d, &a)) in dout.data().iter().zip(&pool.arg_max).enumerate() {
            want[k / out_plane * plane + a as usize] += d;
        }
        assert_eq!(fast.data(), &want[..]);
    }

    #[test]
    fn gradient_check_over_windows_strides_and_paddings() {
        for (k, &(xs, ph, pw, s, p)) in CASES.iter().enumerate() {
            let x = distinct_inputs(&xs, 0.01, 10 + k as u64);
            let mut pool = MaxPooling::new(ph, pw, s, p);
            let report = check_layer(&mut pool, &x, 20 + k as u64);
            assert!(report.passed(1e-6), "case {k}\n{report}");
        }
    }

    #[test]
    fn overlapping_windows_add_their_gradients() {
        // 3x3 windows, stride 1: the centre 9 is the max of all four windows.
        let mut x = vec![0.0; 16];
        x[5] = 9.0;
        let x = Tensor::from_vec(&[1, 1, 4, 4], x).unwrap();
        let mut pool = MaxPooling::new(3, 3, 1, 0);
        assert_eq!(pool.forward(&x, true).data(), &[9.0; 4]);
        let dout = Tensor::from_vec(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(pool.backward(&dout).data()[5], 10.0);
        assert_eq!(pool.grad_input().data().iter().sum::<f64>(), 10.0);
    }
}
