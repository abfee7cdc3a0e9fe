//! The direct convolution behind [`Convolution`](super::Convolution): no
//! im2col matrix, the filters run over the (padded) image itself.
//!
//! **Wide rows.** Pad an input plane to `Hp x Wp` and number its pixels
//! row-major, `p = y·Wp + x`. An output position `(oy, ox)` of a stride-1
//! convolution is numbered `q = oy·Wp + ox` over the same width, so filter
//! tap `(c, i, j)` reads pixel `q + off(c, i, j)` with `off = c·Hp·Wp + i·Wp + j`:
//! one constant offset per tap, whatever the output position. Sixteen
//! consecutive `q` are then sixteen consecutive pixels, one vector load, and
//!
//! `out[f][q] = b[f] + Σ_t W[f][t] · x[q + off(t)]`
//!
//! is a matrix product whose left operand is read straight from the image
//! (an implicit im2col). [`correlate`] computes it in blocks of 3 vectors of
//! positions by 8 filters, 24 accumulators, as a GEMM micro-kernel does: per
//! tap 3 vector loads and 8 broadcasts feed 24 fused multiply-adds.
//!
//! **Packed positions.** In wide numbering the last `Wp - OW` positions of
//! every row are not output pixels: computed and thrown away, 7 % of the
//! work on 28x28 images, 20 % on 8x8. Where output rows are at least 8 wide
//! the kernels compute the output pixels alone instead, `p = oy·OW + ox`: a
//! vector whose lanes run into the next output row loads those lanes from
//! the next input row by one masked load merged into the first
//! ([`Positions`]). Measured at DeepConvNet's shapes this pays for forward
//! and the input gradient but not for the weight gradient, whose kernel
//! already loads 10 vectors per 24 multiply-adds: it takes packed positions
//! only where no merge is needed.
//!
//! **Strides.** With stride `s` the input is split into `s x s` phase planes,
//! `plane[a][b][Y][X] = x[s·Y + a][s·X + b]`; tap `(c, i, j)` reads plane
//! `(c, i mod s, j mod s)` at `(oy + i/s, ox + j/s)`, again a constant offset
//! in wide numbering of the planes' width. So every stride is the same kernel
//! over `s²·C` planes, each tap with its own offset ([`Plan`]).
//!
//! **Backward.** The weight gradient `dW[f][t] = Σ_q dout[f][q] · x[q + off(t)]`
//! uses the same offsets, with `dout` laid out in wide rows and zeros in the
//! thrown-away columns ([`correlate_weights`], 4 filters by 6 taps of
//! accumulators, each a vector of partial sums over `q`). Where wide rows
//! would waste over a fifth of the work (8x8 outputs in rows of 10), each
//! tap's view of the output pixels is first copied into a row of its own, the
//! images end to end (a transposed im2col, [`Plan::gather_taps`]), and the
//! same kernel runs over those rows; with 48 filters or more it takes outer
//! products instead ([`correlate_weights_outer`]): `dout` transposed to a row
//! of filters per pixel, each tap's input value broadcast from the planes,
//! `dW` itself the accumulators. The input gradient
//! is a correlation of `dout` with the flipped filters, channels swapped: with
//! stride 1 one more [`correlate`] over a padded `dout`; with stride `s`, one
//! per phase of the input (pixel `s·Y + a` receives from taps `i ≡ a mod s`).
//!
//! A plain loop-by-loop convolution (`reference`, in the tests) is the
//! definition these are checked against, forward and backward, in f32 and
//! f64, over many shapes.

use std::array;

use crate::tensor::Float;
use crate::tensor::simd::Simd;

use super::convolution::Geometry;
use super::relu::relu_derivative;

/// Vectors of positions per block of [`correlate`] (the last block of a row
/// of positions may take fewer).
const NV: usize = 3;
/// Filters per block of [`correlate`]: 8 x 3 accumulators, 3 input vectors
/// and a broadcast fit in AVX-512's 32 registers.
pub const FB: usize = 8;
/// Filters by taps per block of [`correlate_weights`]: 24 accumulators.
const GF: usize = 4;
const GT: usize = 6;

/// `n` rounded up to a multiple of `to`.
fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// The positions the kernels compute for `q_len` wanted: whole vectors.
pub fn rounded<T: Float>(q_len: usize) -> usize {
    round_up(q_len, <T::Vector as Simd<T>>::LANES)
}

/// Packs `fnum` filters of `taps` weights, `w(f, t)`, for [`correlate`]:
/// `[ceil(fnum / FB)][taps][FB]`, zero for the filters past `fnum`.
pub fn pack_filters<T: Float>(
    fnum: usize,
    taps: usize,
    w: impl Fn(usize, usize) -> T,
    packed: &mut Vec<T>,
) {
    packed.clear();
    for f0 in (0..fnum).step_by(FB) {
        for t in 0..taps {
            for f in f0..f0 + FB {
                packed.push(if f < fnum { w(f, t) } else { T::zero() });
            }
        }
    }
}

/// The output positions [`correlate`] computes, a vector of them at a
/// time: where each vector reads its input, and which of its lanes are
/// output pixels and where they go.
///
/// In *wide* rows a vector's lanes read consecutive input values: the
/// positions past the output's width are computed and thrown away. *Packed*
/// positions are the output pixels alone, `p = oy·OW + ox`; a vector whose
/// lanes run into the next output row reads those lanes from one or two
/// input rows further on (`skip` = the input row's width minus `OW`), by
/// masked loads merged into the first.
#[derive(Clone, Debug, PartialEq)]
pub struct Positions {
    vectors: Vec<VectorAt>,
    skip: usize,
    /// Merged loads per vector: 0 (wide rows), 1 or 2.
    merges: usize,
    packed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct VectorAt {
    /// Input offset of lane 0.
    start: usize,
    /// The lanes read one and two rows' `skip` further on.
    merge: [u32; 2],
    /// The lanes that are output pixels, and the first one's index in the
    /// output plane.
    keep: u32,
    at: usize,
}

impl Positions {
    /// Wide rows: `rows` rows of `row_w` positions, the first `valid_w` of
    /// each an output pixel.
    pub fn wide<T: Float>(rows: usize, row_w: usize, valid_w: usize) -> Self {
        let lanes = <T::Vector as Simd<T>>::LANES;
        let vectors = (0..rounded::<T>(rows * row_w))
            .step_by(lanes)
            .map(|q0| {
                let keep = (0..lanes)
                    .filter(|l| (q0 + l) / row_w < rows && (q0 + l) % row_w < valid_w)
                    .fold(0u32, |m, l| m | 1 << l);
                let at = (q0 / row_w) * valid_w + (q0 % row_w).min(valid_w);
                VectorAt {
                    start: q0,
                    merge: [0; 2],
                    keep,
                    at,
                }
            })
            .collect();
        Positions {
            vectors,
            skip: 0,
            merges: 0,
            packed: false,
        }
    }

    /// `len` positions reading consecutive input values, all kept.
    pub fn flat<T: Float>(len: usize) -> Self {
        Self::wide::<T>(1, len, len)
    }

