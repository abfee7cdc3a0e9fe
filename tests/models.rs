//! End-to-end tests of saved models: checkpoints and `--resume`, `eval`,
//! `predict`, PyTorch-style interop with Python (safetensors + numpy), and
//! `serve` driven over HTTP and in headless Chromium.
//!
//! The MNIST tests share one quickly trained model. Python and Chromium tests
//! skip with a notice when their tools are missing, except under CI=true,
//! where `.ci/run` installs them and a missing tool is a failure.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backprop::data;
use common::{
    Mnist, ServeProcess, TempDir, backprop, json_out, metrics_without_timings, run, stderr, stdout,
    under_ci,
};
use safetensors::SafeTensors;
use serde_json::{Value, json};

/// Where this test binary may leave files to look at (screenshots, models).
fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("models-tests")
}

/// The MNIST model all the tests of this file share (see `common::mnist_model`).
fn mnist_model() -> PathBuf {
    common::mnist_model(&out_dir().join("mnist-run"))
}

fn mnist_test_set() -> data::Dataset {
    Mnist::get().split().test
}

/// Pixels of test image `i` (0 background, 255 ink).
fn mnist_pixels(test: &data::Dataset, i: usize) -> Vec<u8> {
    let data::Features::Pixels(px) = &test.features else {
        panic!("MNIST has pixels")
    };
    px[i * 784..(i + 1) * 784].to_vec()
}

// ---------------------------------------------------------------- resume

