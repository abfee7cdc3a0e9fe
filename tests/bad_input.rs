//! Every kind of bad file the commands read (checkpoints for eval, predict and
//! train --resume; pictures for predict; IDX files for train --data) gives one
//! line `error: ...` naming the file, exit code 1 and no panic. Needs no MNIST:
//! the checkpoints come from a one-epoch spiral run or are written here.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use backprop::checkpoint::{self, ModelInfo};
use backprop::data::DatasetName;
use backprop::data::idx::write_idx;
use backprop::nets::MultiLayerNet;
use common::{TempDir, run, stderr};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// Asserts a clean failure: exit 1, one `error:` line naming `file`, holding
/// every one of `needles`. Returns the line.
fn refused(args: &[&str], file: &Path, needles: &[&str]) -> String {
    let out = run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "one line expected: {err}");
    assert!(line.starts_with("error: "), "{err}");
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(line.contains(name), "'{name}' not named in: {err}");
    for n in needles {
        assert!(line.contains(n), "'{n}' not in: {err}");
    }
    line.to_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A one-epoch spiral run in `dir` (model.safetensors, train_state.safetensors).
fn spiral_run(dir: &Path) {
    let out = run(&[
        "train",
        "--dataset",
        "spiral",
        "--epochs",
        "1",
        "--hidden",
        "3",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        s(dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A tensor as (dtype, shape, little-endian bytes).
type Raw = (Dtype, Vec<usize>, Vec<u8>);

/// Rewrites the safetensors file at `path` with `edit` applied.
fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<(String, Raw)>, &mut HashMap<String, String>)) {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = meta.metadata().clone().unwrap_or_default();
    let mut tensors: Vec<(String, Raw)> = file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect();
    edit(&mut tensors, &mut meta);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

fn tensor<'a>(t: &'a mut [(String, Raw)], name: &str) -> &'a mut Raw {
    &mut t.iter_mut().find(|(n, _)| n == name).unwrap().1
}

/// A copy of the spiral model, edited, checked by `eval`; returns the error line.
fn bad_model(
    dir: &TempDir,
    name: &str,
    edit: impl FnOnce(&mut Vec<(String, Raw)>, &mut HashMap<String, String>),
    needles: &[&str],
) -> String {
    let path = dir.join(name);
    std::fs::copy(dir.join("run/model.safetensors"), &path).unwrap();
    rewrite(&path, edit);
    refused(&["eval", "--model", s(&path)], &path, needles)
}

#[test]
fn bad_checkpoints_give_one_line() {
    let dir = TempDir::new("bad-ckpt");
    spiral_run(&dir.join("run"));
    let mut lines = Vec::new();

    let missing = dir.join("missing.safetensors");
    lines.push(refused(
        &["eval", "--model", s(&missing)],
        &missing,
        &["cannot read checkpoint"],
    ));

    let empty = dir.join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    lines.push(refused(
        &["eval", "--model", s(&empty)],
        &empty,
        &["not a valid safetensors"],
    ));

    let text = dir.join("notes.safetensors");
    std::fs::write(&text, b"these are my notes, not a model").unwrap();
    lines.push(refused(
        &["eval", "--model", s(&text)],
        &text,
        &["not a valid safetensors"],
    ));

    let cut = dir.join("cut.safetensors");
    let bytes = std::fs::read(dir.join("run/model.safetensors")).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    lines.push(refused(
        &["eval", "--model", s(&cut)],
        &cut,
        &["not a valid safetensors"],
    ));

    lines.push(bad_model(
        &dir,
        "nonet.safetensors",
        |_, m| {
            m.remove("net");
        },
        &["has no 'net' in its metadata"],
    ));
    lines.push(bad_model(
        &dir,
        "badjson.safetensors",
        |_, m| {
            m.insert("net".into(), "{\"kind\":\"mlp\",".into());
        },
        &["metadata 'net'", "is invalid"],
    ));
    lines.push(bad_model(
        &dir,
        "nometa.safetensors",
        |_, m| m.clear(),
        &["has no 'format_version' in its metadata"],
    ));
    lines.push(bad_model(
        &dir,
        "huge.safetensors",
        |_, m| {
            let net = m["net"].replace("\"units\":3", "\"units\":4000000000");
            m.insert("net".into(), net);
        },
        &[
            "tensor '0.weight' has shape [3, 2]",
            "expects [4000000000, 2]",
        ],
    ));
    lines.push(bad_model(
        &dir,
        "notensor.safetensors",
        |t, _| t.retain(|(n, _)| n != "2.bias"),
        &["tensor '2.bias' is missing"],
    ));
    lines.push(bad_model(
        &dir,
        "extra.safetensors",
        |t, _| t.push(("9.weight".into(), (Dtype::F32, vec![1], vec![0; 4]))),
        &["tensor '9.weight' is not part of the architecture"],
    ));
    lines.push(bad_model(
        &dir,
        "shape.safetensors",
        |t, _| tensor(t, "2.weight").1 = vec![9],
        &["tensor '2.weight' has shape [9]", "expects [3, 3]"],
    ));
    lines.push(bad_model(
        &dir,
        "dtype.safetensors",
        |t, _| {
            let (dtype, _, bytes) = tensor(t, "0.bias");
            *dtype = Dtype::I32;
            bytes.fill(0);
        },
        &["tensor '0.bias' is I32, expected F32"],
    ));
    lines.push(bad_model(
        &dir,
        "nan.safetensors",
        |t, _| tensor(t, "2.bias").2[4..8].copy_from_slice(&f32::NAN.to_le_bytes()),
        &["tensor '2.bias' holds NaN at index 1"],
    ));
    for l in lines {
        eprintln!("{l}");
    }
}

#[test]
fn bad_training_states_give_one_line() {
    let dir = TempDir::new("bad-state");
    let run_dir = dir.join("run");
    spiral_run(&run_dir);
    let state = run_dir.join("train_state.safetensors");
    let original = std::fs::read(&state).unwrap();
    let resume = [
        "train",
        "--resume",
        s(&run_dir),
        "--epochs",
        "2",
        "--no-progress",
    ];

    let edit_config = |f: &dyn Fn(&mut serde_json::Value)| {
        std::fs::write(&state, &original).unwrap();
        rewrite(&state, |_, m| {
            let mut v: serde_json::Value = serde_json::from_str(&m["train_state"]).unwrap();
            f(&mut v);
            m.insert("train_state".into(), v.to_string());
        });
    };
    edit_config(&|v| v["config"]["threads"] = 1_000_000_000.into());
    eprintln!("{}", refused(&resume, &state, &["threads"]));
    // The resumed net is built from the model beside the state: it must be whole.
    std::fs::write(&state, &original).unwrap();
    let model = run_dir.join("model.safetensors");
    let model_bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &model_bytes[..model_bytes.len() / 2]).unwrap();
    eprintln!("{}", refused(&resume, &model, &["not a valid safetensors"]));
    std::fs::write(&model, &model_bytes).unwrap();
    edit_config(&|v| v["epoch"] = "one".into());
    eprintln!("{}", refused(&resume, &state, &["metadata 'train_state'"]));

    std::fs::write(&state, b"\x08\0\0\0\0\0\0\0{}      ").unwrap();
    eprintln!(
        "{}",
        refused(
            &resume,
            &state,
            &["no 'train_state' in its metadata", "without --resume"]
        )
    );
}

