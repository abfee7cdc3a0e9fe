//! `backprop export --onnx` checked by the real runtimes: for every kind of
//! net the project trains, the exported model passes
//! `onnx.checker.check_model(full_check=True)` and onnxruntime gives, on the
//! first 1,000 MNIST test images, the classes `backprop eval` predicts and
//! backprop's probabilities within 1e-5 (the largest difference is printed:
//! `cargo test --release --test onnx -- --nocapture`).
//!
//! Needs Python's `onnx`, `onnxruntime` and `numpy`; without them the
//! runtime checks print a notice and skip, except under CI=true, where
//! `.ci/run` installs them. The models are tiny (1,000 images, one epoch).

#![cfg(feature = "onnx")]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use backprop::checkpoint;
use backprop::eval;
use backprop::tensor::Tensor;
use common::{Mnist, TempDir, json_out, run, stderr, stdout};
use serde_json::Value;

/// Test images compared per net.
const N: usize = 1000;

/// `python3` with onnx, onnxruntime and numpy, or None (a notice, or a failure under CI).
fn python(test: &str) -> Option<Command> {
    common::python(test, "onnx, onnxruntime, numpy")
}

/// Trains a tiny model with `args` on the first `images` training images
/// into `dir/name`.
fn train(dir: &TempDir, name: &str, args: &[&str], images: usize) -> PathBuf {
    let mnist = Mnist::get().args();
    let mnist: Vec<&str> = mnist.iter().map(String::as_str).collect();
    let images = images.to_string();
    // Adam steps of 20 images: far from trained, but a net that tells
    // digits apart (accuracy 0.5 to 0.7).
    let common = [
        "--train-size",
        &images,
        "--batch-size",
        "20",
        "--epochs",
        "1",
        "--optimizer",
        "adam",
        "--lr",
        "0.002",
        "--seed",
        "3",
    ];
    common::train_model(&dir.join(name), &[&mnist[..], args, &common].concat())
}

/// `backprop export` of `model` to `name.onnx` beside it; returns the file
/// and what the command printed.
fn export(model: &Path, precision: &str) -> (PathBuf, String) {
    let out = model.with_file_name(format!("model-{precision}.onnx"));
    let o = run(&[
        "export",
        "--model",
        model.to_str().unwrap(),
        "--onnx",
        out.to_str().unwrap(),
        "--precision",
        precision,
    ]);
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    (out, stdout(&o))
}

/// backprop's probabilities for the first N test images, through the
/// library: the checkpoint's net (its weights rounded to f16 if `f16`),
/// `Network::predict`, then softmax.
fn backprop_probabilities(model: &Path, f16: bool) -> Vec<Vec<f64>> {
    let (mut net, info) = checkpoint::load::<f32>(model).unwrap();
    if f16 {
        eval::round_to_f16(&mut net);
    }
    let test = Mnist::get().split().test;
    let [c, h, w] = info.input_shape;
    let mut x = Tensor::zeros(&[N, c, h, w]);
    let indices: Vec<usize> = (0..N).collect();
    test.gather(&indices, x.data_mut(), &mut vec![0; N]);
    let scores = net.predict(&x, false).unwrap();
    scores
        .data()
        .chunks_exact(info.classes())
        .map(backprop::predict::softmax)
        .collect()
}

/// `backprop eval --json` on the first N test images.
fn eval_json(model: &Path, precision: &str) -> Value {
    let o = run(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--limit",
        &N.to_string(),
        "--precision",
        precision,
        "--json",
    ]);
    json_out(&o)
}