    /// The `rows x cols` output pixels packed, reading input rows of `row_w`
    /// (at least `cols`); `None` where a vector would span more than three
    /// output rows (outputs narrower than 8 with 16 lanes).
    pub fn packed<T: Float>(rows: usize, cols: usize, row_w: usize) -> Option<Self> {
        let lanes = <T::Vector as Simd<T>>::LANES;
        let total = rows * cols;
        if cols == 0 || row_w < cols {
            return None;
        }
        let mut merges = 0;
        let vectors = (0..total)
            .step_by(lanes)
            .map(|p0| {
                let mut merge = [0u32; 2];
                for l in 0..lanes.min(total - p0) {
                    let row = (p0 + l) / cols - p0 / cols;
                    if row > 2 {
                        return None;
                    }
                    if row > 0 {
                        merge[row - 1] |= 1 << l;
                        merges = merges.max(row);
                    }
                }
                let count = lanes.min(total - p0);
                let keep = ((1u64 << count) - 1) as u32;
                Some(VectorAt {
                    start: p0 + (p0 / cols) * (row_w - cols),
                    merge,
                    keep,
                    at: p0,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Positions {
            vectors,
            skip: row_w - cols,
            merges,
            packed: true,
        })
    }

    /// Whether the positions are the output pixels alone (so that a dense
    /// `dout` lines up with them).
    pub fn is_packed(&self) -> bool {
        self.packed
    }

    /// Packed positions for the weight gradient only where no vector needs
    /// a merged load: its 6 taps by 4 filters of accumulators already load
    /// 10 vectors per 24 multiply-adds, and merges make it wait on loads
    /// (measured: DeepConvNet's backward 25 % slower with them).
    pub fn for_weights<T: Float>(rows: usize, cols: usize, row_w: usize) -> Self {
        match Self::packed::<T>(rows, cols, row_w) {
            Some(p) if p.merges == 0 => p,
            _ => Self::wide::<T>(rows, row_w, cols),
        }
    }

    /// Forward and the input gradient: packed where that takes no merged
    /// loads, or where wide rows would compute over a fifth more positions
    /// than there are pixels; wide otherwise. A merged load is a load and a
    /// blend, the blend on an FMA port (Intel): measured at DeepConvNet's
    /// shapes, packed with merges is 5 % faster than wide rows at 8x8 in
    /// rows of 10 (25 % more positions), 6 % slower at 14x14 in 16 and at
    /// 28x28 in 30 (14 % and 8 %).
    pub fn best<T: Float>(rows: usize, cols: usize, row_w: usize) -> Self {
        let wide = Self::wide::<T>(rows, row_w, cols);
        match Self::packed::<T>(rows, cols, row_w) {
            Some(p) if p.merges == 0 || wide.computed::<T>() * 5 > rows * cols * 6 => p,
            _ => wide,
        }
    }

    /// One past the last input offset a vector's lanes read, tap 0.
    fn reach<T: Float>(&self) -> usize {
        let lanes = <T::Vector as Simd<T>>::LANES;
        self.vectors
            .iter()
            .map(|v| v.start + self.merges * self.skip + lanes)
            .max()
            .unwrap_or(0)
    }

    /// Computed positions: whole vectors.
    pub fn computed<T: Float>(&self) -> usize {
        self.vectors.len() * <T::Vector as Simd<T>>::LANES
    }
}

/// Where [`correlate`] writes filter `f`'s positions.
pub enum Output<'a, T> {
    /// All computed positions, at `out[f·stride + q]`.
    Wide { out: &'a mut [T], stride: usize },
    /// Only the output pixels, at `out[f·plane + p]`; through ReLU if
    /// `relu` (a convolution that applies the ReLU after it, saving that
    /// layer's pass over the output).
    Dense {
        out: &'a mut [T],
        plane: usize,
        relu: bool,
    },
}

/// Images end to end for [`correlate`]: image `n` of `count` reads its
/// input at `n·x` and (dense output only) writes at `n·out`. The kernel's
/// blocks of vectors then run on across the images: the last vectors of one
/// image share a block with the first of the next, where image by image
/// they took a block of one vector, 8 accumulators (a quarter of the vectors
/// of an 8x8 output).
#[derive(Clone, Copy, Debug)]
pub struct Images {
    pub count: usize,
    pub x: usize,
    pub out: usize,
}

impl Images {
    /// A single image.
    pub const ONE: Images = Images {
        count: 1,
        x: 0,
        out: 0,
    };
}

/// `out[f][q] = bias[f] + Σ_t W[f][t] · x[at(q) + taps[t]]` for every filter
/// `f < fnum` and every position `q` of `positions` (reading its input at
/// `at(q)`), in each of `images`, with `W` packed by [`pack_filters`] and
/// `bias` empty for none; written as `out` says.
///
/// Panics unless `x` holds what the positions and taps reach and `out`
/// `fnum` rows of all positions (`Wide`, one image) or of every kept one
/// (`Dense`), for every image.
#[allow(clippy::too_many_arguments)]
pub fn correlate<T: Float>(
    x: &[T],
    images: Images,
    taps: &[usize],
    packed: &[T],
    bias: &[T],
    fnum: usize,
    positions: &Positions,
    mut out: Output<'_, T>,
) {
    if images.count == 0 {
        return;
    }
    let before = (images.count - 1) * images.x;
    let reach = before + positions.reach::<T>() + taps.iter().max().copied().unwrap_or(0);
    assert!(
        x.len() >= reach,
        "correlate: input of {} values, the taps reach {reach}",
        x.len()
    );
    let computed = positions.computed::<T>();
    match &out {
        Output::Wide { out, stride } => assert!(
            images.count == 1
                && *stride >= computed
                && out.len() >= fnum.saturating_sub(1) * stride + computed,
            "correlate: output of {} values for {fnum} rows of {computed} (stride {stride})",
            out.len()
        ),
        Output::Dense { out, plane, .. } => {
            let kept = positions
                .vectors
                .iter()
                .map(|v| v.at + v.keep.count_ones() as usize)
                .max();
            let before = (images.count - 1) * images.out;
            assert!(
                kept.unwrap_or(0) <= *plane && out.len() >= before + fnum * plane,
                "correlate: output of {} values for {} images of {fnum} planes of {plane}",
                out.len(),
                images.count
            );
        }
    }
    assert_eq!(
        packed.len(),
        round_up(fnum, FB) * taps.len(),
        "correlate: packed filters"
    );
    assert!(bias.is_empty() || bias.len() == fnum, "correlate: bias");
    let per_block = (taps.len() * FB).max(1);
    let nv = positions.vectors.len();
    let total = images.count * nv;
    for k0 in (0..total).step_by(NV) {
        // Vector k is image k / nv's vector k % nv.
        let vectors: [VectorAt; NV] = array::from_fn(|i| {
            let k = (k0 + i).min(total - 1);
            let (n, v) = (k / nv, k % nv);
            let a = positions.vectors[v];
            VectorAt {
                start: a.start + n * images.x,
                at: a.at + n * images.out,
                ..a
            }
        });
        let group = &vectors[..NV.min(total - k0)];
        for (fb, w) in packed.chunks_exact(per_block).enumerate() {
            let f0 = fb * FB;
            let block = Block {
                taps,
                w,
                bias: if bias.is_empty() { bias } else { &bias[f0..] },
                f0,
                k0,
                skip: positions.skip,
                vectors: group,
            };
            let nf = (fnum - f0).min(FB);
            // SAFETY: every read, at a vector's start (or `skip` or
            // `2·skip` further for its merged lanes) plus a tap, lies below
            // `reach` ≤ x.len(); every write within the output asserted above
            // (filters f0 + f < fnum, images n < count).
            unsafe {
                let x = x.as_ptr();
                match (group.len(), positions.merges) {
                    (3, 0) => block.filters::<3, 0>(nf, x, &mut out),
                    (3, 1) => block.filters::<3, 1>(nf, x, &mut out),
                    (3, _) => block.filters::<3, 2>(nf, x, &mut out),
                    (2, 0) => block.filters::<2, 0>(nf, x, &mut out),
                    (2, 1) => block.filters::<2, 1>(nf, x, &mut out),
                    (2, _) => block.filters::<2, 2>(nf, x, &mut out),
                    (_, 0) => block.filters::<1, 0>(nf, x, &mut out),
                    (_, 1) => block.filters::<1, 1>(nf, x, &mut out),
                    (_, _) => block.filters::<1, 2>(nf, x, &mut out),
                }
            }
        }
    }
}

/// One block of [`correlate`]: the filters' packed weights and bias, the
/// taps, the first filter, and the block's vectors of positions (the first
/// of them the `k0`-th).
struct Block<'a, T> {
    taps: &'a [usize],
    w: &'a [T],
    bias: &'a [T],
    f0: usize,
    k0: usize,
    skip: usize,
    vectors: &'a [VectorAt],
}

impl<T: Float> Block<'_, T> {
    /// # Safety
    /// As [`Block::run`], for `nf` filters.
    #[inline(always)]
    unsafe fn filters<const V: usize, const M: usize>(
        &self,
        nf: usize,
        x: *const T,
        out: &mut Output<'_, T>,
    ) {
        // SAFETY: passed on from the caller.
        unsafe {
            match nf {
                8 => self.run::<8, V, M>(x, out),
                7 => self.run::<7, V, M>(x, out),
                6 => self.run::<6, V, M>(x, out),
                5 => self.run::<5, V, M>(x, out),
                4 => self.run::<4, V, M>(x, out),
                3 => self.run::<3, V, M>(x, out),
                2 => self.run::<2, V, M>(x, out),
                _ => self.run::<1, V, M>(x, out),
            }
        }
    }

    /// `F` filters by `V` vectors of positions: `F·V` accumulators; each
    /// input vector one load and `M` merged ones.
    ///
    /// # Safety
    /// Every vector's reads plus a tap readable; filters `f0..f0 + F` and
    /// the block's vectors within `out`; `w` holds `taps.len()·FB` values,
    /// `bias` none or at least `F`.
    // Not inlined: see [`weights_block`].
    #[inline(never)]
    unsafe fn run<const F: usize, const V: usize, const M: usize>(
        &self,
        x: *const T,
        out: &mut Output<'_, T>,
    ) {
        let lanes = <T::Vector as Simd<T>>::LANES;
        let mut acc: [[T::Vector; V]; F] = array::from_fn(|f| {
            [T::Vector::splat(self.bias.get(f).copied().unwrap_or(T::zero())); V]
        });
        let at: [VectorAt; V] = array::from_fn(|v| self.vectors[v]);
        // SAFETY (pointer offsets): within the input, by the caller.
        let base: [*const T; V] = array::from_fn(|v| unsafe { x.add(at[v].start) });
        for (&off, wt) in self.taps.iter().zip(self.w.chunks_exact(FB)) {
            // SAFETY: the caller guarantees these reads.
            let a: [T::Vector; V] = array::from_fn(|v| unsafe {
                let p = base[v].add(off);
                let mut a = T::Vector::load(p);
                for m in 0..M {
                    a = a.load_merge(at[v].merge[m], p.add((m + 1) * self.skip));
                }
                a
            });
            for (row, &wf) in acc.iter_mut().zip(wt) {
                let b = T::Vector::splat(wf);
                for (r, &av) in row.iter_mut().zip(&a) {
                    *r = r.mul_add(b, av);
                }
            }
        }
        // SAFETY (stores): the caller guarantees these rows and vectors lie
        // within the output.
        let full = ((1u64 << lanes) - 1) as u32;
        match out {
            Output::Wide { out, stride } => {
                let o = out.as_mut_ptr();
                for (f, row) in acc.iter().enumerate() {
                    for (v, r) in row.iter().enumerate() {
                        let q = (self.k0 + v) * lanes;
                        unsafe { r.store(o.add((self.f0 + f) * *stride + q)) };
                    }
                }
            }
            Output::Dense { out, plane, relu } => {
                let o = out.as_mut_ptr();
                for (f, row) in acc.iter().enumerate() {
                    for (&r, a) in row.iter().zip(&at) {
                        let r = if *relu { r.relu() } else { r };
                        let dst = unsafe { o.add((self.f0 + f) * *plane + a.at) };
                        if a.keep == full {
                            unsafe { r.store(dst) };
                        } else {
                            unsafe { r.store_selected(a.keep, dst) };
                        }
                    }
                }
            }
        }
    }
}

/// How [`correlate_weights`] finds `dout`: image `n`, filter `f` at
/// `n·image + f·stride`, laid out as the output pixels (`dense`, each
/// vector's lanes at its packed positions) or in wide rows (zeros where the
/// forward pass threw positions away).
#[derive(Clone, Copy, Debug)]
pub struct DoutLayout {
    pub image: usize,
    pub stride: usize,
    pub dense: bool,
}

/// `dw[f·taps.len() + t] += Σ_n Σ_q dout_n[f][q] · x[n·x_image + at(q) +
/// taps[t]]` over `images` images and the positions `q` of `positions`
/// (reading their input at `at(q)`): the weight gradient.
#[allow(clippy::too_many_arguments)]
pub fn correlate_weights<T: Float>(
    x: &[T],
    x_image: usize,
    taps: &[usize],
    dout: &[T],
    layout: DoutLayout,
    fnum: usize,
    images: usize,
    positions: &Positions,
    dw: &mut [T],
) {
    assert_eq!(dw.len(), fnum * taps.len(), "correlate_weights: dW");
    if images == 0 || positions.vectors.is_empty() || fnum == 0 {
        return;
    }
    let reach =
        (images - 1) * x_image + positions.reach::<T>() + taps.iter().max().copied().unwrap_or(0);
    assert!(
        x.len() >= reach,
        "correlate_weights: input of {} values, taps reach {reach}",
        x.len()
    );
    let plane = match layout.dense {
        true => positions
            .vectors
            .iter()
            .map(|v| v.at + v.keep.count_ones() as usize)
            .max(),
        false => Some(positions.computed::<T>()),
    };
    assert!(
        dout.len() >= (images - 1) * layout.image + (fnum - 1) * layout.stride + plane.unwrap_or(0),
        "correlate_weights: dout of {} values",
        dout.len()
    );
    let shape = Shape {
        x_image,
        layout,
        images,
        ntaps: taps.len(),
        skip: positions.skip,
        vectors: &positions.vectors,
    };
    for t0 in (0..taps.len()).step_by(GT) {
        for f0 in (0..fnum).step_by(GF) {
            let (nf, nt) = ((fnum - f0).min(GF), (taps.len() - t0).min(GT));
            let t = &taps[t0..t0 + nt];
            let d = &mut dw[f0 * taps.len() + t0..];
            // SAFETY: the assertions above bound every read: image n < images,
            // the positions' reads plus taps, filter f0 + f < fnum.
            unsafe {
                let (x, o) = (x.as_ptr(), dout.as_ptr().add(f0 * layout.stride));
                match (nf, positions.merges) {
                    (4, 0) => weights_taps::<T, 4, 0>(x, t, o, &shape, d),
                    (4, 1) => weights_taps::<T, 4, 1>(x, t, o, &shape, d),
                    (4, _) => weights_taps::<T, 4, 2>(x, t, o, &shape, d),
                    (3, 0) => weights_taps::<T, 3, 0>(x, t, o, &shape, d),
                    (3, 1) => weights_taps::<T, 3, 1>(x, t, o, &shape, d),
                    (3, _) => weights_taps::<T, 3, 2>(x, t, o, &shape, d),
                    (2, 0) => weights_taps::<T, 2, 0>(x, t, o, &shape, d),
                    (2, 1) => weights_taps::<T, 2, 1>(x, t, o, &shape, d),
                    (2, _) => weights_taps::<T, 2, 2>(x, t, o, &shape, d),
                    (_, 0) => weights_taps::<T, 1, 0>(x, t, o, &shape, d),
                    (_, 1) => weights_taps::<T, 1, 1>(x, t, o, &shape, d),
                    (_, _) => weights_taps::<T, 1, 2>(x, t, o, &shape, d),
                }
            }
        }
    }
}

/// The strides, layout and positions of one [`correlate_weights`] call.
struct Shape<'a> {
    x_image: usize,
    layout: DoutLayout,
    images: usize,
    ntaps: usize,
    skip: usize,
    vectors: &'a [VectorAt],
}

/// # Safety
/// As [`weights_block`].
#[inline(always)]
unsafe fn weights_taps<T: Float, const F: usize, const M: usize>(
    x: *const T,
    taps: &[usize],
    dout: *const T,
    s: &Shape<'_>,
    dw: &mut [T],
) {
    // SAFETY: passed on from the caller.
    unsafe {
        if M == 0 && !s.layout.dense {
            return match taps.len() {
                6 => weights_wide::<T, F, 6>(x, taps, dout, s, dw),
                5 => weights_wide::<T, F, 5>(x, taps, dout, s, dw),
                4 => weights_wide::<T, F, 4>(x, taps, dout, s, dw),
                3 => weights_wide::<T, F, 3>(x, taps, dout, s, dw),
                2 => weights_wide::<T, F, 2>(x, taps, dout, s, dw),
                _ => weights_wide::<T, F, 1>(x, taps, dout, s, dw),
            };
        }
        match taps.len() {
            6 => weights_block::<T, F, 6, M>(x, taps, dout, s, dw),
            5 => weights_block::<T, F, 5, M>(x, taps, dout, s, dw),
            4 => weights_block::<T, F, 4, M>(x, taps, dout, s, dw),
            3 => weights_block::<T, F, 3, M>(x, taps, dout, s, dw),
            2 => weights_block::<T, F, 2, M>(x, taps, dout, s, dw),
            _ => weights_block::<T, F, 1, M>(x, taps, dout, s, dw),
        }
    }
}

/// `F` filters by `N` taps of [`correlate_weights`], over all images; each
/// input vector one load and `M` merged ones.
///
/// # Safety
/// For every image `n < s.images` and vector of positions: its input reads
/// plus each tap readable at `x + n·x_image`, its `dout` lanes at `dout +
/// n·image + f·stride` for `f < F`. `dw` holds row `f` at `f·s.ntaps` with
/// `N` entries.
// Not inlined: inlined into its caller's dispatch over every shape, one
// build of the same code kept the 24 accumulators on the stack and made
// DeepConvNet's epoch 1.6x slower; compiled alone, each shape keeps them in
// registers.
#[inline(never)]
unsafe fn weights_block<T: Float, const F: usize, const N: usize, const M: usize>(
    x: *const T,
    taps: &[usize],
    dout: *const T,
    s: &Shape<'_>,
    dw: &mut [T],
) {
    let lanes = <T::Vector as Simd<T>>::LANES;
    let full = ((1u64 << lanes) - 1) as u32;
    let taps: [usize; N] = array::from_fn(|t| taps[t]);
    let zero = T::Vector::splat(T::zero());
    let mut acc = [[zero; N]; F];
    let l = s.layout;
    for n in 0..s.images {
        // SAFETY (loads below): the caller guarantees these ranges.
        let (xn, dn) = unsafe { (x.add(n * s.x_image), dout.add(n * l.image)) };
        for v in s.vectors {
            let d: [T::Vector; F] = array::from_fn(|f| unsafe {
                match (l.dense, v.keep == full) {
                    (true, true) => T::Vector::load(dn.add(f * l.stride + v.at)),
                    (true, false) => zero.load_merge(v.keep, dn.add(f * l.stride + v.at)),
                    (false, _) => T::Vector::load(dn.add(f * l.stride + v.start)),
                }
            });
            let base = unsafe { xn.add(v.start) };
            for (t, &off) in taps.iter().enumerate() {
                let xv = unsafe {
                    let p = base.add(off);
                    let mut a = T::Vector::load(p);
                    for m in 0..M {
                        a = a.load_merge(v.merge[m], p.add((m + 1) * s.skip));
                    }
                    a
                };
                for (row, &dv) in acc.iter_mut().zip(&d) {
                    row[t] = row[t].mul_add(dv, xv);
                }
            }
        }
    }
    add_sums(&acc, s.ntaps, dw);
}

/// [`weights_block`] over wide rows: the vectors are consecutive, so one
/// pointer step apart and every `dout` load whole (no per-vector lookups,
/// which cost DeepConvNet's 28x28 layer a third of its weight gradient).
///
/// # Safety
/// As [`weights_block`].
#[inline(never)]
unsafe fn weights_wide<T: Float, const F: usize, const N: usize>(
    x: *const T,
    taps: &[usize],
    dout: *const T,
    s: &Shape<'_>,
    dw: &mut [T],
) {
    let lanes = <T::Vector as Simd<T>>::LANES;
    let taps: [usize; N] = array::from_fn(|t| taps[t]);
    let mut acc = [[T::Vector::splat(T::zero()); N]; F];
    let (l, computed) = (s.layout, s.vectors.len() * lanes);
    for n in 0..s.images {
        // SAFETY (loads below): the caller guarantees these ranges.
        let (xn, dn) = unsafe { (x.add(n * s.x_image), dout.add(n * l.image)) };
        for q in (0..computed).step_by(lanes) {
            let d: [T::Vector; F] =
                array::from_fn(|f| unsafe { T::Vector::load(dn.add(f * l.stride + q)) });
            let base = unsafe { xn.add(q) };
            for (t, &off) in taps.iter().enumerate() {
                let xv = unsafe { T::Vector::load(base.add(off)) };
                for (row, &dv) in acc.iter_mut().zip(&d) {
                    row[t] = row[t].mul_add(dv, xv);
                }
            }
        }
    }
    add_sums(&acc, s.ntaps, dw);
}

/// Filter vectors per block of [`weights_outer`] (with 6 taps: 24
/// accumulators).
const OV: usize = 4;

/// `dw_t[t·fpad + f] += Σ_k x[starts[k] + taps[t]] · dout_t[k·fpad + f]`:
/// the weight gradient as outer products, transposed (`dW` by taps, `dout`
/// by positions, filters padded to `fpad`, a whole number of vectors, with
/// zeros past the filters). Per position a block loads its filters' `dout`
/// once as vectors and broadcasts each tap's input value from the planes
/// themselves: no copy of the input, no partial sums left in lanes, and the
/// accumulators are `dW` itself, so the positions come in short chunks that
/// stay in L1. [`correlate_weights`] over gathered rows, where each block
/// streamed ten rows of 2048 positions from L2, ran at 43 % of the FMA peak
/// on DeepConvNet's 8x8 layers.
pub fn correlate_weights_outer<T: Float>(
    x: &[T],
    starts: &[usize],
    taps: &[usize],
    dout_t: &[T],
    fpad: usize,
    dw_t: &mut [T],
) {
    let lanes = <T::Vector as Simd<T>>::LANES;
    assert!(
        fpad.is_multiple_of(lanes),
        "correlate_weights_outer: {fpad} filters"
    );
    assert_eq!(dw_t.len(), taps.len() * fpad, "correlate_weights_outer: dW");
    assert!(
        dout_t.len() >= starts.len() * fpad,
        "correlate_weights_outer: dout"
    );
    let reach = starts
        .iter()
        .max()
        .map(|s| s + taps.iter().max().copied().unwrap_or(0));
    assert!(
        reach.is_none_or(|r| r < x.len()),
        "correlate_weights_outer: input of {} values, taps reach {reach:?}",
        x.len()
    );
    if starts.is_empty() {
        return;
    }
    let vectors = fpad / lanes;
    for v0 in (0..vectors).step_by(OV) {
        let fv = (vectors - v0).min(OV);
        let n = match fv {
            4 => 6,
            3 => 8,
            2 => 12,
            _ => 16,
        };
        let mut t0 = 0;
        while t0 < taps.len() {
            let nt = if taps.len() - t0 >= n { n } else { 1 };
            let t = &taps[t0..t0 + nt];
            let at = Outer {
                starts,
                fpad,
                first: v0 * lanes,
                dw_row: t0,
            };
            // SAFETY: the reads of x below `reach` < x.len(), of dout_t
            // within its `starts.len()` rows; the accumulators are rows
            // t0..t0 + nt of dw_t, vectors v0..v0 + fv of each.
            unsafe {
                let (x, d, w) = (x.as_ptr(), dout_t.as_ptr(), dw_t.as_mut_ptr());
                match (fv, nt) {
                    (4, 6) => weights_outer::<T, 4, 6>(x, t, d, &at, w),
                    (3, 8) => weights_outer::<T, 3, 8>(x, t, d, &at, w),
                    (2, 12) => weights_outer::<T, 2, 12>(x, t, d, &at, w),
                    (1, 16) => weights_outer::<T, 1, 16>(x, t, d, &at, w),
                    (4, _) => weights_outer::<T, 4, 1>(x, t, d, &at, w),
                    (3, _) => weights_outer::<T, 3, 1>(x, t, d, &at, w),
                    (2, _) => weights_outer::<T, 2, 1>(x, t, d, &at, w),
                    (_, _) => weights_outer::<T, 1, 1>(x, t, d, &at, w),
                }
            }
            t0 += nt;
        }
    }
}

/// Where one block of [`correlate_weights_outer`] reads and accumulates:
/// positions, the padded filter count, the block's first filter and `dW`
/// row.
struct Outer<'a> {
    starts: &'a [usize],
    fpad: usize,
    first: usize,
    dw_row: usize,
}