/// A fresh MLP for inputs of `shape` in `classes` classes, saved as `name`.
fn save_model(
    dir: &TempDir,
    name: &str,
    dataset: DatasetName,
    shape: [usize; 3],
    classes: usize,
) -> PathBuf {
    let net = MultiLayerNet::new(shape.iter().product(), &[4], classes)
        .build::<f32>(1)
        .unwrap();
    let info = ModelInfo::builtin(dataset, classes, shape, 1, 1);
    let path = dir.join(name);
    checkpoint::save(&path, &net, &info).unwrap();
    path
}

#[test]
fn bad_pictures_give_one_line() {
    let dir = TempDir::new("bad-image");
    // A model of 28x28 pictures, as `predict` needs, without MNIST.
    let model = save_model(
        &dir,
        "digits.safetensors",
        DatasetName::Mnist,
        [1, 28, 28],
        10,
    );
    let predict = |file: &Path, needles: &[&str]| {
        eprintln!(
            "{}",
            refused(&["predict", "--model", s(&model), s(file)], file, needles)
        );
    };

    let good = dir.join("digit.png");
    image::GrayImage::from_fn(20, 20, |x, _| image::Luma([if x == 9 { 0 } else { 255 }]))
        .save(&good)
        .unwrap();
    let out = run(&["predict", "--model", s(&model), s(&good)]);
    assert!(out.status.success(), "{}", stderr(&out));

    predict(&dir.join("nowhere.png"), &["cannot read image"]);
    let text = dir.join("notes.png");
    std::fs::write(&text, b"not a picture at all").unwrap();
    predict(
        &text,
        &["cannot decode image", "PNG, JPEG and BMP are supported"],
    );
    let cut = dir.join("cut.png");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    predict(&cut, &["cannot decode image"]);
    let empty = dir.join("empty.bmp");
    std::fs::write(&empty, backprop::fuzzing::bmp(0, 0, 0)).unwrap();
    predict(&empty, &[]);
    let huge = dir.join("huge.bmp");
    std::fs::write(&huge, backprop::fuzzing::bmp(20_000, 20_000, 0)).unwrap();
    predict(&huge, &["too large", "found 20000x20000"]);
    let blank = dir.join("blank.png");
    image::GrayImage::from_pixel(8, 8, image::Luma([200]))
        .save(&blank)
        .unwrap();
    predict(&blank, &["no digit found"]);
    let wrong_model = save_model(
        &dir,
        "spiral.safetensors",
        DatasetName::Spiral,
        [1, 1, 2],
        3,
    );
    eprintln!(
        "{}",
        refused(
            &["predict", "--model", s(&wrong_model), s(&good)],
            &good,
            &[
                "the model takes vectors of 2 values, not pictures; give it files with 2 comma-separated numbers per line"
            ]
        )
    );
}

