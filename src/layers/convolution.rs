//! Convolution: `FN` filters of shape `(C, FH, FW)` slide over an input of
//! shape `(N, C, H, W)` with a stride and zero padding, giving `(N, FN, OH, OW)`:
//!
//! `y[n, f, oy, ox] = b[f] + Σ_{c,i,j} W[f, c, i, j] · x[n, c, oy·S + i - P, ox·S + j - P]`
//! with `OH = (H + 2P - FH) / S + 1` and `OW = (W + 2P - FW) / S + 1`.
//!
//! Two algorithms compute it, tested against each other and against the sum
//! written out loop by loop, forward and backward, in f64 and f32:
//!
//! - [`Algorithm::Direct`], the default: the kernels of
//!   [`conv_kernels`](super::conv_kernels) run the filters over the padded
//!   image itself, an implicit im2col, with register-blocked AVX-512
//!   micro-kernels; at DeepConvNet's shapes they reach 150-180 GFLOP/s on
//!   one core, 3-4 times the im2col path (see the README's "How it is fast").
//! - [`Algorithm::Im2col`], the textbook's way and the readable reference:
//!   im2col turns the sum into a matrix product. Per image, `col` is
//!   `(C·FH·FW, OH·OW)`: row `(c, i, j)` holds the input pixels that filter
//!   tap `(c, i, j)` meets at each output position. Then, with `W` seen as
//!   the `(FN, C·FH·FW)` matrix it is stored as,
//!   - forward: `y_n = W · col_n + b` (already in `(FN, OH·OW)` layout),
//!   - backward: `dW = Σ_n dout_n · col_nᵀ`, `db = Σ dout`, `dcol_n = Wᵀ · dout_n`,
//!     and col2im adds `dcol_n` back onto the pixels it came from.
//!
//!   Unlike the textbook, which builds one `(N·OH·OW, C·FH·FW)` matrix for
//!   the batch, this works image by image and rebuilds each image's columns
//!   in backward from the cached input, so the memory does not grow with the
//!   batch (DeepConvNet's second layer on 500 images would need 225 MB).
//!
//! In inference (`train` false) the direct path keeps nothing for backward.
//!
//! `W` is `[FN, C, FH, FW]`, the layout of PyTorch's `Conv2d.weight`.
//!
//! ```
//! use backprop::layers::{Convolution, Layer};
//! use backprop::tensor::Tensor;
//! // One 2x2 filter of ones, no padding, stride 1: sums of 2x2 windows.
//! let w = Tensor::from_vec(&[1, 1, 2, 2], vec![1.0f64; 4]).unwrap();
//! let b = Tensor::from_vec(&[1], vec![0.5]).unwrap();
//! let mut conv = Convolution::from_params(w, b, 1, 0);
//! let x = Tensor::from_vec(&[1, 1, 2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
//! let y = conv.forward(&x, true);
//! assert_eq!(y.shape(), &[1, 1, 1, 2]);
//! assert_eq!(y.data(), &[12.5, 16.5]);
//! ```

use super::conv_kernels::{
    DoutLayout, Images, Output, Plan, Positions, correlate, correlate_weights,
    correlate_weights_outer, pack_filters, rounded,
};
use super::relu::{relu, relu_derivative};
use super::winograd::{self, Winograd};
use super::{Layer, Param, ParamMut, Params, ParamsMut, Scratch, activation_backward, smallvec};
use crate::nets::LayerSpec;
use crate::tensor::{Float, Tensor, matmul};

/// Output length of a sliding window of `window` over `input` elements padded
/// by `pad` on both sides, moved by `stride`; `None` when the window does not
/// fit, the stride is zero or the padded length overflows (a checkpoint's
/// padding is not trusted).
pub fn output_size(input: usize, window: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = pad.checked_mul(2)?.checked_add(input)?;
    if stride == 0 || window == 0 || window > padded {
        return None;
    }
    Some((padded - window) / stride + 1)
}

/// The sizes of one image's im2col: input `(C, H, W)`, window `(FH, FW)`,
/// stride, padding and output `(OH, OW)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub fh: usize,
    pub fw: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geometry {
    /// `None` when the window does not fit into the padded input.
    pub fn new(
        [c, h, w]: [usize; 3],
        (fh, fw): (usize, usize),
        stride: usize,
        pad: usize,
    ) -> Option<Self> {
        Some(Geometry {
            c,
            h,
            w,
            fh,
            fw,
            stride,
            pad,
            oh: output_size(h, fh, stride, pad)?,
            ow: output_size(w, fw, stride, pad)?,
        })
    }

    /// Rows of an image's column matrix: `C·FH·FW`.
    pub fn col_rows(&self) -> usize {
        self.c * self.fh * self.fw
    }

    /// Columns of an image's column matrix: `OH·OW`.
    pub fn col_cols(&self) -> usize {
        self.oh * self.ow
    }

    /// The output positions `ox` whose input column `ox·S + j - P` lies inside
    /// `0..W`, for filter column `j`; outside it the padding is zero.
    fn valid_ox(&self, j: usize) -> std::ops::Range<usize> {
        let (s, p) = (self.stride, self.pad);
        let lo = if p > j { (p - j).div_ceil(s) } else { 0 };
        let hi = if self.w + p > j {
            (self.w + p - j).div_ceil(s).min(self.ow)
        } else {
            0
        };
        lo.min(hi)..hi
    }

    /// The input row for output row `oy` and filter row `i`, if not padding.
    fn input_row(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.stride + i)
            .checked_sub(self.pad)
            .filter(|&y| y < self.h)
    }
}

/// im2col for one image: `x` is `(C, H, W)`, `col` is `(C·FH·FW, OH·OW)` with
/// `col[(c·FH + i)·FW + j][oy·OW + ox] = x[c][oy·S + i - P][ox·S + j - P]`,
/// zero where that falls into the padding. With stride 1 each output row is
/// one contiguous copy of an input row.
pub fn im2col<T: Float>(x: &[T], g: &Geometry, col: &mut [T]) {
    let (plane, cols) = (g.h * g.w, g.col_cols());
    debug_assert_eq!(x.len(), g.c * plane);
    debug_assert_eq!(col.len(), g.col_rows() * cols);
    let mut rows = col.chunks_exact_mut(cols);
    for c in 0..g.c {
        let xc = &x[c * plane..(c + 1) * plane];
        for i in 0..g.fh {
            for j in 0..g.fw {
                let row = rows.next().expect("col has C·FH·FW rows");
                let valid = g.valid_ox(j);
                for (oy, dst) in row.chunks_exact_mut(g.ow).enumerate() {
                    let Some(y) = g.input_row(oy, i) else {
                        dst.fill(T::zero());
                        continue;
                    };
                    let src = &xc[y * g.w..(y + 1) * g.w];
                    dst[..valid.start].fill(T::zero());
                    dst[valid.end..].fill(T::zero());
                    if valid.is_empty() {
                        continue;
                    }
                    // Input column of output column `ox`: ox·S + j - P (≥ 0 on `valid`).
                    let first = valid.start * g.stride + j - g.pad;
                    if g.stride == 1 {
                        dst[valid.clone()].copy_from_slice(&src[first..first + valid.len()]);
                    } else {
                        for (k, d) in dst[valid.clone()].iter_mut().enumerate() {
                            *d = src[first + k * g.stride];
                        }
                    }
                }
            }
        }
    }
}

