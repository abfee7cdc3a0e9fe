//! A few values of `T` in one register, for the convolution kernels
//! (`layers::conv_kernels`), written once over [`Simd`] and compiled for
//! each element type's [`Float::Vector`](super::Float::Vector).
//!
//! f32 on a CPU with AVX-512 (the build's `target-cpu=native` decides) uses
//! one 512-bit register of 16 lanes; everything else uses [`Lanes`], plain
//! arrays the compiler vectorises as well as it can. The convolution tests run
//! both on f32 and `Lanes` on f64.

/// A vector of [`Simd::LANES`] values of `T`.
pub trait Simd<T>: Copy {
    const LANES: usize;

    fn splat(v: T) -> Self;

    /// Reads `LANES` values from `p`.
    ///
    /// # Safety
    /// `p..p + LANES` must be readable.
    unsafe fn load(p: *const T) -> Self;

    /// `self` with the lanes whose bit is set in `mask` read from `p` instead
    /// (lane `i` from `p + i`); the other lanes of `p` are not read.
    ///
    /// # Safety
    /// `p + i` must be readable for every lane `i` in `mask`.
    unsafe fn load_merge(self, mask: u32, p: *const T) -> Self;

    /// Writes the lanes to `p..p + LANES`.
    ///
    /// # Safety
    /// `p..p + LANES` must be writable.
    unsafe fn store(self, p: *mut T);

    /// Writes the lanes whose bit is set in `mask`, in order, to
    /// `p..p + mask.count_ones()`, and nothing else.
    ///
    /// # Safety
    /// `p..p + mask.count_ones()` must be writable.
    unsafe fn store_selected(self, mask: u32, p: *mut T);

    /// `self + a · b`, fused where the CPU can.
    fn mul_add(self, a: Self, b: Self) -> Self;

    /// `self + a`, lane by lane.
    fn add(self, a: Self) -> Self;

    /// The sum of the lanes.
    fn sum(self) -> T;

    /// ReLU of each lane as the `Relu` layer computes it: the lane if it is
    /// above zero, else zero (for -0 and NaN too).
    fn relu(self) -> Self;

    /// `self · (y > 0 ? 1 : 0)` per lane: ReLU's backward, `y` its output,
    /// the same values (and signs of zero) as the `Relu` layer's.
    fn relu_grad(self, y: Self) -> Self;

    /// The `2·pairs` values at `p` (`pairs` at most `LANES`) dealt into two
    /// vectors, `(even, odd)`: lane `i` of `even` from `p + 2i`, of `odd`
    /// from `p + 2i + 1`; zero in the lanes from `pairs` on. (A 2x2 pooling
    /// window's left and right columns.)
    ///
    /// # Safety
    /// `p..p + 2·pairs` must be readable.
    unsafe fn load_pairs(p: *const T, pairs: usize) -> (Self, Self);

    /// The reverse of [`Simd::load_pairs`]: lanes `i < pairs` of `even` to
    /// `p + 2i`, of `odd` to `p + 2i + 1`, nothing else.
    ///
    /// # Safety
    /// `p..p + 2·pairs` must be writable.
    unsafe fn store_pairs(even: Self, odd: Self, p: *mut T, pairs: usize);

    /// Bit `i` set where lane `i` of `self` is above `other`'s (not for NaN).
    fn gt(self, other: Self) -> u32;

    /// Lane `i` of `a` where bit `i` of `mask` is set, else of `b`.
    fn select(mask: u32, a: Self, b: Self) -> Self;
}

/// The portable vector: `N` values the compiler may vectorise.
#[derive(Clone, Copy, Debug)]
pub struct Lanes<T, const N: usize>([T; N]);

impl<T: super::Float, const N: usize> Simd<T> for Lanes<T, N> {
    const LANES: usize = N;

