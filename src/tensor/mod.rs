//! Dense row-major tensors and the one matrix-product entry point.
//!
//! A [`Tensor`] is a shape plus a contiguous `Vec`. Layers treat any tensor as a
//! matrix of `rows() = shape[0]` by `cols() = product(shape[1..])`, which is how
//! the textbook's Affine layer flattens images: `x.reshape(x.shape[0], -1)`.
//!
//! Buffers are reused across batches: [`Tensor::resize`] keeps the allocation,
//! so the training loop allocates nothing once the first batch has run.

mod aligned;
mod float;
mod gemm;
pub mod simd;

pub use aligned::CacheAligned;
pub use float::Float;
pub use gemm::matmul;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// A dense tensor of `T`, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tensor<T> {
    shape: Vec<usize>,
    data: Vec<T>,
}

/// A shape or length that does not fit (for tensors built from user data).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("shape {shape:?} needs {expected} elements, found {found}")]
pub struct ShapeError {
    pub shape: Vec<usize>,
    pub expected: usize,
    pub found: usize,
}

impl<T: Float> Tensor<T> {
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor {
            shape: shape.to_vec(),
            data: vec![T::zero(); shape.iter().product()],
        }
    }

    /// Wraps `data` in `shape`; fails if the lengths disagree.
    pub fn from_vec(shape: &[usize], data: Vec<T>) -> Result<Self, ShapeError> {
        let expected = shape.iter().product();
        if data.len() != expected {
            return Err(ShapeError {
                shape: shape.to_vec(),
                expected,
                found: data.len(),
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// Gaussian entries with mean 0 and standard deviation `std` (drawn in f64,
    /// so an f32 and an f64 net built from one seed start from the same weights).
    pub fn randn<R: Rng + ?Sized>(shape: &[usize], std: f64, rng: &mut R) -> Self {
        let n = shape.iter().product();
        let data = (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                T::of(z * std)
            })
            .collect();
        Tensor {
            shape: shape.to_vec(),
            data,
        }
    }

    /// Changes the shape, reusing the allocation. New elements are zero; the
    /// old contents are not meaningful afterwards.
    pub fn resize(&mut self, shape: &[usize]) {
        if self.shape != shape {
            self.shape.clear();
            self.shape.extend_from_slice(shape);
        }
        self.data.resize(shape.iter().product(), T::zero());
    }

    /// Makes `self` a copy of `other`, reusing the allocation.
    pub fn copy_from(&mut self, other: &Tensor<T>) {
        self.resize(&other.shape);
        self.data.copy_from_slice(&other.data);
    }

    pub fn fill(&mut self, v: T) {
        self.data.fill(v);
    }

    /// The same data seen with another shape of the same size.
    pub fn reshape(&mut self, shape: &[usize]) -> Result<(), ShapeError> {
        let expected: usize = shape.iter().product();
        if expected != self.data.len() {
            return Err(ShapeError {
                shape: shape.to_vec(),
                expected,
                found: self.data.len(),
            });
        }
        self.shape.clear();
        self.shape.extend_from_slice(shape);
        Ok(())
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The first dimension: the batch size for activations.
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Elements per row: everything after the first dimension.
    pub fn cols(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn data(&self) -> &[T] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// One row of the matrix view.
    pub fn row(&self, i: usize) -> &[T] {
        let c = self.cols();
        &self.data[i * c..(i + 1) * c]
    }

    /// Sum of squares, accumulated in f64 (for the L2 weight-decay term).
    pub fn sum_squares(&self) -> f64 {
        self.data.iter().map(|&v| v.as_f64() * v.as_f64()).sum()
    }

    /// Converts to another element type (f32 weights into an f64 gradient check).
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&v| U::of(v.as_f64())).collect(),
        }
    }

    /// Index of the largest entry in each row (the predicted class).
    pub fn argmax_rows(&self) -> impl Iterator<Item = usize> + '_ {
        let c = self.cols().max(1);
        self.data.chunks(c).map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_allocation_and_shape_rules() {
        let mut t = Tensor::<f32>::zeros(&[4, 3]);
        let cap = t.data.capacity();
        t.resize(&[2, 3]);
        assert_eq!((t.rows(), t.cols(), t.len()), (2, 3, 6));
        assert_eq!(t.data.capacity(), cap);
        assert!(t.reshape(&[3, 2]).is_ok());
        assert_eq!(t.reshape(&[5]).unwrap_err().expected, 5);
    }

    #[test]
    fn from_vec_checks_length() {
        assert!(Tensor::<f64>::from_vec(&[2, 2], vec![1.0; 4]).is_ok());
        let e = Tensor::<f64>::from_vec(&[2, 2], vec![1.0; 3]).unwrap_err();
        assert_eq!(e.to_string(), "shape [2, 2] needs 4 elements, found 3");
    }

    #[test]
    fn argmax_per_row() {
        let t = Tensor::<f32>::from_vec(&[2, 3], vec![0.1, 0.7, 0.2, 0.9, 0.0, 0.1]).unwrap();
        assert_eq!(t.argmax_rows().collect::<Vec<_>>(), vec![1, 0]);
    }
}
