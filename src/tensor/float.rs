//! The element type. Training runs in `f32` for speed, gradient checks in `f64`;
//! all numeric code is written once, generic over [`Float`].

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use super::simd::{Lanes, Simd};

/// A floating-point element type the library computes in (`f32` or `f64`).
pub trait Float:
    num_traits::Float
    + Default
    + Debug
    + Display
    + Sum
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Send
    + Sync
    + 'static
{
    /// Name used in messages and file metadata (`"f32"`, `"f64"`).
    const NAME: &'static str;
    /// The register-sized vector the convolution kernels compute with.
    type Vector: Simd<Self>;
    /// Converts from an `f64` literal or statistic (rounds for `f32`).
    fn of(v: f64) -> Self;
    /// Widens to `f64` for reporting and comparison.
    fn as_f64(self) -> f64;
    /// Converts a pixel byte (exact for both types).
    fn from_u8(v: u8) -> Self;
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    type Vector = super::simd::F32x16;
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
    type Vector = Lanes<f32, 16>;
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_u8(v: u8) -> Self {
        v as f32
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    type Vector = Lanes<f64, 8>;
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_u8(v: u8) -> Self {
        v as f64
    }
}
