//! Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast
//! Algorithms for Convolutional Neural Networks", 2015) for the 3x3, stride-1
//! convolutions of [`Convolution`](super::Convolution): each 2x2 tile of
//! output from a 4x4 tile of input with 16 multiplications per channel pair
//! instead of 36,
//!
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, summed over the input channels,
//!
//! ```text
//! Bᵀ = | 1  0 -1  0 |    G = | 1    0    0   |    Aᵀ = | 1  1  1  0 |
//!      | 0  1  1  0 |        | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
//!      | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
//!      | 0  1  0 -1 |        | 0    0    1   |
//! ```
//!
//! The sum over channels, for each of the 16 positions ξ of a transformed
//! tile, is a matrix product: `M[ξ][f][t] = Σ_c U[ξ][f][c] · V[ξ][c][t]` over
//! the tiles `t` of a chunk of images, which is [`correlate`] with one tap per
//! channel. The transforms are additions, vectorised over 16 tiles at a time.
//!
//! Backward: the input gradient is the same correlation of the padded `dout`
//! with the filters flipped and the channels swapped; the weight gradient,
//! by the transpose of the forward formula, is
//! `dW = Gᵀ [Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B)] G` for the 2x2 tiles `e` of `dout`:
//! a matrix product over the tiles ([`matmul`]) sums the products, and
//! `Gᵀ · G` runs once per batch.
//!
//! To read the 4x4 tiles, which overlap by two columns and rows, as vectors
//! of 16 tiles, the padded input is split into phase planes (even and odd
//! rows and columns, by vector permutations), each kept twice, as it is and
//! shifted by one column: tile `(ty, tx)`, numbered `ty·tw + tx`, finds its
//! 16 values at that number in 8 planes, or one row of `tw` further on. The
//! transforms are then plain vector loads, additions and stores over the
//! tiles of an image, with no tile computed in vain.

use crate::tensor::Float;
use crate::tensor::simd::Simd;

use super::conv_kernels::{Output, Positions, correlate, pack_filters, rounded};
use crate::tensor::matmul;

/// Values of transformed tiles (input and products) a chunk of images may
/// hold: about 768 KiB of f32, so that they mostly stay in the core's 1 MiB
/// L2 cache between the transform, the products and the inverse transform.
const CHUNK_VALUES: usize = 192 * 1024;

/// The filter transform `G g Gᵀ` of one 3x3 filter `g` (row-major).
fn transform_filter<T: Float>(g: [T; 9]) -> [T; 16] {
    let half = T::of(0.5);
    let gm = |r: [T; 3]| {
        [
            r[0],
            half * (r[0] + r[1] + r[2]),
            half * (r[0] - r[1] + r[2]),
            r[2],
        ]
    };
    // G g: 4 rows of 3, from the columns of g.
    let cols: [[T; 4]; 3] = std::array::from_fn(|j| gm([g[j], g[3 + j], g[6 + j]]));
    let mut u = [T::zero(); 16];
    for a in 0..4 {
        let r = gm([cols[0][a], cols[1][a], cols[2][a]]);
        u[4 * a..4 * a + 4].copy_from_slice(&r);
    }
    u
}

/// Packs the transformed filters for [`correlate`], one set per position ξ:
/// `fnum` filters over `channels` taps, `g(f, c)` giving filter `f`'s 3x3
/// kernel on channel `c`.
pub fn pack_transformed<T: Float>(
    fnum: usize,
    channels: usize,
    g: impl Fn(usize, usize) -> [T; 9],
    packed: &mut [Vec<T>; 16],
    scratch: &mut Vec<T>,
) {
    scratch.clear();
    for f in 0..fnum {
        for c in 0..channels {
            scratch.extend_from_slice(&transform_filter(g(f, c)));
        }
    }
    for (xi, p) in packed.iter_mut().enumerate() {
        pack_filters(
            fnum,
            channels,
            |f, c| scratch[(f * channels + c) * 16 + xi],
            p,
        );
    }
}