    #[inline(always)]
    fn splat(v: T) -> Self {
        Lanes([v; N])
    }

    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        // SAFETY: the caller guarantees `N` readable values; `[T; N]` has
        // the alignment of `T`, and the read is unaligned anyway.
        Lanes(unsafe { p.cast::<[T; N]>().read_unaligned() })
    }

    #[inline(always)]
    unsafe fn load_merge(mut self, mask: u32, p: *const T) -> Self {
        for (i, v) in self.0.iter_mut().enumerate() {
            if mask >> i & 1 == 1 {
                // SAFETY: lane i is in the mask, readable by the contract.
                *v = unsafe { p.add(i).read() };
            }
        }
        self
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        // SAFETY: the caller guarantees `N` writable values.
        unsafe { p.cast::<[T; N]>().write_unaligned(self.0) }
    }

    #[inline(always)]
    unsafe fn store_selected(self, mask: u32, p: *mut T) {
        let mut k = 0;
        for (i, &v) in self.0.iter().enumerate() {
            if mask >> i & 1 == 1 {
                // SAFETY: k < mask.count_ones(), writable by the contract.
                unsafe { p.add(k).write(v) };
                k += 1;
            }
        }
    }

    #[inline(always)]
    fn mul_add(mut self, a: Self, b: Self) -> Self {
        for ((s, &x), &y) in self.0.iter_mut().zip(&a.0).zip(&b.0) {
            *s += x * y;
        }
        self
    }

    #[inline(always)]
    fn add(mut self, a: Self) -> Self {
        for (s, &x) in self.0.iter_mut().zip(&a.0) {
            *s += x;
        }
        self
    }

    #[inline(always)]
    fn sum(self) -> T {
        self.0.iter().copied().sum()
    }

    #[inline(always)]
    fn relu(mut self) -> Self {
        for v in &mut self.0 {
            *v = if *v > T::zero() { *v } else { T::zero() };
        }
        self
    }

    #[inline(always)]
    fn relu_grad(mut self, y: Self) -> Self {
        for (g, &y) in self.0.iter_mut().zip(&y.0) {
            *g *= if y > T::zero() { T::one() } else { T::zero() };
        }
        self
    }

    #[inline(always)]
    unsafe fn load_pairs(p: *const T, pairs: usize) -> (Self, Self) {
        let (mut even, mut odd) = ([T::zero(); N], [T::zero(); N]);
        for i in 0..pairs.min(N) {
            // SAFETY: 2i + 1 < 2·pairs, readable by the contract.
            unsafe {
                even[i] = p.add(2 * i).read();
                odd[i] = p.add(2 * i + 1).read();
            }
        }
        (Lanes(even), Lanes(odd))
    }

    #[inline(always)]
    unsafe fn store_pairs(even: Self, odd: Self, p: *mut T, pairs: usize) {
        for i in 0..pairs.min(N) {
            // SAFETY: 2i + 1 < 2·pairs, writable by the contract.
            unsafe {
                p.add(2 * i).write(even.0[i]);
                p.add(2 * i + 1).write(odd.0[i]);
            }
        }
    }

    #[inline(always)]
    fn gt(self, other: Self) -> u32 {
        (0..N).fold(0, |m, i| m | u32::from(self.0[i] > other.0[i]) << i)
    }

    #[inline(always)]
    fn select(mask: u32, a: Self, b: Self) -> Self {
        Lanes(std::array::from_fn(|i| {
            if mask >> i & 1 == 1 { a.0[i] } else { b.0[i] }
        }))
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
pub use avx512::F32x16;

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
mod avx512 {
    use std::arch::x86_64::*;

    /// Sixteen f32 in one AVX-512 register.
    #[derive(Clone, Copy, Debug)]
    pub struct F32x16(__m512);

    // SAFETY (all methods): compiled only when the build targets AVX-512F
    // (`target_feature = "avx512f"`), so the intrinsics are available; the
    // loads and stores are unaligned and the callers guarantee 16 values.
    impl super::Simd<f32> for F32x16 {
        const LANES: usize = 16;

        #[inline(always)]
        fn splat(v: f32) -> Self {
            F32x16(unsafe { _mm512_set1_ps(v) })
        }

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            F32x16(unsafe { _mm512_loadu_ps(p) })
        }

        #[inline(always)]
        unsafe fn load_merge(self, mask: u32, p: *const f32) -> Self {
            // Masked-off lanes are not read (nor can they fault).
            F32x16(unsafe { _mm512_mask_loadu_ps(self.0, mask as __mmask16, p) })
        }

        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }

        #[inline(always)]
        unsafe fn store_selected(self, mask: u32, p: *mut f32) {
            // Compressed in the register, then a masked store: AMD's
            // compress-to-memory is microcoded and far slower.
            let packed = unsafe { _mm512_maskz_compress_ps(mask as __mmask16, self.0) };
            let first = ((1u32 << mask.count_ones()) - 1) as __mmask16;
            unsafe { _mm512_mask_storeu_ps(p, first, packed) }
        }

        #[inline(always)]
        fn mul_add(self, a: Self, b: Self) -> Self {
            F32x16(unsafe { _mm512_fmadd_ps(a.0, b.0, self.0) })
        }

        #[inline(always)]
        fn add(self, a: Self) -> Self {
            F32x16(unsafe { _mm512_add_ps(self.0, a.0) })
        }

        #[inline(always)]
        fn sum(self) -> f32 {
            unsafe { _mm512_reduce_add_ps(self.0) }
        }

        #[inline(always)]
        fn relu(self) -> Self {
            // `max` returns its second operand for NaN and for two zeros.
            F32x16(unsafe { _mm512_max_ps(self.0, _mm512_setzero_ps()) })
        }

        #[inline(always)]
        fn relu_grad(self, y: Self) -> Self {
            unsafe {
                let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(y.0, _mm512_setzero_ps());
                let ones = _mm512_maskz_mov_ps(above, _mm512_set1_ps(1.0));
                F32x16(_mm512_mul_ps(self.0, ones))
            }
        }

        #[inline(always)]
        unsafe fn load_pairs(p: *const f32, pairs: usize) -> (Self, Self) {
            let (lo, hi) = halves(pairs);
            unsafe {
                // Masked-off lanes are not read: the second half's address
                // may lie past the buffer when its mask is empty.
                let a = _mm512_maskz_loadu_ps(lo, p);
                let b = _mm512_maskz_loadu_ps(hi, p.wrapping_add(16));
                let even =
                    _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                let odd =
                    _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
                (
                    F32x16(_mm512_permutex2var_ps(a, even, b)),
                    F32x16(_mm512_permutex2var_ps(a, odd, b)),
                )
            }
        }

        #[inline(always)]
        unsafe fn store_pairs(even: Self, odd: Self, p: *mut f32, pairs: usize) {
            let (lo, hi) = halves(pairs);
            unsafe {
                let first =
                    _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
                let second =
                    _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
                let a = _mm512_permutex2var_ps(even.0, first, odd.0);
                let b = _mm512_permutex2var_ps(even.0, second, odd.0);
                _mm512_mask_storeu_ps(p, lo, a);
                _mm512_mask_storeu_ps(p.wrapping_add(16), hi, b);
            }
        }

        #[inline(always)]
        fn gt(self, other: Self) -> u32 {
            u32::from(unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, other.0) })
        }

        #[inline(always)]
        fn select(mask: u32, a: Self, b: Self) -> Self {
            F32x16(unsafe { _mm512_mask_blend_ps(mask as __mmask16, b.0, a.0) })
        }
    }

    /// The lanes of the two vectors that `2·pairs` values fill.
    #[inline(always)]
    fn halves(pairs: usize) -> (__mmask16, __mmask16) {
        let n = 2 * pairs.min(16);
        let lanes = |k: usize| ((1u32 << k.min(16)) - 1) as __mmask16;
        (lanes(n), lanes(n.saturating_sub(16)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<V: Simd<f32>>() {
        let a: Vec<f32> = (0..V::LANES).map(|i| i as f32).collect();
        let mut out = vec![0.0f32; V::LANES];
        // SAFETY: both vectors hold LANES values.
        unsafe {
            let v = V::load(a.as_ptr());
            v.mul_add(v, V::splat(2.0)).store(out.as_mut_ptr());
        }
        let want: Vec<f32> = a.iter().map(|x| x + 2.0 * x).collect();
        assert_eq!(out, want);
        let s: f32 = a.iter().sum();
        assert_eq!(unsafe { V::load(a.as_ptr()) }.sum(), s);
        let twice = unsafe { V::load(a.as_ptr()).add(V::load(a.as_ptr())) };
        assert_eq!(twice.sum(), 2.0 * s);
        // Lanes 1 and 2 (the first is lane 0 only for one-lane vectors).
        let mask = 0b110 & ((1u32 << V::LANES) - 1);
        let mut picked = vec![-1.0f32; V::LANES + 1];
        unsafe { V::load(a.as_ptr()).store_selected(mask, picked.as_mut_ptr()) };
        let want: Vec<f32> = (1..3).filter(|&i| i < V::LANES).map(|i| i as f32).collect();
        assert_eq!(&picked[..want.len()], &want[..]);
        assert!(picked[want.len()..].iter().all(|&v| v == -1.0));
        let twos = vec![2.0f32; V::LANES];
        let merged = unsafe { V::splat(-1.0).load_merge(0b10, twos.as_ptr()) };
        unsafe { merged.store(out.as_mut_ptr()) };
        let want: Vec<f32> = (0..V::LANES)
            .map(|i| if i == 1 { 2.0 } else { -1.0 })
            .collect();
        assert_eq!(out, want);
        // ReLU and its gradient lane by lane as the Relu layer has them:
        // zero for -0, NaN and negatives, `g · 0` (a signed zero, NaN for
        // an infinite g) where the output is not above zero.
        let x: Vec<f32> = [-1.5, -0.0, 0.0, f32::NAN, 2.5, f32::INFINITY, -3.0, 1e-40]
            .into_iter()
            .cycle()
            .take(V::LANES)
            .collect();
        let g: Vec<f32> = [-2.0, f32::INFINITY, 3.0, -1.0, -4.0, 5.0, f32::NAN, 6.0]
            .into_iter()
            .cycle()
            .take(V::LANES)
            .collect();
        let relu = |v: f32| if v > 0.0 { v } else { 0.0 };
        let mut got = vec![0.0f32; V::LANES];
        unsafe { V::load(x.as_ptr()).relu().store(got.as_mut_ptr()) };
        let want: Vec<u32> = x.iter().map(|&v| relu(v).to_bits()).collect();
        assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
        let y: Vec<f32> = x.iter().map(|&v| relu(v)).collect();
        unsafe {
            let (gv, yv) = (V::load(g.as_ptr()), V::load(y.as_ptr()));
            gv.relu_grad(yv).store(got.as_mut_ptr());
        }
        let want: Vec<u32> = g
            .iter()
            .zip(&y)
            .map(|(&g, &y)| (g * if y > 0.0 { 1.0 } else { 0.0 }).to_bits())
            .collect();
        assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
        // Pairs dealt and put back, for every count; comparisons and
        // selection lane by lane.
        let n = 2 * V::LANES;
        let src: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
        for pairs in 0..=V::LANES {
            let (even, odd) = unsafe { V::load_pairs(src.as_ptr(), pairs) };
            let (mut e, mut o) = (vec![0.0f32; V::LANES], vec![0.0f32; V::LANES]);
            unsafe { even.store(e.as_mut_ptr()) };
            unsafe { odd.store(o.as_mut_ptr()) };
            for i in 0..V::LANES {
                let (we, wo) = match i < pairs {
                    true => (src[2 * i], src[2 * i + 1]),
                    false => (0.0, 0.0),
                };
                assert_eq!((e[i], o[i]), (we, wo), "{pairs} pairs, lane {i}");
            }
            let mut back = vec![-1.0f32; n];
            unsafe { V::store_pairs(even, odd, back.as_mut_ptr(), pairs) };
            assert_eq!(&back[..2 * pairs], &src[..2 * pairs]);
            assert!(back[2 * pairs..].iter().all(|&v| v == -1.0));
        }
        let (a, b) = unsafe { (V::load(x.as_ptr()), V::load(g.as_ptr())) };
        let above = a.gt(b);
        for i in 0..V::LANES {
            assert_eq!(above >> i & 1 == 1, x[i] > g[i], "lane {i}");
        }
        unsafe { V::select(above, a, b).store(got.as_mut_ptr()) };
        for i in 0..V::LANES {
            let want = if x[i] > g[i] { x[i] } else { g[i] };
            assert_eq!(got[i].to_bits(), want.to_bits(), "select lane {i}");
        }
    }

    #[test]
    fn vectors_load_merge_fuse_sum_and_select() {
        check::<Lanes<f32, 16>>();
        check::<Lanes<f32, 3>>();
        #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
        check::<F32x16>();
    }
}