/// col2im for one image, the adjoint of [`im2col`]: adds every entry of `col`
/// onto the pixel of `x` it was copied from (padding entries are dropped).
/// `x` is overwritten.
pub fn col2im<T: Float>(col: &[T], g: &Geometry, x: &mut [T]) {
    let (plane, cols) = (g.h * g.w, g.col_cols());
    debug_assert_eq!(x.len(), g.c * plane);
    debug_assert_eq!(col.len(), g.col_rows() * cols);
    x.fill(T::zero());
    let mut rows = col.chunks_exact(cols);
    for c in 0..g.c {
        let xc = &mut x[c * plane..(c + 1) * plane];
        for i in 0..g.fh {
            for j in 0..g.fw {
                let row = rows.next().expect("col has C·FH·FW rows");
                let valid = g.valid_ox(j);
                for (oy, src) in row.chunks_exact(g.ow).enumerate() {
                    let Some(y) = g.input_row(oy, i).filter(|_| !valid.is_empty()) else {
                        continue;
                    };
                    let dst = &mut xc[y * g.w..(y + 1) * g.w];
                    let first = valid.start * g.stride + j - g.pad;
                    if g.stride == 1 {
                        for (d, &v) in dst[first..first + valid.len()]
                            .iter_mut()
                            .zip(&src[valid.clone()])
                        {
                            *d += v;
                        }
                    } else {
                        for (k, &v) in src[valid.clone()].iter().enumerate() {
                            dst[first + k * g.stride] += v;
                        }
                    }
                }
            }
        }
    }
}

/// `Σ v` with 16 running partial sums. A plain `.sum()` is one chain of
/// dependent additions (float addition may not be reordered), about 4 cycles
/// an element; the partial sums vectorise. Measured on W2 (one thread, perf
/// samples of a whole epoch): Convolution::backward fell from 7.1 % to 1.8 %.
fn sum_in_lanes<T: Float>(v: &[T]) -> T {
    let mut acc = [T::zero(); 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().copied().sum::<T>() + chunks.remainder().iter().copied().sum::<T>()
}

/// `db`: each filter's `dout` summed over the images and pixels.
fn bias_gradient<T: Float>(dout: &[T], plane: usize, db: &mut [T]) {
    db.fill(T::zero());
    for dn in dout.chunks_exact(db.len() * plane) {
        for (d, df) in db.iter_mut().zip(dn.chunks_exact(plane)) {
            *d += sum_in_lanes(df);
        }
    }
}

/// How [`Convolution`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// The direct kernels of [`conv_kernels`](super::conv_kernels): the default.
    Direct,
    /// Winograd's F(2x2, 3x3) ([`winograd`]) for forward
    /// and the input gradient where it applies (3x3 filters, stride 1,
    /// padding up to 2), the direct kernels elsewhere. Opt-in: tested, but
    /// at DeepConvNet's shapes still slower than the direct kernels.
    Winograd,
    /// The textbook's im2col and matrix product, image by image: the
    /// readable reference (the tests check the others against it, and
    /// `backprop bench conv` times it beside them).
    Im2col,
}

#[derive(Clone)]
pub struct Convolution<T> {
    /// Filters `[FN, C, FH, FW]`.
    pub w: Tensor<T>,
    /// One bias per filter, `[FN]`.
    pub b: Tensor<T>,
    pub dw: Tensor<T>,
    pub db: Tensor<T>,
    pub stride: usize,
    pub pad: usize,
    pub algorithm: Algorithm,
    /// The geometry of the last forward's input.
    geometry: Option<Geometry>,
    /// Rows of the last forward's input, and whether it kept them for
    /// backward (training mode).
    n: usize,
    kept_input: bool,
    /// The direct kernels' layouts and offsets for that geometry.
    plan: Option<Plan>,
    /// The input as the plan's phase planes (direct kernels) or as it came
    /// (im2col): backward correlates it with `dout` for `dW`.
    x: Vec<T>,
    /// The geometry whose phase planes `x` holds, zeros in their padding,
    /// and the same for `dout_pad` and `dout_wide`: the copies into them
    /// write the same positions every time, so the zeros are written once
    /// (an eighth of the values at 28x28, padding 1), not on every step.
    x_zeroed: Option<Geometry>,
    dout_zeroed: Option<Geometry>,
    /// The filters packed for the kernels, forward and per input-gradient phase.
    packed: Vec<T>,
    packed_dx: Vec<Vec<T>>,
    /// Scratch, reused chunk after chunk: the padded `dout` of a chunk of
    /// images, the same in wide rows for `dW` where the layouts differ, one
    /// phase's input gradient (strides above 1); for `Im2col` one image's
    /// columns and their gradient (for the direct kernels' gathered weight
    /// gradient, each tap's input and `dout` as rows: `Plan::gather_taps`;
    /// for the outer-product one, `dW` by taps and a chunk's `dout` by
    /// pixels: `Plan::transpose_dout`).
    wide: Vec<T>,
    dout_wide: Vec<T>,
    dout_pad: Vec<T>,
    col: Vec<T>,
    dcol: Vec<T>,
    /// The gathered weight gradient's rows: their length, positions and the
    /// taps' offsets (made again only when the length changes).
    gathered: Option<(usize, Positions, Vec<usize>)>,
    /// The outer-product weight gradient's input offset per output pixel
    /// of a chunk ([`Plan::pixel_starts`]).
    starts: Vec<usize>,
    out: Tensor<T>,
    dx: Tensor<T>,
    input_grad_needed: bool,
    /// Whether the layer applies the Relu after it in the chain (the net's
    /// fast order, [`Layer::fuse_relu`]): its output is `max(0, ·)` and
    /// backward takes `dout` through ReLU's backward first, by that output;
    /// inside the copies of `dout` the direct kernels make, where they make
    /// them all, else into `relu_dout`.
    relu: bool,
    relu_dout: Tensor<T>,
    /// Winograd's transformed filters and buffers, forward and for `dx`.
    winograd: Winograd<T>,
    winograd_dx: Winograd<T>,
}

/// Values of input and `dout` the weight-gradient kernel takes at once: a
/// chunk of images that stays in the core's 1 MiB L2 cache while every block
/// of filters and taps runs over it.
const WEIGHT_CHUNK_VALUES: usize = 96 * 1024;

/// Output pixels (images end to end) per chunk of the gathered weight
/// gradient: long rows, so that each block of accumulators runs long before
/// it is summed, its 10 rows still within L1 and L2.
const GATHER_POSITIONS: usize = 2048;

/// Output pixels per chunk of the outer-product weight gradient: the
/// chunk's transposed `dout` (64 filters: 32 KiB) stays in L1 while every
/// block of taps runs over it.
const OUTER_POSITIONS: usize = 128;

/// The direct kernels' plan for input geometry `g` in `plan`, made anew only
/// when the geometry changes (what forward reads of it depends on nothing
/// else).
fn plan_for<'a, T: Float>(plan: &'a mut Option<Plan>, g: &Geometry, fnum: usize) -> &'a Plan {
    plan.take_if(|p| p.geometry != *g);
    plan.get_or_insert_with(|| Plan::new::<T>(g, fnum))
}

/// The filters `W` packed for the direct kernels' `taps` (every call: the
/// weights may have changed since the last).
fn pack<T: Float>(w: &Tensor<T>, taps: usize, packed: &mut Vec<T>) {
    let (fnum, w) = (w.shape()[0], w.data());
    pack_filters(fnum, taps, |f, t| w[f * taps + t], packed);
}

/// The filters `W` `[FN, C, 3, 3]` transformed for Winograd's forward.
fn set_winograd_filters<T: Float>(w: &Tensor<T>, wino: &mut Winograd<T>) {
    let (fnum, c, w) = (w.shape()[0], w.shape()[1], w.data());
    wino.set_filters(fnum, c, |f, ch, i, j| w[((f * c + ch) * 3 + i) * 3 + j]);
}