/// `FV` vectors of filters by `N` taps of [`correlate_weights_outer`].
///
/// # Safety
/// `x + starts[k] + taps[t]` readable for every position and tap; `dout +
/// k·fpad + first` holds `FV` vectors for every position; `dw + (dw_row +
/// t)·fpad + first` holds `FV` vectors for every `t < N`.
#[inline(never)]
unsafe fn weights_outer<T: Float, const FV: usize, const N: usize>(
    x: *const T,
    taps: &[usize],
    dout: *const T,
    at: &Outer<'_>,
    dw: *mut T,
) {
    let lanes = <T::Vector as Simd<T>>::LANES;
    let taps: [usize; N] = array::from_fn(|t| taps[t]);
    let row = |t: usize| unsafe { dw.add((at.dw_row + t) * at.fpad + at.first) };
    let mut acc: [[T::Vector; FV]; N] =
        array::from_fn(|t| array::from_fn(|v| unsafe { T::Vector::load(row(t).add(v * lanes)) }));
    for (k, &start) in at.starts.iter().enumerate() {
        let d = unsafe { dout.add(k * at.fpad + at.first) };
        let d: [T::Vector; FV] = array::from_fn(|v| unsafe { T::Vector::load(d.add(v * lanes)) });
        let xs = unsafe { x.add(start) };
        for (a, &off) in acc.iter_mut().zip(&taps) {
            let b = T::Vector::splat(unsafe { *xs.add(off) });
            for (r, &dv) in a.iter_mut().zip(&d) {
                *r = r.mul_add(b, dv);
            }
        }
    }
    for (t, a) in acc.iter().enumerate() {
        for (v, r) in a.iter().enumerate() {
            unsafe { r.store(row(t).add(v * lanes)) };
        }
    }
}

