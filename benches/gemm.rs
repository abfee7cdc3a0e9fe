//! The matrix products that matter here, through the `gemm` crate (as
//! `tensor::matmul` calls it) and through `matrixmultiply`, the alternative
//! measured beside it; benches/README.md quotes the figures.
//!
//! `cargo bench --bench gemm`. One thread each, as the trainer runs them:
//! every worker computes its own share of a batch with its own products.
//!
//! - `shape/...`: each product of a W1 training step at batch 100 (forward
//!   `x·W`, weight gradient `xᵀ·dout`, input gradient `dout·Wᵀ`), and the
//!   products of the textbook's im2col convolution per image (SimpleConvNet;
//!   DeepConvNet's second and sixth layers): GFLOP/s.
//! - `step/...`: all 17 products of one W1 step (no input gradient for the
//!   first layer) at batch 100 (one thread) and 50 (each of two threads'
//!   share), and W3's forward pass in slices of 50 rows.

use std::hint::black_box;

use backprop::tensor::matmul;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// `C[m x n] = op(A)[m x k] · op(B)[k x n]`, A transposed if `ta`, B if `tb`.
#[derive(Clone, Copy)]
struct Product {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
}

const fn p(name: &'static str, m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Product {
    Product {
        name,
        m,
        n,
        k,
        ta,
        tb,
    }
}

/// The products of one W1 step on `b` rows, with how often each occurs
/// (784-100x5-10: one 784x100 layer, four 100x100, one 100x10).
fn w1_step(b: usize) -> [(Product, usize); 8] {
    [
        (p("fwd 784->100", b, 100, 784, false, false), 1),
        (p("fwd 100->100", b, 100, 100, false, false), 4),
        (p("fwd 100->10", b, 10, 100, false, false), 1),
        (p("dW 784x100", 784, 100, b, true, false), 1),
        (p("dW 100x100", 100, 100, b, true, false), 4),
        (p("dW 100x10", 100, 10, b, true, false), 1),
        (p("dX 10->100", b, 100, 10, false, true), 1),
        (p("dX 100->100", b, 100, 100, false, true), 4),
    ]
}

/// The im2col path's products for one image: forward `W · col`, weight
/// gradient `dout · colᵀ`, column gradient `Wᵀ · dout`.
const CONV: &[Product] = &[
    p("simple fwd 30x576x25", 30, 576, 25, false, false),
    p("simple dW 30x25x576", 30, 25, 576, false, true),
    p("deep2 fwd 16x784x144", 16, 784, 144, false, false),
    p("deep2 dW 16x144x784", 16, 144, 784, false, true),
    p("deep2 dcol 144x784x16", 144, 784, 16, true, false),
    p("deep6 fwd 64x64x576", 64, 64, 576, false, false),
    p("deep6 dW 64x576x64", 64, 576, 64, false, true),
    p("deep6 dcol 576x64x64", 576, 64, 64, true, false),
];

#[derive(Clone, Copy)]
enum Library {
    Gemm,
    Matrixmultiply,
}

impl Library {
    const ALL: [Library; 2] = [Library::Gemm, Library::Matrixmultiply];

    fn name(self) -> &'static str {
        match self {
            Library::Gemm => "gemm",
            Library::Matrixmultiply => "matrixmultiply",
        }
    }

    /// `C = op(A) · op(B)`, row-major.
    fn product(self, p: &Product, a: &[f32], b: &[f32], c: &mut [f32]) {
        match self {
            Library::Gemm => matmul(p.m, p.n, p.k, a, p.ta, b, p.tb, c, false),
            Library::Matrixmultiply => {
                assert!(a.len() == p.m * p.k && b.len() == p.k * p.n && c.len() == p.m * p.n);
                let (rsa, csa) = if p.ta { (1, p.m) } else { (p.k, 1) };
                let (rsb, csb) = if p.tb { (1, p.k) } else { (p.n, 1) };
                // SAFETY: the lengths are checked above against these strides.
                unsafe {
                    matrixmultiply::sgemm(
                        p.m,
                        p.k,
                        p.n,
                        1.0,
                        a.as_ptr(),
                        rsa as isize,
                        csa as isize,
                        b.as_ptr(),
                        rsb as isize,
                        csb as isize,
                        0.0,
                        c.as_mut_ptr(),
                        p.n as isize,
                        1,
                    )
                }
            }
        }
    }
}

fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 1000.0 - 0.5
        })
        .collect()
}

/// Operands for `p`: A, B and C.
fn operands(p: &Product) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (data(p.m * p.k, 1), data(p.k * p.n, 2), vec![0.0; p.m * p.n])
}

fn flops(p: &Product) -> u64 {
    (2 * p.m * p.n * p.k) as u64
}

fn shapes(c: &mut Criterion) {
    let mut group = c.benchmark_group("shape");
    let w1 = w1_step(100).map(|(p, _)| (format!("W1 b100 {}", p.name), p));
    let conv = CONV.iter().map(|&p| (format!("conv {}", p.name), p));
    for (name, p) in w1.into_iter().chain(conv) {
        let p = &p;
        let (a, b, mut out) = operands(p);
        group.throughput(Throughput::Elements(flops(p)));
        for lib in Library::ALL {
            group.bench_function(BenchmarkId::new(lib.name(), &name), |bench| {
                bench.iter(|| lib.product(p, black_box(&a), black_box(&b), &mut out))
            });
        }
    }
    group.finish();
}

fn steps(c: &mut Criterion) {
    let mut group = c.benchmark_group("step");
    let w3: Vec<(Product, usize)> = w1_step(50)
        .into_iter()
        .filter(|(p, _)| p.name.starts_with("fwd"))
        .collect();
    let cases = [
        ("W1 step b100", w1_step(100).to_vec()),
        ("W1 step b50", w1_step(50).to_vec()),
        ("W3 forward 50 rows", w3),
    ];
    for (name, products) in cases {
        let buffers: Vec<_> = products.iter().map(|(p, _)| operands(p)).collect();
        let total: u64 = products.iter().map(|(p, n)| flops(p) * *n as u64).sum();
        group.throughput(Throughput::Elements(total));
        for lib in Library::ALL {
            let mut buffers = buffers.clone();
            group.bench_function(BenchmarkId::new(lib.name(), name), |bench| {
                bench.iter(|| {
                    for ((p, times), (a, b, out)) in products.iter().zip(&mut buffers) {
                        for _ in 0..*times {
                            lib.product(p, black_box(a), black_box(b), out);
                        }
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = shapes, steps
}
criterion_main!(benches);
