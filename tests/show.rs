//! End-to-end tests of `backprop show filters|misclassified` and
//! `backprop eval --precision f16`: the PNGs decode with the sizes their
//! layout implies, the misclassified count agrees with `eval`, and f16 weights
//! keep the accuracy within half a point. The MNIST tests share one
//! SimpleConvNet trained for a second on 3,000 images.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use backprop::checkpoint::{self, ModelInfo};
use backprop::data::DatasetName;
use backprop::nets::{MultiLayerNet, Network, SimpleConvNet};
use common::{Mnist, TempDir, run, stderr, stdout, train_model};
use serde_json::Value;

fn mnist_info(seed: u64) -> ModelInfo {
    ModelInfo::builtin(DatasetName::Mnist, 10, [1, 28, 28], seed, 0)
}

fn save(dir: &TempDir, name: &str, net: &Network<f32>, info: &ModelInfo) -> PathBuf {
    let path = dir.join(name);
    checkpoint::save(&path, net, info).unwrap();
    path
}

/// Runs `backprop show ...`, which must succeed, and decodes the PNG at `png`.
fn show(args: &[&str], png: &Path) -> (String, image::DynamicImage) {
    let mut all = vec!["show"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", png.to_str().unwrap()]);
    let o = run(&all);
    assert!(o.status.success(), "{all:?} failed: {}", stderr(&o));
    let img = image::open(png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    (stdout(&o), img)
}

#[test]
fn filters_of_a_convnet_and_of_an_mlp() {
    let dir = TempDir::new("show-filters");
    // Saved straight after building: its "trained" weights are the ones
    // `--untrained` rebuilds from the model's seed.
    let cnn = SimpleConvNet::new([1, 28, 28], 10).build::<f32>(5).unwrap();
    let model = save(&dir, "cnn.safetensors", &cnn, &mnist_info(5));
    let m = model.to_str().unwrap();
    let (text, trained) = show(&["filters", "--model", m], &dir.join("a.png"));
    // 30 filters of 5x5, 8 per row, each weight 8x8 pixels, 3-pixel gaps.
    assert_eq!(
        (trained.width(), trained.height()),
        (8 * 43 + 3, 4 * 43 + 3)
    );
    assert!(
        text.contains("30 of 30 filters of the first Convolution (W1), as 1x5x5 tiles"),
        "{text}"
    );
    let (text, same) = show(
        &["filters", "--model", m, "--untrained"],
        &dir.join("b.png"),
    );
    assert!(
        text.contains("the weights its training started from"),
        "{text}"
    );
    assert_eq!(same.to_luma8(), trained.to_luma8());
    let (_, other) = show(
        &["filters", "--model", m, "--untrained", "--seed", "6"],
        &dir.join("c.png"),
    );
    assert_ne!(other.to_luma8(), trained.to_luma8());

    // An MLP's first Affine: each hidden unit's 784 weights as a 28x28 tile,
    // magnified 2x, 10 per row; --limit keeps the first 12 of 20.
    let mlp = MultiLayerNet::new(784, &[20], 10).build::<f32>(1).unwrap();
    let model = save(&dir, "mlp.safetensors", &mlp, &mnist_info(1));
    let (text, img) = show(
        &[
            "filters",
            "--model",
            model.to_str().unwrap(),
            "--limit",
            "12",
        ],
        &dir.join("mlp.png"),
    );
    assert_eq!((img.width(), img.height()), (10 * 59 + 3, 2 * 59 + 3));
    assert!(
        text.contains("12 of 20 hidden units' input weights"),
        "{text}"
    );
    // Beside the model by default.
    let o = run(&["show", "filters", "--model", model.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.join("filters.png").is_file());
}

#[test]
fn bad_models_and_arguments_are_one_clear_line() {
    let dir = TempDir::new("show-errors");
    let missing = dir.join("missing.safetensors");
    for cmd in ["filters", "misclassified"] {
        let o = run(&["show", cmd, "--model", missing.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(err.starts_with("error: cannot read checkpoint"), "{err}");
        assert!(
            err.contains("missing.safetensors") && !err.contains("panicked"),
            "{err}"
        );
    }
    // A spiral net's inputs are points, not images: nothing to draw.
    let net = MultiLayerNet::new(2, &[10], 3).build::<f32>(0).unwrap();
    let info = ModelInfo::builtin(DatasetName::Spiral, 3, [1, 1, 2], 0, 0);
    let model = save(&dir, "spiral.safetensors", &net, &info);
    let o = run(&["show", "misclassified", "--model", model.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("spiral.safetensors") && err.contains("not made of images"),
        "{err}"
    );
    let o = run(&["show", "misclassified", "--model", "x", "--limit", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("at least 1"), "{}", stderr(&o));
    let o = run(&["eval", "--model", "x", "--precision", "f8"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("use f32 or f16"), "{}", stderr(&o));
}

/// A SimpleConvNet (He init) after one epoch of Adam on 3,000 MNIST images
/// (about 90% on the test set), trained once for the tests below.
fn mnist_cnn() -> PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let mut args = Mnist::get().args();
        args.extend(
            [
                "--net",
                "simple-cnn",
                "--init",
                "he",
                "--optimizer",
                "adam",
                "--lr",
                "0.001",
                "--train-size",
                "3000",
                "--batch-size",
                "50",
                "--epochs",
                "1",
                "--threads",
                "2",
                "--seed",
                "1",
            ]
            .map(String::from),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        train_model(
            &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("show-tests-cnn"),
            &args,
        )
    });
    model.clone()
}

fn eval_json(model: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["eval", "--model", model.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn misclassified_grid_counts_what_eval_counts() {
    let model = mnist_cnn();
    let eval = eval_json(&model, &[]);
    let wrong = 10_000
        - (0..10)
            .map(|k| eval["confusion"][k][k].as_u64().unwrap())
            .sum::<u64>();
    assert!(
        wrong >= 8,
        "the test needs at least 8 mistakes, got {wrong}"
    );
    let dir = TempDir::new("show-misclassified");
    let (text, img) = show(
        &[
            "misclassified",
            "--model",
            model.to_str().unwrap(),
            "--limit",
            "8",
        ],
        &dir.join("wrong.png"),
    );
    assert!(
        text.contains(&format!(
            "{wrong} of 10000 {} test images misclassified",
            Mnist::get().name()
        )),
        "{text}"
    );
    // 8 cells in rows of 6: each the 28x28 image at 3x in a 1-pixel frame
    // (86, wider than a caption of two digits), a 4-pixel gap, a caption 15
    // high and 4 more; 4-pixel gaps between cells; a header 4 + 17 + 4 high.
    assert_eq!(
        (img.width(), img.height()),
        (4 + 6 * 90, 25 + 2 * (86 + 23 + 4))
    );
    // The first mistake's caption is written in black (the true digit), then
    // red (the prediction): antialiased, so dark neutral and reddish pixels.
    let rgb = img.to_rgb8();
    let caption_y = 25 + 86 + 4..25 + 86 + 4 + 15;
    let columns = |ink: fn(&image::Rgb<u8>) -> bool| -> Vec<u32> {
        (4..90)
            .filter(|&x| caption_y.clone().any(|y| ink(rgb.get_pixel(x, y))))
            .collect()
    };
    let black = columns(|c| c[0] == c[1] && c[1] == c[2] && c[0] < 100);
    let red = columns(|c| c[0] > c[1].saturating_add(50) && c[1] == c[2]);
    assert!(!black.is_empty() && !red.is_empty(), "{black:?} {red:?}");
    assert!(black.last() < red.first(), "black {black:?}, red {red:?}");
    // Nothing drawn in the gap right of the first cell.
    assert!(
        (25..img.height())
            .all(|y| (90..94).all(|x| *rgb.get_pixel(x, y) == image::Rgb([255, 255, 255])))
    );
}

#[test]
fn f16_weights_keep_the_accuracy() {
    let model = mnist_cnn();
    let f32_run = eval_json(&model, &[]);
    assert_eq!(f32_run["precision"], "f32");
    assert!(f32_run.get("f16_accuracy").is_none());
    let j = eval_json(&model, &["--precision", "f16"]);
    assert_eq!(j["precision"], "f16");
    let (a32, a16) = (
        j["f32_accuracy"].as_f64().unwrap(),
        j["f16_accuracy"].as_f64().unwrap(),
    );
    assert_eq!(a32, f32_run["accuracy"].as_f64().unwrap());
    assert_eq!(a16, j["accuracy"].as_f64().unwrap());
    assert!(a32 > 0.8, "f32 accuracy {a32}");
    assert!((a16 - a32).abs() <= 0.005, "f16 {a16} vs f32 {a32}");
    // Predictions that changed: at least the accuracy difference, and they
    // are the ones that differ between the two runs' prediction lists.
    let changed = j["predictions_changed"].as_u64().unwrap();
    let differ = (0..10_000)
        .filter(|&i| j["predictions"][i] != f32_run["predictions"][i])
        .count() as u64;
    assert_eq!(changed, differ);
    assert!(changed as f64 >= (a16 - a32).abs() * 1e4 - 1e-6);
    assert_eq!(j["f16_overflowed"], 0);
    let max_change = j["f16_max_weight_change"].as_f64().unwrap();
    assert!(max_change > 0.0 && max_change < 1e-3, "{max_change}");
    eprintln!("f32 {a32}, f16 {a16}, {changed} predictions changed");

    let o = run(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--precision",
        "f16",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("weights in f16"), "{text}");
    assert!(
        text.contains(&format!("{changed} of 10000 predictions changed")),
        "{text}"
    );
}
