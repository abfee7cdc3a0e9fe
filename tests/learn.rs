//! End-to-end tests of `backprop learn NAME`, `show examples` and `show
//! activations`, and of the examples under `examples/`: the built example
//! binaries are run (when `cargo test` built them, which it does unless
//! asked for single targets) and must print the book's numbers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use backprop::checkpoint::{self, ModelInfo};
use backprop::data::DatasetName;
use backprop::nets::{MultiLayerNet, SimpleConvNet};
use common::{Mnist, TempDir, run, stderr, stdout};

/// Runs `backprop ARGS`, which must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{args:?} failed: {}", stderr(&o));
    stdout(&o)
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn learn_prints_the_books_numbers_and_writes_the_figure() {
    let dir = TempDir::new("learn-cli");
    let out = dir.path().to_str().unwrap();
    let text = ok(&["learn", "gradient-descent", "--out", out]);
    assert!(
        text.contains("lr=0.1, step_num=100) = [-6.11110793e-10  8.14814391e-10]\n"),
        "{text}"
    );
    assert!(
        text.contains("lr=1e-10, step_num=100) = [-2.99999994  3.99999992]\n"),
        "{text}"
    );
    for file in [
        "gradient-descent.png",
        "gradient-descent.svg",
        "gradient-descent.csv",
    ] {
        assert!(
            text.contains(&format!("wrote {}", dir.join(file).display())),
            "{text}"
        );
    }
    assert_eq!(png_size(&dir.join("gradient-descent.png")), (1680, 460));
    let text = ok(&["learn", "computational-graph", "--out", out]);
    assert!(
        text.contains("price: 715\ndApple: 2.2\ndApple_num: 110\ndOrange: 3.3\n"),
        "{text}"
    );
}