/// Adds `Gᵀ S G` for the sums `S[ξ][f][c]` (16 x `fnum` x `channels`) to
/// `dw [fnum][channels][3][3]`.
pub fn add_weight_gradient<T: Float>(s: &[T], fnum: usize, channels: usize, dw: &mut [T]) {
    let half = T::of(0.5);
    let n = fnum * channels;
    // Gᵀ x for a column x of 4: 3 values.
    let gt = |x: [T; 4]| {
        [
            x[0] + half * (x[1] + x[2]),
            half * (x[1] - x[2]),
            half * (x[1] + x[2]) + x[3],
        ]
    };
    for (k, d) in dw.chunks_exact_mut(9).enumerate().take(n) {
        let sk: [T; 16] = std::array::from_fn(|xi| s[xi * n + k]);
        // Gᵀ S: 3 rows of 4.
        let rows: [[T; 3]; 4] =
            std::array::from_fn(|v| gt([sk[v], sk[4 + v], sk[8 + v], sk[12 + v]]));
        for i in 0..3 {
            let r = gt([rows[0][i], rows[1][i], rows[2][i], rows[3][i]]);
            for j in 0..3 {
                d[3 * i + j] += r[j];
            }
        }
    }
}

/// A 3x3, stride-1 correlation of `channels` planes of `h x w` padded by
/// `pad`, cut into 2x2 tiles of output.
#[derive(Clone, Debug, PartialEq)]
pub struct Tiling {
    pub channels: usize,
    h: usize,
    w: usize,
    pad: usize,
    /// Output rows and columns, and tiles along each.
    pub oh: usize,
    pub ow: usize,
    th: usize,
    tw: usize,
    /// Tiles per image, `th·tw`.
    pub tiles: usize,
    /// Rows of a phase plane (`th + 1`, each of `tw` values).
    ph: usize,
    /// Values of an image's 8 planes per channel, and the zeros after them
    /// that the last vector's reads may reach.
    planes_image: usize,
    planes_tail: usize,
}

/// `even[k] = src[2k]` and `odd[k] = src[2k + 1]` for `k < n`, both
/// written with `n` values; the columns past `len` of `src` read as zero.
/// Vector loads never pass `src.len()`; past it the last columns are copied
/// one by one.
fn split_columns<T: Float>(src: &[T], len: usize, n: usize, even: &mut [T], odd: &mut [T]) {
    let lanes = <T::Vector as Simd<T>>::LANES;
    assert!(even.len() >= n && odd.len() >= n && len <= src.len());
    let mut k = 0;
    while k < n && 2 * k + 2 * lanes <= src.len() {
        // SAFETY: 2k + 2·lanes ≤ src.len() for the loads; the stores write
        // min(lanes, n - k) values from k < n.
        unsafe {
            let lo = T::Vector::load(src.as_ptr().add(2 * k));
            let hi = T::Vector::load(src.as_ptr().add(2 * k + lanes));
            let (e, o) = lo.deinterleave(hi);
            let count = (n - k).min(lanes);
            e.store_prefix(count, even.as_mut_ptr().add(k));
            o.store_prefix(count, odd.as_mut_ptr().add(k));
        }
        k += lanes;
    }
    for j in k..n {
        even[j] = src.get(2 * j).copied().unwrap_or(T::zero());
        odd[j] = src.get(2 * j + 1).copied().unwrap_or(T::zero());
    }
    // Columns past `len` that the vectors read from the next row.
    even[len.div_ceil(2).min(n)..n].fill(T::zero());
    odd[(len / 2).min(n)..n].fill(T::zero());
}

impl Tiling {
    /// `None` when the padded planes are smaller than the filter.
    pub fn new<T: Float>(channels: usize, h: usize, w: usize, pad: usize) -> Option<Self> {
        let (oh, ow) = ((h + 2 * pad).checked_sub(2)?, (w + 2 * pad).checked_sub(2)?);
        if oh == 0 || ow == 0 {
            return None;
        }
        let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
        let ph = th + 1;
        let planes_image = channels * 8 * ph * tw;
        Some(Tiling {
            channels,
            h,
            w,
            pad,
            oh,
            ow,
            th,
            tw,
            tiles: th * tw,
            ph,
            planes_image,
            planes_tail: Self::reach::<T>(channels, ph, tw).saturating_sub(planes_image),
        })
    }

    /// Values of one input image, `channels·h·w`.
    pub fn image(&self) -> usize {
        self.channels * self.h * self.w
    }

    /// How far an image's input transform reads: a row past the last tile's
    /// vector, in the last plane.
    fn reach<T: Float>(channels: usize, ph: usize, tw: usize) -> usize {
        (channels * 8 - 1) * ph * tw + rounded::<T>((ph - 1) * tw) + tw
    }