/// Exports `model`, runs it in onnxruntime and compares with backprop;
/// returns the ONNX file and what `export` printed.
fn check(py: Command, name: &str, model: &Path, precision: &str) -> (PathBuf, String) {
    let (onnx, printed) = export(model, precision);
    assert!(printed.contains("ONNX opset 17"), "{printed}");
    assert!(
        printed.contains("input  input: float32 [N, 1, 28, 28]"),
        "{printed}"
    );
    assert!(
        printed.contains("output logits: float32 [N, 10]; probabilities: float32 [N, 10]"),
        "{printed}"
    );
    let mut py = py;
    let theirs = json_out(
        &py.arg("onnx_run.py")
            .arg(fs::canonicalize(&onnx).unwrap())
            .arg(fs::canonicalize(Mnist::get().files()).unwrap())
            .arg(N.to_string())
            .output()
            .unwrap(),
    );
    assert_eq!(theirs["opset"], serde_json::json!([["", 17]]));
    assert_eq!(
        theirs["inputs"],
        serde_json::json!([["input", ["N", 1, 28, 28]]])
    );
    assert_eq!(
        theirs["outputs"],
        serde_json::json!([["logits", ["N", 10]], ["probabilities", ["N", 10]]])
    );
    assert_eq!(theirs["logits_shape"], serde_json::json!([N, 10]));
    assert!(theirs["one_by_one_max_difference"].as_f64().unwrap() <= 1e-6);
    let meta = &theirs["metadata"];
    assert_eq!(meta["dataset"], Mnist::get().name());
    assert_eq!(
        meta["class_names"],
        r#"["0","1","2","3","4","5","6","7","8","9"]"#
    );
    assert_eq!(meta["precision"], precision);
    let (_, checkpoint_meta) = checkpoint::describe(model).unwrap();
    assert_eq!(meta["net"], checkpoint_meta["net"].as_str());
    let f16 = precision == "f16";
    // f16 stores every weight as FLOAT16; f32 constants (BatchNorm's epsilon,
    // the textbook Dropout's factor) stay FLOAT.
    let types = theirs["initializer_types"].to_string();
    assert_eq!(types.contains("FLOAT16"), f16, "{types}");
    assert!(f16 || types == r#"["FLOAT"]"#, "{types}");

    let eval = eval_json(model, precision);
    assert_eq!(
        theirs["predictions"], eval["predictions"],
        "{name}: onnxruntime and backprop eval predict different classes"
    );
    // Agreeing on one class for every image would prove little.
    let mut classes: Vec<u64> = eval["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    classes.sort_unstable();
    classes.dedup();
    assert!(classes.len() >= 5, "{name} predicts only {classes:?}");
    let ours = backprop_probabilities(model, f16);
    let largest = largest_difference(name, &ours, &theirs["probabilities"]);
    eprintln!(
        "{name} ({precision}): same class for all {N} images (accuracy {}), largest probability difference {largest:.2e}",
        eval["accuracy"]
    );
    (onnx, printed)
}

/// The largest difference between backprop's probabilities and
/// onnxruntime's, asserting each is within 1e-5 and that there is one row
/// per example.
fn largest_difference(name: &str, ours: &[Vec<f64>], theirs: &Value) -> f64 {
    let theirs = theirs.as_array().unwrap();
    assert_eq!(theirs.len(), ours.len());
    let mut largest = 0f64;
    for (row, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let b = b.as_array().unwrap();
        assert_eq!(b.len(), a.len());
        for (p, q) in a.iter().zip(b) {
            let d = (p - q.as_f64().unwrap()).abs();
            assert!(
                d <= 1e-5,
                "{name}: example {row}: backprop {p}, onnxruntime {q}"
            );
            largest = largest.max(d);
        }
    }
    largest
}

/// Trains `args` on 1,000 images and checks its f32 export.
fn trained_and_checked(test: &str, args: &[&str]) {
    let Some(py) = python(test) else {
        return;
    };
    let dir = TempDir::new(test);
    let model = train(&dir, test, args, 1000);
    check(py, test, &model, "f32");
}

#[test]
fn mlp_relu() {
    trained_and_checked("mlp-relu", &["--hidden", "50,50"]);
}

#[test]
fn mlp_sigmoid() {
    trained_and_checked(
        "mlp-sigmoid",
        &["--hidden", "50", "--activation", "sigmoid"],
    );
}

#[test]
fn batchnorm_mlp_tanh() {
    trained_and_checked(
        "batchnorm-mlp",
        &["--batchnorm", "--activation", "tanh", "--hidden", "30,20"],
    );
}

#[test]
fn textbook_dropout_mlp() {
    trained_and_checked(
        "textbook-dropout",
        &[
            "--hidden",
            "50,50",
            "--dropout",
            "0.3",
            "--dropout-scaling",
            "textbook",
        ],
    );
}

#[test]
fn inverted_dropout_mlp() {
    trained_and_checked(
        "inverted-dropout",
        &["--hidden", "50,50", "--dropout", "0.3"],
    );
}

#[test]
fn simple_conv_net() {
    trained_and_checked("simple-cnn", &["--net", "simple-cnn"]);
}

/// DeepConvNet needs more steps than the others to leave chance.
#[test]
fn deep_conv_net() {
    let Some(py) = python("deep-cnn") else {
        return;
    };
    let dir = TempDir::new("deep-cnn");
    let model = train(&dir, "deep-cnn", &["--net", "deep-cnn"], 3000);
    check(py, "deep-cnn", &model, "f32");
}

/// A net from a file with what the textbook's nets do not have: a strided,
/// padded convolution, BatchNorm on feature maps, overlapping and padded
/// pooling, Sigmoid and Tanh, textbook Dropout after the last Affine.
const NET_TOML: &str = r#"
weight_init_std = "he"
layers = [
  { type = "Convolution", filter_num = 6, filter_size = 3, stride = 2, pad = 1 },
  { type = "BatchNorm" },
  { type = "Relu" },
  { type = "MaxPooling", pool_h = 3, pool_w = 3, stride = 1, pad = 1 },
  { type = "Convolution", filter_num = 4, filter_size = 3 },
  { type = "Tanh" },
  { type = "MaxPooling", pool_h = 2, pool_w = 2, stride = 1 },
  { type = "Flatten" },
  { type = "Affine", units = 32 },
  { type = "Sigmoid" },
  { type = "Affine" },
  { type = "Dropout", dropout_ratio = 0.2, scaling = "textbook" },
]
"#;

#[test]
fn net_from_a_file() {
    let Some(py) = python("net-file") else {
        return;
    };
    let dir = TempDir::new("net-file");
    let file = dir.join("net.toml");
    fs::write(&file, NET_TOML).unwrap();
    let model = train(&dir, "run", &["--net", file.to_str().unwrap()], 1000);
    check(py, "net-file", &model, "f32");
}

/// f16 weights: half the file, the classes `eval --precision f16` predicts,
/// and the probabilities of backprop's net with its weights rounded to f16.
#[test]
fn f16_weights() {
    let Some(py) = python("f16") else {
        return;
    };
    let dir = TempDir::new("f16");
    let model = train(&dir, "run", &["--net", "simple-cnn"], 1000);
    let (f16, printed) = check(py, "simple-cnn", &model, "f16");
    assert!(printed.contains("f16 weights: accuracy"), "{printed}");
    assert!(printed.contains("predictions changed"), "{printed}");
    let (f32, _) = export(&model, "f32");
    let ratio = fs::metadata(&f16).unwrap().len() as f64 / fs::metadata(&f32).unwrap().len() as f64;
    assert!(
        (0.49..0.52).contains(&ratio),
        "f16 file / f32 file = {ratio}"
    );
}

/// A table model takes raw rows: numbers of very different scales (the
/// standardisation is in the graph), strings (one-hot in the graph, a value
/// the training split lacked as all zeros), an identifier and a column
/// `--ignore`d, which the model's inputs leave out. onnxruntime on the rows
/// gives `backprop predict`'s class for each and its probabilities within
/// 1e-5.
#[test]
fn table_model() {
    let Some(py) = python("table") else {
        return;
    };
    let dir = TempDir::new("onnx-table");
    let table = dir.join("water.csv");
    let mut text = String::from("sample id,tiny,habitat,huge,note,depth,kind\n");
    for i in 0..300 {
        let class = i % 3;
        let jitter = ((i * 7919) % 1000) as f64 / 1000.0 - 0.5;
        let tiny = (class as f64 + 0.6 * jitter) * 1e-4;
        let huge = 1e6 + ((i * 104_729) % 997) as f64 * 1e3 + class as f64 * 2e5;
        let habitat = ["sea", "lake", "river", "pond"][(i * 31 + class) % 4];
        let depth = (i * 13) % 50;
        let kind = ["alpha", "beta", "gamma"][class];
        text += &format!("s{i},{tiny:e},{habitat},{huge},ignore me,{depth},{kind}\n");
    }
    fs::write(&table, &text).unwrap();
    let model = common::train_model(
        &dir.join("run"),
        &[
            "--dataset",
            table.to_str().unwrap(),
            "--ignore",
            "note",
            "--hidden",
            "12",
            "--epochs",
            "3",
            "--batch-size",
            "30",
        ],
    );
    let (onnx, printed) = export(&model, "f32");
    for line in [
        "input  numeric: float64 [N, 3] (the columns tiny, huge, depth, standardised in the graph)",
        "input  categorical: string [N, 1] (the columns habitat, one-hot encoded in the graph)",
        "output logits: float32 [N, 3]; probabilities: float32 [N, 3]",
    ] {
        assert!(printed.contains(line), "{line:?} not in:\n{printed}");
    }
    // The table's own rows, and rows from a habitat never seen.
    let rows = dir.join("rows.csv");
    let mut rows_text = text.clone();
    rows_text += "x1,1e-4,ocean,1200000,hi,3,beta\nx2,2.5e-4,ocean,1000000,hi,40,gamma\n";
    fs::write(&rows, rows_text).unwrap();
    let o = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        rows.to_str().unwrap(),
        "--json",
    ]);
    let predicted = json_out(&o);
    let predicted = predicted.as_array().unwrap();
    assert_eq!(predicted.len(), 302);
    let mut py = py;
    let theirs = json_out(
        &py.arg("onnx_table_run.py")
            .arg(fs::canonicalize(&onnx).unwrap())
            .arg(fs::canonicalize(&rows).unwrap())
            .output()
            .unwrap(),
    );
    assert_eq!(
        theirs["opset"],
        serde_json::json!([["", 17], ["ai.onnx.ml", 3]])
    );
    assert_eq!(
        theirs["inputs"],
        serde_json::json!([
            ["numeric", "DOUBLE", ["N", 3]],
            ["categorical", "STRING", ["N", 1]]
        ])
    );
    let meta = &theirs["metadata"];
    assert_eq!(meta["class_names"], r#"["alpha","beta","gamma"]"#);
    assert_eq!(meta["numeric_columns"], r#"["tiny","huge","depth"]"#);
    assert_eq!(meta["categorical_columns"], r#"["habitat"]"#);
    let classes: Vec<&Value> = predicted.iter().map(|p| &p["prediction"]).collect();
    assert_eq!(
        theirs["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        classes,
        "onnxruntime and backprop predict give different classes"
    );
    let mut distinct: Vec<u64> = classes.iter().map(|c| c.as_u64().unwrap()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() >= 2,
        "the table model predicts only {distinct:?}"
    );
    let ours: Vec<Vec<f64>> = predicted
        .iter()
        .map(|p| {
            p["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q.as_f64().unwrap())
                .collect()
        })
        .collect();
    let largest = largest_difference("table", &ours, &theirs["probabilities"]);
    eprintln!(
        "table: same class for all {} rows, largest probability difference {largest:.2e}",
        ours.len()
    );
}

// ---------------------------------------------------------------- bad output paths

/// A one-epoch spiral model (no MNIST, no Python needed).
fn spiral_model(dir: &TempDir) -> PathBuf {
    common::train_model(
        &dir.join("spiral"),
        &["--dataset", "spiral", "--epochs", "1", "--hidden", "10"],
    )
}

/// Asserts `export --onnx out` fails with one `error:` line naming `out`
/// and holding `needle`, and that its folder holds no new file.
fn refused(model: &Path, out: &Path, needle: &str) {
    let folder = out.parent().unwrap();
    let before: Vec<_> =
        fs::read_dir(folder).map_or(vec![], |d| d.map(|e| e.unwrap().path()).collect());
    let o = run(&[
        "export",
        "--model",
        model.to_str().unwrap(),
        "--onnx",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("error: cannot write "), "{err}");
    assert!(
        err.contains(out.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert!(err.contains(needle), "'{needle}' not in: {err}");
    let after: Vec<_> =
        fs::read_dir(folder).map_or(vec![], |d| d.map(|e| e.unwrap().path()).collect());
    assert_eq!(before, after, "the failed export left files behind");
}

#[test]
fn an_output_folder_that_does_not_exist_is_one_line() {
    let dir = TempDir::new("onnx-missing-folder");
    let model = spiral_model(&dir);
    let out = dir.join("no/such/folder/model.onnx");
    refused(&model, &out, "does not exist; create it first");
    assert!(!dir.join("no").exists());
}

#[test]
fn an_unwritable_output_leaves_no_file() {
    let dir = TempDir::new("onnx-unwritable");
    let model = spiral_model(&dir);
    // A folder that is a file.
    let file = dir.join("file");
    fs::write(&file, "not a folder").unwrap();
    refused(&model, &file.join("model.onnx"), "file");
    // An existing folder where the model should go: the rename fails and
    // the temporary file is removed.
    let taken = dir.join("taken.onnx");
    fs::create_dir(&taken).unwrap();
    refused(&model, &taken, "taken.onnx");
    // A folder without write permission (root writes there anyway).
    let locked = dir.join("locked");
    fs::create_dir(&locked).unwrap();
    let mut perms = fs::metadata(&locked).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    fs::set_permissions(&locked, perms).unwrap();
    if fs::write(locked.join("probe"), "").is_ok() {
        eprintln!(
            "skipping the read-only folder case: this user writes into read-only folders (root)"
        );
    } else {
        refused(&model, &locked.join("model.onnx"), "ermission denied");
    }
}

#[test]
fn export_writes_a_model_for_any_input_shape() {
    let dir = TempDir::new("onnx-spiral");
    let model = spiral_model(&dir);
    let out = dir.join("spiral.onnx");
    let o = run(&[
        "export",
        "--model",
        model.to_str().unwrap(),
        "--onnx",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stdout(&o);
    assert!(
        printed.contains("input  input: float32 [N, 1, 1, 2]"),
        "{printed}"
    );
    assert!(
        printed.contains("output logits: float32 [N, 3]"),
        "{printed}"
    );
    let size = fs::metadata(&out).unwrap().len();
    assert!(printed.contains(&format!("({size} bytes)")), "{printed}");
}
