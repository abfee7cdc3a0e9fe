//! Users' own data, end to end: folders of pictures (PNG digits in class
//! folders, colour JPEGs of mixed sizes), CSV tables, IDX files of any
//! shape, validation with early stopping; each written by the test into a
//! temporary folder.

mod common;

use std::path::{Path, PathBuf};

use backprop::data::{self, DatasetName, Features, LoadOptions};
use common::{TempDir, run, stderr, stdout, train_model};
use serde_json::Value;

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The first `n` digits of a split of the built-in sample, as (28x28 pixels, label).
fn digits(test: bool, n: usize) -> Vec<(Vec<u8>, u16)> {
    let split = data::load(DatasetName::MnistSample, &LoadOptions::default()).unwrap();
    let set = if test { split.test } else { split.train };
    let Features::Pixels(px) = &set.features else {
        unreachable!("MNIST has pixels")
    };
    (0..n)
        .map(|i| (px[i * 784..(i + 1) * 784].to_vec(), set.labels[i]))
        .collect()
}

/// Writes digits as `dir/d<label>/<i>.png`.
fn write_digit_folder(dir: &Path, digits: &[(Vec<u8>, u16)]) {
    for (i, (px, label)) in digits.iter().enumerate() {
        let class = dir.join(format!("d{label}"));
        std::fs::create_dir_all(&class).unwrap();
        image::GrayImage::from_raw(28, 28, px.clone())
            .unwrap()
            .save(class.join(format!("{i:05}.png")))
            .unwrap();
    }
}

/// The same digits as the four IDX files `--dataset idx` reads.
fn write_idx(dir: &Path, train: &[(Vec<u8>, u16)], test: &[(Vec<u8>, u16)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, set) in [("train", train), ("t10k", test)] {
        let px: Vec<u8> = set.iter().flat_map(|(p, _)| p.clone()).collect();
        let labels: Vec<u8> = set.iter().map(|(_, l)| *l as u8).collect();
        data::idx::write_idx(
            &dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            &[set.len(), 28, 28],
            &px,
            true,
        )
        .unwrap();
        data::idx::write_idx(
            &dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            &[set.len()],
            &labels,
            true,
        )
        .unwrap();
    }
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn train(out: &Path, args: &[String]) -> PathBuf {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    train_model(out, &a)
}

#[test]
fn a_folder_of_png_digits_trains_as_the_same_digits_from_idx_files() {
    let dir = TempDir::new("digit-folder");
    let (train_digits, test_digits) = (digits(false, 3000), digits(true, 1000));
    write_digit_folder(&dir.join("split/train"), &train_digits);
    write_digit_folder(&dir.join("split/test"), &test_digits);
    write_idx(&dir.join("idx"), &train_digits, &test_digits);
    let common = [
        "--hidden",
        "100",
        "--epochs",
        "5",
        "--seed",
        "3",
        "--threads",
        "2",
    ];

    let folder = dir.join("run-folder");
    let mut a = args(&["--dataset", dir.join("split").to_str().unwrap()]);
    a.extend(args(&common));
    let model = train(&folder, &a);
    let idx = dir.join("run-idx");
    let mut b = args(&[
        "--dataset",
        "idx",
        "--data",
        dir.join("idx").to_str().unwrap(),
    ]);
    b.extend(args(&common));
    train(&idx, &b);

    let (f, i) = (summary(&folder), summary(&idx));
    assert_eq!(
        (f["train_examples"].clone(), f["test_examples"].clone()),
        (3000.into(), 1000.into())
    );
    assert_eq!(
        f["classes"],
        serde_json::json!(["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9"])
    );
    assert_eq!(i["classes"][3], "3");
    let (fa, ia) = (
        f["test_accuracy"].as_f64().unwrap(),
        i["test_accuracy"].as_f64().unwrap(),
    );
    eprintln!("the same 3,000 digits: from PNG files {fa}, from IDX files {ia}");
    assert!(fa > 0.85 && ia > 0.85, "{fa} {ia}");
    // The order of the training examples differs (a folder's is shuffled by
    // the seed); the pixels, hence what is learnt, do not.
    assert!((fa - ia).abs() < 0.02, "folder {fa} against IDX {ia}");

    // predict names the class.
    let picture = dir.join("split/test/d7");
    let first = std::fs::read_dir(&picture)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let o = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        first.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!("{}: d7 (", first.display())),
        "{}",
        stdout(&o)
    );
    // eval finds the folder and its test split again.
    let o = run(&["eval", "--model", model.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["examples"], 1000);
    assert_eq!(j["accuracy"].as_f64().unwrap(), fa);
}