    /// Images per chunk and the tile stride of a chunk's rows, for
    /// transformed tiles of `fnum + channels` channels and `images` images.
    /// Image `i` starts at tile `i·tiles`; its last vector may spill into
    /// the next image's, which that one then overwrites.
    fn chunk<T: Float>(&self, fnum: usize, images: usize) -> (usize, usize) {
        let per_image = 16 * (self.channels + fnum) * self.tiles;
        let chunk = (CHUNK_VALUES / per_image.max(1)).clamp(1, images.max(1));
        (
            chunk,
            rounded::<T>((chunk - 1) * self.tiles + rounded::<T>(self.tiles)),
        )
    }

    /// One image `(channels, h, w)` into its 8 planes per channel:
    /// `plane[c][a][b][s][Y][X] = x[c][2Y + a - pad][2(X + s) + b - pad]`,
    /// zero outside the image. The image is first padded whole into scratch
    /// (rows of `2·tw + 2`), so that the planes are read from memory the
    /// stores have left, not from stores still under way.
    fn scatter<T: Float>(&self, x: &[T], planes: &mut [T], s: &mut Scratch<T>) {
        let lanes = <T::Vector as Simd<T>>::LANES;
        let (ph, tw, p) = (self.ph, self.tw, self.pad);
        let (rows, width) = (2 * ph, 2 * tw + 2);
        let padded = rows * width;
        s.row
            .resize(self.channels * padded + 2 * lanes + 2, T::zero());
        for (xc, pc) in x
            .chunks_exact(self.h * self.w)
            .zip(s.row.chunks_exact_mut(padded))
        {
            for (r, dst) in pc.chunks_exact_mut(width).enumerate() {
                let Some(y) = r.checked_sub(p).filter(|&y| y < self.h) else {
                    dst.fill(T::zero());
                    continue;
                };
                let n = self.w.min(width - p);
                dst[..p].fill(T::zero());
                dst[p..p + n].copy_from_slice(&xc[y * self.w..y * self.w + n]);
                dst[p + n..].fill(T::zero());
            }
        }
        let plane = ph * tw;
        for (c, pc) in planes
            .chunks_exact_mut(8 * plane)
            .enumerate()
            .take(self.channels)
        {
            for (yy, a) in (0..rows).map(|r| (r / 2, r % 2)) {
                let src = s.row[(c * rows + 2 * yy + a) * width..].as_ptr();
                for (b, shift) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let dst = pc[((2 * a + b) * 2 + shift) * plane + yy * tw..][..tw].as_mut_ptr();
                    for k in (0..tw).step_by(lanes) {
                        // SAFETY: the reads end within 2·lanes + 2 past this
                        // padded row, inside the scratch (sized for the last
                        // row); the writes stay in the plane row of `tw`.
                        unsafe {
                            let at = src.add(2 * k + b + 2 * shift);
                            let (e, _) =
                                T::Vector::load(at).deinterleave(T::Vector::load(at.add(lanes)));
                            e.store_prefix((tw - k).min(lanes), dst.add(k));
                        }
                    }
                }
            }
        }
    }

    /// `V[ξ][c][t0 + t] = (Bᵀ d B)[ξ]` for the tiles `t` of one image, from
    /// its planes, at `v[c·c_stride + ξ·xi_stride + t0 + t]`. Writes a whole
    /// number of vectors of tiles (see [`Tiling::chunk`]); `end` bounds them.
    pub fn transform_input<T: Float>(
        &self,
        planes: &[T],
        v: &mut [T],
        (c_stride, xi_stride): (usize, usize),
        t0: usize,
        end: usize,
    ) {
        let lanes = <T::Vector as Simd<T>>::LANES;
        let (plane, tw, n) = (self.ph * self.tw, self.tw, rounded::<T>(self.tiles));
        let reach = Self::reach::<T>(self.channels, self.ph, tw);
        assert!(
            planes.len() >= reach,
            "transform_input: planes of {} values",
            planes.len()
        );
        let last = (self.channels - 1) * c_stride + 15 * xi_stride + t0 + n;
        assert!(
            t0 + n <= end && last <= v.len(),
            "transform_input: tiles {t0}+{n} past {end}"
        );
        for c in 0..self.channels {
            let pc = planes[c * 8 * plane..].as_ptr();
            for q in (0..n).step_by(lanes) {
                // SAFETY: every load lies below `reach` (asserted); every
                // store below `last` ≤ v.len().
                unsafe {
                    // d[r][j] = plane (r % 2, j % 2, j / 2) at row r / 2.
                    let d: [[T::Vector; 4]; 4] = std::array::from_fn(|r| {
                        std::array::from_fn(|j| {
                            let k = (2 * (r % 2) + j % 2) * 2 + j / 2;
                            T::Vector::load(pc.add(k * plane + (r / 2) * tw + q))
                        })
                    });
                    // Bᵀ d: row u from the columns j.
                    let bd = |u: usize, j: usize| {
                        let (d0, d1, d2, d3) = (d[0][j], d[1][j], d[2][j], d[3][j]);
                        [d0.sub(d2), d1.add(d2), d2.sub(d1), d1.sub(d3)][u]
                    };
                    let mut dst = v.as_mut_ptr().add(c * c_stride + t0 + q);
                    for u in 0..4 {
                        let (t0_, t1, t2, t3) = (bd(u, 0), bd(u, 1), bd(u, 2), bd(u, 3));
                        for val in [t0_.sub(t2), t1.add(t2), t2.sub(t1), t1.sub(t3)] {
                            val.store(dst);
                            dst = dst.add(xi_stride);
                        }
                    }
                }
            }
        }
    }

    /// `E[ξ][f][t0 + t] = (A e Aᵀ)[ξ]` for the 2x2 tiles `e` of one image's
    /// `dout (fnum, oh, ow)` (zero past the output), at
    /// `e[ξ·xi_stride + f·f_stride + t0 + t]`; as [`Tiling::transform_input`].
    #[allow(clippy::too_many_arguments)]
    pub fn transform_dout<T: Float>(
        &self,
        dout: &[T],
        fnum: usize,
        e: &mut [T],
        (f_stride, xi_stride): (usize, usize),
        t0: usize,
        end: usize,
        s: &mut Scratch<T>,
    ) {
        let lanes = <T::Vector as Simd<T>>::LANES;
        let (tw, n) = (self.tw, rounded::<T>(self.tiles));
        let last = (fnum - 1) * f_stride + 15 * xi_stride + t0 + n;
        assert!(
            t0 + n <= end && last <= e.len(),
            "transform_dout: tiles {t0}+{n} past {end}"
        );
        // The tile planes e[a][b] of every filter, with whole vectors of
        // zeros after the tiles; all written before any is read.
        s.tiles.clear();
        s.tiles.resize(4 * n * fnum, T::zero());
        for (df, tf) in dout
            .chunks_exact(self.oh * self.ow)
            .zip(s.tiles.chunks_exact_mut(4 * n))
        {
            for oy in 0..self.oh {
                let (ty, a) = (oy / 2, oy % 2);
                let (even, odd) = tf[2 * a * n..].split_at_mut(n);
                let src = &df[oy * self.ow..];
                split_columns(src, self.ow, tw, &mut even[ty * tw..], &mut odd[ty * tw..]);
            }
        }
        for f in 0..fnum {
            let tiles = &s.tiles[4 * n * f..];
            for q in (0..n).step_by(lanes) {
                // SAFETY: q + lanes ≤ n for the loads; the stores lie below
                // `last` ≤ e.len().
                unsafe {
                    let ld = |k: usize| T::Vector::load(tiles.as_ptr().add(k * n + q));
                    let (e00, e01, e10, e11) = (ld(0), ld(1), ld(2), ld(3));
                    let zero = T::Vector::splat(T::zero());
                    // A e: rows e0, e0 + e1, e0 - e1, -e1, for each column b.
                    let h = [
                        [e00, e01],
                        [e00.add(e10), e01.add(e11)],
                        [e00.sub(e10), e01.sub(e11)],
                        [zero.sub(e10), zero.sub(e11)],
                    ];
                    let mut dst = e.as_mut_ptr().add(f * f_stride + t0 + q);
                    for hu in h {
                        for val in [hu[0], hu[0].add(hu[1]), hu[0].sub(hu[1]), zero.sub(hu[1])] {
                            val.store(dst);
                            dst = dst.add(xi_stride);
                        }
                    }
                }
            }
        }
    }

    /// `y = Aᵀ M A + bias` for the `images` images of a chunk: the products
    /// of tile `t`, filter `f` at `m[f·16·stride + ξ·stride + t]`, into the
    /// images' `(fnum, oh, ow)` outputs.
    #[allow(clippy::too_many_arguments)]
    pub fn transform_output<T: Float>(
        &self,
        m: &[T],
        stride: usize,
        fnum: usize,
        bias: &[T],
        images: usize,
        out: &mut [T],
        s: &mut Scratch<T>,
    ) {
        let lanes = <T::Vector as Simd<T>>::LANES;
        let n = rounded::<T>(images * self.tiles);
        assert!(
            n <= stride && m.len() >= 16 * fnum * stride,
            "transform_output: products"
        );
        assert_eq!(
            out.len(),
            images * fnum * self.oh * self.ow,
            "transform_output: output"
        );
        // Four planes of tiles y[a][b] per filter, with room for a row's
        // whole vectors; all written before any is read.
        s.tiles.resize(4 * n * fnum + lanes, T::zero());
        let image_out = fnum * self.oh * self.ow;
        let tw = self.tw;
        for f in 0..fnum {
            let b = T::Vector::splat(bias.get(f).copied().unwrap_or(T::zero()));
            let mf = m[f * 16 * stride..].as_ptr();
            let y = s.tiles[4 * n * f..].as_mut_ptr();
            for q in (0..n).step_by(lanes) {
                // SAFETY: q + lanes ≤ n ≤ stride for the loads of filter f's
                // 16 rows, and for the stores into its four tile planes.
                unsafe {
                    let c: [[T::Vector; 4]; 4] = std::array::from_fn(|u| {
                        std::array::from_fn(|v| T::Vector::load(mf.add((4 * u + v) * stride + q)))
                    });
                    // Aᵀ M: two rows of 4, then · A.
                    let r0: [T::Vector; 4] =
                        std::array::from_fn(|v| c[0][v].add(c[1][v]).add(c[2][v]));
                    let r1: [T::Vector; 4] =
                        std::array::from_fn(|v| c[1][v].sub(c[2][v]).sub(c[3][v]));
                    for (a, ra) in [r0, r1].iter().enumerate() {
                        ra[0]
                            .add(ra[1])
                            .add(ra[2])
                            .add(b)
                            .store(y.add(2 * a * n + q));
                        ra[1]
                            .sub(ra[2])
                            .sub(ra[3])
                            .add(b)
                            .store(y.add((2 * a + 1) * n + q));
                    }
                }
            }
        }
        // Interleave the tile planes' columns into the images' rows.
        for f in 0..fnum {
            let y = s.tiles[4 * n * f..].as_ptr();
            for i in 0..images {
                let of = &mut out[i * image_out + f * self.oh * self.ow..][..self.oh * self.ow];
                for (oy, dst) in of.chunks_exact_mut(self.ow).enumerate() {
                    let (ty, a) = (oy / 2, oy % 2);
                    let base = i * self.tiles + ty * tw;
                    for k in (0..tw).step_by(lanes) {
                        // SAFETY: base + k + lanes ≤ n + lanes within the
                        // filter's planes (the last has `lanes` more); the
                        // stores write columns 2k.. below ow.
                        unsafe {
                            let even = T::Vector::load(y.add(2 * a * n + base + k));
                            let odd = T::Vector::load(y.add((2 * a + 1) * n + base + k));
                            let (lo, hi) = even.interleave(odd);
                            let col = 2 * k;
                            lo.store_prefix((self.ow - col).min(lanes), dst.as_mut_ptr().add(col));
                            if self.ow > col + lanes {
                                hi.store_prefix(
                                    (self.ow - col - lanes).min(lanes),
                                    dst.as_mut_ptr().add(col + lanes),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The buffers a layer's Winograd correlations reuse batch after batch.
#[derive(Clone, Debug, Default)]
pub struct Scratch<T> {
    v: Vec<T>,
    m: Vec<T>,
    tiles: Vec<T>,
    row: Vec<T>,
    planes: Vec<T>,
    taps: Vec<usize>,
}

impl<T: Float> Scratch<T> {
    /// Image `x` of `t` into the scratch planes, and them into V: one
    /// image's planes at a time, so that they stay in the cache.
    fn transform_image(
        &mut self,
        t: &Tiling,
        x: &[T],
        strides: (usize, usize),
        t0: usize,
        end: usize,
    ) {
        let mut planes = std::mem::take(&mut self.planes);
        planes.resize(t.planes_image + t.planes_tail, T::zero());
        t.scatter(x, &mut planes, self);
        t.transform_input(&planes, &mut self.v, strides, t0, end);
        self.planes = planes;
    }
}

/// `out (images, fnum, oh, ow)` = the correlation of the images `x
/// (images, channels, h, w)` with the filters packed by
/// [`pack_transformed`], plus `bias`.
#[allow(clippy::too_many_arguments)]
pub fn correlate_images<T: Float>(
    t: &Tiling,
    x: &[T],
    images: usize,
    packed: &[Vec<T>; 16],
    fnum: usize,
    bias: &[T],
    out: &mut [T],
    s: &mut Scratch<T>,
) {
    let (chunk, stride) = t.chunk::<T>(fnum, images);
    let c = t.channels;
    // V and M channel by channel: a tile's 16 transformed values 16 rows apart.
    s.v.resize(16 * c * stride, T::zero());
    s.m.resize(16 * fnum * stride, T::zero());
    s.taps.clear();
    s.taps.extend((0..c).map(|k| k * 16 * stride));
    let image_out = fnum * t.oh * t.ow;
    for (k, outs) in out.chunks_mut(chunk * image_out).enumerate() {
        let count = outs.len() / image_out;
        let positions = Positions::flat::<T>(count * t.tiles);
        for i in 0..count {
            let image = &x[(k * chunk + i) * t.image()..][..t.image()];
            s.transform_image(t, image, (16 * stride, stride), i * t.tiles, stride);
        }
        for (xi, packed) in packed.iter().enumerate() {
            let out = Output::Wide {
                out: &mut s.m[xi * stride..],
                stride: 16 * stride,
            };
            correlate(
                &s.v[xi * stride..],
                &s.taps,
                packed,
                &[],
                fnum,
                &positions,
                out,
            );
        }
        let (m, mut rest) = (std::mem::take(&mut s.m), Scratch::default());
        std::mem::swap(&mut rest.tiles, &mut s.tiles);
        t.transform_output(&m, stride, fnum, bias, count, outs, &mut rest);
        std::mem::swap(&mut rest.tiles, &mut s.tiles);
        s.m = m;
    }
}

/// `sums[ξ][f][c] = Σ_tiles (A e Aᵀ)[ξ] · (Bᵀ d B)[ξ]` over the images, for
/// [`add_weight_gradient`]: `x` as for [`correlate_images`], `dout` the
/// images' `(fnum, oh, ow)` gradients.
pub fn weight_sums<T: Float>(
    t: &Tiling,
    x: &[T],
    dout: &[T],
    fnum: usize,
    sums: &mut Vec<T>,
    s: &mut Scratch<T>,
) {
    let image_out = fnum * t.oh * t.ow;
    let images = dout.len() / image_out.max(1);
    let (chunk, stride) = t.chunk::<T>(fnum, images);
    let c = t.channels;
    // V and E position by position, each a (channels or fnum) x stride matrix.
    s.v.resize(16 * c * stride, T::zero());
    s.m.resize(16 * fnum * stride, T::zero());
    sums.clear();
    sums.resize(16 * fnum * c, T::zero());
    for (k, douts) in dout.chunks(chunk * image_out).enumerate() {
        let count = douts.len() / image_out;
        let mut e = std::mem::take(&mut s.m);
        for (i, dn) in douts.chunks_exact(image_out).enumerate() {
            let image = &x[(k * chunk + i) * t.image()..][..t.image()];
            s.transform_image(t, image, (stride, c * stride), i * t.tiles, stride);
            t.transform_dout(
                dn,
                fnum,
                &mut e,
                (stride, fnum * stride),
                i * t.tiles,
                stride,
                s,
            );
        }
        // Tiles past the chunk's last meet zeros in E.
        let used = count * t.tiles;
        for row in e.chunks_exact_mut(stride) {
            row[used..].fill(T::zero());
        }
        for xi in 0..16 {
            matmul(
                fnum,
                c,
                stride,
                &e[xi * fnum * stride..(xi + 1) * fnum * stride],
                false,
                &s.v[xi * c * stride..(xi + 1) * c * stride],
                true,
                &mut sums[xi * fnum * c..(xi + 1) * fnum * c],
                true,
            );
        }
        s.m = e;
    }
}