/// The same for the input gradient, a correlation of `dout` with the
/// filters flipped and their channels swapped: `C` filters over `FN`.
fn set_winograd_dx_filters<T: Float>(w: &Tensor<T>, wino: &mut Winograd<T>) {
    let (fnum, c, w) = (w.shape()[0], w.shape()[1], w.data());
    wino.set_filters(c, fnum, |ch, f, i, j| {
        w[((f * c + ch) * 3 + 2 - i) * 3 + 2 - j]
    });
}

/// The output `y` `(n, FN, OH, OW)` of `n` images from their phase planes,
/// end to end in `planes`, through ReLU if `relu`.
fn correlate_images<T: Float>(
    plan: &Plan,
    packed: &[T],
    b: &[T],
    planes: &[T],
    n: usize,
    y: &mut [T],
    relu: bool,
) {
    let g = &plan.geometry;
    let plane = g.oh * g.ow;
    let out = Output::Dense {
        out: y,
        plane,
        relu,
    };
    let images = Images {
        count: n,
        x: plan.x_image,
        out: b.len() * plane,
    };
    correlate(
        planes,
        images,
        &plan.taps,
        packed,
        b,
        b.len(),
        &plan.positions,
        out,
    );
}

/// Direct inference of the images `x` into `out`: each image in turn into
/// `planes`, which then stay in the cache while the filters run over them.
/// `zeroed`: `planes` holds this plan's planes already, zeros in their
/// padding (see [`Plan::scatter_input`]); after the first image it does.
/// The output through ReLU if `relu`.
#[allow(clippy::too_many_arguments)]
fn infer_direct<T: Float>(
    plan: &Plan,
    packed: &[T],
    b: &[T],
    x: &[T],
    out: &mut [T],
    planes: &mut Vec<T>,
    mut zeroed: bool,
    relu: bool,
) {
    let g = &plan.geometry;
    planes.resize(plan.x_image + plan.x_tail, T::zero());
    planes[plan.x_image..].fill(T::zero());
    for (xn, yn) in x
        .chunks_exact(g.c * g.h * g.w)
        .zip(out.chunks_exact_mut(b.len() * g.oh * g.ow))
    {
        plan.scatter_input(xn, &mut planes[..plan.x_image], zeroed);
        zeroed = true;
        correlate_images(plan, packed, b, planes, 1, yn, relu);
    }
}

/// Im2col forward of the images `x` into `out`: per image its columns (in
/// `col`), `y_n = W · col_n + b`.
fn im2col_forward<T: Float>(
    w: &Tensor<T>,
    b: &Tensor<T>,
    g: &Geometry,
    x: &[T],
    out: &mut [T],
    col: &mut Vec<T>,
) {
    let fnum = w.shape()[0];
    let (rows, cols) = (g.col_rows(), g.col_cols());
    col.resize(rows * cols, T::zero());
    for (xn, yn) in x
        .chunks_exact(g.c * g.h * g.w)
        .zip(out.chunks_exact_mut(fnum * cols))
    {
        im2col(xn, g, col);
        for (yf, &bf) in yn.chunks_exact_mut(cols).zip(b.data()) {
            yf.fill(bf);
        }
        matmul(fnum, cols, rows, w.data(), false, col, false, yn, true);
    }
}

impl<T: Float> Convolution<T> {
    /// A convolution with filters `w` `[FN, C, FH, FW]`, bias `b` `[FN]`,
    /// `stride` (at least 1) and zero padding `pad` on every side.
    pub fn from_params(w: Tensor<T>, b: Tensor<T>, stride: usize, pad: usize) -> Self {
        assert_eq!(
            w.shape().len(),
            4,
            "Convolution: W must be [FN, C, FH, FW], got {:?}",
            w.shape()
        );
        assert_eq!(
            b.shape(),
            &w.shape()[..1],
            "Convolution: b shape {:?} does not match W shape {:?}",
            b.shape(),
            w.shape()
        );
        assert!(stride >= 1, "Convolution: stride must be at least 1");
        let (dw, db) = (Tensor::zeros(w.shape()), Tensor::zeros(b.shape()));
        Convolution {
            w,
            b,
            dw,
            db,
            stride,
            pad,
            algorithm: Algorithm::Direct,
            geometry: None,
            n: 0,
            kept_input: false,
            plan: None,
            x: Vec::new(),
            x_zeroed: None,
            dout_zeroed: None,
            packed: Vec::new(),
            packed_dx: Vec::new(),
            wide: Vec::new(),
            dout_wide: Vec::new(),
            dout_pad: Vec::new(),
            col: Vec::new(),
            dcol: Vec::new(),
            gathered: None,
            starts: Vec::new(),
            out: Tensor::default(),
            dx: Tensor::default(),
            input_grad_needed: true,
            relu: false,
            relu_dout: Tensor::default(),
            winograd: Winograd::default(),
            winograd_dx: Winograd::default(),
        }
    }

    /// Number of filters, FN.
    pub fn filters(&self) -> usize {
        self.w.shape()[0]
    }

    /// `(C, FH, FW)` of one filter.
    pub fn filter_shape(&self) -> (usize, usize, usize) {
        let s = self.w.shape();
        (s[1], s[2], s[3])
    }

    /// The geometry of an input of shape `s`, which must be `(N, C, H, W)`
    /// with the filters' `C` and room for the filters.
    fn geometry(&self, s: &[usize]) -> Geometry {
        let (c, fh, fw) = self.filter_shape();
        assert!(
            s.len() == 4 && s[1] == c,
            "Convolution forward: input {:?} is not (N, {c}, H, W) for W {:?}",
            s,
            self.w.shape()
        );
        Geometry::new([c, s[2], s[3]], (fh, fw), self.stride, self.pad).unwrap_or_else(|| {
            panic!(
                "Convolution forward: filter {fh}x{fw} with padding {} does not fit input {:?}",
                self.pad, s
            )
        })
    }

    /// Whether forward and the input gradient take Winograd.
    fn winograd(&self) -> bool {
        let (_, fh, fw) = self.filter_shape();
        self.algorithm == Algorithm::Winograd && winograd::applies(fh, fw, self.stride, self.pad)
    }

    /// Whether Winograd computes the input gradient (needed, and it applies).
    fn winograd_dx(&self) -> bool {
        self.input_grad_needed && self.winograd()
    }

    /// Direct: each image into phase planes, the filters over them in wide
    /// rows, the wanted positions copied out.
    fn forward_direct(&mut self, x: &Tensor<T>, g: &Geometry, train: bool) {
        let plan = self.plan.as_ref().expect("forward made the plan");
        self.kept_input = train;
        let zeroed = self.x_zeroed == Some(*g);
        self.x_zeroed = Some(*g);
        let wino = self.winograd();
        if wino {
            set_winograd_filters(&self.w, &mut self.winograd);
            let out = self.out.data_mut();
            let (n, b) = (self.n, self.b.data());
            self.winograd
                .correlate(x.data(), n, (g.h, g.w), g.pad, b, out);
        } else {
            pack(&self.w, plan.taps.len(), &mut self.packed);
        }
        if !train {
            if !wino {
                let out = self.out.data_mut();
                infer_direct(
                    plan,
                    &self.packed,
                    self.b.data(),
                    x.data(),
                    out,
                    &mut self.x,
                    zeroed,
                    self.relu,
                );
            }
            return;
        }
        // Training keeps every image's planes for dW.
        self.x
            .resize(self.n * plan.x_image + plan.x_tail, T::zero());
        self.x[self.n * plan.x_image..].fill(T::zero());
        for (xn, planes) in x
            .data()
            .chunks_exact(g.c * g.h * g.w)
            .zip(self.x.chunks_exact_mut(plan.x_image))
        {
            plan.scatter_input(xn, planes, zeroed);
        }
        if wino {
            return;
        }
        let y = self.out.data_mut();
        correlate_images(
            plan,
            &self.packed,
            self.b.data(),
            &self.x,
            self.n,
            y,
            self.relu,
        );
    }

