//! Winograd's minimal filtering F(2x2, 3x3) for 3x3 stride-1 convolutions
//! (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
//! 2015): each 2x2 block of outputs from a 4x4 tile of input in 16
//! multiplications per channel and filter instead of 36.
//!
//! With `d` a 4x4 input tile of one channel and `g` a 3x3 filter,
//!
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`
//!
//! is the 2x2 block of their correlation. Summed over channels, the 16
//! products `⊙` become 16 independent matrix products, one per tile element
//! `ξ`: `M_ξ[f][t] = Σ_c U_ξ[f][c] · V_ξ[c][t]` over the tiles `t`, with
//! `U = G g Gᵀ` (the filters, transformed once per step) and `V = Bᵀ d B`
//! (the input, per tile and channel). Each product is a 1x1 convolution of
//! `C` planes of tiles, so it runs on [`correlate`]'s register-blocked
//! kernel. The input and output transforms are additions only.
//!
//! [`Convolution`](super::Convolution) takes it with
//! [`Algorithm::Winograd`](super::convolution::Algorithm::Winograd), for
//! forward and for the input gradient, which with stride 1 is the correlation of `dout`, padded
//! by `2 - P`, with the flipped filters, channels swapped.

use crate::tensor::Float;

use super::conv_kernels::{FB, Images, Output, Positions, correlate, rounded};

/// Elements of a 4x4 tile: the number of products.
const XI: usize = 16;

/// Values of input and output transforms a chunk of images keeps: they stay
/// in the core's 1 MiB L2 cache between the transforms and the products.
const CHUNK_VALUES: usize = 96 * 1024;

/// Whether F(2x2, 3x3) computes a convolution with this filter, stride and
/// padding, and its input gradient (which needs the padding `2 - P`).
pub fn applies(fh: usize, fw: usize, stride: usize, pad: usize) -> bool {
    fh == 3 && fw == 3 && stride == 1 && pad <= 2
}

/// Transformed filters and the working buffers of [`Winograd::correlate`].
#[derive(Clone, Debug)]
pub struct Winograd<T> {
    fnum: usize,
    channels: usize,
    /// `U_ξ` packed for [`correlate`], one after another.
    packed: Vec<T>,
    /// Transformed input `V[ξ][c][t]` and products `M[ξ][f][t]` of a chunk.
    v: Vec<T>,
    m: Vec<T>,
    /// One padded plane, tile-aligned, and its four row combinations.
    plane: Vec<T>,
    rows: Vec<T>,
    /// The products' taps (`c·stride`) and positions, for the last chunk size.
    taps: Vec<usize>,
    positions: Option<(usize, Positions)>,
}

impl<T> Default for Winograd<T> {
    fn default() -> Self {
        Winograd {
            fnum: 0,
            channels: 0,
            packed: Vec::new(),
            v: Vec::new(),
            m: Vec::new(),
            plane: Vec::new(),
            rows: Vec::new(),
            taps: Vec::new(),
            positions: None,
        }
    }
}

/// `G g Gᵀ` of one 3x3 filter, `G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]`.
fn filter_transform<T: Float>(g: [[T; 3]; 3]) -> [[T; 4]; 4] {
    let half = T::of(0.5);
    let col = |a: T, b: T, c: T| [a, half * (a + b + c), half * (a - b + c), c];
    // G g: 4x3, column by column.
    let gg: [[T; 4]; 3] = std::array::from_fn(|j| col(g[0][j], g[1][j], g[2][j]));
    // (G g) Gᵀ: each row of G g through the same transform.
    std::array::from_fn(|i| col(gg[0][i], gg[1][i], gg[2][i]))
}

impl<T: Float> Winograd<T> {
    /// Transforms `fnum` filters over `channels`, `w(f, c, i, j)`.
    pub fn set_filters(
        &mut self,
        fnum: usize,
        channels: usize,
        w: impl Fn(usize, usize, usize, usize) -> T,
    ) {
        // Straight into `correlate`'s packing, `[ceil(fnum / FB)][channels][FB]`
        // per ξ, zero for the filters past `fnum`.
        let per_xi = fnum.div_ceil(FB) * FB * channels;
        self.packed.clear();
        self.packed.resize(XI * per_xi, T::zero());
        for f in 0..fnum {
            for c in 0..channels {
                let g = std::array::from_fn(|i| std::array::from_fn(|j| w(f, c, i, j)));
                let at = ((f / FB) * channels + c) * FB + f % FB;
                for (xi, v) in filter_transform(g).iter().flatten().enumerate() {
                    self.packed[xi * per_xi + at] = *v;
                }
            }
        }
        self.fnum = fnum;
        self.channels = channels;
    }

    /// `out[n][f][y][x] = bias[f] + Σ_{c,i,j} w(f, c, i, j) · x[n][c][y+i-pad][x+j-pad]`
    /// for the `images` of `x`, `(C, h, w)` each, with the filters of the last
    /// [`set_filters`](Self::set_filters); `bias` empty for none. `out` holds
    /// `(fnum, h + 2·pad - 2, w + 2·pad - 2)` per image.
    pub fn correlate(
        &mut self,
        x: &[T],
        images: usize,
        (h, w): (usize, usize),
        pad: usize,
        bias: &[T],
        out: &mut [T],
    ) {
        let (c, fnum) = (self.channels, self.fnum);
        assert!(h + 2 * pad >= 3 && w + 2 * pad >= 3, "winograd: no output");
        let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
        assert_eq!(x.len(), images * c * h * w, "winograd: input");
        assert_eq!(out.len(), images * fnum * oh * ow, "winograd: output");
        assert!(bias.is_empty() || bias.len() == fnum, "winograd: bias");
        let tiles = Tiles::new(oh, ow);
        let per_image = XI * (c + fnum) * tiles.count();
        let chunk = (CHUNK_VALUES / per_image.max(1)).clamp(1, images.max(1));
        self.plane.resize(4 * tiles.part(), T::zero());
        self.rows.resize(20 * (tiles.count() + 1), T::zero());
        for (k0, xs) in (0..images).step_by(chunk).zip(x.chunks(chunk * c * h * w)) {
            let n = xs.len() / (c * h * w).max(1);
            let t_len = n * tiles.count();
            let stride = rounded::<T>(t_len);
            self.v.resize(XI * c * stride, T::zero());
            self.m.resize(XI * fnum * stride, T::zero());
            if self.positions.as_ref().map(|p| p.0) != Some(t_len) {
                self.positions = Some((t_len, Positions::flat::<T>(t_len)));
            }
            self.taps.clear();
            self.taps.extend((0..c).map(|ch| ch * stride));
            for (k, xc) in xs.chunks_exact(h * w).enumerate() {
                let (img, ch) = (k / c, k % c);
                tiles.pad_plane(xc, w, pad, &mut self.plane);
                // V[ξ][ch] of this image's tiles: 16 rows `c·stride` apart.
                let first = ch * stride + img * tiles.count();
                let v = &mut self.v[first..];
                tiles.transform_input(&self.plane, &mut self.rows, v, c * stride);
            }
            let (_, positions) = self.positions.as_ref().expect("set above");
            let per_xi = self.packed.len() / XI;
            for xi in 0..XI {
                let v = &self.v[xi * c * stride..(xi + 1) * c * stride];
                let m = &mut self.m[xi * fnum * stride..(xi + 1) * fnum * stride];
                let packed = &self.packed[xi * per_xi..(xi + 1) * per_xi];
                let out = Output::Wide { out: m, stride };
                correlate(
                    v,
                    Images::ONE,
                    &self.taps,
                    packed,
                    &[],
                    fnum,
                    positions,
                    out,
                );
            }
            let outs = &mut out[k0 * fnum * oh * ow..(k0 + n) * fnum * oh * ow];
            for (k, yf) in outs.chunks_exact_mut(oh * ow).enumerate() {
                let (img, f) = (k / fnum, k % fnum);
                let b = if bias.is_empty() { T::zero() } else { bias[f] };
                let first = f * stride + img * tiles.count();
                let m = &self.m[first..];
                tiles.transform_output(m, fnum * stride, b, &mut self.rows, yf);
            }
        }
    }
}

/// The 2x2 output tiles of one `(oh, ow)` plane: `ty` rows of `tx`, the
/// last row or column cut off where the size is odd. The transforms number
/// them in rows of `tx + 1`, one tile more than there are: a tile and its
/// neighbours then sit at constant offsets, and every loop runs over the
/// whole plane at once (the extra tile's values are computed and never
/// written out).
#[derive(Clone, Copy)]
struct Tiles {
    ow: usize,
    ty: usize,
    tx: usize,
}

impl Tiles {
    fn new(oh: usize, ow: usize) -> Self {
        Tiles {
            ow,
            ty: oh.div_ceil(2),
            tx: ow.div_ceil(2),
        }
    }

    /// Tiles per row as numbered, `tx + 1`.
    fn width(&self) -> usize {
        self.tx + 1
    }

    /// Tiles per plane as numbered.
    fn count(&self) -> usize {
        self.ty * self.width()
    }

    /// Values of one of a padded plane's four parts (even or odd rows by
    /// even or odd columns): `ty + 1` rows of `tx + 1`, and one more value
    /// the last tile's neighbour reads.
    fn part(&self) -> usize {
        (self.ty + 1) * self.width() + 1
    }

    /// One channel's plane `xc` (rows of `w`) zero-padded by `pad` into
    /// `plane`'s four parts, `[row parity][column parity]`: pixel
    /// `(2Y + a, 2X + b)` of the padded plane at `part(a, b)[Y·(tx+1) + X]`.
    /// Tile `t`'s 4x4 input is then rows `t` and `t + tx + 1` of each part,
    /// columns `t` and `t + 1`.
    fn pad_plane<T: Float>(&self, xc: &[T], w: usize, pad: usize, plane: &mut [T]) {
        let (width, part) = (self.width(), self.part());
        plane.fill(T::zero());
        for (y, row) in xc.chunks_exact(w).enumerate() {
            let py = y + pad;
            let rows = &mut plane[(py % 2) * 2 * part..][..2 * part];
            let (even, odd) = rows.split_at_mut(part);
            let at = (py / 2) * width;
            let (e, o) = (&mut even[at..at + width], &mut odd[at..at + width]);
            for (x, &v) in row.iter().enumerate() {
                let px = x + pad;
                match px % 2 {
                    0 => e[px / 2] = v,
                    _ => o[px / 2] = v,
                }
            }
        }
    }

    /// `Bᵀ d B` of every tile of a padded plane (as [`pad_plane`] leaves
    /// it), `Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`, into `v`: tile
    /// `t`'s element `ξ` at `v[ξ·xi_stride + t]`. First the rows, `Bᵀ d`,
    /// for the even and the odd columns, then the columns.
    fn transform_input<T: Float>(
        &self,
        plane: &[T],
        rows: &mut [T],
        v: &mut [T],
        xi_stride: usize,
    ) {
        let (width, part, count) = (self.width(), self.part(), self.count());
        let len = count + 1;
        let (u, _) = rows.split_at_mut(8 * len);
        for (b, u) in u.chunks_exact_mut(4 * len).enumerate() {
            // Rows 2Y, 2Y+1, 2Y+2, 2Y+3 of column parity b.
            let even = &plane[b * part..(b + 1) * part];
            let odd = &plane[(2 + b) * part..(3 + b) * part];
            let (r0, r1) = (&even[..len], &odd[..len]);
            let (r2, r3) = (&even[width..width + len], &odd[width..width + len]);
            let (u0, rest) = u.split_at_mut(len);
            let (u1, rest) = rest.split_at_mut(len);
            let (u2, u3) = rest.split_at_mut(len);
            zip2(u0, r0, r2, |a, c| a - c);
            zip2(u1, r1, r2, |b, c| b + c);
            zip2(u2, r2, r1, |c, b| c - b);
            zip2(u3, r1, r3, |b, d| b - d);
        }
        let (ue, uo) = u.split_at(4 * len);
        for i in 0..4 {
            // Columns 2X, 2X+1, 2X+2, 2X+3: even[t], odd[t], even[t+1], odd[t+1].
            let (e, o) = (&ue[i * len..(i + 1) * len], &uo[i * len..(i + 1) * len]);
            let (e0, e1, o0, o1) = (&e[..count], &e[1..], &o[..count], &o[1..]);
            let at = |j: usize| (4 * i + j) * xi_stride;
            zip2(&mut v[at(0)..][..count], e0, e1, |a, c| a - c);
            zip2(&mut v[at(1)..][..count], o0, e1, |b, c| b + c);
            zip2(&mut v[at(2)..][..count], e1, o0, |c, b| c - b);
            zip2(&mut v[at(3)..][..count], o0, o1, |b, d| b - d);
        }
    }

    /// `b + Aᵀ m A` of every tile into one output plane `y` `(oh, ow)`,
    /// `Aᵀ = [1 1 1 0; 0 1 -1 -1]`, tile `t`'s product `ξ` at
    /// `m[ξ·xi_stride + t]`: over all tiles at once, then interleaved into
    /// the plane's rows.
    fn transform_output<T: Float>(
        &self,
        m: &[T],
        xi_stride: usize,
        b: T,
        rows: &mut [T],
        y: &mut [T],
    ) {
        let (width, count, ow) = (self.width(), self.count(), self.ow);
        let e: [&[T]; XI] = std::array::from_fn(|xi| &m[xi * xi_stride..][..count]);
        let (s, rest) = rows.split_at_mut(8 * count);
        let (o, _) = rest.split_at_mut(4 * count);
        // Aᵀ m: two rows of four (s[j], s[4 + j]), then each row times A.
        let (first, second) = s.split_at_mut(4 * count);
        for (j, (s0, s1)) in first
            .chunks_exact_mut(count)
            .zip(second.chunks_exact_mut(count))
            .enumerate()
        {
            zip3(s0, e[j], e[4 + j], e[8 + j], |a, b, c| a + b + c);
            zip3(s1, e[4 + j], e[8 + j], e[12 + j], |a, b, c| a - b - c);
        }
        let r = |k: usize| &s[k * count..(k + 1) * count];
        for (k, o) in o.chunks_exact_mut(count).enumerate() {
            let row = 4 * (k / 2);
            match k % 2 {
                0 => zip3(o, r(row), r(row + 1), r(row + 2), |a, c, d| b + (a + c + d)),
                _ => zip3(o, r(row + 1), r(row + 2), r(row + 3), |a, c, d| {
                    b + (a - c - d)
                }),
            }
        }
        for (oy, out) in y.chunks_exact_mut(ow).enumerate() {
            let (ty, a) = (oy / 2, oy % 2);
            let at = ty * width;
            let left = &o[2 * a * count + at..][..self.tx];
            let right = &o[(2 * a + 1) * count + at..][..self.tx];
            let mut pairs = out.chunks_exact_mut(2);
            for ((pair, &l), &r) in (&mut pairs).zip(left).zip(right) {
                pair[0] = l;
                pair[1] = r;
            }
            if let [last] = pairs.into_remainder() {
                *last = left[self.tx - 1];
            }
        }
    }
}

/// `d[x] = f(a[x], b[x])`, in a loop the compiler vectorizes.
#[inline(always)]
fn zip2<T: Float>(d: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T) {
    for ((d, &a), &b) in d.iter_mut().zip(a).zip(b) {
        *d = f(a, b);
    }
}

/// `d[x] = f(a[x], b[x], c[x])`.
#[inline(always)]
fn zip3<T: Float>(d: &mut [T], a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T) -> T) {
    for (((d, &a), &b), &c) in d.iter_mut().zip(a).zip(b).zip(c) {
        *d = f(a, b, c);
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv_kernels::reference;
    use super::*;
    use crate::gradcheck::random_tensor;
    use crate::tensor::Tensor;

    #[test]
    fn correlates_as_the_definition_in_f64() {
        for (k, &(n, c, f, h, w, pad)) in [
            (1, 1, 1, 3, 3, 0),
            (2, 3, 5, 7, 6, 1),
            (3, 17, 9, 5, 9, 2),
            (1, 2, 20, 28, 28, 1),
            (4, 8, 3, 1, 1, 2),
        ]
        .iter()
        .enumerate()
        {
            let x = random_tensor(&[n, c, h, w], 1.0, 10 + k as u64);
            let wt = random_tensor(&[f, c, 3, 3], 1.0, 20 + k as u64);
            let b = random_tensor(&[f], 1.0, 30 + k as u64);
            let want = reference::forward(&x, &wt, &b, 1, pad);
            let mut wino = Winograd::default();
            let wd = wt.data();
            wino.set_filters(f, c, |ff, cc, i, j| wd[((ff * c + cc) * 3 + i) * 3 + j]);
            let mut got = Tensor::zeros(want.shape());
            wino.correlate(x.data(), n, (h, w), pad, b.data(), got.data_mut());
            let gap = got
                .data()
                .iter()
                .zip(want.data())
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(gap < 1e-12, "case {k}: {gap}");
        }
    }
}
