//! Forward + backward of each layer at the W1 shapes (batch 100), and one
//! whole W1 training step on one thread. `cargo bench --bench layers`.

use std::hint::black_box;

use backprop::gradcheck::random_tensor;
use backprop::layers::{Affine, Dropout, Labels, Layer, Relu, Sigmoid, SoftmaxWithLoss, Tanh};
use backprop::nets::MultiLayerNet;
use backprop::optim::{self, OptimizerState};
use backprop::tensor::Tensor;
use criterion::{Criterion, criterion_group, criterion_main};

fn f32_tensor(shape: &[usize], seed: u64) -> Tensor<f32> {
    random_tensor(shape, 1.0, seed).cast()
}

fn forward_backward(c: &mut Criterion, name: &str, layer: &mut dyn Layer<f32>, x: &Tensor<f32>) {
    let dout = f32_tensor(layer.forward(x, true).shape(), 99);
    c.bench_function(name, |b| {
        b.iter(|| {
            layer.forward(black_box(x), true);
            black_box(layer.backward(&dout));
        })
    });
}

fn bench(c: &mut Criterion) {
    let x784 = f32_tensor(&[100, 784], 1);
    let x100 = f32_tensor(&[100, 100], 2);
    let mut affine1 = Affine::from_params(f32_tensor(&[784, 100], 3), f32_tensor(&[100], 4));
    forward_backward(c, "Affine 100x784 -> 100", &mut affine1, &x784);
    let mut affine2 = Affine::from_params(f32_tensor(&[100, 100], 5), f32_tensor(&[100], 6));
    forward_backward(c, "Affine 100x100 -> 100", &mut affine2, &x100);
    forward_backward(c, "Relu 100x100", &mut Relu::new(), &x100);
    forward_backward(c, "Sigmoid 100x100", &mut Sigmoid::new(), &x100);
    forward_backward(c, "Tanh 100x100", &mut Tanh::new(), &x100);
    forward_backward(c, "Dropout(0.5) 100x100", &mut Dropout::new(0.5, 1), &x100);

    let scores = f32_tensor(&[100, 10], 7);
    let labels: Vec<usize> = (0..100).map(|i| i % 10).collect();
    let mut softmax = SoftmaxWithLoss::new();
    c.bench_function("SoftmaxWithLoss 100x10", |b| {
        b.iter(|| {
            black_box(softmax.forward(black_box(&scores), Labels::Index(&labels)));
            black_box(softmax.backward(1.0));
        })
    });

    let mut net = MultiLayerNet::new(784, &[100; 5], 10)
        .weight_decay_lambda(0.1)
        .build::<f32>(0)
        .unwrap();
    let mut sgd = OptimizerState::new(optim::by_name("sgd", 0.01).unwrap(), &net);
    c.bench_function("W1 step (gradient + SGD), 1 thread", |b| {
        b.iter(|| {
            black_box(
                net.gradient(black_box(&x784), Labels::Index(&labels))
                    .unwrap(),
            );
            sgd.step(&mut net);
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
