//! The README states the two set-up commands, and CI runs exactly the test one.

#[test]
fn readme_names_the_two_commands() {
    let readme = include_str!("../README.md");
    assert!(readme.contains("cargo run --release -- train"));
    assert!(readme.contains("cargo test --release"));
    let ci = include_str!("../.ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test --release"),
        ".ci/run must run the README's test command"
    );
}