/// Four valid tiny MNIST files in `dir`, then `edit` applied to one of them.
fn idx_folder(dir: &Path, broken: &str, content: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let images: Vec<u8> = (0..2 * 28 * 28).map(|i| (i % 251) as u8).collect();
    for (name, dims, data) in [
        (
            "train-images-idx3-ubyte.gz",
            vec![2, 28, 28],
            images.as_slice(),
        ),
        ("train-labels-idx1-ubyte.gz", vec![2], &[3, 7][..]),
        (
            "t10k-images-idx3-ubyte.gz",
            vec![2, 28, 28],
            images.as_slice(),
        ),
        ("t10k-labels-idx1-ubyte.gz", vec![2], &[1, 2][..]),
    ] {
        write_idx(&dir.join(name), &dims, data, true).unwrap();
    }
    std::fs::write(dir.join(broken), content).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn bad_idx_files_give_one_line() {
    let dir = TempDir::new("bad-idx");
    let header = |dims: &[u32]| {
        let mut h = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            h.extend_from_slice(&d.to_be_bytes());
        }
        h
    };
    let labels = "train-labels-idx1-ubyte.gz";
    let out_dir = dir.join("out");
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "magic",
            b"PK\x03\x04 a zip file".to_vec(),
            vec!["not an IDX file", "50 4b 03 04"],
        ),
        (
            "overflow",
            header(&[u32::MAX, u32::MAX, u32::MAX]),
            vec!["overflow the addressable size"],
        ),
        (
            "claims-more",
            gzip(&header(&[60000])),
            vec!["truncated", "60000 labels", "once decompressed"],
        ),
        (
            "cut-gzip",
            gzip(&[0, 0, 8, 1, 0, 0, 0, 2, 3, 7])[..12].to_vec(),
            vec!["gzip"],
        ),
        (
            "expands",
            gzip(&[header(&[2]), vec![3, 7], vec![0; 5000]].concat()),
            vec!["trailing data", "10 bytes", "5010 bytes once decompressed"],
        ),
    ];
    for (name, content, needles) in cases {
        let data = dir.join(name);
        idx_folder(&data, labels, &content);
        let args = [
            "train",
            "--dataset",
            "mnist",
            "--data",
            s(&data),
            "--epochs",
            "1",
            "--no-progress",
            "--out",
            s(&out_dir),
        ];
        eprintln!("{}", refused(&args, &data.join(labels), &needles));
    }
}

