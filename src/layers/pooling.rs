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
use crate::tensor::simd::Simd;
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

/// Whether the window is the 2x2, stride-2 one without padding
/// (SimpleConvNet and DeepConvNet), which has its own vector path.
fn is_2x2(g: &Geometry) -> bool {
    g.stride == 2 && g.fh == 2 && g.fw == 2 && g.pad == 0
}

/// Groups of [`Simd::LANES`] windows per output row of the 2x2 path.
fn groups<T: Float>(ow: usize) -> usize {
    ow.div_ceil(<T::Vector as Simd<T>>::LANES)
}

/// What forward keeps per plane to send the gradient back: for the 2x2
/// path two masks per group of windows (see [`pool_plane_2x2`]), else one
/// position per output.
fn kept_per_plane<T: Float>(g: &Geometry) -> usize {
    match is_2x2(g) {
        true => g.oh * 2 * groups::<T>(g.ow),
        false => g.oh * g.ow,
    }
}

/// Where pooling writes which input of each window won: the layer's
/// `arg_max` in forward, nowhere in inference.
trait Winners {
    /// The general path: output `i`'s maximum came from position `at` of
    /// the plane.
    fn set(&mut self, i: usize, at: usize);

    /// The 2x2 path's masks for output row `oy` (`2·groups` of them);
    /// `None` where nothing is kept.
    fn row(&mut self, oy: usize, groups: usize) -> Option<&mut [u32]>;
}

impl Winners for &mut [u32] {
    #[inline(always)]
    fn set(&mut self, i: usize, at: usize) {
        self[i] = at as u32;
    }

    #[inline(always)]
    fn row(&mut self, oy: usize, groups: usize) -> Option<&mut [u32]> {
        Some(&mut self[2 * oy * groups..2 * (oy + 1) * groups])
    }
}

/// Inference keeps no positions: backward never follows.
#[derive(Clone, Copy)]
struct Forget;

impl Winners for Forget {
    #[inline(always)]
    fn set(&mut self, _i: usize, _at: usize) {}

    #[inline(always)]
    fn row(&mut self, _oy: usize, _groups: usize) -> Option<&mut [u32]> {
        None
    }
}

/// Pools every plane of `x` into `out` (sized for it), each plane's
/// winners going to the next of `winners`.
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
        match is_2x2(g) {
            true => pool_plane_2x2(xp, g, yp, arg),
            false => pool_plane_general(xp, g, yp, arg),
        }
    }
}

/// The input rows (or columns) of window `o` along one axis: `o·S - P ..
/// o·S - P + window`, clipped to `0..len`. Never empty when `pad < window`.
fn window(o: usize, g_stride: usize, pad: usize, window: usize, len: usize) -> (usize, usize) {
    let start = o * g_stride;
    (start.saturating_sub(pad), (start + window - pad).min(len))
}

/// Max pooling of one `H x W` plane into `OH x OW` outputs, any window,
/// stride and padding: the plain loop, telling `arg` where each maximum
/// came from. The first of equal maxima wins, as numpy's argmax.
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

/// The 2x2, stride 2 case, a vector of windows at a time: each row's pair
/// first (the right one where above the left), then the rows (the lower
/// where above the upper), so that the first maximum in reading order wins
/// as in [`pool_plane_general`], which it is tested against. Per group of
/// windows it keeps two masks: `right` (the winner is in the right column)
/// and `lower` (in the lower row).
fn pool_plane_2x2<T: Float>(x: &[T], g: &Geometry, y: &mut [T], mut arg: impl Winners) {
    let lanes = <T::Vector as Simd<T>>::LANES;
    let (w, ow, groups) = (g.w, g.ow, groups::<T>(g.ow));
    for (oy, out) in y.chunks_exact_mut(ow).enumerate() {
        let top = &x[2 * oy * w..][..2 * ow];
        let bottom = &x[(2 * oy + 1) * w..][..2 * ow];
        let mut kept = arg.row(oy, groups);
        for k in 0..groups {
            let (ox, pairs) = (k * lanes, (ow - k * lanes).min(lanes));
            // SAFETY: pairs ≤ ow - ox, so the 2·pairs values from 2·ox lie
            // within the rows' 2·ow, and the stores within `out`.
            unsafe {
                let (t0, t1) = T::Vector::load_pairs(top.as_ptr().add(2 * ox), pairs);
                let (b0, b1) = T::Vector::load_pairs(bottom.as_ptr().add(2 * ox), pairs);
                let (up_right, low_right) = (t1.gt(t0), b1.gt(b0));
                let upper = T::Vector::select(up_right, t1, t0);
                let lower_v = T::Vector::select(low_right, b1, b0);
                let lower = lower_v.gt(upper);
                let best = T::Vector::select(lower, lower_v, upper);
                let dst = out.as_mut_ptr().add(ox);
                match pairs == lanes {
                    true => best.store(dst),
                    false => best.store_selected((1u32 << pairs) - 1, dst),
                }
                if let Some(kept) = kept.as_deref_mut() {
                    kept[2 * k] = (lower & low_right) | (!lower & up_right);
                    kept[2 * k + 1] = lower;
                }
            }
        }
    }
}