/// The first `n` values of `src` to the front of `dst`, by whole vectors:
/// where `dst` has room, the last vector's lanes past `n` are stored as
/// zeros (padding, or the next row's place, which its copy overwrites),
/// else by a masked store. Rows are short (8 to 28 values): a `memcpy`
/// call, or AMD's masked store, each cost more than the copy.
#[inline]
fn copy_row<T: Float>(src: &[T], dst: &mut [T], n: usize) {
    copy_row_where(src, None, dst, n);
}

/// [`copy_row`], and with `relu_out` (as long as `src`) the values through
/// ReLU's backward on the way, `src · (relu_out > 0)`: `dout` of a
/// convolution that applies the ReLU after it ([`Output::Dense`]'s `relu`).
/// Returns the copied values summed in lanes (for `db`, while they pass).
#[inline]
fn copy_row_where<T: Float>(
    src: &[T],
    relu_out: Option<&[T]>,
    dst: &mut [T],
    n: usize,
) -> T::Vector {
    let lanes = <T::Vector as Simd<T>>::LANES;
    assert!(src.len() >= n && dst.len() >= n, "copy_row: {n} values");
    assert!(
        relu_out.is_none_or(|y| y.len() == src.len()),
        "copy_row: ReLU"
    );
    let zero = T::Vector::splat(T::zero());
    let mut sum = zero;
    for i in (0..n).step_by(lanes) {
        // SAFETY: whole loads where the row holds a whole vector, else the
        // lanes below n - i (zeros above); whole stores where `dst` has
        // room, else those lanes only.
        unsafe {
            let (s, d) = (src.as_ptr().add(i), dst.as_mut_ptr().add(i));
            let mask = ((1u64 << (n - i).min(lanes)) - 1) as u32;
            let read = |p: *const T| match n - i >= lanes {
                true => T::Vector::load(p),
                false => zero.load_merge(mask, p),
            };
            let v = match relu_out {
                Some(y) => read(s).relu_grad(read(y.as_ptr().add(i))),
                None => read(s),
            };
            if dst.len() - i >= lanes {
                v.store(d);
            } else {
                v.store_selected(mask, d);
            }
            sum = sum.add(v);
        }
    }
    sum
}