    /// Im2col: the textbook's columns of each image, times the filters.
    fn forward_im2col(&mut self, x: &Tensor<T>, g: &Geometry) {
        self.x.clear();
        self.x.extend_from_slice(x.data());
        self.x_zeroed = None;
        let out = self.out.data_mut();
        im2col_forward(&self.w, &self.b, g, x.data(), out, &mut self.col);
    }

    /// Direct, where [`Plan::weight_gather`] (and not
    /// [`Plan::weight_outer`]): `dW` over chunks of about
    /// [`GATHER_POSITIONS`] output pixels, each tap's input and each filter's
    /// `dout` gathered into rows (images end to end), the weight kernel over
    /// those rows.
    /// `relu`: `dout` through ReLU's backward on the way (by the output).
    fn gathered_weight_gradient(&mut self, dout: &Tensor<T>, g: &Geometry, relu: bool) {
        let fnum = self.filters();
        let plan = self.plan.as_ref().expect("forward made the plan");
        let (pixels, ntaps) = (g.oh * g.ow, plan.taps.len());
        let chunks = self.n.div_ceil((GATHER_POSITIONS / pixels).max(1));
        let per_chunk = self.n.div_ceil(chunks.max(1));
        let row = rounded::<T>(per_chunk * pixels);
        self.col
            .resize(Plan::gather_len::<T>(ntaps, row), T::zero());
        self.dcol
            .resize(Plan::gather_len::<T>(fnum, row), T::zero());
        self.gathered
            .take_if(|(r, _, taps)| *r != row || taps.len() != ntaps);
        let (_, positions, taps) = self.gathered.get_or_insert_with(|| {
            let taps = (0..ntaps).map(|t| t * row).collect();
            (row, Positions::flat::<T>(row), taps)
        });
        let layout = DoutLayout {
            image: 0,
            stride: row,
            dense: false,
        };
        let out_image = fnum * pixels;
        let relu_out = relu.then(|| self.out.data());
        for (k, dchunk) in dout.data().chunks(per_chunk * out_image).enumerate() {
            let images = dchunk.len() / out_image;
            let planes = &self.x[k * per_chunk * plan.x_image..];
            let y = relu_out.map(|y| &y[k * per_chunk * out_image..][..dchunk.len()]);
            plan.gather_taps(planes, images, row, &mut self.col);
            let db = self.db.data_mut();
            plan.gather_dout(dchunk, y, fnum, images, row, &mut self.dcol, db);
            correlate_weights(
                &self.col,
                0,
                taps,
                &self.dcol,
                layout,
                fnum,
                1,
                positions,
                self.dw.data_mut(),
            );
        }
    }

    /// Direct, where [`Plan::weight_outer`]: `dW` as outer products
    /// ([`correlate_weights_outer`]), over chunks of about
    /// [`OUTER_POSITIONS`] output pixels, `dout` transposed for each chunk
    /// (through ReLU's backward if `relu`, `db` summed on the way).
    fn outer_weight_gradient(&mut self, dout: &Tensor<T>, g: &Geometry, relu: bool) {
        let fnum = self.filters();
        let plan = self.plan.as_ref().expect("forward made the plan");
        let (pixels, ntaps) = (g.oh * g.ow, plan.taps.len());
        let fpad = rounded::<T>(fnum);
        let per_chunk = (OUTER_POSITIONS / pixels.max(1)).clamp(1, self.n.max(1));
        self.dcol.resize(per_chunk * pixels * fpad, T::zero());
        self.col.clear();
        self.col.resize(ntaps * fpad, T::zero());
        plan.pixel_starts(per_chunk, &mut self.starts);
        let out_image = fnum * pixels;
        let relu_out = relu.then(|| self.out.data());
        for (k, dchunk) in dout.data().chunks(per_chunk * out_image).enumerate() {
            let images = dchunk.len() / out_image;
            let y = relu_out.map(|y| &y[k * per_chunk * out_image..][..dchunk.len()]);
            plan.transpose_dout(dchunk, y, fpad, &mut self.dcol, self.db.data_mut());
            let x = &self.x[k * per_chunk * plan.x_image..];
            let starts = &self.starts[..images * pixels];
            correlate_weights_outer(x, starts, &plan.taps, &self.dcol, fpad, &mut self.col);
        }
        for (f, row) in self.dw.data_mut().chunks_exact_mut(ntaps).enumerate() {
            for (t, w) in row.iter_mut().enumerate() {
                *w += self.col[t * fpad + f];
            }
        }
    }