/// A listing of every file under `dir` with its content, to check that a
/// refused run left an existing run folder as it was.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let content = std::fs::read(&p).unwrap();
            (p, content)
        })
        .collect();
    files.sort();
    files
}

/// `backprop train` on `dataset` (with `extra` flags) into the existing run
/// folder `run_dir`, refused with one line naming `file`.
fn train_refused(
    dataset: &Path,
    extra: &[&str],
    run_dir: &Path,
    file: &Path,
    needles: &[&str],
) -> String {
    let before = snapshot(run_dir);
    let mut args = vec![
        "train",
        "--dataset",
        s(dataset),
        "--epochs",
        "1",
        "--out",
        s(run_dir),
    ];
    args.extend(extra);
    let line = refused(&args, file, needles);
    assert_eq!(snapshot(run_dir), before, "the run folder changed");
    line
}

fn png(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_fn(8, 8, |x, y| image::Luma([((x * 31 + y * 17) % 255) as u8]))
        .save(path)
        .unwrap();
}

#[test]
fn bad_folders_of_pictures_give_one_line_and_leave_the_run_alone() {
    let dir = TempDir::new("bad-folders");
    let run_dir = dir.join("run");
    spiral_run(&run_dir);
    let mut lines = Vec::new();

    let flat = dir.join("flat");
    png(&flat.join("a.png"));
    lines.push(train_refused(
        &flat,
        &[],
        &run_dir,
        &flat,
        &["no class folders"],
    ));

    let empty_class = dir.join("empty-class");
    png(&empty_class.join("cats/1.png"));
    std::fs::create_dir_all(empty_class.join("dogs")).unwrap();
    std::fs::write(empty_class.join("dogs/notes.txt"), "no pictures here").unwrap();
    lines.push(train_refused(
        &empty_class,
        &[],
        &run_dir,
        &empty_class.join("dogs"),
        &["the class folder holds no pictures"],
    ));

    let corrupt = dir.join("corrupt");
    for class in ["cats", "dogs"] {
        for i in 0..5 {
            png(&corrupt.join(format!("{class}/{i}.png")));
        }
    }
    let bad = corrupt.join("dogs/9.png");
    std::fs::write(&bad, b"this is not a PNG").unwrap();
    lines.push(train_refused(
        &corrupt,
        &[],
        &run_dir,
        &bad,
        &["--skip-bad"],
    ));
    // With --skip-bad the rest trains, and the run says how many it left out.
    let skipped_run = dir.join("skipped");
    let o = run(&[
        "train",
        "--dataset",
        s(&corrupt),
        "--skip-bad",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--no-progress",
        "--out",
        s(&skipped_run),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        common::stdout(&o).contains("skipped 1 picture(s) that do not decode (--skip-bad)"),
        "{}",
        common::stdout(&o)
    );

    let mismatch = dir.join("mismatch");
    for (split, class) in [
        ("train", "cats"),
        ("train", "dogs"),
        ("test", "cats"),
        ("test", "foxes"),
    ] {
        png(&mismatch.join(format!("{split}/{class}/1.png")));
    }
    lines.push(train_refused(
        &mismatch,
        &[],
        &run_dir,
        &mismatch.join("test"),
        &[
            "[\"cats\", \"foxes\"] differ from those of",
            "[\"cats\", \"dogs\"]",
        ],
    ));
    for l in lines {
        eprintln!("{l}");
    }
}

#[test]
fn bad_tables_give_one_line_naming_the_row_and_column() {
    let dir = TempDir::new("bad-tables");
    let run_dir = dir.join("run");
    spiral_run(&run_dir);
    let table = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let good_rows = "x,y,label\n1,2,a\n2,3,a\n3,4,b\n4,5,b\n5,6,a\n6,7,b\n";
    let cases: Vec<(PathBuf, Vec<&str>, Vec<&str>)> = vec![
        (table("empty.csv", ""), vec![], vec!["it is empty"]),
        (
            table("header.csv", "x,y,label\n"),
            vec![],
            vec!["header but no rows"],
        ),
        (
            table("ragged.csv", "x,y,label\n1,2,a\n3,b\n"),
            vec![],
            vec!["row 3", "2 fields where the header has 3"],
        ),
        (
            table("word.csv", "x,y,label\n1,2,a\n2,3,a\nten,4,b\n4,5,b\n"),
            vec![],
            vec!["row 4, column 1 (x)", "\"ten\" is not a number"],
        ),
        (
            table("hole.csv", "x,y,label\n1,2,a\n2,,a\n3,4,b\n4,5,b\n"),
            vec![],
            vec!["row 3, column 2 (y)", "the cell is empty"],
        ),
        (
            table("nolabel.csv", good_rows),
            vec!["--label", "species"],
            vec!["no column called \"species\" for --label", "x, y, label"],
        ),
        (
            table("rare.csv", "x,label\n1,a\n2,a\n3,a\n4,b\n5,b\n6,rare\n"),
            vec![],
            vec!["class \"rare\" has 1 example(s)", "--test-split"],
        ),
    ];
    for (file, flags, needles) in &cases {
        eprintln!("{}", train_refused(file, flags, &run_dir, file, needles));
    }
    // More than 10,000 values to one-hot encode (not all different, so not
    // an identifier).
    let mut many = String::from("code,label\n");
    // 80% of 13,000 rows train: over 10,000 codes there, 50 rows sharing one.
    for i in 0..13_000 {
        many += &format!("c{},{}\n", i.min(12_950), ["a", "b"][i % 2]);
    }
    let many = table("many.csv", &many);
    eprintln!(
        "{}",
        train_refused(
            &many,
            &[],
            &run_dir,
            &many,
            &["column 1 (code)", "more than 10000"]
        )
    );

    // Rows to classify that do not fit a table model, and a picture for one.
    let model_dir = dir.join("model");
    let o = run(&[
        "train",
        "--dataset",
        s(&table("good.csv", good_rows)),
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--no-progress",
        "--out",
        s(&model_dir),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = model_dir.join("model.safetensors");
    let predict = |file: &Path, needles: &[&str]| {
        eprintln!(
            "{}",
            refused(&["predict", "--model", s(&model), s(file)], file, needles)
        );
    };
    predict(
        &table("missing-column.csv", "x,label\n1,a\n"),
        &["row 1 (the header)", "the model needs column \"y\""],
    );
    predict(
        &table("extra-column.csv", "x,y,z\n1,2,3\n"),
        &["column \"z\" is not one the model was trained on (x, y)"],
    );
    predict(
        &table("short-row.csv", "x,y\n1,2\n3\n"),
        &["row 3", "1 fields where the header has 2"],
    );
    let picture = dir.join("photo.png");
    png(&picture);
    predict(
        &picture,
        &["the model takes table rows with the columns x, y, not pictures"],
    );
}