/// `dw[f·ntaps + t] += Σ lanes of acc[f][t]`: a weight-gradient block's
/// accumulators summed into `dW`.
fn add_sums<T: Float, const F: usize, const N: usize>(
    acc: &[[T::Vector; N]; F],
    ntaps: usize,
    dw: &mut [T],
) {
    for (f, row) in acc.iter().enumerate() {
        for (t, a) in row.iter().enumerate() {
            dw[f * ntaps + t] += a.sum();
        }
    }
}

/// How a convolution of one [`Geometry`] runs: the layouts of the buffers,
/// every tap's offset and the output positions, for forward, the weight
/// gradient and (per input phase) the input gradient. Made once per input
/// shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Phase planes per channel: rows `s·Y + a` for `a < phase_rows`, columns
    /// `s·X + b` for `b < phase_cols` (phases no tap reads are left out).
    phase_rows: usize,
    phase_cols: usize,
    /// Rows and columns of a phase plane.
    plane_h: usize,
    plane_w: usize,
    /// Values per image of the phase planes, and the zeros after the last
    /// image that the last block's reads may reach.
    pub x_image: usize,
    pub x_tail: usize,
    /// Forward: one offset per tap `(c, i, j)`, in the order of `W`.
    pub taps: Vec<usize>,
    /// Forward and weight gradient: wide positions wanted (`OH` rows of
    /// `plane_w`) and computed (whole vectors).
    pub q_len: usize,
    pub q_round: usize,
    /// Forward: the output pixels, packed where the width allows; the
    /// weight gradient's, packed only where that takes no merged loads.
    pub positions: Positions,
    pub weight_positions: Positions,
    /// Whether the weight gradient first gathers each tap's view of the
    /// output pixels ([`Plan::gather_taps`]), so that its kernel runs over
    /// the pixels alone, across a chunk's images: where wide rows would
    /// compute over 20 % thrown-away positions (8x8 outputs in 10-wide rows:
    /// dW 15 % faster; at 14 % waste, 14x14 in 16, the copy did not pay).
    pub weight_gather: bool,
    /// Whether, where it gathers, the weight gradient takes outer products
    /// instead ([`correlate_weights_outer`]): with three vectors of filters
    /// or more, so that a block's broadcasts are at most eight per 24
    /// multiply-adds (measured: DeepConvNet's 8x8 layers, 64 filters,
    /// 12-16 % faster forward and backward; with 16 or 32 filters slower).
    pub weight_outer: bool,
    /// Input gradient: `dout` padded to `dout_h x dout_w` at row `dout_top`,
    /// column `dout_left`, one plane per filter (`dout_image` values per
    /// image); then the zeros the last image's reads may reach.
    dout_top: usize,
    dout_left: usize,
    dout_h: usize,
    dout_w: usize,
    pub dout_plane: usize,
    pub dout_image: usize,
    pub dout_tail: usize,
    /// Where the weight gradient finds `dout` in wide rows inside the padded
    /// `dout`, if the layouts agree (same width: "same" padding, stride 1);
    /// otherwise it gets its own copy ([`Plan::widen_dout`]).
    pub shared_dout: Option<usize>,
    /// One input-gradient correlation per phase of the input.
    pub dx_phases: Vec<DxPhase>,
    /// Whether some input pixels get no gradient from any tap (stride larger
    /// than the filter): `dx` is cleared first.
    pub dx_gaps: bool,
    pub geometry: Geometry,
}