/// Backward of [`pool_plane_2x2`] for one plane: each window's `dout` to
/// the input its masks name, zeros to the other three (and to the inputs
/// no window covers, a last odd row or column).
fn unpool_plane_2x2<T: Float>(dout: &[T], kept: &[u32], g: &Geometry, dx: &mut [T]) {
    let lanes = <T::Vector as Simd<T>>::LANES;
    let (w, ow, groups) = (g.w, g.ow, groups::<T>(g.ow));
    if 2 * ow != w || 2 * g.oh != g.h {
        dx.fill(T::zero());
    }
    let zero = T::Vector::splat(T::zero());
    assert!(dx.len() >= 2 * g.oh * w && kept.len() >= 2 * g.oh * groups);
    let base = dx.as_mut_ptr();
    for (oy, d) in dout.chunks_exact(ow).enumerate() {
        for k in 0..groups {
            let (ox, pairs) = (k * lanes, (ow - k * lanes).min(lanes));
            let (right, lower) = (kept[2 * (oy * groups + k)], kept[2 * (oy * groups + k) + 1]);
            // SAFETY: as in `pool_plane_2x2`: pairs ≤ ow - ox, the 2·pairs
            // inputs from 2·ox within each of the window's rows.
            unsafe {
                let v = zero.load_merge((1u32 << pairs) - 1, d.as_ptr().add(ox));
                let sel = |m: u32| T::Vector::select(m, v, zero);
                let row = |r: usize| base.add((2 * oy + r) * w + 2 * ox);
                T::Vector::store_pairs(sel(!lower & !right), sel(!lower & right), row(0), pairs);
                T::Vector::store_pairs(sel(lower & !right), sel(lower & right), row(1), pairs);
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
        let kept = kept_per_plane::<T>(&g);
        self.arg_max.resize(s[0] * s[1] * kept, 0);
        let winners = self.arg_max.chunks_exact_mut(kept.max(1));
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
        let g = self.geometry(&self.x_shape);
        let kept = kept_per_plane::<T>(&g);
        // Plane by plane, so that each is cleared and filled while in cache.
        for ((dxp, dp), ap) in self
            .dx
            .data_mut()
            .chunks_exact_mut(plane)
            .zip(dout.data().chunks_exact(out_plane))
            .zip(self.arg_max.chunks_exact(kept))
        {
            if is_2x2(&g) {
                unpool_plane_2x2(dp, ap, &g, dxp);
                continue;
            }
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

    /// The input position of each 2x2 window's winner, from its masks.
    fn winner_positions<T: Float>(kept: &[u32], g: &Geometry) -> Vec<u32> {
        let (lanes, groups) = (<T::Vector as Simd<T>>::LANES, groups::<T>(g.ow));
        let mut at = Vec::new();
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let m = 2 * (oy * groups + ox / lanes);
                let bit = |v: u32| (v >> (ox % lanes) & 1) as usize;
                let (right, lower) = (bit(kept[m]), bit(kept[m + 1]));
                at.push(((2 * oy + lower) * g.w + 2 * ox + right) as u32);
            }
        }
        at
    }

    fn fast_2x2_agrees<T: Float>() {
        // Ties and negative values: the first maximum must win in both; rows
        // of 3 windows and of 21 (more than a vector, the last group part
        // of one), odd sizes.
        let v = [
            -1.0, -1.0, 3.0, 0.5, -1.0, 2.0, 3.0, 3.0, 4.0, -2.0, 1.0, 1.0, 0.0, -0.0, 5.0,
        ];
        for (h, w) in [(5, 6), (7, 43), (4, 32)] {
            let x: Vec<T> = v.iter().cycle().take(h * w).map(|&v| T::of(v)).collect();
            let g = Geometry::new([1, h, w], (2, 2), 2, 0).unwrap();
            let outs = g.oh * g.ow;
            let (mut y1, mut kept) = (vec![T::zero(); outs], vec![0u32; kept_per_plane::<T>(&g)]);
            let (mut y2, mut a2) = (vec![T::zero(); outs], vec![0u32; outs]);
            pool_plane_2x2(&x, &g, &mut y1, &mut kept[..]);
            pool_plane_general(&x, &g, &mut y2, &mut a2[..]);
            assert_eq!(y1, y2, "{h}x{w} in {}", T::NAME);
            assert_eq!(
                winner_positions::<T>(&kept, &g),
                a2,
                "{h}x{w} in {}",
                T::NAME
            );
        }
    }

    #[test]
    fn fast_2x2_path_agrees_with_the_general_loop_including_ties() {
        fast_2x2_agrees::<f64>();
        fast_2x2_agrees::<f32>();
    }

    #[test]
    fn backward_sends_each_gradient_to_its_window_maximum() {
        // Odd height and width: the last row and column belong to no window.
        let x = distinct_inputs(&[2, 3, 7, 9], 0.01, 5);
        let mut pool = MaxPooling::new(2, 2, 2, 0);
        pool.forward(&x, true);
        let dout = distinct_inputs(&[2, 3, 3, 4], 0.1, 6);
        let fast = pool.backward(&dout).clone();
        let g = pool.geometry(x.shape());
        let (plane, out_plane, kept) = (7 * 9, 3 * 4, kept_per_plane::<f64>(&g));
        let mut want = vec![0.0; x.len()];
        for (p, (d, k)) in dout
            .data()
            .chunks(out_plane)
            .zip(pool.arg_max.chunks(kept))
            .enumerate()
        {
            for (&d, a) in d.iter().zip(winner_positions::<f64>(k, &g)) {
                want[p * plane + a as usize] += d;
            }
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