#[test]
fn a_folder_without_splits_holds_out_a_test_share_of_each_class() {
    let dir = TempDir::new("digit-flat");
    write_digit_folder(&dir.join("digits"), &digits(false, 1000));
    std::fs::write(dir.join("digits/d3/README.txt"), "notes").unwrap();
    let out = dir.join("run");
    let o = run(&[
        "train",
        "--dataset",
        dir.join("digits").to_str().unwrap(),
        "--epochs",
        "1",
        "--hidden",
        "20",
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    let (train, test) = (
        s["train_examples"].as_u64().unwrap(),
        s["test_examples"].as_u64().unwrap(),
    );
    // 20% of each class, rounded class by class.
    assert_eq!(train + test, 1000);
    assert!((195..=205).contains(&test), "{test}");
    let note = format!(
        "has no test/ folder: {test} of its 1000 pictures (20% of each class, seed 42) are the test set"
    );
    assert!(text.contains(&note), "{text}");
    assert!(text.contains("left out 1 file(s)"), "{text}");
}

/// A colour picture of `shape` (0 disc, 1 square, 2 bar) on a grey
/// background, `w` x `h` pixels, with some noise from `seed`.
fn shape_picture(shape: u32, w: u32, h: u32, seed: u32) -> image::RgbImage {
    let colour = [[220, 40, 40], [40, 180, 40], [40, 60, 220]][shape as usize];
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let r = w.min(h) as f32 * 0.3;
    image::RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let inside = match shape {
            0 => dx * dx + dy * dy < r * r,
            1 => dx.abs() < r && dy.abs() < r,
            _ => dx.abs() < r * 1.4 && dy.abs() < r * 0.35,
        };
        let noise = ((x * 7 + y * 13 + seed * 31) % 17) as u8;
        if inside {
            image::Rgb(colour.map(|c: u8| c.saturating_add(noise)))
        } else {
            image::Rgb([120 + noise, 120 + noise, 120 + noise])
        }
    })
}