/// The input gradient at pixels `(s·Y + a - P, s·X + b - P)`: a correlation
/// of the padded `dout` with the taps `(f, m, l)` of weights `W[f][c][a + s·m][b + s·l]`.
#[derive(Clone, Debug, PartialEq)]
pub struct DxPhase {
    a: usize,
    b: usize,
    /// Rows `y0..y1` and columns `x0..x1` of the phase that are input pixels.
    y0: usize,
    y1: usize,
    x0: usize,
    x1: usize,
    /// Per tap: its offset in the padded `dout` and its `(i, j)` in `W`, with
    /// the filter `f`: `(offset, f, i, j)`.
    taps: Vec<(usize, usize, usize, usize)>,
    /// Offsets alone, for [`correlate`].
    pub offsets: Vec<usize>,
    pub q_len: usize,
    /// The phase's pixels: with stride 1 the one phase is the whole input
    /// gradient, which [`correlate`] then writes straight into `dx`
    /// (`Output::Dense`, packed positions where the width allows); with
    /// larger strides wide rows, scattered by [`Plan::scatter_dx`].
    pub positions: Positions,
    pub dense: bool,
}

impl Plan {
    /// The plan for `fnum` filters on `g` (which holds the filter size,
    /// stride and padding), for element type `T` (blocks are whole vectors).
    pub fn new<T: Float>(g: &Geometry, fnum: usize) -> Self {
        let lanes = <T::Vector as Simd<T>>::LANES;
        let s = g.stride;
        let (phase_rows, phase_cols) = (s.min(g.fh), s.min(g.fw));
        let plane_h = g.oh + (g.fh - 1) / s;
        let plane_w = g.ow + (g.fw - 1) / s;
        let plane = plane_h * plane_w;
        let x_image = g.c * phase_rows * phase_cols * plane;
        let mut taps = Vec::with_capacity(g.col_rows());
        for c in 0..g.c {
            for i in 0..g.fh {
                for j in 0..g.fw {
                    let p = (c * phase_rows + i % s) * phase_cols + j % s;
                    taps.push(p * plane + (i / s) * plane_w + j / s);
                }
            }
        }
        let q_len = g.oh * plane_w;
        let q_round = round_up(q_len, lanes);
        let positions = Positions::best::<T>(g.oh, g.ow, plane_w);
        let weight_positions = Positions::for_weights::<T>(g.oh, g.ow, plane_w);
        let reach = q_round
            .max(positions.reach::<T>())
            .max(weight_positions.reach::<T>())
            + taps.iter().max().copied().unwrap_or(0);
        let x_tail = reach.saturating_sub(x_image);
        let weight_gather =
            !weight_positions.is_packed() && weight_positions.computed::<T>() * 5 > g.oh * g.ow * 6;
        let weight_outer = weight_gather && rounded::<T>(fnum) >= 3 * lanes;

        // The input gradient, phase by phase (see `DxPhase`).
        let first = |a: usize| (g.pad.saturating_sub(a)).div_ceil(s);
        let end = |a: usize, len: usize| (g.pad + len).saturating_sub(a).div_ceil(s);
        let taps_of = |a: usize, k: usize| if a < k { (k - a).div_ceil(s) } else { 0 };
        let (mut top, mut left, mut rows, mut cols) = (0, 0, g.oh, g.ow);
        let mut dx_gaps = false;
        let mut spans = Vec::new();
        for a in 0..s {
            for b in 0..s {
                let (y0, y1, x0, x1) = (first(a), end(a, g.h), first(b), end(b, g.w));
                let (ma, lb) = (taps_of(a, g.fh), taps_of(b, g.fw));
                if y1 <= y0 || x1 <= x0 {
                    continue;
                }
                if ma == 0 || lb == 0 {
                    dx_gaps = true;
                    continue;
                }
                top = top.max((ma - 1).saturating_sub(y0));
                left = left.max((lb - 1).saturating_sub(x0));
                rows = rows.max(y1);
                cols = cols.max(x1);
                spans.push((a, b, y0, y1, x0, x1, ma, lb));
            }
        }
        let dout_w = left + cols;
        // The weight gradient reads `dout` at q + offset for q < q_round;
        // past the wanted rows it must meet zero rows of the same plane.
        let shared_dout = (dout_w == plane_w).then_some(top * dout_w + left);
        let dout_h = match shared_dout {
            Some(_) => (top + rows).max(top + g.oh + (left + lanes).div_ceil(dout_w)),
            None => top + rows,
        };
        let dout_plane = dout_h * dout_w;
        let dout_image = fnum * dout_plane;
        let mut dout_reach = match shared_dout {
            Some(offset) => (fnum - 1) * dout_plane + offset + q_round,
            None => dout_image,
        };
        let mut dx_phases = Vec::new();
        for (a, b, y0, y1, x0, x1, ma, lb) in spans {
            let mut phase_taps = Vec::with_capacity(fnum * ma * lb);
            for f in 0..fnum {
                for m in 0..ma {
                    for l in 0..lb {
                        let off = f * dout_plane + (y0 + top - m) * dout_w + (x0 + left - l);
                        phase_taps.push((off, f, a + s * m, b + s * l));
                    }
                }
            }
            let q_len = (y1 - y0) * dout_w;
            let offsets: Vec<usize> = phase_taps.iter().map(|t| t.0).collect();
            let max = offsets.iter().max().copied().unwrap_or(0);
            let (rows, cols) = (y1 - y0, x1 - x0);
            let positions = match s {
                1 => Positions::best::<T>(rows, cols, dout_w),
                _ => Positions::wide::<T>(rows, dout_w, cols),
            };
            dout_reach = dout_reach.max(positions.reach::<T>() + max);
            dx_phases.push(DxPhase {
                a,
                b,
                y0,
                y1,
                x0,
                x1,
                taps: phase_taps,
                offsets,
                q_len,
                positions,
                dense: s == 1,
            });
        }
        Plan {
            phase_rows,
            phase_cols,
            plane_h,
            plane_w,
            x_image,
            x_tail,
            taps,
            q_len,
            q_round,
            positions,
            weight_positions,
            weight_gather,
            weight_outer,
            dout_top: top,
            dout_left: left,
            dout_h,
            dout_w,
            dout_plane,
            dout_image,
            dout_tail: dout_reach.saturating_sub(dout_image),
            shared_dout,
            dx_phases,
            dx_gaps,
            geometry: *g,
        }
    }

    fn g(&self) -> &Geometry {
        &self.geometry
    }

