//! The single matrix-product entry point: every layer's product goes through
//! [`matmul`], which wraps the `gemm` crate (why gemm: benches/README.md, measured
//! by `cargo bench --bench gemm` at the MLP's and the convolutions' shapes).

use super::Float;
use gemm::Parallelism;

/// Products above this many multiply-adds use gemm's own threads; below it the
/// wake-ups cost more than they save (measured: 100x100x100 drops from 130 to
/// 70 GFLOP/s on two threads).
const PARALLEL_THRESHOLD: usize = 8_000_000;

/// `C = op(A) · op(B)` or, with `accumulate`, `C += op(A) · op(B)`.
///
/// All matrices are row-major and contiguous. `op(A)` is `m x k` and is stored
/// as `m x k`, or as `k x m` when `trans_a`; likewise `op(B)` is `k x n`.
/// `C` is `m x n`. Transposes cost nothing: they are strides.
///
/// ```
/// use backprop::tensor::matmul;
/// let a = [1.0f32, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let b = [1.0f32, 0.0, 0.0, 1.0]; // identity
/// let mut c = [0.0f32; 4];
/// matmul(2, 2, 2, &a, false, &b, false, &mut c, false);
/// assert_eq!(c, a);
/// matmul(2, 2, 2, &a, true, &b, false, &mut c, false);
/// assert_eq!(c, [1.0, 3.0, 2.0, 4.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    trans_a: bool,
    b: &[T],
    trans_b: bool,
    c: &mut [T],
    accumulate: bool,
) {
    assert_eq!(
        a.len(),
        m * k,
        "matmul: A has {} elements, op(A) is {m}x{k}",
        a.len()
    );
    assert_eq!(
        b.len(),
        k * n,
        "matmul: B has {} elements, op(B) is {k}x{n}",
        b.len()
    );
    assert_eq!(
        c.len(),
        m * n,
        "matmul: C has {} elements, C is {m}x{n}",
        c.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(T::zero());
        }
        return;
    }
    // (row stride, column stride) of op(A) and op(B) as stored.
    let (a_rs, a_cs) = if trans_a { (1, m) } else { (k, 1) };
    let (b_rs, b_cs) = if trans_b { (1, k) } else { (n, 1) };
    // Nested inside our own worker threads, extra gemm threads only fight them.
    let parallelism = if m * n * k > PARALLEL_THRESHOLD && rayon::current_thread_index().is_none() {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    // SAFETY: the lengths are checked above against the strides used here, so
    // every index gemm touches lies inside the three slices; `c` is a unique
    // borrow, so it cannot alias `a` or `b`. gemm supports f32 and f64, the only
    // `Float` types.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn naive(m: usize, n: usize, k: usize, a: &[f64], ta: bool, b: &[f64], tb: bool) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += av * bv;
                }
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_for_all_transposes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for &(m, n, k) in &[(3, 5, 7), (17, 10, 33), (1, 1, 1), (64, 3, 100)] {
            let a: Vec<f64> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f64> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            for ta in [false, true] {
                for tb in [false, true] {
                    let want = naive(m, n, k, &a, ta, &b, tb);
                    let mut c = vec![1.0; m * n];
                    matmul(m, n, k, &a, ta, &b, tb, &mut c, false);
                    for (x, y) in c.iter().zip(&want) {
                        assert!((x - y).abs() < 1e-12, "{m}x{n}x{k} ta={ta} tb={tb}");
                    }
                    matmul(m, n, k, &a, ta, &b, tb, &mut c, true);
                    for (x, y) in c.iter().zip(&want) {
                        assert!((x - 2.0 * y).abs() < 1e-12);
                    }
                }
            }
        }
    }

    #[test]
    fn f32_large_product_uses_threads_and_agrees() {
        let (m, n, k) = (300, 200, 250);
        let a: Vec<f32> = (0..m * k).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i % 5) as f32 - 2.0) * 0.1).collect();
        let mut c = vec![0.0f32; m * n];
        matmul(m, n, k, &a, false, &b, false, &mut c, false);
        let a64: Vec<f64> = a.iter().map(|&v| v as f64).collect();
        let b64: Vec<f64> = b.iter().map(|&v| v as f64).collect();
        let want = naive(m, n, k, &a64, false, &b64, false);
        for (x, y) in c.iter().zip(&want) {
            assert!((*x as f64 - y).abs() < 1e-3);
        }
    }
}