#[test]
fn a_convnet_from_a_net_file_trains_on_colour_jpegs_of_mixed_sizes() {
    let dir = TempDir::new("colour");
    let root = dir.join("shapes");
    for (class, name) in ["bar", "disc", "square"].iter().enumerate() {
        let shape = [2, 0, 1][class];
        let folder = root.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..60u32 {
            // Most pictures 40x32, some larger or smaller.
            let (w, h) = match i % 4 {
                0 => (56, 44),
                1 => (30, 24),
                _ => (40, 32),
            };
            shape_picture(shape, w, h, i)
                .save(folder.join(format!("{i}.jpg")))
                .unwrap();
        }
    }
    let net = dir.join("small-cnn.toml");
    std::fs::write(
        &net,
        r#"
weight_init_std = "he"
layers = [
  { type = "Convolution", filter_num = 8, filter_size = 3, pad = 1 },
  { type = "Relu" },
  { type = "MaxPooling", pool_h = 2, pool_w = 2 },
  { type = "Convolution", filter_num = 8, filter_size = 3, stride = 2 },
  { type = "Relu" },
  { type = "Flatten" },
  { type = "Affine", units = 16 },
  { type = "Relu" },
  { type = "Affine" },
]
"#,
    )
    .unwrap();
    let out = dir.join("run");
    let model = train(
        &out,
        &args(&[
            "--dataset",
            root.to_str().unwrap(),
            "--net",
            net.to_str().unwrap(),
            "--optimizer",
            "adam",
            "--lr",
            "0.003",
            "--epochs",
            "15",
            "--batch-size",
            "16",
        ]),
    );
    let s = summary(&out);
    // Colour, so 3 channels; the most common size, 40x32.
    assert_eq!(s["net"]["input_shape"], serde_json::json!([3, 32, 40]));
    let acc = s["test_accuracy"].as_f64().unwrap();
    eprintln!("shapes: test accuracy {acc}");
    assert!(acc >= 0.9, "{acc}");
    // A new picture of another size is resized as the training ones were.
    let picture = dir.join("new-disc.png");
    shape_picture(0, 64, 64, 99).save(&picture).unwrap();
    let o = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        picture.to_str().unwrap(),
    ]);
    assert!(
        stdout(&o).contains(": disc ("),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// A table where the class depends on a column a million times smaller
/// than a column of noise: standardised, both are on one scale.
fn write_scaled_table(path: &Path, rows: usize) -> Vec<(f64, f64, String, u16)> {
    let mut text = String::from("\u{feff}sample id,tiny,huge,habitat,\"comment\",kind\n");
    let mut raw = Vec::new();
    for i in 0..rows {
        let class = (i % 3) as u16;
        let jitter = ((i * 7919) % 1000) as f64 / 1000.0 - 0.5;
        let tiny = (class as f64 + 0.3 * jitter) * 1e-4;
        let huge = 1e6 + ((i * 104_729) % 997) as f64 * 1e3;
        let habitat = ["sea", "lake", "river", "pond"][(i * 31) % 4];
        let kind = ["alpha", "beta", "gamma"][class as usize];
        text += &format!("s{i},{tiny:e},{huge},{habitat},\"a note, with a comma\",{kind}\n");
        raw.push((tiny, huge, habitat.to_owned(), class));
    }
    std::fs::write(path, text).unwrap();
    raw
}

#[test]
fn a_csv_table_with_string_labels_and_columns_of_very_different_scales_beats_95_percent() {
    let dir = TempDir::new("table");
    let file = dir.join("water.csv");
    let raw = write_scaled_table(&file, 900);
    let out = dir.join("run");
    let o = run(&[
        "train",
        "--dataset",
        file.to_str().unwrap(),
        "--hidden",
        "16",
        "--epochs",
        "30",
        "--batch-size",
        "30",
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(text.contains("left out column \"sample id\""), "{text}");
    let s = summary(&out);
    assert_eq!(s["classes"], serde_json::json!(["alpha", "beta", "gamma"]));
    // tiny, huge, four habitats, one comment.
    assert_eq!(s["net"]["input_shape"], serde_json::json!([1, 1, 7]));
    let acc = s["test_accuracy"].as_f64().unwrap();
    eprintln!("standardised: test accuracy {acc}");
    assert!(acc > 0.95, "{acc}\n{text}");

    // The same net on the raw numbers does not get there: the huge column
    // swamps the tiny one (at this rate the loss even diverges).
    let raw_set = |rows: &[(f64, f64, String, u16)]| data::Dataset {
        name: "raw".into(),
        features: Features::Dense(
            rows.iter()
                .flat_map(|(t, h, _, _)| [*t as f32, *h as f32])
                .collect(),
        ),
        labels: rows.iter().map(|r| r.3).collect(),
        class_names: data::numbered_classes(3),
        shape: [1, 1, 2],
        input: data::InputKind::Vectors,
    };
    let (train_rows, test_rows) = raw.split_at(720);
    let spec = backprop::nets::MultiLayerNet::new(2, &[16], 3);
    let mut trainer = backprop::train::Trainer::new(
        spec.build::<f32>(42).unwrap(),
        backprop::optim::by_name("sgd", 0.1).unwrap(),
        2,
        42,
    );
    let mut raw_acc = 0.0;
    for _ in 0..30 {
        if trainer
            .train_epoch(&raw_set(train_rows), 30, |_, _| {})
            .is_err()
        {
            break; // diverged
        }
        raw_acc = trainer
            .evaluate(&raw_set(test_rows), 100)
            .map_or(0.0, |r| r.1);
    }
    eprintln!("raw: test accuracy {raw_acc}");
    assert!(raw_acc < 0.95, "{raw_acc}");

    // Raw rows to classify, in another column order, label left out.
    let rows = dir.join("rows.csv");
    std::fs::write(
        &rows,
        "habitat,huge,tiny,sample id,comment\nsea,1000000,2e-4,x1,\"hi, there\"\nlake,1500000,0,x2,no\n",
    )
    .unwrap();
    let model = out.join("model.safetensors");
    // eval reads the table again, split and encoded as it was (the statistics
    // survive the checkpoint exactly).
    let o = run(&["eval", "--model", model.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["accuracy"].as_f64().unwrap(), acc);
    assert_eq!(j["per_class"][2]["name"], "gamma");
    let o = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        rows.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{}:2: gamma (", rows.display())),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!("{}:3: alpha (", rows.display())),
        "{text}"
    );
}

#[test]
fn validation_and_early_stopping_on_the_overfitting_setup_resume_bit_for_bit() {
    let dir = TempDir::new("early");
    let data = common::Mnist::get().args();
    let mut a: Vec<String> = data.clone();
    a.extend(args(&[
        "--train-size",
        "300",
        "--hidden",
        "100,100,100,100,100,100",
        "--lr",
        "0.01",
        "--epochs",
        "201",
        "--validation",
        "0.1",
        "--early-stop",
        "3",
        "--threads",
        "2",
    ]));
    let straight = dir.join("straight");
    train(&straight, &a);
    let s = summary(&straight);
    let m = metrics(&straight);
    let epochs = s["epochs"].as_u64().unwrap() as usize;
    eprintln!("stopped after {epochs} epochs, best {}", s["best_epoch"]);
    assert!(s["stopped_early"].as_bool().unwrap());
    assert!(epochs < 201 && epochs == m.len(), "{epochs}");
    let validation = s["validation_examples"].as_u64().unwrap();
    assert!((28..=32).contains(&validation), "{validation}");
    assert_eq!(s["train_examples"].as_u64().unwrap() + validation, 300);
    // The best validation accuracy's epoch (the first of equals) is kept.
    let accs: Vec<f64> = m
        .iter()
        .map(|e| e["val_accuracy"].as_f64().unwrap())
        .collect();
    let best = accs.iter().cloned().fold(f64::MIN, f64::max);
    let best_epoch = accs.iter().position(|&v| v == best).unwrap() + 1;
    assert_eq!(s["best_epoch"], best_epoch);
    let (_, meta) =
        backprop::checkpoint::describe(&straight.join("model-best.safetensors")).unwrap();
    assert_eq!(meta["epoch"], best_epoch.to_string());
    // The loss did not improve in the last three epochs.
    let losses: Vec<f64> = m.iter().map(|e| e["val_loss"].as_f64().unwrap()).collect();
    let min = losses.iter().cloned().fold(f64::MAX, f64::min);
    assert!(losses[..epochs - 3].contains(&min) && !losses[epochs - 3..].contains(&min));

    // Stopped halfway by --epochs and resumed: the same epochs, weights and best model.
    let halfway = dir.join("halfway");
    let mut h = a.clone();
    let at = h.iter().position(|x| x == "201").unwrap();
    h[at] = (epochs / 2).to_string();
    train(&halfway, &h);
    let o = common::backprop()
        .args([
            "train",
            "--resume",
            halfway.to_str().unwrap(),
            "--epochs",
            "201",
            "--no-progress",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        common::metrics_without_timings(&halfway),
        common::metrics_without_timings(&straight)
    );
    for file in ["model.safetensors", "model-best.safetensors"] {
        let load = |d: &Path| backprop::checkpoint::load::<f32>(&d.join(file)).unwrap().0;
        let (x, y) = (load(&halfway), load(&straight));
        for (p, q) in x.params().iter().zip(y.params()) {
            assert_eq!(p.value.data(), q.value.data(), "{file} {}", p.name);
        }
    }
    assert_eq!(summary(&halfway)["best_epoch"], best_epoch);
}

/// One HTTP/1.1 POST to the server at `addr`; the status and the JSON answer.
fn post(addr: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (_, json) = raw.split_once("\r\n\r\n").unwrap();
    (
        status,
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}")),
    )
}

#[test]
fn serve_answers_table_rows_and_pictures_by_class_name() {
    let dir = TempDir::new("serve-own");
    let file = dir.join("water.csv");
    write_scaled_table(&file, 300);
    let table_model = train(
        &dir.join("table"),
        &args(&[
            "--dataset",
            file.to_str().unwrap(),
            "--hidden",
            "16",
            "--epochs",
            "20",
            "--batch-size",
            "30",
        ]),
    );
    let server =
        common::ServeProcess::start(Path::new(env!("CARGO_BIN_EXE_backprop")), &table_model);
    let addr = server.addr.as_str();
    // The raw row without its label: sample id, tiny, huge, habitat, comment.
    let (status, j) = post(
        addr,
        "application/json",
        br#"{"features": ["s1", 2e-4, 1000000, "sea", "a note"]}"#,
    );
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["class"], "gamma", "{j}");
    let (status, j) = post(
        addr,
        "application/json",
        br#"{"rows": [["s1", "2e-4", "1000000", "sea", "x"], ["s2", "0", "1500000", "lake", "y"]]}"#,
    );
    assert_eq!(status, 200, "{j}");
    let classes: Vec<&str> = j["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["gamma", "alpha"]);
    let (status, j) = post(addr, "application/json", br#"{"features": [1, 2]}"#);
    assert_eq!(status, 400);
    assert!(
        j["error"].as_str().unwrap().contains("expected 5 values"),
        "{j}"
    );
    let (status, j) = post(addr, "application/json", br#"{"pixels": [0, 0]}"#);
    assert_eq!(status, 400);
    assert!(
        j["error"].as_str().unwrap().contains("{\"features\""),
        "{j}"
    );
    drop(server);

    // A model of pictures takes a picture as the body.
    let root = dir.join("shapes");
    for (name, shape) in [("bar", 2), ("disc", 0), ("square", 1)] {
        std::fs::create_dir_all(root.join(name)).unwrap();
        for i in 0..30 {
            shape_picture(shape, 24, 24, i)
                .save(root.join(name).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let picture_model = train(
        &dir.join("pictures"),
        &args(&[
            "--dataset",
            root.to_str().unwrap(),
            "--hidden",
            "32",
            "--epochs",
            "20",
            "--batch-size",
            "10",
            "--optimizer",
            "adam",
            "--lr",
            "0.003",
        ]),
    );
    let server =
        common::ServeProcess::start(Path::new(env!("CARGO_BIN_EXE_backprop")), &picture_model);
    let mut png = std::io::Cursor::new(Vec::new());
    shape_picture(1, 48, 48, 7)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let (status, j) = post(&server.addr, "image/png", png.get_ref());
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["class"], "square", "{j}");
}
