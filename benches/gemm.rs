//! The GEMM entry point (`tensor::matmul`) at the shapes of one W1 training
//! step (batch 100) and of W3 inference (batch 1000), in GFLOP/s.
//!
//! `cargo bench --bench gemm`. "2T rows" splits the rows of the product into
//! halves on two threads, the way the trainer splits a batch.

use std::hint::black_box;

use backprop::tensor::matmul;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// (name, m, n, k, trans_a, trans_b) for C[m x n] = op(A)[m x k] · op(B)[k x n].
const SHAPES: &[(&str, usize, usize, usize, bool, bool)] = &[
    ("b100.fwd1 100x784x100", 100, 100, 784, false, false),
    ("b100.fwd2 100x100x100", 100, 100, 100, false, false),
    ("b100.fwd3 100x100x10", 100, 10, 100, false, false),
    ("b100.dW1 784x100x100", 784, 100, 100, true, false),
    ("b100.dW2 100x100x100", 100, 100, 100, true, false),
    ("b100.dX2 100x100x100", 100, 100, 100, false, true),
    ("b1000.fwd1 1000x784x100", 1000, 100, 784, false, false),
];

fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 1000.0 - 0.5
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("matmul");
    for &(name, m, n, k, ta, tb) in SHAPES {
        let (a, b) = (data(m * k, 1), data(k * n, 2));
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        group.bench_function(format!("{name} 1T"), |bench| {
            bench.iter(|| {
                matmul(
                    m,
                    n,
                    k,
                    black_box(&a),
                    ta,
                    black_box(&b),
                    tb,
                    &mut out,
                    false,
                )
            })
        });
        if !ta {
            // Row halves: A's rows and C's rows split, B shared.
            let h = m / 2;
            let (a0, a1) = a.split_at(h * k);
            group.bench_function(format!("{name} 2T rows"), |bench| {
                bench.iter(|| {
                    let (c0, c1) = out.split_at_mut(h * n);
                    pool.install(|| {
                        rayon::join(
                            || matmul(h, n, k, black_box(a0), false, &b, tb, c0, false),
                            || matmul(m - h, n, k, black_box(a1), false, &b, tb, c1, false),
                        )
                    });
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