    /// Direct: over chunks of images, `dout` padded (for `dx`, and in wide
    /// rows for `dW`), `dW` from a pass of the weight kernel over the chunk,
    /// then `dx` image by image, one correlation per input phase. `relu`:
    /// `dout` through ReLU's backward in those copies (where
    /// [`Convolution::relu_in_copies`]).
    fn backward_direct(&mut self, dout: &Tensor<T>, g: &Geometry, input: bool, relu: bool) {
        self.dw.fill(T::zero());
        self.db.fill(T::zero());
        let gather = self.plan.as_ref().is_some_and(|p| p.weight_gather);
        if gather {
            match self.plan.as_ref().is_some_and(|p| p.weight_outer) {
                true => self.outer_weight_gradient(dout, g, relu),
                false => self.gathered_weight_gradient(dout, g, relu),
            }
            if !input {
                return;
            }
        }
        let fnum = self.filters();
        let plan = self.plan.as_ref().expect("forward made the plan");
        let (out_image, image) = (fnum * g.oh * g.ow, g.c * g.h * g.w);
        // dW (unless gathered above) reads dout as it is when the positions
        // are packed; in wide rows from the padded copy dx makes, if the
        // layouts agree, or from its own.
        let dense = plan.weight_positions.is_packed();
        let shared = plan.shared_dout.filter(|_| !dense && !gather);
        let wide_image = fnum * plan.q_round;
        let own_wide = if dense || shared.is_some() || gather {
            0
        } else {
            wide_image
        };
        let padding = input || shared.is_some();
        // db from the first copy of dout, as it passes: gathered above,
        // else padded, else widened; on its own only where dW reads dout
        // as it is and dx does not pad it (never through ReLU).
        let db_padded = !gather && padding;
        if dense && !padding && !gather {
            debug_assert!(!relu, "relu_in_copies: dout is copied");
            bias_gradient(dout.data(), g.oh * g.ow, self.db.data_mut());
        }
        let per_image = plan.x_image + if padding { plan.dout_image } else { out_image } + own_wide;
        let chunk = (WEIGHT_CHUNK_VALUES / per_image).clamp(1, self.n.max(1));
        let zeroed = self.dout_zeroed == Some(*g);
        self.dout_zeroed = Some(*g);
        let relu_out = relu.then(|| self.out.data());
        if padding {
            self.dout_pad
                .resize(chunk * plan.dout_image + plan.dout_tail, T::zero());
        }
        self.dout_wide.resize(chunk * own_wide, T::zero());
        if input {
            self.packed_dx.resize_with(plan.dx_phases.len(), Vec::new);
            let mut stride = 0;
            for (phase, packed) in plan.dx_phases.iter().zip(&mut self.packed_dx) {
                plan.pack_dx_filters(phase, self.w.data(), packed);
                if !phase.dense {
                    stride = stride.max(phase.positions.computed::<T>());
                }
            }
            self.wide.resize(g.c * stride, T::zero());
            if plan.dx_gaps {
                self.dx.fill(T::zero());
            }
        }
        for (k, dchunk) in dout.data().chunks(chunk * out_image).enumerate() {
            let images = dchunk.len() / out_image;
            let at = k * chunk * out_image;
            // The output of image i of the chunk, if dout goes through ReLU.
            let y = |i: usize| relu_out.map(|y| &y[at + i * out_image..at + (i + 1) * out_image]);
            if padding {
                for (i, (dn, padded)) in dchunk
                    .chunks_exact(out_image)
                    .zip(self.dout_pad.chunks_exact_mut(plan.dout_image))
                    .enumerate()
                {
                    let db = db_padded.then(|| self.db.data_mut());
                    plan.pad_dout(dn, y(i), padded, zeroed, db);
                }
            }
            if !gather {
                let (douts, layout) = if dense {
                    let layout = DoutLayout {
                        image: out_image,
                        stride: g.oh * g.ow,
                        dense: true,
                    };
                    (dchunk, layout)
                } else if let Some(offset) = shared {
                    let layout = DoutLayout {
                        image: plan.dout_image,
                        stride: plan.dout_plane,
                        dense: false,
                    };
                    (&self.dout_pad[offset..], layout)
                } else {
                    for (i, (dn, wn)) in dchunk
                        .chunks_exact(out_image)
                        .zip(self.dout_wide.chunks_exact_mut(wide_image))
                        .enumerate()
                    {
                        let db = (!db_padded).then(|| self.db.data_mut());
                        plan.widen_dout(dn, y(i), wn, zeroed, db);
                    }
                    let layout = DoutLayout {
                        image: wide_image,
                        stride: plan.q_round,
                        dense: false,
                    };
                    (&self.dout_wide[..], layout)
                };
                correlate_weights(
                    &self.x[k * chunk * plan.x_image..],
                    plan.x_image,
                    &plan.taps,
                    douts,
                    layout,
                    fnum,
                    images,
                    &plan.weight_positions,
                    self.dw.data_mut(),
                );
            }
            if !input {
                continue;
            }
            let dx = &mut self.dx.data_mut()[k * chunk * image..][..images * image];
            for (phase, packed) in plan.dx_phases.iter().zip(&self.packed_dx) {
                let phase_dx = |dout: &[T], images: Images, out: Output<'_, T>| {
                    let (offsets, positions) = (&phase.offsets, &phase.positions);
                    correlate(dout, images, offsets, packed, &[], g.c, positions, out);
                };
                // Stride 1: the one phase, straight into dx, the chunk's
                // images end to end; else each image's phase in wide rows,
                // then scattered.
                if phase.dense {
                    let out = Output::Dense {
                        out: &mut *dx,
                        plane: g.h * g.w,
                        relu: false,
                    };
                    let images = Images {
                        count: images,
                        x: plan.dout_image,
                        out: image,
                    };
                    phase_dx(&self.dout_pad, images, out);
                    continue;
                }
                for (i, dxn) in dx.chunks_exact_mut(image).enumerate() {
                    let padded = &self.dout_pad[i * plan.dout_image..];
                    let stride = self.wide.len() / g.c.max(1);
                    let out = Output::Wide {
                        out: &mut self.wide,
                        stride,
                    };
                    phase_dx(padded, Images::ONE, out);
                    plan.scatter_dx(phase, &self.wide, stride, dxn);
                }
            }
        }
    }

    /// Whether ReLU's backward (where [`Convolution::relu`]) goes inside the
    /// copies of `dout` the direct kernels make: where they copy it for
    /// every use (the weight gradient of packed positions and Winograd's
    /// input gradient read it as it is, as im2col does).
    fn relu_in_copies(&self) -> bool {
        let copied = |p: &Plan| p.weight_gather || !p.weight_positions.is_packed();
        let direct = self.algorithm != Algorithm::Im2col && !self.winograd_dx();
        direct && self.plan.as_ref().is_some_and(copied)
    }

    /// Backward of `dout` (checked by `backward`): `db`, `dW` and `dx` as
    /// the algorithm computes them; `relu`: `dout` through ReLU's
    /// backward on the way (only where [`Convolution::relu_in_copies`]).
    fn backward_of(&mut self, dout: &Tensor<T>, g: &Geometry, relu: bool) {
        if self.input_grad_needed {
            self.dx.resize(&[self.n, g.c, g.h, g.w]);
        } else {
            self.dx.resize(&[0]);
        }
        match self.algorithm {
            Algorithm::Winograd | Algorithm::Direct => {
                let wino_dx = self.winograd_dx();
                let input = self.input_grad_needed && !wino_dx;
                self.backward_direct(dout, g, input, relu);
                if wino_dx {
                    set_winograd_dx_filters(&self.w, &mut self.winograd_dx);
                    let (n, dx) = (self.n, self.dx.data_mut());
                    let pad = 2 - g.pad;
                    self.winograd_dx
                        .correlate(dout.data(), n, (g.oh, g.ow), pad, &[], dx);
                }
            }
            Algorithm::Im2col => {
                bias_gradient(dout.data(), g.oh * g.ow, self.db.data_mut());
                self.backward_im2col(dout, g);
            }
        }
    }

    /// Im2col: per image `dW += dout · colᵀ` and `dcol = Wᵀ · dout`, which
    /// col2im adds back onto the pixels.
    fn backward_im2col(&mut self, dout: &Tensor<T>, g: &Geometry) {
        let fnum = self.filters();
        let (rows, cols) = (g.col_rows(), g.col_cols());
        if self.input_grad_needed {
            self.dcol.resize(rows * cols, T::zero());
        }
        let image = g.c * g.h * g.w;
        for (k, (xn, dn)) in self
            .x
            .chunks_exact(image)
            .zip(dout.data().chunks_exact(fnum * cols))
            .enumerate()
        {
            im2col(xn, g, &mut self.col);
            matmul(
                fnum,
                rows,
                cols,
                dn,
                false,
                &self.col,
                true,
                self.dw.data_mut(),
                k > 0,
            );
            if self.input_grad_needed {
                matmul(
                    rows,
                    cols,
                    fnum,
                    self.w.data(),
                    true,
                    dn,
                    false,
                    &mut self.dcol,
                    false,
                );
                col2im(
                    &self.dcol,
                    g,
                    &mut self.dx.data_mut()[k * image..(k + 1) * image],
                );
            }
        }
        if self.n == 0 {
            self.dw.fill(T::zero());
        }
    }
}