    /// Writes one image `(C, H, W)` into its phase planes, zeros where the
    /// planes reach into the padding or past the image. `zeroed`: `planes`
    /// already holds those zeros (an earlier image's planes of this plan:
    /// the copies write the same positions every time), so only the image
    /// is copied.
    pub fn scatter_input<T: Float>(&self, x: &[T], planes: &mut [T], zeroed: bool) {
        let g = self.g();
        let (s, p) = (g.stride, g.pad);
        let plane = self.plane_h * self.plane_w;
        let mut dst = planes.chunks_exact_mut(plane);
        for xc in x.chunks_exact(g.h * g.w) {
            for a in 0..self.phase_rows {
                for b in 0..self.phase_cols {
                    let d = dst.next().expect("C·phases planes");
                    // Columns X of the plane whose pixel s·X + b - P is in the image.
                    let xs = p.saturating_sub(b).div_ceil(s)
                        ..(g.w + p).saturating_sub(b).div_ceil(s).min(self.plane_w);
                    // One fill of the plane, then rows by vectors: per row
                    // fills and copies were library calls of a few values.
                    if !zeroed {
                        d.fill(T::zero());
                    }
                    for yy in 0..self.plane_h {
                        let y = (s * yy + a).checked_sub(p).filter(|&y| y < g.h);
                        let (Some(y), false) = (y, xs.is_empty()) else {
                            continue;
                        };
                        let first = s * xs.start + b - p;
                        // The rest of the plane after the row's first
                        // value: padding, or rows copied later.
                        let row = &mut d[yy * self.plane_w + xs.start..];
                        if s == 1 {
                            copy_row(&xc[y * g.w + first..], row, xs.len());
                        } else {
                            let src = &xc[y * g.w..(y + 1) * g.w];
                            for (k, v) in row[..xs.len()].iter_mut().enumerate() {
                                *v = src[first + k * s];
                            }
                        }
                    }
                }
            }
        }
    }

    /// For the weight gradient where [`Plan::weight_gather`]: tap `t`'s
    /// input under the output pixels of `images` images (phase planes
    /// `planes`, one after the other), `col[t·row + n·OH·OW + p]`, zeros up to
    /// `row`. A transposed im2col: one row per tap, the images end to end.
    /// `col` holds [`Plan::gather_len`] values.
    pub fn gather_taps<T: Float>(&self, planes: &[T], images: usize, row: usize, col: &mut [T]) {
        let g = self.g();
        let pixels = g.oh * g.ow;
        let p = &self.positions;
        // The forward's packed vectors, where it has them: 16 pixels from up
        // to three input rows by one load and merged ones, one store.
        let packed = p.is_packed() && images > 0 && {
            let reach = (images - 1) * self.x_image + p.reach::<T>();
            self.taps.iter().all(|&off| off + reach <= planes.len())
        };
        assert!(col.len() >= Self::gather_len::<T>(self.taps.len(), row));
        for (t, &off) in self.taps.iter().enumerate() {
            for n in 0..images {
                let plane = &planes[n * self.x_image + off..];
                let dst = &mut col[t * row + n * pixels..];
                if !packed {
                    for oy in 0..g.oh {
                        copy_row(&plane[oy * self.plane_w..], &mut dst[oy * g.ow..], g.ow);
                    }
                    continue;
                }
                for v in &p.vectors {
                    // SAFETY: the reads within `reach`, checked above; the
                    // store at a pixel of this image's row, with a vector of
                    // room after it (gather_len). Lanes past an image's last
                    // pixel land where the next store, or the zeros below,
                    // overwrite them.
                    unsafe {
                        let src = plane.as_ptr().add(v.start);
                        let mut a = T::Vector::load(src);
                        for (m, &merge) in v.merge.iter().enumerate().take(p.merges) {
                            a = a.load_merge(merge, src.add((m + 1) * p.skip));
                        }
                        a.store(dst.as_mut_ptr().add(v.at));
                    }
                }
            }
            col[t * row + images * pixels..(t + 1) * row].fill(T::zero());
        }
    }

    /// `dout` of `images` images `(N, FN, OH, OW)` as `fnum` rows of `row`,
    /// the images end to end (`dt[f·row + n·OH·OW + p]`), zeros after: the
    /// other operand of the gathered weight gradient; `dt` holds
    /// [`Plan::gather_len`] values for `fnum` rows. With `relu_out`, the
    /// output of a ReLU the convolution applied (as `dout`), through its
    /// backward on the way. Adds each filter's copied values to `db`.
    #[allow(clippy::too_many_arguments)]
    pub fn gather_dout<T: Float>(
        &self,
        dout: &[T],
        relu_out: Option<&[T]>,
        fnum: usize,
        images: usize,
        row: usize,
        dt: &mut [T],
        db: &mut [T],
    ) {
        let g = self.g();
        let pixels = g.oh * g.ow;
        assert!(dt.len() >= Self::gather_len::<T>(fnum, row) && db.len() == fnum);
        for (f, db) in db.iter_mut().enumerate() {
            for n in 0..images {
                let (at, from) = (f * row + n * pixels, (n * fnum + f) * pixels);
                let y = relu_out.map(|y| &y[from..]);
                *db += copy_row_where(&dout[from..], y, &mut dt[at..], pixels).sum();
            }
            dt[f * row + images * pixels..(f + 1) * row].fill(T::zero());
        }
    }

    /// For [`correlate_weights_outer`]: the input offset of tap 0 for every
    /// output pixel of `images` images (planes end to end), in reading
    /// order, into `starts`.
    pub fn pixel_starts(&self, images: usize, starts: &mut Vec<usize>) {
        let g = self.g();
        starts.clear();
        for n in 0..images {
            for oy in 0..g.oh {
                starts.extend((0..g.ow).map(|ox| n * self.x_image + oy * self.plane_w + ox));
            }
        }
    }

    /// `dout (images, FN, OH, OW)` transposed for
    /// [`correlate_weights_outer`]: a row of `fpad` per output pixel, zeros
    /// past the filters; through ReLU's backward if `relu_out` (as in
    /// [`Plan::pad_dout`]), and each filter's values added to `db`.
    pub fn transpose_dout<T: Float>(
        &self,
        dout: &[T],
        relu_out: Option<&[T]>,
        fpad: usize,
        dt: &mut [T],
        db: &mut [T],
    ) {
        let (g, fnum) = (self.g(), db.len());
        let pixels = g.oh * g.ow;
        let images = dout.len() / (fnum * pixels).max(1);
        assert!(dt.len() >= images * pixels * fpad && fpad >= fnum);
        assert!(relu_out.is_none_or(|y| y.len() == dout.len()));
        for row in dt[..images * pixels * fpad].chunks_exact_mut(fpad) {
            row[fnum..].fill(T::zero());
        }
        for (i, plane) in dout.chunks_exact(pixels).enumerate() {
            let (n, f) = (i / fnum, i % fnum);
            let y = relu_out.map(|y| &y[i * pixels..(i + 1) * pixels]);
            let rows = dt[n * pixels * fpad..].chunks_exact_mut(fpad);
            let mut sum = T::zero();
            for (p, (&d, row)) in plane.iter().zip(rows).enumerate() {
                let d = match y {
                    Some(y) => d * relu_derivative(y[p]),
                    None => d,
                };
                row[f] = d;
                sum += d;
            }
            db[f] += sum;
        }
    }

    /// Values of a gathered buffer of `rows` rows of `row`: one vector more,
    /// which the last row's copy may write past its end.
    pub fn gather_len<T: Float>(rows: usize, row: usize) -> usize {
        rows * row + <T::Vector as Simd<T>>::LANES
    }