fn spiral_args(out: &Path, epochs: &str) -> Vec<String> {
    [
        "train",
        "--dataset",
        "spiral",
        "--hidden",
        "20,20",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--weight-decay",
        "0.001",
        "--batchnorm",
        "--dropout",
        "0.1",
        "--batch-size",
        "30",
        "--threads",
        "2",
        "--seed",
        "7",
        "--no-progress",
        "--epochs",
        epochs,
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

/// Every tensor of a safetensors file as raw bytes, and its metadata.
fn contents(path: &Path) -> (Vec<(String, Vec<u8>)>, Value) {
    let bytes = fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect();
    tensors.sort();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    (tensors, json!(meta.metadata()))
}

#[test]
fn resumed_run_equals_uninterrupted_run_bit_for_bit() {
    let straight = TempDir::new("straight");
    let o = backprop()
        .args(spiral_args(straight.path(), "6"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let stopped = TempDir::new("stopped");
    let o = backprop()
        .args(spiral_args(stopped.path(), "3"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, meta) = contents(&stopped.join("model.safetensors"));
    assert_eq!(meta["epoch"], "3");
    // Resume with no flag but the new length: architecture, optimizer, seed,
    // threads and data all come from the run's folder.
    let o = run(&[
        "train",
        "--resume",
        stopped.path().to_str().unwrap(),
        "--epochs",
        "6",
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("resuming") && stdout(&o).contains("epoch   4/6"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("epoch   3/6"));

    let (a, meta_a) = contents(&straight.join("model.safetensors"));
    let (b, meta_b) = contents(&stopped.join("model.safetensors"));
    // Three Affine layers (weight, bias) and two BatchNorm layers (weight,
    // bias, running_mean, running_var); each replica's Dropout generator and
    // BatchNorm statistics are in the training state.
    assert_eq!(a.len(), 14);
    assert!(a.iter().any(|(n, _)| n == "1.running_var"));
    assert_eq!(a, b, "weights differ after resuming");
    assert_eq!(meta_a, meta_b);
    // Adam's moments agree too, so a further resume would also match.
    let (sa, _) = contents(&straight.join("train_state.safetensors"));
    let (sb, _) = contents(&stopped.join("train_state.safetensors"));
    assert_eq!(sa, sb);
    assert_eq!(
        metrics_without_timings(straight.path()),
        metrics_without_timings(stopped.path())
    );
}

#[test]
fn resume_errors_are_one_clear_line() {
    let o = run(&["train", "--resume", "/nonexistent/run"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("cannot resume from /nonexistent/run")
            && e.contains("/nonexistent/run/train_state.safetensors"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");

    // Settings that the run's folder fixes cannot be given again.
    let o = run(&["train", "--resume", "/tmp", "--hidden", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));

    // A damaged training state (what --resume reads) is named, not panicked over.
    let dir = TempDir::new("damaged");
    let o = backprop()
        .args(spiral_args(dir.path(), "1"))
        .output()
        .unwrap();
    assert!(o.status.success());
    fs::write(
        dir.join("train_state.safetensors"),
        b"\x08\x00\x00\x00\x00\x00\x00\x00{}",
    )
    .unwrap();
    let o = run(&[
        "train",
        "--resume",
        dir.path().to_str().unwrap(),
        "--epochs",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("train_state.safetensors") && !e.contains("panicked"),
        "{e}"
    );
}

#[test]
fn commands_name_a_missing_or_wrong_model() {
    for args in [
        vec!["eval", "--model", "/nonexistent/model.safetensors"],
        vec![
            "predict",
            "--model",
            "/nonexistent/model.safetensors",
            "x.png",
        ],
        vec![
            "serve",
            "--model",
            "/nonexistent/model.safetensors",
            "--port",
            "0",
        ],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains("cannot read checkpoint /nonexistent/model.safetensors"),
            "{e}"
        );
    }
    // A spiral model takes 2 numbers, not pictures.
    let dir = TempDir::new("spiral-model");
    let o = backprop()
        .args(spiral_args(dir.path(), "1"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let model = dir.join("model.safetensors");
    let o = run(&["predict", "--model", model.to_str().unwrap(), "x.png"]);
    assert!(
        stderr(&o).contains("x.png: the model takes vectors of 2 values, not pictures"),
        "{}",
        stderr(&o)
    );
    // And eval reads its own test set from the metadata (spiral, drawn from the seed).
    let o = run(&["eval", "--model", model.to_str().unwrap(), "--json"]);
    let j = json_out(&o);
    assert_eq!(
        (j["dataset"].as_str(), j["examples"].as_u64()),
        (Some("spiral"), Some(900))
    );
    assert!(j["accuracy"].as_f64().unwrap() > 0.5, "{j}");
}

// ---------------------------------------------------------------- eval

#[test]
fn eval_reports_accuracy_precision_recall_and_draws_the_matrix() {
    let model = mnist_model();
    let png = out_dir().join("confusion.png");
    let o = run(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--json",
        "--confusion",
        png.to_str().unwrap(),
    ]);
    let j = json_out(&o);
    assert_eq!(j["examples"], 10000);
    assert_eq!(j["dataset"], Mnist::get().name());
    let accuracy = j["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.92, "accuracy {accuracy}");
    let confusion = j["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    let diagonal: u64 = (0..10).map(|k| confusion[k][k].as_u64().unwrap()).sum();
    assert_eq!(total, 10000);
    assert!((diagonal as f64 / 1e4 - accuracy).abs() < 1e-12);
    // Support of each class: the MNIST test set has 980 zeros and 1135 ones.
    assert_eq!(j["per_class"][0]["support"], 980);
    assert_eq!(j["per_class"][1]["support"], 1135);
    assert_eq!(j["predictions"].as_array().unwrap().len(), 10000);
    let img = image::open(&png).unwrap();
    // Ten cells of 44 and a 12-pixel margin right and below; left of the
    // grid 12 + 16 (the title "true class", turned) + 6 + 10 (the widest
    // digit at 17 pixels) + 6, above it 12 + 16 ("predicted class") + 6 + 17
    // (a line of digits) + 6.
    assert_eq!((img.width(), img.height()), (50 + 440 + 12, 57 + 440 + 12));
    eprintln!("confusion matrix drawn at {}", png.display());

    let o = run(&["eval", "--model", model.to_str().unwrap(), "--limit", "500"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for needle in [
        "500 examples",
        "class  precision  recall  support",
        "confusion matrix (rows: true class",
        "wrote ",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    // Beside the model by default.
    assert!(model.with_file_name("confusion.png").is_file());

    let o = run(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        "spiral",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("takes inputs [1, 28, 28] in the classes 10 (0, 1, 2"),
        "{}",
        stderr(&o)
    );
}

// ---------------------------------------------------------------- predict

/// A dark stroke on light paper, `w x h`, through the given points (fractions
/// of the size), `thick` pixels wide.
fn stroke(w: u32, h: u32, points: &[(f32, f32)], thick: f32) -> image::GrayImage {
    image::GrayImage::from_fn(w, h, |x, y| {
        let (px, py) = (x as f32, y as f32);
        let near = points.windows(2).any(|s| {
            let (ax, ay) = (s[0].0 * w as f32, s[0].1 * h as f32);
            let (bx, by) = (s[1].0 * w as f32, s[1].1 * h as f32);
            let (dx, dy) = (bx - ax, by - ay);
            let t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
            ((px - ax - t * dx).powi(2) + (py - ay - t * dy).powi(2)).sqrt() < thick / 2.0
        });
        image::Luma([if near { 20 } else { 235 }])
    })
}

#[test]
fn predict_classifies_real_and_generated_pictures() {
    let model = mnist_model();
    let dir = TempDir::new("predict");
    let test = mnist_test_set();
    let mut files = Vec::new();
    // Real MNIST test digits as PNG, and the same digits dark on light,
    // three times larger, as JPEG: preprocessing must undo both.
    for i in 0..5 {
        let px = mnist_pixels(&test, i);
        let img = image::GrayImage::from_raw(28, 28, px.clone()).unwrap();
        let png = dir.join(&format!("mnist-{i}.png"));
        img.save(&png).unwrap();
        let big = image::imageops::resize(&img, 84, 84, image::imageops::FilterType::Triangle);
        let inverted =
            image::GrayImage::from_fn(84, 84, |x, y| image::Luma([255 - big.get_pixel(x, y)[0]]));
        let jpg = dir.join(&format!("mnist-{i}-inverted.jpg"));
        inverted.save(&jpg).unwrap();
        files.push((png, test.labels[i] as usize));
        files.push((jpg, test.labels[i] as usize));
    }
    // Generated strokes: a "1" and a "7", in each format.
    let one = stroke(120, 200, &[(0.55, 0.1), (0.45, 0.9)], 14.0);
    let seven = stroke(160, 200, &[(0.15, 0.12), (0.85, 0.12), (0.4, 0.9)], 14.0);
    for ext in ["png", "jpg", "bmp"] {
        let p = dir.join(&format!("one.{ext}"));
        one.save(&p).unwrap();
        files.push((p, 1));
        let p = dir.join(&format!("seven.{ext}"));
        seven.save(&p).unwrap();
        files.push((p, 7));
    }
    let mut args = vec![
        "predict".to_string(),
        "--model".into(),
        model.display().to_string(),
    ];
    args.extend(files.iter().map(|(p, _)| p.display().to_string()));
    let o = backprop().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    eprintln!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), files.len());
    for ((path, label), line) in files.iter().zip(&lines) {
        // `FILE: 7 (0.981), 1 (0.012), 9 (0.004)`
        let rest = line
            .strip_prefix(&format!("{}: ", path.display()))
            .expect(line);
        let top: Vec<(usize, f64)> = rest
            .split(", ")
            .map(|part| {
                let (c, p) = part.split_once(" (").unwrap();
                (c.parse().unwrap(), p.trim_end_matches(')').parse().unwrap())
            })
            .collect();
        assert_eq!(top.len(), 3, "{line}");
        assert!(top[0].1 >= top[1].1 && top[1].1 >= top[2].1, "{line}");
        assert_eq!(top[0].0, *label, "{line}");
    }

    // JSON: ten probabilities per image; a bad file is reported and counted,
    // the good ones are still answered.
    let garbage = dir.join("notes.png");
    fs::write(&garbage, "not an image").unwrap();
    let o = backprop()
        .args(["predict", "--model", model.to_str().unwrap(), "--json"])
        .arg(&files[0].0)
        .arg(&garbage)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let p = j[0]["probabilities"].as_array().unwrap();
    assert_eq!(p.len(), 10);
    assert!((p.iter().map(|v| v.as_f64().unwrap()).sum::<f64>() - 1.0).abs() < 1e-9);
    assert_eq!(j[0]["prediction"], files[0].1);
    assert!(
        j[1]["error"]
            .as_str()
            .unwrap()
            .contains("cannot decode image"),
        "{j}"
    );
    assert!(stderr(&o).contains("1 of 2 image(s) could not be classified"));

    let blank = dir.join("blank.png");
    image::GrayImage::from_pixel(50, 50, image::Luma([240]))
        .save(&blank)
        .unwrap();
    let o = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        blank.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no digit found: the image is blank"),
        "{}",
        stderr(&o)
    );
}

// ---------------------------------------------------------------- Python interop

/// `python3` with safetensors and numpy, or None (a notice, or a failure under CI).
fn python(test: &str) -> Option<Command> {
    common::python(test, "safetensors, numpy")
}

/// `numpy_forward.py`: the model's answers on the first 1,000 MNIST test
/// images, computed in numpy from the checkpoint alone.
fn numpy_forward(py: &mut Command, model: &Path, mnist: &Path) -> Value {
    json_out(
        &py.arg("numpy_forward.py")
            .arg(model)
            .arg(fs::canonicalize(mnist).unwrap())
            .arg("1000")
            .output()
            .unwrap(),
    )
}

/// `backprop eval --json` on the first 1,000 MNIST test images.
fn eval_first_1000(model: &Path) -> Value {
    json_out(&run(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--limit",
        "1000",
        "--json",
    ]))
}

#[test]
fn python_reads_a_backprop_checkpoint_and_predicts_the_same() {
    let Some(mut py) = python("python_reads") else {
        return;
    };
    let model = mnist_model();
    let mnist = Mnist::get();
    let theirs = numpy_forward(&mut py, &model, &mnist.files());
    assert_eq!(theirs["shapes"]["0.weight"], json!([100, 784]));
    assert_eq!(theirs["shapes"]["2.weight"], json!([10, 100]));
    assert_eq!(theirs["metadata"]["dataset"], mnist.name());
    let ours = eval_first_1000(&model);
    assert_eq!(ours["predictions"].as_array().unwrap().len(), 1000);
    assert_eq!(theirs["predictions"], ours["predictions"]);
}

#[test]
fn python_applies_textbook_dropout_scaling_as_backprop_does() {
    let Some(mut py) = python("python_textbook_dropout") else {
        return;
    };
    let mnist = Mnist::get();
    let dir = TempDir::new("textbook-dropout");
    let mut args = mnist.args();
    args.extend(
        [
            "--train-size",
            "2000",
            "--epochs",
            "1",
            "--hidden",
            "50,50",
            "--dropout",
            "0.5",
            "--dropout-scaling",
            "textbook",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let model = common::train_model(&dir.join("run"), &args);
    let theirs = numpy_forward(&mut py, &model, &mnist.files());
    let net: Value = serde_json::from_str(theirs["metadata"]["net"].as_str().unwrap()).unwrap();
    let dropouts: Vec<&Value> = net["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["type"] == "Dropout")
        .collect();
    assert_eq!(dropouts.len(), 2);
    assert!(dropouts.iter().all(|l| l["scaling"] == "textbook"), "{net}");
    assert_eq!(
        theirs["predictions"],
        eval_first_1000(&model)["predictions"]
    );
}

/// Every layer type as PyTorch's modules would compute it: the convnets
/// (Convolution, MaxPooling, Flatten, Dropout) and BatchNorm, from the JSON
/// chain in the metadata alone.
#[test]
fn python_reads_convnets_and_batchnorm_as_backprop_computes_them() {
    if python("python_convnets").is_none() {
        return;
    }
    let mnist = Mnist::get();
    let dir = TempDir::new("python-convnets");
    let data = mnist.args();
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    for (name, net) in [
        ("deep", &["--net", "deep-cnn"][..]),
        ("simple", &["--net", "simple-cnn"]),
        (
            "bn",
            &["--batchnorm", "--activation", "tanh", "--hidden", "30,20"],
        ),
    ] {
        let args = [&data[..], net, &["--train-size", "500", "--epochs", "1"]].concat();
        let model = common::train_model(&dir.join(name), &args);
        let mut py = python(name).expect("checked above");
        let theirs = numpy_forward(&mut py, &model, &mnist.files());
        assert_eq!(
            theirs["predictions"],
            eval_first_1000(&model)["predictions"],
            "{name}"
        );
    }
}

#[test]
fn backprop_reads_weights_written_by_numpy() {
    let Some(mut py) = python("backprop_reads_numpy") else {
        return;
    };
    let mnist = Mnist::get().files();
    let dir = TempDir::new("numpy");
    let file = dir.join("numpy.safetensors");
    let o = py
        .arg("numpy_train.py")
        .arg(&file)
        .arg(fs::canonicalize(&mnist).unwrap())
        .arg("1000")
        .output()
        .unwrap();
    let theirs = json_out(&o);
    let ours = eval_first_1000(&file);
    assert_eq!(theirs["predictions"], ours["predictions"]);
    let accuracy = ours["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.85, "accuracy {accuracy}");
    assert_eq!(accuracy, theirs["accuracy"].as_f64().unwrap());
}

// ---------------------------------------------------------------- serve

/// `backprop serve` (the binary under test) on a free port, stopped when dropped.
fn start_server(model: &Path) -> ServeProcess {
    ServeProcess::start(Path::new(env!("CARGO_BIN_EXE_backprop")), model)
}

/// One HTTP/1.1 request; returns the status and body.
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before reading all of a huge body.
    let _ = s.write_all(body);
    // Read the head, then Content-Length bytes: chromedriver keeps the
    // connection open despite `Connection: close`.
    let mut reader = BufReader::new(s);
    let mut status_line = String::new();
    let _ = reader.read_line(&mut status_line);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut raw = Vec::new();
    match length {
        Some(n) => {
            raw.resize(n, 0);
            let _ = reader.read_exact(&mut raw);
        }
        None => {
            let _ = reader.read_to_end(&mut raw);
        }
    }
    (status, String::from_utf8_lossy(&raw).into_owned())
}

fn post(addr: &str, body: &Value) -> (u16, Value) {
    let (status, text) = http(addr, "POST", "/predict", body.to_string().as_bytes());
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

#[test]
fn serve_predicts_and_rejects_bad_requests() {
    let model = mnist_model();
    let server = start_server(&model);
    let addr = server.addr.as_str();
    let test = mnist_test_set();
    let px = mnist_pixels(&test, 0);

    // 784 values: an image already in MNIST layout.
    let (status, j) = post(addr, &json!({ "pixels": px }));
    assert_eq!(status, 200, "{j}");
    let p: Vec<f64> = j["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(p.len(), 10);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert_eq!(j["prediction"], test.labels[0]);
    // A larger canvas, dark on light, goes through the preprocessing.
    let canvas: Vec<u8> = (0..56 * 56)
        .map(|i| 255 - px[(i / 56 / 2) * 28 + (i % 56) / 2])
        .collect();
    let (status, j) = post(
        addr,
        &json!({ "pixels": canvas, "width": 56, "height": 56 }),
    );
    assert_eq!(
        (status, &j["prediction"]),
        (200, &json!(test.labels[0])),
        "{j}"
    );

    let (status, page) = http(addr, "GET", "/", b"");
    assert_eq!(status, 200);
    assert!(page.contains("<canvas") && page.contains("/predict"));
    assert_eq!(http(addr, "GET", "/nothing-here", b"").0, 404);
    assert_eq!(http(addr, "GET", "/predict", b"").0, 405);
    let (status, info) = http(addr, "GET", "/info", b"");
    assert_eq!(status, 200);
    let dataset = format!("\"dataset\":\"{}\"", Mnist::get().name());
    assert!(info.contains(&dataset), "{info}");

    let zeros = |n: usize| json!({ "pixels": vec![0; n] });
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "malformed request"),
        (b"{".to_vec(), "malformed request"),
        (b"null".to_vec(), "malformed request"),
        (b"[1, 2, 3]".to_vec(), "malformed request"),
        (br#"{"pixels": 5}"#.to_vec(), "malformed request"),
        (br#"{"pixels": ["a"]}"#.to_vec(), "malformed request"),
        (br#"{"pixels": [], "extra": 1}"#.to_vec(), "unknown field"),
        (b"\xff\xfe\x00garbage".to_vec(), "malformed request"),
        (zeros(783).to_string().into_bytes(), "got 783 pixels"),
        (zeros(785).to_string().into_bytes(), "got 785 pixels"),
        (
            json!({ "pixels": vec![-1; 784] }).to_string().into_bytes(),
            "outside 0..255",
        ),
        (
            json!({ "pixels": vec![256; 784] }).to_string().into_bytes(),
            "outside 0..255",
        ),
        (
            json!({ "pixels": vec![0; 10], "width": 10 })
                .to_string()
                .into_bytes(),
            "both width and height",
        ),
        (
            json!({ "pixels": vec![0; 10], "width": 3, "height": 3 })
                .to_string()
                .into_bytes(),
            "3x3 needs 9",
        ),
        (
            json!({ "pixels": [], "width": 0, "height": 0 })
                .to_string()
                .into_bytes(),
            "empty",
        ),
        (
            json!({ "pixels": [0], "width": 1u64 << 40, "height": 1u64 << 40 })
                .to_string()
                .into_bytes(),
            "larger than",
        ),
        (
            json!({ "pixels": [0], "width": -1, "height": 1 })
                .to_string()
                .into_bytes(),
            "malformed request",
        ),
        (
            json!({ "pixels": vec![255; 100], "width": 10, "height": 10 })
                .to_string()
                .into_bytes(),
            "blank",
        ),
    ];
    for (body, needle) in &bad {
        let (status, text) = http(addr, "POST", "/predict", body);
        assert_eq!(status, 400, "{}: {text}", String::from_utf8_lossy(body));
        let j: Value = serde_json::from_str(&text).unwrap();
        let e = j["error"].as_str().unwrap();
        assert!(e.contains(needle), "{needle:?} not in {e:?}");
    }
    // Random bodies, some of them JSON-like: every one is a 400 with a JSON error.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces: [&[u8]; 10] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"pixels\"",
        b":",
        b",",
        b"1e999",
        b"-0.5",
        b"\"width\"",
    ];
    for _ in 0..150 {
        let mut body = Vec::new();
        for _ in 0..next() % 40 {
            if next() % 2 == 0 {
                body.extend_from_slice(pieces[(next() % 10) as usize]);
            } else {
                body.push(next() as u8);
            }
        }
        let (status, text) = http(addr, "POST", "/predict", &body);
        assert_eq!(status, 400, "{}: {text}", String::from_utf8_lossy(&body));
        assert!(serde_json::from_str::<Value>(&text).unwrap()["error"].is_string());
    }
    // Too large a body is refused without reading it all.
    let huge = vec![b' '; 17 << 20];
    assert_eq!(http(addr, "POST", "/predict", &huge).0, 413);
    // And the server still answers.
    assert_eq!(post(addr, &json!({ "pixels": px })).0, 200);
}

// ---------------------------------------------------------------- the page in Chromium

/// A WebDriver (chromedriver) call; returns the `value` of the answer.
fn webdriver(port: u16, method: &str, path: &str, body: Value) -> Value {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, text) = http(&format!("127.0.0.1:{port}"), method, path, body.as_bytes());
    let j: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"));
    assert_eq!(status, 200, "{method} {path}: {j}");
    j["value"].clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `script` in the page until it returns something that `done` accepts.
fn wait_for(port: u16, session: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let v = webdriver(
            port,
            "POST",
            &format!("/session/{session}/execute/sync"),
            json!({ "script": script, "args": [] }),
        );
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out; last: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_page_shows_live_probabilities_in_headless_chromium() {
    let model = mnist_model();
    let (chromium, driver) = (
        Path::new("/usr/bin/chromium"),
        Path::new("/usr/bin/chromedriver"),
    );
    if !chromium.exists() || !driver.exists() {
        assert!(
            !under_ci(),
            "CI needs chromium and chromium-driver (.ci/run installs them)"
        );
        eprintln!(
            "skipping the browser test: /usr/bin/chromium or /usr/bin/chromedriver is missing"
        );
        return;
    }
    let server = start_server(&model);
    let port = free_port();
    let _driver = Killed(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile = TempDir::new("chromium-profile");
    let caps = json!({ "capabilities": { "alwaysMatch": { "goog:chromeOptions": {
        "binary": chromium,
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=820,700",
            format!("--user-data-dir={}", profile.path().display()),
        ],
    }}}});
    let session = webdriver(port, "POST", "/session", caps)["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let s = |p: &str| format!("/session/{session}{p}");
    webdriver(
        port,
        "POST",
        &s("/url"),
        json!({ "url": format!("http://{}/", server.addr) }),
    );
    let element = |css: &str| {
        let v = webdriver(
            port,
            "POST",
            &s("/element"),
            json!({ "using": "css selector", "value": css }),
        );
        v["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let pad = element("#pad");

    // A "7": across the top, then down to the lower left, in small steps
    // (offsets from the canvas centre; the canvas is 280x280).
    let origin = json!({ "element-6066-11e4-a52e-4f735466cecf": pad });
    let mut moves = vec![
        json!({ "type": "pointerMove", "duration": 0, "origin": origin, "x": -60, "y": -85 }),
        json!({ "type": "pointerDown", "button": 0 }),
    ];
    let path = [(-60, -85), (65, -85), (-15, 95)];
    for seg in path.windows(2) {
        for k in 1..=10 {
            let (x, y) = (
                seg[0].0 + (seg[1].0 - seg[0].0) * k / 10,
                seg[0].1 + (seg[1].1 - seg[0].1) * k / 10,
            );
            moves.push(
                json!({ "type": "pointerMove", "duration": 15, "origin": origin, "x": x, "y": y }),
            );
        }
    }
    moves.push(json!({ "type": "pointerUp", "button": 0 }));
    webdriver(
        port,
        "POST",
        &s("/actions"),
        json!({ "actions": [{
            "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" }, "actions": moves,
        }]}),
    );

    let bars = "return [...document.querySelectorAll('#bars .row')].map(r => r.dataset.p === undefined ? null : Number(r.dataset.p))";
    let p = wait_for(port, &session, bars, |v| {
        v.as_array()
            .is_some_and(|a| a.iter().all(|x| x.is_number()))
    });
    let p: Vec<f64> = p
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(p.len(), 10);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{p:?}");
    let shown = webdriver(
        port,
        "POST",
        &s("/execute/sync"),
        json!({ "script": "return document.getElementById('prediction').textContent", "args": [] }),
    );
    let best = (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    assert_eq!(shown, json!(best.to_string()));
    eprintln!("the page's probabilities for the drawn 7: {p:.3?}");
    assert_eq!(best, 7, "{p:?}");
    // The bars are drawn to scale (after their 80 ms transition).
    let widths = "return [...document.querySelectorAll('#bars .row')].map(r => r.querySelector('.fill').getBoundingClientRect().width / r.querySelector('.track').getBoundingClientRect().width)";
    let shares = wait_for(port, &session, widths, |v| {
        v.as_array().is_some_and(|a| {
            a.iter()
                .zip(&p)
                .all(|(w, q)| (w.as_f64().unwrap_or(-1.0) - q).abs() < 0.02)
        })
    });
    eprintln!("bar lengths as shares of their tracks: {shares}");

    let shot = webdriver(port, "GET", &s("/screenshot"), Value::Null);
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.as_str().unwrap())
        .unwrap();
    fs::create_dir_all(out_dir()).unwrap();
    let shot_path = out_dir().join("serve-page.png");
    fs::write(&shot_path, &png).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert!(img.width() >= 600 && img.height() >= 400);
    eprintln!("screenshot of the page: {}", shot_path.display());

    // Clear empties the canvas and the bars.
    let clear = element("#clear");
    webdriver(
        port,
        "POST",
        &s(&format!("/element/{clear}/click")),
        json!({}),
    );
    wait_for(port, &session, bars, |v| {
        v.as_array().is_some_and(|a| a.iter().all(|x| x.is_null()))
    });
    webdriver(port, "DELETE", &s(""), Value::Null);
}
