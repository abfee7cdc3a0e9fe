//! Replays the fuzzers' corpora (fuzz/corpus/<target>/) through the very
//! functions the fuzz targets call (backprop::fuzzing), on stable Rust: every
//! input must be handled (accepted or refused) without a panic. The corpora
//! hold the seeds, what the fuzzers found interesting, and any input that once
//! crashed a target, so this is the regression test for all of them.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8]) -> bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    let mut accepted = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        // A panic here fails the test; name the input that caused it first.
        eprintln!("{target}: {}", file.display());
        if run(&bytes) {
            accepted += 1;
        }
    }
    eprintln!("{target}: {accepted} of {} inputs accepted", files.len());
    // The seeds are valid files: a corpus that no longer holds any means the
    // target cannot get past its first check.
    assert!(accepted > 0, "no input of {} is accepted", dir.display());
}

#[test]
fn idx_corpus() {
    replay("idx", backprop::fuzzing::idx);
}

#[test]
fn checkpoint_corpus() {
    replay("checkpoint", backprop::fuzzing::checkpoint);
}

#[test]
fn image_corpus() {
    replay("image", backprop::fuzzing::image);
}