    /// `dout (FN, OH, OW)` in wide rows for the weight gradient: `fnum` rows
    /// of `q_round`, zero at the thrown-away positions (already, if
    /// `zeroed`: as in [`Plan::scatter_input`]); `relu_out` and `db` as in
    /// [`Plan::pad_dout`].
    pub fn widen_dout<T: Float>(
        &self,
        dout: &[T],
        relu_out: Option<&[T]>,
        wide: &mut [T],
        zeroed: bool,
        db: Option<&mut [T]>,
    ) {
        let fnum = dout.len() / (self.g().oh * self.g().ow).max(1);
        if !zeroed {
            wide[..fnum * self.q_round].fill(T::zero());
        }
        let rows = (0, self.plane_w);
        self.copy_planes(dout, relu_out, wide, self.q_round, rows, db);
    }

    /// One image's `dout (FN, OH, OW)` padded for the input gradient (and
    /// the weight gradient if [`Plan::shared_dout`]): [`Plan::dout_image`]
    /// values, zero outside `dout` (already, if `zeroed`: as in
    /// [`Plan::scatter_input`]); `relu_out` as in [`Plan::gather_dout`],
    /// and each filter's copied values added to `db` if it is given.
    pub fn pad_dout<T: Float>(
        &self,
        dout: &[T],
        relu_out: Option<&[T]>,
        padded: &mut [T],
        zeroed: bool,
        db: Option<&mut [T]>,
    ) {
        if !zeroed {
            padded[..self.dout_image].fill(T::zero());
        }
        let rows = (self.dout_top * self.dout_w + self.dout_left, self.dout_w);
        self.copy_planes(dout, relu_out, padded, self.dout_plane, rows, db);
    }

    /// Each plane of `dout (FN, OH, OW)` into planes of `dst` of
    /// `dst_plane` values, output row `oy` at `first + oy·width` of `(first,
    /// width)`: through ReLU's backward by `relu_out` if given, each
    /// filter's values added to `db` if given. What lies around the rows
    /// must already be zero: each row's last vector stores zeros past it.
    fn copy_planes<T: Float>(
        &self,
        dout: &[T],
        relu_out: Option<&[T]>,
        dst: &mut [T],
        dst_plane: usize,
        (first, width): (usize, usize),
        mut db: Option<&mut [T]>,
    ) {
        let g = self.g();
        let plane = g.oh * g.ow;
        let fnum = dout.len() / plane.max(1);
        for (f, pf) in dst.chunks_exact_mut(dst_plane).take(fnum).enumerate() {
            let df = &dout[f * plane..(f + 1) * plane];
            let yf = relu_out.map(|y| &y[f * plane..(f + 1) * plane]);
            let mut sum = T::Vector::splat(T::zero());
            for oy in 0..g.oh {
                let from = oy * g.ow;
                let y = yf.map(|y| &y[from..]);
                // To the plane's end: padding, or rows copied later.
                let row = &mut pf[first + oy * width..];
                sum = sum.add(copy_row_where(&df[from..], y, row, g.ow));
            }
            if let Some(db) = db.as_deref_mut() {
                db[f] += sum.sum();
            }
        }
    }

    /// Packs `W [FN, C, FH, FW]` for the input gradient of `phase`: `C`
    /// "filters" over the phase's taps.
    pub fn pack_dx_filters<T: Float>(&self, phase: &DxPhase, w: &[T], packed: &mut Vec<T>) {
        let g = self.g();
        let (fh, fw, c) = (g.fh, g.fw, g.c);
        pack_filters(
            c,
            phase.taps.len(),
            |ch, t| {
                let (_, f, i, j) = phase.taps[t];
                w[((f * c + ch) * fh + i) * fw + j]
            },
            packed,
        );
    }

    /// Copies the phase's wanted positions (`C` rows of `stride`) into the
    /// input gradient `(C, H, W)`.
    pub fn scatter_dx<T: Float>(&self, phase: &DxPhase, wide: &[T], stride: usize, dx: &mut [T]) {
        let g = self.g();
        let (s, p) = (g.stride, g.pad);
        let (nx, w) = (phase.x1 - phase.x0, self.dout_w);
        for (c, dc) in dx.chunks_exact_mut(g.h * g.w).enumerate() {
            for yy in phase.y0..phase.y1 {
                let y = s * yy + phase.a - p;
                let src = &wide[c * stride + (yy - phase.y0) * w..][..nx];
                let first = s * phase.x0 + phase.b - p;
                let row = &mut dc[y * g.w..(y + 1) * g.w];
                if s == 1 {
                    row[first..first + nx].copy_from_slice(src);
                } else {
                    for (k, &v) in src.iter().enumerate() {
                        row[first + k * s] = v;
                    }
                }
            }
        }
    }
}

/// The definition, loop by loop: what the kernels are tested against.
#[cfg(test)]
pub mod reference {
    use crate::tensor::{Float, Tensor};

    fn at(i: usize, k: usize, s: usize, p: usize, len: usize) -> Option<usize> {
        (i * s + k).checked_sub(p).filter(|&v| v < len)
    }

    /// `y[n, f, oy, ox] = b[f] + Σ_{c,i,j} W[f, c, i, j] · x[n, c, oy·S + i - P, ox·S + j - P]`.
    pub fn forward<T: Float>(
        x: &Tensor<T>,
        w: &Tensor<T>,
        b: &Tensor<T>,
        s: usize,
        p: usize,
    ) -> Tensor<T> {
        let [n, c, h, wd] = x.shape().try_into().unwrap();
        let [fnum, _, fh, fw] = w.shape().try_into().unwrap();
        let (oh, ow) = ((h + 2 * p - fh) / s + 1, (wd + 2 * p - fw) / s + 1);
        let mut y = Tensor::zeros(&[n, fnum, oh, ow]);
        for im in 0..n {
            for f in 0..fnum {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut v = b.data()[f];
                        for ch in 0..c {
                            for i in 0..fh {
                                for j in 0..fw {
                                    if let (Some(yy), Some(xx)) =
                                        (at(oy, i, s, p, h), at(ox, j, s, p, wd))
                                    {
                                        v += w.data()[((f * c + ch) * fh + i) * fw + j]
                                            * x.data()[((im * c + ch) * h + yy) * wd + xx];
                                    }
                                }
                            }
                        }
                        y.data_mut()[((im * fnum + f) * oh + oy) * ow + ox] = v;
                    }
                }
            }
        }
        y
    }

    /// `(dx, dW, db)` for `dout`: each product of [`forward`] sent back.
    pub fn backward<T: Float>(
        x: &Tensor<T>,
        w: &Tensor<T>,
        dout: &Tensor<T>,
        s: usize,
        p: usize,
    ) -> (Tensor<T>, Tensor<T>, Tensor<T>) {
        let [n, c, h, wd] = x.shape().try_into().unwrap();
        let [fnum, _, fh, fw] = w.shape().try_into().unwrap();
        let [_, _, oh, ow] = dout.shape().try_into().unwrap();
        let (mut dx, mut dw, mut db) = (
            Tensor::zeros(x.shape()),
            Tensor::zeros(w.shape()),
            Tensor::zeros(&[fnum]),
        );
        for im in 0..n {
            for f in 0..fnum {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let d = dout.data()[((im * fnum + f) * oh + oy) * ow + ox];
                        db.data_mut()[f] += d;
                        for ch in 0..c {
                            for i in 0..fh {
                                for j in 0..fw {
                                    if let (Some(yy), Some(xx)) =
                                        (at(oy, i, s, p, h), at(ox, j, s, p, wd))
                                    {
                                        let wi = ((f * c + ch) * fh + i) * fw + j;
                                        let xi = ((im * c + ch) * h + yy) * wd + xx;
                                        dw.data_mut()[wi] += d * x.data()[xi];
                                        dx.data_mut()[xi] += d * w.data()[wi];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (dx, dw, db)
    }
}
