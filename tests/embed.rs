//! `examples/embed.rs`, the model built into a program, run as a user runs
//! it: on digit pictures written from the built-in MNIST sample.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{TempDir, stderr, stdout};

/// The example's executable, built beside this test (cargo builds the
/// examples before it runs the tests; alone, `--test embed` builds it here).
fn example() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile = test.parent().and_then(|deps| deps.parent()).unwrap();
    let exe = profile
        .join("examples")
        .join(format!("embed{}", std::env::consts::EXE_SUFFIX));
    if !exe.is_file() {
        let release = profile.file_name().is_some_and(|p| p == "release");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--example", "embed"]);
        if release {
            build.arg("--release");
        }
        let o = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    exe
}

#[test]
fn the_embedded_model_classifies_sample_digits() {
    let test = backprop::data::load(
        backprop::data::DatasetName::MnistSample,
        &backprop::data::LoadOptions::default(),
    )
    .unwrap()
    .test;
    let backprop::data::Features::Pixels(px) = &test.features else {
        panic!("MNIST has pixels")
    };
    let dir = TempDir::new("embed");
    let mut files = Vec::new();
    for i in 0..10 {
        let img = image::GrayImage::from_raw(28, 28, px[i * 784..(i + 1) * 784].to_vec()).unwrap();
        let file = dir.join(&format!("digit-{i}.png"));
        img.save(&file).unwrap();
        files.push((file, test.labels[i].to_string()));
    }
    let o = Command::new(example())
        .args(files.iter().map(|(f, _)| f))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), files.len(), "{out}");
    let mut right = 0;
    for ((file, label), line) in files.iter().zip(&lines) {
        let (name, rest) = line
            .strip_prefix(&format!("{}: ", file.display()))
            .and_then(|r| r.split_once(' '))
            .unwrap_or_else(|| panic!("not `FILE: CLASS (P)`: {line}"));
        let p: f64 = rest.trim_matches(|c| c == '(' || c == ')').parse().unwrap();
        assert!((0.0..=1.0).contains(&p), "{line}");
        right += usize::from(name == label);
    }
    // A 97% model: at most one of ten wrong.
    assert!(right >= 9, "{right} of 10 right:\n{out}");

    let o = Command::new(example())
        .arg(dir.join("missing.png"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing.png"), "{}", stderr(&o));
}
