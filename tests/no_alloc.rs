//! The steady-state training loop allocates nothing: once the first batches
//! have sized every buffer, further steps make no heap allocation, on any
//! thread, outside the GEMM crate. (gemm 0.19 allocates small packing buffers
//! inside some calls; that is its business, and measured cheap.) Allocations
//! are counted by a global allocator that captures a backtrace for each one
//! while counting is on, to tell whose allocation it is.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use backprop::data::{Dataset, DatasetName, Features, LoadOptions, load};
use backprop::nets::{DeepConvNet, MultiLayerNet, SimpleConvNet};
use backprop::optim;
use backprop::train::Trainer;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Backtraces of the allocations made by anything but gemm while counting.
static OURS: Mutex<Vec<String>> = Mutex::new(Vec::new());

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

fn record() {
    if !COUNTING.load(Ordering::SeqCst) || INSIDE.with(|c| c.replace(true)) {
        return;
    }
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    // A dropped trainer's threads wind down after the next trainer has begun;
    // their thread-local destructors allocate, but not for the training loop.
    let thread_exit = trace.contains("__call_tls_dtors");
    if !trace.contains("gemm_common::") && !thread_exit {
        OURS.lock().unwrap().push(trace);
    }
    INSIDE.with(|c| c.set(false));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn training_steps_do_not_allocate() {
    let split = load(DatasetName::Spiral, &LoadOptions::default()).unwrap();
    for (optimizer, batchnorm) in [("sgd", false), ("adam", false), ("sgd", true)] {
        for threads in [1, 2] {
            // With BatchNorm the replicas also average their running statistics.
            let spec = MultiLayerNet::new(2, &[64, 64], 3)
                .weight_decay_lambda(0.01)
                .batchnorm(batchnorm);
            let rule = optim::by_name::<f32>(optimizer, 0.01).unwrap();
            let mut trainer = Trainer::new(spec.build(1).unwrap(), rule, threads, 1);
            let batch: Vec<usize> = (0..100).collect();
            for _ in 0..5 {
                trainer.step(&split.train, &batch).unwrap();
            }
            COUNTING.store(true, Ordering::SeqCst);
            for _ in 0..20 {
                trainer.step(&split.train, &batch).unwrap();
            }
            COUNTING.store(false, Ordering::SeqCst);
            let ours = std::mem::take(&mut *OURS.lock().unwrap());
            assert!(
                ours.is_empty(),
                "{optimizer}, batchnorm {batchnorm}, {threads} thread(s): {} allocations in 20 steps; the first:\n{}",
                ours.len(),
                ours[0]
            );
        }
    }
    convnet_training_steps_do_not_allocate();
}

/// The convnets too: im2col columns, pooling masks and every activation live
/// in buffers sized by the first batches. Random 12x12 "images" suffice.
/// Called from the one test above: the counter is process-wide, and the test
/// harness allocates when a concurrent test finishes.
fn convnet_training_steps_do_not_allocate() {
    let n = 100;
    let images = Dataset {
        name: "noise".into(),
        features: Features::Dense(
            (0..n * 144)
                .map(|i| ((i * 37) % 101) as f32 / 101.0)
                .collect(),
        ),
        labels: (0..n).map(|i| (i % 10) as u16).collect(),
        class_names: backprop::data::numbered_classes(10),
        shape: [1, 12, 12],
        input: backprop::data::InputKind::Vectors,
    };
    let nets = [
        SimpleConvNet::new(images.shape, 10).spec(),
        DeepConvNet::new(images.shape, 10).spec(),
    ];
    for spec in nets {
        let rule = optim::by_name::<f32>("adam", 0.001).unwrap();
        let mut trainer = Trainer::new(spec.build(1).unwrap(), rule, 2, 1);
        let batch: Vec<usize> = (0..n).collect();
        for _ in 0..3 {
            trainer.step(&images, &batch).unwrap();
        }
        COUNTING.store(true, Ordering::SeqCst);
        for _ in 0..5 {
            trainer.step(&images, &batch).unwrap();
        }
        COUNTING.store(false, Ordering::SeqCst);
        let ours = std::mem::take(&mut *OURS.lock().unwrap());
        assert!(
            ours.is_empty(),
            "{spec:?}: {} allocations in 5 steps; the first:\n{}",
            ours.len(),
            ours[0]
        );
    }
}
