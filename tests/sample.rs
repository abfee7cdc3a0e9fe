//! The built-in MNIST sample is what its README says: `rebuild.py` makes its
//! four files byte for byte from the standard ones (run where BACKPROP_DATA
//! points at them, as in CI).

mod common;

use std::path::Path;
use std::process::Command;

use common::{TempDir, mnist_dir};

#[test]
fn the_rebuild_script_reproduces_the_committed_sample() {
    let Some(mnist) = mnist_dir("the_rebuild_script_reproduces_the_committed_sample") else {
        return;
    };
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist-sample");
    let out = TempDir::new("rebuild");
    let o = Command::new("python3")
        .arg(sample.join("rebuild.py"))
        .arg(&mnist)
        .arg(out.path())
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(text.matches("  ok").count(), 4, "{text}");
    for f in common::MNIST_FILES {
        let rebuilt = std::fs::read(out.join(f)).unwrap();
        assert!(
            rebuilt == std::fs::read(sample.join(f)).unwrap(),
            "{f} differs"
        );
    }
    // SHA256SUMS lists what the README's table says.
    let sums = std::fs::read_to_string(sample.join("SHA256SUMS")).unwrap();
    let readme = std::fs::read_to_string(sample.join("README.md")).unwrap();
    for line in sums.lines() {
        let (digest, name) = line.split_once("  ").unwrap();
        assert!(
            readme.contains(&format!("`{name}` |")) && readme.contains(digest),
            "{line}"
        );
    }
}
