//! End-to-end runs of the `backprop` binary: training, gradient checks, and
//! what a user sees when the data is wrong or missing.

mod common;

use std::collections::HashMap;

use common::{Mnist, TempDir, mnist_dir, run, serve, stderr, stdout};
use serde_json::Value;

fn summary(dir: &TempDir) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("summary.json"))
        .unwrap()
}

#[test]
fn gradcheck_passes_and_reports_every_parameter() {
    let out = run(&["gradcheck"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for needle in [
        "Affine",
        "Relu",
        "Sigmoid",
        "Tanh",
        "SoftmaxWithLoss",
        "W1",
        "b3",
        "lambda=0.1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains("NOT OK"));
    // A tolerance nothing can meet makes it fail with a non-zero exit.
    let strict = run(&["gradcheck", "--tolerance", "1e-30"]);
    assert!(!strict.status.success());
    assert!(stderr(&strict).contains("exceed the tolerance"));
}

#[test]
fn spiral_trains_to_95_percent_without_files() {
    let out_dir = TempDir::new("spiral");
    let start = std::time::Instant::now();
    let out = run(&[
        "train",
        "--dataset",
        "spiral",
        "--hidden",
        "100,100",
        "--epochs",
        "30",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(start.elapsed().as_secs() < 60);
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("wrote "), "{last}");
    let s = summary(&out_dir);
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.95, "{s}");
    assert_eq!(s["config"]["dataset"], "spiral");
    assert_eq!(s["epochs"], 30);
    let metrics = std::fs::read_to_string(out_dir.join("metrics.jsonl")).unwrap();
    let lines: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    for key in [
        "epoch",
        "train_loss",
        "train_accuracy",
        "test_accuracy",
        "seconds",
    ] {
        assert!(lines[0].get(key).is_some(), "metrics line lacks {key}");
    }
    // Training lowers the loss.
    assert!(lines[29]["train_loss"].as_f64() < lines[0]["train_loss"].as_f64());
}

#[test]
fn learning_rate_schedules_are_followed_and_logged() {
    let lrs = |schedule: &str| -> (Vec<f64>, Value) {
        let dir = TempDir::new("schedule");
        common::train_model(
            dir.path(),
            &[
                "--dataset",
                "spiral",
                "--hidden",
                "20",
                "--lr",
                "0.4",
                "--epochs",
                "5",
                "--lr-schedule",
                schedule,
            ],
        );
        let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        let lrs = metrics
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["lr"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        (lrs, summary(&dir))
    };
    let (step, s) = lrs("step:2:0.5");
    assert_eq!(step, [0.4, 0.4, 0.2, 0.2, 0.1]);
    assert_eq!(s["config"]["lr_schedule"], "step:2:0.5");
    // Cosine: each epoch starts lower, from the full rate to near zero.
    let (cosine, _) = lrs("cosine");
    assert_eq!(cosine[0], 0.4);
    assert!(cosine.windows(2).all(|w| w[1] < w[0]), "{cosine:?}");
    let expect_last = 0.4 * 0.5 * (1.0 + (std::f64::consts::PI * 0.8).cos());
    assert!((cosine[4] - expect_last).abs() < 1e-12, "{cosine:?}");
    assert_eq!(lrs("constant").0, [0.4; 5]);

    let out = run(&["train", "--dataset", "spiral", "--lr-schedule", "linear"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("step:N:G"), "{}", stderr(&out));
}

#[test]
fn mnist_two_epochs_reach_95_percent() {
    let Some(dir) = mnist_dir("mnist_two_epochs_reach_95_percent") else {
        return;
    };
    let out_dir = TempDir::new("mnist");
    let out = run(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--epochs",
        "2",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let acc = summary(&out_dir)["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.95, "test accuracy {acc}\n{text}");
    assert!(text.contains("test accuracy: 0.9"), "{text}");
}

/// Copies the four MNIST files into `dir`, with `edit` applied to one of them.
fn broken_copy(
    src: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    edit: impl Fn(Vec<u8>) -> Vec<u8>,
) {
    use std::io::{Read, Write};
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(src.join(format!("{f}.gz"))).unwrap())
            .read_to_end(&mut raw)
            .unwrap();
        if f == name {
            raw = edit(raw);
        }
        std::fs::File::create(dir.join(f))
            .unwrap()
            .write_all(&raw)
            .unwrap();
    }
}

fn assert_clean_failure(out: &std::process::Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1 (a reported error, not a panic): {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "the error should be one line: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "'{n}' not in: {err}");
    }
}

#[test]
fn truncated_and_mislabelled_idx_files_give_one_clear_line() {
    let mnist = Mnist::get();
    let src = mnist.files();
    let truncated = TempDir::new("truncated");
    broken_copy(&src, truncated.path(), "t10k-images-idx3-ubyte", |mut v| {
        v.truncate(v.len() / 2);
        v
    });
    let out = run(&[
        "train",
        "--data",
        truncated.path().to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    assert_clean_failure(&out, &["t10k-images-idx3-ubyte", "truncated", "7840016"]);

    let mislabelled = TempDir::new("mislabelled");
    broken_copy(
        &src,
        mislabelled.path(),
        "train-labels-idx1-ubyte",
        |mut v| {
            v[8 + 123] = 42; // a label of 42 in a 10-class set
            v
        },
    );
    let out = run(&[
        "train",
        "--data",
        mislabelled.path().to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    assert_clean_failure(&out, &["train-labels-idx1-ubyte", "42"]);

    let bad_magic = TempDir::new("magic");
    broken_copy(
        &src,
        bad_magic.path(),
        "train-labels-idx1-ubyte",
        |mut v| {
            v[2] = 0x0d;
            v
        },
    );
    let out = run(&[
        "train",
        "--data",
        bad_magic.path().to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    assert_clean_failure(&out, &["train-labels-idx1-ubyte", "0x0d"]);

    // Well-formed files that hold no examples.
    let empty = TempDir::new("empty");
    broken_copy(&src, empty.path(), "train-images-idx3-ubyte", |mut v| {
        v[4..8].copy_from_slice(&0u32.to_be_bytes());
        v.truncate(16);
        v
    });
    let labels = empty.join("train-labels-idx1-ubyte");
    let mut v = std::fs::read(&labels).unwrap();
    v[4..8].copy_from_slice(&0u32.to_be_bytes());
    v.truncate(8);
    std::fs::write(&labels, v).unwrap();
    let out = run(&[
        "train",
        "--data",
        empty.path().to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    assert_clean_failure(&out, &["the training set of mnist has no examples"]);
}

#[test]
fn offline_without_data_names_the_ways_out() {
    let cache = TempDir::new("offline-cache");
    let out_dir = TempDir::new("offline-run");
    let out = common::backprop()
        .args(["train", "--epochs", "1", "--no-sample", "--out"])
        .arg(out_dir.path())
        .env_remove("BACKPROP_DATA")
        .env("BACKPROP_CACHE", cache.path())
        .env("BACKPROP_MIRROR", "http://127.0.0.1:9/")
        .output()
        .unwrap();
    assert_clean_failure(
        &out,
        &[
            "could not download train-images-idx3-ubyte.gz",
            "--data",
            "BACKPROP_DATA",
            "--dataset mnist-sample",
            "spiral",
        ],
    );
    assert!(!out_dir.join("summary.json").exists());
}

/// The README's first command on a machine without MNIST and without a
/// network: it trains on the built-in sample, says so in one line before the
/// first epoch, records it, and reaches 0.94.
#[test]
fn offline_the_first_command_trains_on_the_built_in_sample() {
    let cache = TempDir::new("sample-cache");
    let out_dir = TempDir::new("sample-run");
    let out = common::backprop()
        .args(["train", "--no-progress", "--out"])
        .arg(out_dir.path())
        .env_remove("BACKPROP_DATA")
        .env("BACKPROP_CACHE", cache.path())
        .env("BACKPROP_MIRROR", "http://127.0.0.1:9/")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let notice = "MNIST not found and could not be downloaded: training on the built-in sample of \
                  10,000 training digits (and MNIST's 10,000 test digits); pass --data DIR or set \
                  BACKPROP_DATA for the full 60,000";
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| *l == notice);
    let first_epoch = lines.iter().position(|l| l.starts_with("epoch "));
    assert!(at.is_some() && at < first_epoch, "{text}");
    assert_eq!(text.matches("MNIST not found").count(), 1, "{text}");
    assert!(
        text.contains("mnist-sample: 10000 training and 10000 test examples"),
        "{text}"
    );
    let saved = summary(&out_dir);
    assert_eq!(saved["config"]["dataset"], "mnist-sample");
    assert_eq!(saved["test_examples"], 10000);
    let acc = saved["test_accuracy"].as_f64().unwrap();
    eprintln!("the default run on the sample: test accuracy {acc}");
    assert!(acc >= 0.94, "test accuracy {acc}\n{text}");
    let (_, info) = backprop::checkpoint::load::<f32>(&out_dir.join("model.safetensors")).unwrap();
    assert_eq!(
        info.dataset,
        backprop::data::DatasetName::MnistSample.into()
    );

    // A resume continues on the sample, whatever the machine has meanwhile.
    let o = common::backprop()
        .args(["train", "--no-progress", "--epochs", "11", "--resume"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("MNIST not found"), "{}", stdout(&o));
    assert_eq!(summary(&out_dir)["config"]["dataset"], "mnist-sample");

    // Asked for by name, the sample needs no notice.
    let named = TempDir::new("sample-named");
    let o = run(&[
        "train",
        "--dataset",
        "mnist-sample",
        "--epochs",
        "1",
        "--no-progress",
        "--out",
        named.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("MNIST not found"), "{}", stdout(&o));
}

#[test]
fn downloads_into_the_cache_from_a_mirror_and_trains() {
    let Some(src) = mnist_dir("downloads_into_the_cache_from_a_mirror_and_trains") else {
        return;
    };
    let mut files = HashMap::new();
    for f in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        files.insert(f.to_string(), std::fs::read(src.join(f)).unwrap());
    }
    let base = serve(files, 8);
    let cache = TempDir::new("download-cache");
    let out_dir = TempDir::new("download-run");
    let out = common::backprop()
        .args([
            "train",
            "--epochs",
            "1",
            "--train-size",
            "2000",
            "--hidden",
            "50",
            "--out",
        ])
        .arg(out_dir.path())
        .env_remove("BACKPROP_DATA")
        .env("BACKPROP_CACHE", cache.path())
        .env("BACKPROP_MIRROR", &base)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        cache
            .path()
            .join("mnist")
            .join("train-images-idx3-ubyte.gz")
            .is_file()
    );
    assert_eq!(summary(&out_dir)["test_examples"], 10000);
    // A second run finds the cache and needs no server (this one has stopped
    // after its requests, or points nowhere).
    let again = common::backprop()
        .args([
            "train",
            "--epochs",
            "1",
            "--train-size",
            "500",
            "--hidden",
            "20",
            "--out",
        ])
        .arg(out_dir.path())
        .env_remove("BACKPROP_DATA")
        .env("BACKPROP_CACHE", cache.path())
        .env("BACKPROP_MIRROR", "http://127.0.0.1:9/")
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn bad_arguments_are_reported_not_panicked() {
    for args in [
        &["train", "--dataset", "spiral", "--batch-size", "0"][..],
        &["train", "--dataset", "spiral", "--lr=-1"],
        &["train", "--dataset", "spiral", "--optimizer", "sgdd"],
        &["train", "--dataset", "spiral", "--hidden", "10,0"],
        &["train", "--dataset", "spiral", "--train-size", "0"],
        &[
            "train",
            "--dataset",
            "spiral",
            "--train-size",
            "10",
            "--batch-size",
            "100",
        ],
        &["train", "--dataset", "spiral", "--net", "simple-cnn"],
        // 1e10 weights: refused before anything is allocated.
        &["train", "--dataset", "spiral", "--hidden", "100000,100000"],
    ] {
        let out = run(args);
        assert_clean_failure(&out, &["error:"]);
    }
    // clap's own usage errors exit 2 with a usage message.
    let out = run(&["train", "--dataset", "cifar"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cifar"));
}
