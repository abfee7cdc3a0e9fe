//! Nets from files: `nets/*.toml` train bit for bit as the built-in names,
//! `show summary` counts parameters as the textbook does, and a net file that
//! cannot be built is one clear line naming it, before anything is allocated
//! or written.

mod common;

use std::path::Path;

use common::{Mnist, TempDir, metrics_without_timings, run, stderr, stdout, train_model};

#[test]
fn the_net_files_train_bit_for_bit_as_the_built_in_names() {
    let data = Mnist::get().args();
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    for (name, size) in [("mlp", "2000"), ("simple-cnn", "600"), ("deep-cnn", "200")] {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("nets")
            .join(format!("{name}.toml"));
        let (a, b) = (TempDir::new("builtin"), TempDir::new("file"));
        let common = [
            "--train-size",
            size,
            "--epochs",
            "2",
            "--threads",
            "2",
            "--seed",
            "3",
        ];
        let by_name = [
            &data[..],
            &["--net", name],
            &common,
            &["--optimizer", "adam", "--lr", "0.001"],
        ]
        .concat();
        let by_file = [
            &data[..],
            &["--net", file.to_str().unwrap()],
            &common,
            &["--optimizer", "adam", "--lr", "0.001"],
        ]
        .concat();
        let ma = train_model(a.path(), &by_name);
        let mb = train_model(b.path(), &by_file);
        assert_eq!(
            metrics_without_timings(a.path()),
            metrics_without_timings(b.path()),
            "{name}"
        );
        let (na, _) = backprop::checkpoint::load::<f32>(&ma).unwrap();
        let (nb, _) = backprop::checkpoint::load::<f32>(&mb).unwrap();
        for (p, q) in na.params().iter().zip(nb.params()) {
            assert_eq!(p.value.data(), q.value.data(), "{name}: {}", p.name);
        }
        let summary = |d: &TempDir| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap()
        };
        assert_eq!(summary(&a)["net"], summary(&b)["net"], "{name}");
    }
}

#[test]
fn show_summary_counts_parameters_as_the_textbook() {
    let o = run(&[
        "show",
        "summary",
        "--net",
        "simple-cnn",
        "--input",
        "1x28x28",
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    for needle in [
        "0    Convolution      (30, 24, 24)                  780",
        "4    Affine           (100)                     432,100",
        "6    Affine           (10)                        1,010",
        "parameters: 433,890",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    // The same from a saved model, and from the net file on colour images.
    let dir = TempDir::new("summary");
    let data = Mnist::get().args();
    let mut args: Vec<&str> = data.iter().map(String::as_str).collect();
    args.extend([
        "--net",
        "simple-cnn",
        "--train-size",
        "100",
        "--epochs",
        "1",
    ]);
    let model = train_model(dir.path(), &args);
    let o = run(&["show", "summary", "--model", model.to_str().unwrap()]);
    assert!(stdout(&o).contains("parameters: 433,890"), "{}", stdout(&o));
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("nets/simple-cnn.toml");
    let o = run(&[
        "show",
        "summary",
        "--net",
        file.to_str().unwrap(),
        "--input",
        "3x32x32",
    ]);
    // 30 filters of 3x5x5; 30x14x14 pooled into 100; 100 x 10.
    let want = format!("parameters: {}", 2280 + 588_100 + 1010);
    let text = stdout(&o).replace(',', "");
    assert!(text.contains(&want), "{text}");
}

/// Writes `text` as a net file and trains it on the sample: the error line.
fn refused(dir: &TempDir, name: &str, text: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    let out = dir.join(&format!("{name}-run"));
    let o = run(&[
        "train",
        "--dataset",
        "mnist-sample",
        "--net",
        file.to_str().unwrap(),
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{name}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{name}: one line, got\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "{name}: the run folder was created");
    err
}

#[test]
fn net_files_that_cannot_be_built_are_one_clear_line() {
    let dir = TempDir::new("bad-nets");
    let cases = [
        (
            "unknown-layer.toml",
            r#"layers = [{ type = "Convolutoin", filter_num = 4, filter_size = 3 }, { type = "Affine" }]"#,
            vec!["unknown-layer.toml", "Convolutoin", "expected one of"],
        ),
        (
            "unknown-key.toml",
            r#"layers = [{ type = "Convolution", filters = 4, filter_size = 3 }, { type = "Affine" }]"#,
            vec![
                "unknown-key.toml",
                "line 1",
                "unknown field `filters`",
                "filter_num",
            ],
        ),
        (
            "pooling.toml",
            r#"layers = [{ type = "MaxPooling", pool_h = 30, pool_w = 30 }, { type = "Affine" }]"#,
            vec![
                "pooling.toml",
                "MaxPooling (layer 1)",
                "larger than its input [1, 28, 28]",
            ],
        ),
        (
            "affine-input.toml",
            "input_shape = [784]\nlayers = [{ type = \"Affine\" }]",
            vec![
                "affine-input.toml",
                "takes inputs of shape [784]",
                "[1, 28, 28]",
            ],
        ),
        (
            "classes.toml",
            r#"layers = [{ type = "Affine", units = 7 }]"#,
            vec!["gives 7 scores", "10 classes"],
        ),
        (
            "no-scores.toml",
            r#"layers = [{ type = "Affine" }, { type = "Sigmoid" }]"#,
            vec!["must end in class scores", "Sigmoid"],
        ),
        (
            "huge.toml",
            r#"layers = [{ type = "Affine", units = 1000000000 }, { type = "Affine" }]"#,
            vec!["parameters", "needs at least", "available"],
        ),
        (
            "syntax.toml",
            "layers = [{ type = \"Affine\" ",
            vec!["syntax.toml", "line 1"],
        ),
    ];
    for (name, text, needles) in cases {
        let err = refused(&dir, name, text);
        for n in needles {
            assert!(err.contains(n), "{name}: {n:?} not in {err}");
        }
    }
    let o = run(&["train", "--dataset", "spiral", "--net", "missing.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("missing.toml: cannot read it"),
        "{}",
        stderr(&o)
    );
}