impl<T: Float> Layer<T> for Convolution<T> {
    fn name(&self) -> &'static str {
        "Convolution"
    }

    fn spec(&self) -> Option<LayerSpec> {
        let (_, fh, fw) = self.filter_shape();
        // The spec's filters are square, as the textbook's.
        (fh == fw).then_some(LayerSpec::Convolution {
            filter_num: self.filters(),
            filter_size: fh,
            stride: self.stride,
            pad: self.pad,
            weight_init_std: None,
        })
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let (c, fh, fw) = self.filter_shape();
        let expected = || {
            format!(
                "(C, H, W) images with C = {c} and H, W at least {fh}x{fw} after padding {}",
                self.pad
            )
        };
        let &[ic, h, w] = input else {
            return Err(expected());
        };
        match Geometry::new([ic, h, w], (fh, fw), self.stride, self.pad) {
            Some(g) if ic == c => Ok(vec![self.filters(), g.oh, g.ow]),
            _ => Err(expected()),
        }
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>, scratch: &mut Scratch<T>) {
        let (g, fnum) = (self.geometry(x.shape()), self.filters());
        out.resize(&[x.rows(), fnum, g.oh, g.ow]);
        let (x, y, b) = (x.data(), out.data_mut(), self.b.data());
        match self.algorithm {
            _ if self.winograd() => {
                set_winograd_filters(&self.w, &mut scratch.winograd);
                let n = x.len() / (g.c * g.h * g.w).max(1);
                scratch.winograd.correlate(x, n, (g.h, g.w), g.pad, b, y);
            }
            Algorithm::Winograd | Algorithm::Direct => {
                let plan = plan_for::<T>(&mut scratch.plan, &g, fnum);
                pack(&self.w, plan.taps.len(), &mut scratch.packed);
                let values = &mut scratch.values;
                infer_direct(plan, &scratch.packed, b, x, y, values, false, false);
            }
            Algorithm::Im2col => im2col_forward(&self.w, &self.b, &g, x, y, &mut scratch.values),
        }
    }

    fn has_infer(&self) -> bool {
        true
    }

    fn forward(&mut self, x: &Tensor<T>, train: bool) -> &Tensor<T> {
        let (g, fnum) = (self.geometry(x.shape()), self.filters());
        self.geometry = Some(g);
        self.n = x.rows();
        self.out.resize(&[x.rows(), fnum, g.oh, g.ow]);
        match self.algorithm {
            Algorithm::Winograd | Algorithm::Direct => {
                plan_for::<T>(&mut self.plan, &g, fnum);
                self.forward_direct(x, &g, train);
            }
            Algorithm::Im2col => {
                self.kept_input = true;
                self.forward_im2col(x, &g);
            }
        }
        // The direct kernels apply a fused ReLU as they store; the others not.
        if self.relu && (self.algorithm == Algorithm::Im2col || self.winograd()) {
            for v in self.out.data_mut() {
                *v = relu(*v);
            }
        }
        &self.out
    }

    fn backward(&mut self, dout: &Tensor<T>) -> &Tensor<T> {
        let g = self
            .geometry
            .expect("Convolution backward: called before forward");
        assert!(
            self.kept_input,
            "Convolution backward: the last forward was in inference mode (train = false)"
        );
        let fnum = self.filters();
        assert_eq!(
            dout.shape(),
            &[self.n, fnum, g.oh, g.ow],
            "Convolution backward: dout {:?}, output was {:?}",
            dout.shape(),
            self.out.shape()
        );
        if self.relu && !self.relu_in_copies() {
            let mut through = std::mem::take(&mut self.relu_dout);
            activation_backward(dout, &self.out, &mut through, relu_derivative);
            self.backward_of(&through, &g, false);
            self.relu_dout = through;
        } else {
            self.backward_of(dout, &g, self.relu);
        }
        &self.dx
    }

    fn output(&self) -> &Tensor<T> {
        &self.out
    }

    fn grad_input(&self) -> &Tensor<T> {
        &self.dx
    }

    fn params(&self) -> Params<'_, T> {
        smallvec![
            Param::new("W", &self.w, &self.dw, true),
            Param::new("b", &self.b, &self.db, false),
        ]
    }

    fn params_mut(&mut self) -> ParamsMut<'_, T> {
        smallvec![
            ParamMut::new("W", &mut self.w, &mut self.dw, true),
            ParamMut::new("b", &mut self.b, &mut self.db, false),
        ]
    }

    fn set_input_grad_needed(&mut self, needed: bool) {
        self.input_grad_needed = needed;
    }

    fn can_fuse_relu(&self) -> bool {
        true
    }

    fn fuse_relu(&mut self, on: bool) {
        self.relu = on;
    }

    fn box_clone(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv_kernels::reference;
    use super::super::infers_as_forward;
    use super::*;
    use crate::gradcheck::{check_layer, random_tensor};

    /// (input shape, filter shape, stride, pad): odd and non-square sizes,
    /// strides 1 to 3, padding 0 to 3 (wider than the filter's reach, too),
    /// one channel, one image, filters of 1 to 7, many channels, a filter
    /// as large as the padded image, strides larger than the filter, and
    /// output rows of 8 to 19 (packed positions with none, one or two merged
    /// loads per vector of 16).
    const CASES: &[([usize; 4], [usize; 4], usize, usize)] = &[
        ([2, 3, 7, 5], [4, 3, 3, 3], 1, 0),
        ([2, 2, 6, 6], [3, 2, 3, 3], 1, 1),
        ([3, 1, 7, 9], [2, 1, 3, 2], 2, 1),
        ([1, 2, 8, 5], [3, 2, 2, 3], 3, 2),
        ([2, 3, 5, 6], [2, 3, 5, 5], 2, 2),
        ([2, 1, 4, 4], [3, 1, 1, 1], 1, 0),
        ([1, 2, 3, 1], [2, 2, 7, 7], 1, 3),
        ([1, 1, 12, 12], [16, 1, 3, 3], 1, 1),
        ([2, 6, 7, 7], [9, 6, 3, 3], 1, 2),
        ([1, 40, 3, 3], [6, 40, 3, 3], 1, 1),
        ([2, 1, 9, 9], [10, 1, 5, 5], 1, 0),
        ([2, 3, 11, 11], [5, 3, 7, 7], 2, 3),
        ([3, 5, 9, 7], [10, 5, 1, 1], 2, 0),
        ([2, 4, 5, 5], [5, 4, 1, 1], 1, 1),
        ([1, 9, 4, 4], [17, 9, 3, 3], 1, 1),
        ([2, 7, 13, 3], [11, 7, 3, 3], 1, 2),
        ([1, 3, 10, 10], [8, 3, 4, 4], 2, 1),
        ([2, 2, 6, 7], [3, 2, 3, 3], 3, 0),
        ([1, 2, 6, 6], [4, 2, 6, 6], 1, 0),
        ([2, 1, 7, 7], [2, 1, 7, 7], 1, 3),
        ([1, 3, 2, 2], [2, 3, 3, 3], 2, 2),
        ([5, 2, 3, 4], [3, 2, 2, 2], 1, 0),
        ([1, 4, 8, 8], [6, 4, 3, 3], 2, 1),
        ([2, 8, 7, 5], [8, 8, 3, 3], 1, 1),
        ([1, 12, 6, 9], [10, 12, 3, 3], 1, 0),
        ([2, 8, 5, 5], [9, 8, 3, 3], 1, 2),
        ([1, 8, 4, 3], [8, 8, 3, 3], 1, 3),
        ([1, 3, 9, 19], [4, 3, 3, 3], 1, 1),
        ([2, 2, 11, 10], [3, 2, 3, 3], 1, 0),
        ([1, 2, 6, 17], [5, 2, 2, 2], 1, 0),
        // Filters enough for the outer-product weight gradient.
        ([2, 2, 8, 8], [70, 2, 3, 3], 1, 1),
        ([1, 3, 8, 8], [48, 3, 3, 3], 1, 1),
        ([3, 1, 6, 6], [64, 1, 3, 3], 1, 0),
        ([1, 2, 9, 9], [50, 2, 3, 3], 2, 1),
    ];

    fn layer<T: Float>(fshape: [usize; 4], stride: usize, pad: usize, seed: u64) -> Convolution<T> {
        Convolution::from_params(
            random_tensor(&fshape, 1.0, seed).cast(),
            random_tensor(&fshape[..1], 1.0, seed + 1).cast(),
            stride,
            pad,
        )
    }

    /// Largest `|a - b|` over the elements, relative to the largest `|b|`.
    fn relative_gap<T: Float>(a: &Tensor<T>, b: &Tensor<f64>) -> f64 {
        assert_eq!(a.shape(), b.shape());
        let scale = b.data().iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        let gap = a
            .data()
            .iter()
            .zip(b.data())
            .fold(0.0f64, |m, (x, y)| m.max((x.as_f64() - y).abs()));
        gap / scale
    }

    /// Forward, dx, dW and db of `algorithm` in `T` against the f64
    /// definition, on every case; returns how many cases the direct weight
    /// gradient gathered (`Plan::weight_gather`), and how many of those took
    /// outer products (`Plan::weight_outer`).
    fn matches_reference<T: Float>(algorithm: Algorithm, tolerance: f64) -> (usize, usize) {
        let (mut gathered, mut outer) = (0, 0);
        // One scratch for every case: its plan follows the geometry.
        let mut scratch = Scratch::default();
        for (k, &(xs, fs, stride, pad)) in CASES.iter().enumerate() {
            let seed = 100 + 10 * k as u64;
            let x = random_tensor(&xs, 1.0, seed);
            let mut conv = layer::<T>(fs, stride, pad, seed + 2);
            conv.algorithm = algorithm;
            let (w, b) = (conv.w.cast(), conv.b.cast());
            let want = reference::forward(&x, &w, &b, stride, pad);
            let got = conv.forward(&x.cast(), true).clone();
            let case = format!(
                "{algorithm:?} {} case {k}: {xs:?} {fs:?} s{stride} p{pad}",
                T::NAME
            );
            assert!(relative_gap(&got, &want) < tolerance, "{case}: forward");
            // Inference keeps no input for backward, and must compute the same.
            assert_eq!(conv.forward(&x.cast(), false), &got, "{case}: inference");
            assert!(
                infers_as_forward(&mut conv, &x.cast(), &mut scratch),
                "{case}: infer"
            );
            let dout = random_tensor(want.shape(), 1.0, seed + 5);
            let (dx, dw, db) = reference::backward(&x, &w, &dout, stride, pad);
            // Twice: the second pass reuses every buffer of the first.
            for _ in 0..2 {
                conv.forward(&x.cast(), true);
                conv.backward(&dout.cast());
                assert!(
                    relative_gap(conv.grad_input(), &dx) < tolerance,
                    "{case}: dx"
                );
                assert!(relative_gap(&conv.dw, &dw) < tolerance, "{case}: dW");
                assert!(relative_gap(&conv.db, &db) < tolerance, "{case}: db");
            }
            gathered += usize::from(conv.plan.as_ref().is_some_and(|p| p.weight_gather));
            outer += usize::from(conv.plan.as_ref().is_some_and(|p| p.weight_outer));
        }
        (gathered, outer)
    }

    #[test]
    fn direct_kernels_match_the_definition_in_f64_and_f32() {
        // Every weight-gradient layout, wide rows, gathered taps and outer
        // products, each on several cases.
        for (gathered, outer) in [
            matches_reference::<f64>(Algorithm::Direct, 1e-12),
            matches_reference::<f32>(Algorithm::Direct, 1e-5),
        ] {
            assert!(
                (3..=CASES.len() - 3).contains(&gathered),
                "{gathered} gathered"
            );
            assert!((3..gathered - 2).contains(&outer), "{outer} outer products");
        }
    }

    #[test]
    fn a_fused_relu_gives_the_relu_layers_values_bit_for_bit() {
        // Convolution then Relu, against the convolution applying the ReLU
        // itself: in the kernels' stores and copies of dout (gathered,
        // padded, wide rows), or on its own where a path reads dout as it
        // is (packed positions, Winograd, im2col); with and without dx.
        use super::super::{Relu, same_bits};
        let mut inline = 0;
        for algorithm in [Algorithm::Direct, Algorithm::Winograd, Algorithm::Im2col] {
            for (k, &(xs, fs, stride, pad)) in CASES.iter().enumerate() {
                for input in [true, false] {
                    let case = format!("{algorithm:?} case {k} dx {input}");
                    let seed = 300 + 10 * k as u64;
                    let x = random_tensor(&xs, 1.0, seed).cast::<f32>();
                    let mut conv = layer::<f32>(fs, stride, pad, seed + 2);
                    conv.algorithm = algorithm;
                    conv.set_input_grad_needed(input);
                    let mut fused = conv.clone();
                    fused.fuse_relu(true);
                    let mut relu = Relu::new();
                    let y = relu.forward(conv.forward(&x, true), true).clone();
                    assert!(same_bits(fused.forward(&x, true), &y), "{case}: forward");
                    let dout = random_tensor(y.shape(), 1.0, seed + 5).cast::<f32>();
                    conv.backward(relu.backward(&dout));
                    fused.backward(&dout);
                    inline += usize::from(fused.relu_in_copies());
                    assert!(
                        same_bits(fused.grad_input(), conv.grad_input()),
                        "{case}: dx"
                    );
                    assert!(same_bits(&fused.dw, &conv.dw), "{case}: dW");
                    assert!(same_bits(&fused.db, &conv.db), "{case}: db");
                    // Inference too (the fast order may run it with train off).
                    let y = relu.forward(conv.forward(&x, false), false).clone();
                    assert!(same_bits(fused.forward(&x, false), &y), "{case}: inference");
                }
            }
        }
        assert!(inline > CASES.len(), "{inline} cases in the copies");
    }

    #[test]
    fn buffers_kept_across_shapes_and_algorithms_give_a_fresh_layers_results() {
        // The zeros of the planes and padded `dout` are written once per
        // geometry: shapes and algorithms that change in between must not
        // leave values where a fresh layer has zeros.
        use super::super::same_bits;
        let mut kept = layer::<f64>([4, 3, 3, 3], 1, 1, 80);
        let steps: &[([usize; 4], Algorithm, bool)] = &[
            ([2, 3, 7, 5], Algorithm::Direct, true),
            ([3, 3, 9, 9], Algorithm::Im2col, true),
            ([3, 3, 9, 9], Algorithm::Direct, true),
            ([2, 3, 7, 5], Algorithm::Direct, false),
            ([1, 3, 7, 5], Algorithm::Direct, true),
            ([3, 3, 9, 9], Algorithm::Direct, true),
            ([2, 3, 7, 5], Algorithm::Direct, true),
        ];
        for (k, &(shape, algorithm, train)) in steps.iter().enumerate() {
            let x = random_tensor(&shape, 100.0, 81 + k as u64);
            let mut fresh = layer::<f64>([4, 3, 3, 3], 1, 1, 80);
            kept.algorithm = algorithm;
            fresh.algorithm = algorithm;
            let want = fresh.forward(&x, train).clone();
            assert!(
                same_bits(kept.forward(&x, train), &want),
                "step {k}: forward"
            );
            if !train {
                continue;
            }
            let dout = random_tensor(want.shape(), 1.0, 90 + k as u64);
            fresh.backward(&dout);
            assert!(
                same_bits(kept.backward(&dout), fresh.grad_input()),
                "step {k}: dx"
            );
            assert!(same_bits(&kept.dw, &fresh.dw), "step {k}: dW");
            assert!(same_bits(&kept.db, &fresh.db), "step {k}: db");
        }
    }

    #[test]
    fn gathered_weight_gradient_over_chunks_matches_the_definition() {
        // 6x6 outputs in rows of 8: the taps are gathered, 61 images in two
        // chunks of 31 and 30; with and without the input gradient.
        let x = random_tensor(&[61, 4, 6, 6], 1.0, 70);
        let mut conv = layer::<f64>([5, 4, 3, 3], 1, 1, 71);
        let dout = random_tensor(&[61, 5, 6, 6], 1.0, 72);
        let (dx, dw, _) = reference::backward(&x, &conv.w, &dout, 1, 1);
        for input in [true, false] {
            conv.set_input_grad_needed(input);
            conv.forward(&x, true);
            conv.backward(&dout);
            assert!(conv.plan.as_ref().is_some_and(|p| p.weight_gather));
            assert!(relative_gap(&conv.dw, &dw) < 1e-12, "input {input}: dW");
            if input {
                assert!(relative_gap(conv.grad_input(), &dx) < 1e-12, "dx");
            }
        }
    }

    #[test]
    fn outer_product_weight_gradient_over_chunks_matches_the_definition() {
        // 5x5 outputs in rows of 7, 50 filters: outer products over chunks
        // of 5 images (125 pixels), the last of 11 images one image; with
        // ReLU's backward in the transposed copy and without.
        let x = random_tensor(&[11, 3, 5, 5], 1.0, 80);
        let dout = random_tensor(&[11, 50, 5, 5], 1.0, 82);
        for relu in [false, true] {
            let mut conv = layer::<f64>([50, 3, 3, 3], 1, 1, 81);
            conv.fuse_relu(relu);
            let y = conv.forward(&x, true).clone();
            // Through the ReLU the definition sees dout · (y > 0).
            let mut d = dout.clone();
            if relu {
                for (d, &y) in d.data_mut().iter_mut().zip(y.data()) {
                    *d *= relu_derivative(y);
                }
            }
            let (dx, dw, db) = reference::backward(&x, &conv.w, &d, 1, 1);
            conv.backward(&dout);
            assert!(conv.plan.as_ref().is_some_and(|p| p.weight_outer));
            assert!(relative_gap(&conv.dw, &dw) < 1e-12, "relu {relu}: dW");
            assert!(relative_gap(&conv.db, &db) < 1e-12, "relu {relu}: db");
            assert!(
                relative_gap(conv.grad_input(), &dx) < 1e-12,
                "relu {relu}: dx"
            );
        }
    }

    #[test]
    fn winograd_matches_the_definition_in_f64_and_f32() {
        // F(2x2, 3x3) on every 3x3 stride-1 case with padding up to 2 (odd
        // sizes, 1 to 40 channels), the direct kernels on the rest.
        matches_reference::<f64>(Algorithm::Winograd, 1e-12);
        matches_reference::<f32>(Algorithm::Winograd, 1e-5);
    }

    #[test]
    fn im2col_matches_the_definition_in_f64_and_f32() {
        matches_reference::<f64>(Algorithm::Im2col, 1e-12);
        matches_reference::<f32>(Algorithm::Im2col, 1e-5);
    }

    #[test]
    fn direct_kernels_agree_with_im2col_at_the_nets_shapes() {
        // DeepConvNet's six and SimpleConvNet's convolution on a few images,
        // in f32 as they train.
        let shapes = [
            ([3, 1, 28, 28], [16, 1, 3, 3], 1),
            ([3, 16, 28, 28], [16, 16, 3, 3], 1),
            ([3, 16, 14, 14], [32, 16, 3, 3], 1),
            ([3, 32, 14, 14], [32, 32, 3, 3], 2),
            ([3, 32, 8, 8], [64, 32, 3, 3], 1),
            ([3, 64, 8, 8], [64, 64, 3, 3], 1),
            ([3, 1, 28, 28], [30, 1, 5, 5], 0),
        ];
        for (k, (xs, fs, pad)) in shapes.into_iter().enumerate() {
            let x: Tensor<f32> = random_tensor(&xs, 1.0, k as u64).cast();
            let mut textbook = layer::<f32>(fs, 1, pad, 10 + k as u64);
            textbook.algorithm = Algorithm::Im2col;
            let dout: Tensor<f32> =
                random_tensor(textbook.forward(&x, true).shape(), 1.0, 20 + k as u64).cast();
            textbook.backward(&dout);
            for algorithm in [Algorithm::Direct, Algorithm::Winograd] {
                let mut fast = textbook.clone();
                fast.algorithm = algorithm;
                fast.forward(&x, true);
                fast.backward(&dout);
                let close = |a: &Tensor<f32>, b: &Tensor<f32>| relative_gap(a, &b.cast()) < 1e-5;
                let case = format!("{algorithm:?} {xs:?} {fs:?}");
                assert!(close(fast.output(), textbook.output()), "{case} forward");
                assert!(close(fast.grad_input(), textbook.grad_input()), "{case} dx");
                assert!(close(&fast.dw, &textbook.dw), "{case} dW");
            }
        }
    }

    #[test]
    fn gradient_check_over_strides_and_paddings() {
        for algorithm in [Algorithm::Direct, Algorithm::Winograd, Algorithm::Im2col] {
            for (k, &(xs, fs, stride, pad)) in CASES.iter().enumerate() {
                let seed = 400 + 10 * k as u64;
                let x = random_tensor(&xs, 1.0, seed);
                let mut conv = layer(fs, stride, pad, seed + 1);
                conv.algorithm = algorithm;
                let report = check_layer(&mut conv, &x, seed + 3);
                assert!(
                    report.passed(1e-6),
                    "{algorithm:?} case {k} {xs:?} {fs:?} s{stride} p{pad}\n{report}"
                );
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), c> = <x, col2im(c)> for all x, c: backward routes each
        // column entry to exactly the pixel forward read it from.
        for (k, &(xs, fs, stride, pad)) in CASES.iter().enumerate() {
            let g = Geometry::new([xs[1], xs[2], xs[3]], (fs[2], fs[3]), stride, pad).unwrap();
            let x = random_tensor(&xs[1..], 1.0, 200 + k as u64);
            let c = random_tensor(&[g.col_rows(), g.col_cols()], 1.0, 300 + k as u64);
            let mut col = vec![0.0; g.col_rows() * g.col_cols()];
            im2col(x.data(), &g, &mut col);
            let mut back = vec![7.0; x.len()];
            col2im(c.data(), &g, &mut back);
            let lhs: f64 = col.iter().zip(c.data()).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.data().iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-10, "case {k}: {lhs} vs {rhs}");
        }
    }

    #[test]
    fn skipping_the_input_gradient_keeps_the_parameter_gradients() {
        let x = random_tensor(&[2, 2, 6, 5], 1.0, 50);
        let dout_shape = [2, 3, 3, 3];
        let dout = random_tensor(&dout_shape, 1.0, 51);
        let mut full = layer([3, 2, 3, 2], 2, 1, 52);
        let mut lean = full.clone();
        lean.set_input_grad_needed(false);
        full.forward(&x, true);
        lean.forward(&x, true);
        assert_eq!(full.output().shape(), &dout_shape);
        full.backward(&dout);
        lean.backward(&dout);
        assert_eq!(full.dw, lean.dw);
        assert_eq!(full.db, lean.db);
        assert!(lean.grad_input().is_empty());
    }

    #[test]
    fn window_that_does_not_fit_has_no_output_size() {
        assert_eq!(output_size(4, 5, 1, 0), None);
        assert_eq!(output_size(4, 5, 1, 1), Some(2));
        assert_eq!(output_size(28, 5, 1, 0), Some(24));
        assert_eq!(output_size(28, 2, 0, 0), None);
        assert_eq!(output_size(7, 2, 2, 0), Some(3));
        assert_eq!(output_size(7, 2, 1, usize::MAX), None);
    }
}
