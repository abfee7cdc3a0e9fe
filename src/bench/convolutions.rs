//! `backprop bench conv`: one Convolution layer at a time, forward and
//! forward + backward on a batch of 100 split over the threads as the trainer
//! splits it (each thread a replica with its share of the batch), at the
//! shapes of DeepConvNet, SimpleConvNet and three a user might write; the
//! direct kernels, and the textbook's im2col beside them.
//! `benches/conv_shapes.py` times PyTorch's `conv2d` on the same shapes and
//! runs this beside it, for the README's per-shape table.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::gradcheck::random_tensor;
use crate::layers::convolution::Algorithm;
use crate::layers::{Convolution, Layer};
use crate::tensor::Tensor;
use crate::train::flush_denormals;

/// One convolution to time: input `(C, H, W)`, `FN` filters of `K x K`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ConvShape {
    pub name: &'static str,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub filters: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    /// Whether backward computes the input gradient (not for a first layer,
    /// whose input is the images).
    pub input_grad: bool,
}

const fn shape(
    name: &'static str,
    [c, h, w]: [usize; 3],
    filters: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    input_grad: bool,
) -> ConvShape {
    ConvShape {
        name,
        c,
        h,
        w,
        filters,
        kernel,
        stride,
        pad,
        input_grad,
    }
}

/// The shapes of the table; `benches/conv_shapes.py` reads them from
/// `backprop bench conv --json`.
pub const SHAPES: &[ConvShape] = &[
    shape("deep1 1->16 28x28", [1, 28, 28], 16, 3, 1, 1, false),
    shape("deep2 16->16 28x28", [16, 28, 28], 16, 3, 1, 1, true),
    shape("deep3 16->32 14x14", [16, 14, 14], 32, 3, 1, 1, true),
    shape("deep4 32->32 14x14 p2", [32, 14, 14], 32, 3, 1, 2, true),
    shape("deep5 32->64 8x8", [32, 8, 8], 64, 3, 1, 1, true),
    shape("deep6 64->64 8x8", [64, 8, 8], 64, 3, 1, 1, true),
    shape("simple 1->30 5x5 28x28", [1, 28, 28], 30, 5, 1, 0, false),
    shape("rgb 3->32 32x32", [3, 32, 32], 32, 3, 1, 1, false),
    shape("64->128 s2 16x16", [64, 16, 16], 128, 3, 2, 1, true),
    shape("1x1 128->64 16x16", [128, 16, 16], 64, 1, 1, 0, true),
];

/// The images per batch, as in training (W4) and the PyTorch script.
pub const BATCH: usize = 100;

/// Timings of one shape, in milliseconds per batch of [`BATCH`].
#[derive(Clone, Debug, Serialize)]
pub struct ConvTiming {
    #[serde(flatten)]
    pub shape: ConvShape,
    pub batch: usize,
    pub threads: usize,
    /// The default (direct) kernels: inference, and training's forward
    /// and backward.
    pub forward_ms: f64,
    pub forward_backward_ms: f64,
    /// The textbook's im2col and matrix product, forward and backward.
    pub im2col_forward_backward_ms: f64,
    /// Multiply-adds of forward, times 2, per second at `forward_backward_ms`
    /// (counting backward as one or two more such products).
    pub gflops: f64,
}

/// One thread's replica and its share of the batch.
struct Replica {
    conv: Convolution<f32>,
    x: Tensor<f32>,
    dout: Tensor<f32>,
}

/// Median of `rounds` timings of `run`, each round long enough to be
/// measured (at least 20 ms), in milliseconds per call.
fn time_ms(rounds: usize, mut run: impl FnMut()) -> f64 {
    run();
    let t0 = Instant::now();
    run();
    let once = t0.elapsed().as_secs_f64();
    let reps = ((0.02 / once.max(1e-6)).ceil() as usize).max(1);
    let mut wall: Vec<f64> = (0..rounds)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..reps {
                run();
            }
            t0.elapsed().as_secs_f64() * 1e3 / reps as f64
        })
        .collect();
    median(&mut wall)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times every shape of [`SHAPES`] on `threads` threads.
pub fn run(threads: usize, rounds: usize, mut report: impl FnMut(&ConvTiming)) -> Vec<ConvTiming> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(|_| flush_denormals())
        .build()
        .expect("cannot start worker threads");
    let mut out = Vec::new();
    for (k, s) in SHAPES.iter().enumerate() {
        let seed = 1000 * k as u64;
        let w = random_tensor(&[s.filters, s.c, s.kernel, s.kernel], 0.1, seed).cast();
        let b = random_tensor(&[s.filters], 0.1, seed + 1).cast();
        let mut replicas: Vec<Replica> = (0..threads)
            .map(|r| {
                let rows = BATCH * (r + 1) / threads - BATCH * r / threads;
                let mut conv = Convolution::from_params(w.clone(), b.clone(), s.stride, s.pad);
                conv.set_input_grad_needed(s.input_grad);
                let x = random_tensor(&[rows, s.c, s.h, s.w], 1.0, seed + 2 + r as u64).cast();
                let out_shape = conv.forward(&x, true).shape().to_vec();
                let dout = random_tensor(&out_shape, 1.0, seed + 50 + r as u64).cast();
                Replica { conv, x, dout }
            })
            .collect();
        let forward_ms = time_ms(rounds, || {
            pool.install(|| {
                replicas.par_iter_mut().for_each(|r| {
                    r.conv.forward(&r.x, false);
                })
            })
        });
        let train = |replicas: &mut Vec<Replica>| {
            time_ms(rounds, || {
                pool.install(|| {
                    replicas.par_iter_mut().for_each(|r| {
                        r.conv.forward(&r.x, true);
                        r.conv.backward(&r.dout);
                    })
                })
            })
        };
        let forward_backward_ms = train(&mut replicas);
        for r in &mut replicas {
            r.conv.algorithm = Algorithm::Im2col;
        }
        let im2col_forward_backward_ms = train(&mut replicas);
        let out_positions = {
            let o = replicas[0].conv.output().shape();
            o[2] * o[3]
        };
        let macs = (BATCH * out_positions * s.filters * s.c * s.kernel * s.kernel) as f64;
        let passes = if s.input_grad { 3.0 } else { 2.0 };
        let t = ConvTiming {
            shape: *s,
            batch: BATCH,
            threads,
            forward_ms,
            forward_backward_ms,
            im2col_forward_backward_ms,
            gflops: 2.0 * macs * passes / (forward_backward_ms * 1e-3) / 1e9,
        };
        report(&t);
        out.push(t);
    }
    out
}