#[test]
fn learn_refuses_an_unknown_lesson_with_the_list() {
    let o = run(&["learn", "backprop"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("perceptron") && err.contains("why-relu"),
        "{err}"
    );
}

fn mnist_info() -> ModelInfo {
    ModelInfo::builtin(DatasetName::Mnist, 10, [1, 28, 28], 3, 0)
}

#[test]
fn show_activations_runs_each_filter_over_a_picture() {
    let dir = TempDir::new("show-activations");
    let net = SimpleConvNet::new([1, 28, 28], 10).build::<f32>(3).unwrap();
    let model = dir.join("cnn.safetensors");
    checkpoint::save(&model, &net, &mnist_info()).unwrap();
    // A 40x30 picture: a light square on dark paper.
    let picture = image::GrayImage::from_fn(40, 30, |x, y| {
        image::Luma([if (10..30).contains(&x) && (8..22).contains(&y) {
            230
        } else {
            20
        }])
    });
    let png = dir.join("square.png");
    picture.save(&png).unwrap();
    let out = dir.join("responses.png");
    let text = ok(&[
        "show",
        "activations",
        "--model",
        model.to_str().unwrap(),
        png.to_str().unwrap(),
        "--limit",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("4 filters of 1x5x5 over"), "{text}");
    assert!(text.contains("(40x30), responses 36x26"), "{text}");
    assert!(text.contains("  filter  4: response from"), "{text}");
    // The picture and four responses in one row of six panels of 200x220.
    assert_eq!(png_size(&out), (5 * 200, 220));
    assert!(dir.join("responses.svg").is_file());

    let mlp = MultiLayerNet::new(784, &[10], 10).build::<f32>(0).unwrap();
    let mlp_model = dir.join("mlp.safetensors");
    checkpoint::save(&mlp_model, &mlp, &mnist_info()).unwrap();
    let o = run(&[
        "show",
        "activations",
        "--model",
        mlp_model.to_str().unwrap(),
        png.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Affine, not a Convolution"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn show_examples_draws_labelled_training_images() {
    let dir = TempDir::new("show-examples");
    let o = run(&[
        "show",
        "examples",
        "--dataset",
        "spiral",
        "--out",
        dir.join("s.png").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not made of images"), "{}", stderr(&o));
    let out = dir.join("examples.png");
    let mnist = Mnist::get().args();
    let mut args: Vec<&str> = vec!["show", "examples"];
    args.extend(mnist.iter().map(String::as_str));
    args.extend(["--limit", "12", "--out", out.to_str().unwrap()]);
    let text = ok(&args);
    assert!(
        text.starts_with("x_train[0]: label 5, 784 values shown as 28x28\n"),
        "{text}"
    );
    assert!(text.contains("labels 5 0 4 1 9 2 1 3 1 4 3 5\n"), "{text}");
    // Ten to a row: two rows of panels of 110x130.
    assert_eq!(png_size(&out), (10 * 110, 2 * 130));
}

/// The example binary `name`, if `cargo test` built it beside the main one.
fn example(name: &str) -> Option<PathBuf> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_backprop"));
    let path = bin.parent()?.join("examples").join(name);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping example {name}: not built (cargo test builds examples unless given single targets)"
        );
        None
    }
}

/// What each fast example must print, line for line.
const EXPECTED: &[(&str, &str)] = &[
    (
        "ch02_and_gate",
        "w = [0.5, 0.5], b = -0.7\n(0, 0) -> 0\n(1, 0) -> 0\n(0, 1) -> 0\n(1, 1) -> 1\n",
    ),
    (
        "ch02_nand_gate",
        "w = [-0.5, -0.5], b = 0.7\n(0, 0) -> 1\n(1, 0) -> 1\n(0, 1) -> 1\n(1, 1) -> 0\n",
    ),
    (
        "ch02_or_gate",
        "w = [0.5, 0.5], b = -0.2\n(0, 0) -> 0\n(1, 0) -> 1\n(0, 1) -> 1\n(1, 1) -> 1\n",
    ),
    (
        "ch02_xor_gate",
        "(0, 0) -> 0\n(1, 0) -> 1\n(0, 1) -> 1\n(1, 1) -> 0\n",
    ),
    (
        "ch03_sig_step_compare",
        "step_function: [0 1 1]\nsigmoid:       [0.26894142 0.73105858 0.88079708]\n\
         tanh:          [-0.76159416  0.76159416  0.96402758]\nrelu:          [0. 1. 2.]\n",
    ),
    ("ch03_three_layer_net", "[0.31682708 0.69627909]\n"),
    (
        "ch03_softmax",
        "[0.01821127 0.24519181 0.73659691]\n1\n[9.99954600e-01 4.53978686e-05 2.06106005e-09]\n",
    ),
    (
        "ch04_gradient_1d",
        "0.1999999999990898\n0.2999999999986347\n",
    ),
    ("ch04_gradient_2d", "[6. 8.]\n[0. 4.]\n[6. 0.]\n"),
    (
        "ch04_gradient_method",
        "[-6.11110793e-10  8.14814391e-10]\n[-2.58983747e+13 -1.29524862e+12]\n[-2.99999994  3.99999992]\n",
    ),
    (
        "ch05_buy_apple",
        "price: 220\ndApple: 2.2\ndApple_num: 110\ndTax: 200\n",
    ),
    (
        "ch05_buy_apple_orange",
        "price: 715\ndApple: 2.2\ndApple_num: 110\ndOrange: 3.3\ndOrange_num: 165\ndTax: 650\n",
    ),
];

#[test]
fn the_fast_examples_print_the_books_numbers() {
    for (name, want) in EXPECTED {
        let Some(path) = example(name) else { continue };
        let o = Command::new(&path).output().unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert_eq!(stdout(&o), *want, "{name}");
    }
    if let Some(path) = example("ch06_optimizer_compare_naive") {
        let text = stdout(&Command::new(&path).output().unwrap());
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(
            text.starts_with("sgd      lr 0.95: (-0.3504, 0.0848)"),
            "{text}"
        );
    }
    if let Some(path) = example("ch07_apply_filter") {
        let o = Command::new(&path).output().unwrap();
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("usage: ch07_apply_filter MODEL PICTURE"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn the_mnist_examples_print_the_books_numbers() {
    // The full set where BACKPROP_DATA has it; else the built-in sample, with
    // no cache and no mirror to reach, as on a machine offline.
    let cache = TempDir::new("examples-cache");
    let run_example = |name: &str| {
        let path = example(name)?;
        let mut c = Command::new(&path);
        if std::env::var_os("BACKPROP_DATA").is_none() {
            c.env("BACKPROP_CACHE", cache.path())
                .env("BACKPROP_MIRROR", "http://127.0.0.1:9/");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        Some(stdout(&o))
    };
    if let Some(text) = run_example("ch03_mnist_show") {
        assert!(text.starts_with("5\n(784,)\n(28, 28)\n"), "{text}");
        assert_eq!(text.lines().count(), 3 + 28);
    }
    if let Some(text) = run_example("ch05_gradient_check") {
        let names: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(names, ["W1", "b1", "W2", "b2"], "{text}");
        for line in text.lines() {
            let v: f64 = line.split(':').nth(1).unwrap().parse().unwrap();
            assert!(v > 0.0 && v < 1e-9, "{line}");
        }
    }
    if let Some(text) = run_example("ch05_backprop_chain") {
        assert!(
            text.contains("backward Affine   dx not needed dW [784, 30] db [30]"),
            "{text}"
        );
    }
}
