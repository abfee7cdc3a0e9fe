//! The training toolkit's figures on MNIST: Adam on the default net, and
//! BatchNorm against the same net without it (the textbook's chapter 6).

mod common;

use common::{Mnist, TempDir, mnist_dir, train_model};
use serde_json::Value;

/// Trains on `mnist` with `args` into a fresh folder; returns the metrics lines.
fn train(mnist: &Mnist, args: &[&str]) -> Vec<Value> {
    let out = TempDir::new("toolkit");
    let data = mnist.args();
    let mut all: Vec<&str> = data.iter().map(String::as_str).collect();
    all.extend(args);
    train_model(out.path(), &all);
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn column(metrics: &[Value], key: &str) -> Vec<f64> {
    metrics.iter().map(|m| m[key].as_f64().unwrap()).collect()
}

/// Adam at 0.001 on the default 784-100x5-10 net, 10 epochs. With a constant
/// rate the final accuracy depends on where the last steps land (0.966 to
/// 0.979 over seeds, like PyTorch's Adam); annealed to zero it settles (0.978
/// to 0.982 over 20 seeds).
#[test]
fn adam_trains_the_default_net_past_97_5_percent() {
    let Some(dir) = mnist_dir("adam_trains_the_default_net") else {
        return;
    };
    let metrics = train(
        &Mnist::Full(dir),
        &[
            "--optimizer",
            "adam",
            "--lr",
            "0.001",
            "--lr-schedule",
            "cosine",
        ],
    );
    assert_eq!(metrics.len(), 10);
    let test = column(&metrics, "test_accuracy");
    eprintln!("adam + cosine, test accuracy per epoch: {test:?}");
    assert!(test[9] >= 0.975, "{test:?}");
    assert_eq!(metrics[0]["lr"], 0.001);
}

/// The textbook's batch_norm_test.py setting: 1000 images, 20 epochs, SGD at
/// 0.01, batch 100, one thread (so BatchNorm sees whole batches). BatchNorm
/// learns faster: the higher training accuracy at every epoch. (On test
/// accuracy it does not win here: 1000 images overfit, and PyTorch's
/// BatchNorm1d gives the same picture.)
#[test]
fn batchnorm_trains_faster_than_the_same_net_without_it() {
    // The first 1000 images, the same in the sample as in the full set.
    let mnist = Mnist::get();
    let args = [
        "--train-size",
        "1000",
        "--epochs",
        "20",
        "--lr",
        "0.01",
        "--threads",
        "1",
    ];
    let plain = train(&mnist, &args);
    let mut with_bn = args.to_vec();
    with_bn.push("--batchnorm");
    let bn = train(&mnist, &with_bn);
    let (p, b) = (
        column(&plain, "train_accuracy"),
        column(&bn, "train_accuracy"),
    );
    eprintln!(
        "train accuracy without / with BatchNorm: {:.3} / {:.3}; test: {:.4} / {:.4}",
        p[19], b[19], plain[19]["test_accuracy"], bn[19]["test_accuracy"]
    );
    for e in 1..20 {
        assert!(b[e] > p[e], "epoch {}: {} vs {}", e + 1, b[e], p[e]);
    }
    assert!(b[19] >= p[19] + 0.05, "{b:?} vs {p:?}");
}
