//! Helpers shared by the end-to-end tests: run the binary, temporary folders,
//! the MNIST gate, and a tiny HTTP server on 127.0.0.1.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub fn backprop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_backprop"))
}

/// Runs the binary with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    backprop().args(args).output().expect("backprop runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON a successful command printed.
/// The lines of `metrics.jsonl` in `dir` without their timings (`seconds`),
/// which are not meant to repeat; none while the file is not there yet.
pub fn metrics_without_timings(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value =
                serde_json::from_str(l).expect("metrics.jsonl holds JSON lines");
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

pub fn json_out(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "failed: {}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// Whether the tests run in CI (`CI=true`), where a missing tool is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `python3` that imports `modules` (e.g. "safetensors, numpy"), run in
/// tests/python/ (the scripts import their helper modules from there; paths
/// handed to them must therefore be absolute); or None with a notice, and
/// under CI a failure.
pub fn python(test: &str, modules: &str) -> Option<Command> {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        let mut c = Command::new("python3");
        c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python"));
        return Some(c);
    }
    assert!(
        !under_ci(),
        "{test}: CI needs python3 with {modules} (.ci/run installs them)"
    );
    eprintln!("skipping {test}: python3 with {modules} is not installed");
    None
}

/// A fresh folder under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "backprop-e2e-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `$BACKPROP_DATA/mnist` when BACKPROP_DATA is set (and then it must hold
/// the files); `None` with a printed notice otherwise. For the tests that need
/// all 60,000 training images; the others take [`Mnist::get`].
pub fn mnist_dir(test: &str) -> Option<PathBuf> {
    let Some(root) = std::env::var_os("BACKPROP_DATA") else {
        eprintln!(
            "skipping {test}: it needs the full MNIST and BACKPROP_DATA is not set (point it at the folder holding mnist/)"
        );
        return None;
    };
    let dir = PathBuf::from(root).join("mnist");
    for f in MNIST_FILES {
        assert!(
            dir.join(f).is_file(),
            "BACKPROP_DATA is set but {} is missing",
            dir.join(f).display()
        );
    }
    Some(dir)
}

pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// The MNIST the tests train and test on: the full set in `$BACKPROP_DATA/mnist`
/// when BACKPROP_DATA is set (as in CI), else the built-in sample (the first
/// 10,000 training digits and the whole test set), so that the suite runs the
/// real MNIST path on any machine.
#[derive(Clone, Debug)]
pub enum Mnist {
    Full(PathBuf),
    Sample,
}

impl Mnist {
    pub fn get() -> Mnist {
        match std::env::var_os("BACKPROP_DATA") {
            Some(_) => Mnist::Full(mnist_dir("").expect("BACKPROP_DATA is set")),
            None => Mnist::Sample,
        }
    }

    /// The `train` flags that select it.
    pub fn args(&self) -> Vec<String> {
        match self {
            Mnist::Full(dir) => vec![
                "--dataset".into(),
                "mnist".into(),
                "--data".into(),
                dir.display().to_string(),
            ],
            Mnist::Sample => vec!["--dataset".into(), "mnist-sample".into()],
        }
    }

    /// The name `summary.json` and checkpoints record.
    pub fn name(&self) -> &'static str {
        match self {
            Mnist::Full(_) => "mnist",
            Mnist::Sample => "mnist-sample",
        }
    }

    /// A folder holding the four gzipped IDX files.
    pub fn files(&self) -> PathBuf {
        match self {
            Mnist::Full(dir) => dir.clone(),
            Mnist::Sample => Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist-sample"),
        }
    }

    pub fn split(&self) -> backprop::data::Split {
        let (name, data_dir) = match self {
            Mnist::Full(dir) => (backprop::data::DatasetName::Mnist, Some(dir.clone())),
            Mnist::Sample => (backprop::data::DatasetName::MnistSample, None),
        };
        let opts = backprop::data::LoadOptions {
            data_dir,
            ..Default::default()
        };
        backprop::data::load(name, &opts).expect("MNIST loads")
    }
}

/// Serves `files` (path -> body) over HTTP/1.1 on 127.0.0.1 for at most
/// `max_requests` requests, then stops. Returns the base URL.
pub fn serve(files: HashMap<String, Vec<u8>>, max_requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max_requests) {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Drain the headers.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/');
            let (status, body) = match files.get(path) {
                Some(b) => ("200 OK", b.clone()),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        }
    });
    base
}

/// Runs `backprop train ARGS --no-progress --out OUT` in a fresh `out` and
/// returns the model it saved; panics with the error if training fails.
pub fn train_model(out: &Path, args: &[&str]) -> PathBuf {
    let _ = std::fs::remove_dir_all(out);
    let o = backprop()
        .arg("train")
        .args(args)
        .arg("--no-progress")
        .arg("--out")
        .arg(out)
        .output()
        .expect("backprop runs");
    assert!(o.status.success(), "training failed: {}", stderr(&o));
    out.join("model.safetensors")
}

/// `backprop serve --model MODEL --port 0` on 127.0.0.1, killed when
/// dropped (also when the test fails).
pub struct ServeProcess {
    child: std::process::Child,
    /// `127.0.0.1:PORT`, as printed by the server.
    pub addr: String,
}

impl ServeProcess {
    /// Starts `program` (the binary under test, or another build of it) and
    /// waits for the address line.
    pub fn start(program: &Path, model: &Path) -> ServeProcess {
        let mut child = Command::new(program)
            .arg("serve")
            .arg("--model")
            .arg(model)
            .args(["--port", "0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // Built first so that a failed start still kills the child.
        let mut server = ServeProcess {
            child,
            addr: String::new(),
        };
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("expected \"... on http://ADDR/\", found {line:?}"));
        assert!(addr.starts_with("127.0.0.1:"), "{line}");
        server.addr = addr.to_string();
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the server (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("expected a VmRSS line in {status}"))
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 784-100-10 net trained for 2 epochs on 20,000 MNIST images (about 95%;
/// the 10,000 of the sample without BACKPROP_DATA), trained into
/// `out` once per test binary.
pub fn mnist_model(out: &Path) -> PathBuf {
    static MODEL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let mut args = Mnist::get().args();
        args.extend(
            [
                "--train-size",
                "20000",
                "--epochs",
                "2",
                "--hidden",
                "100",
                "--optimizer",
                "adam",
                "--lr",
                "0.002",
                "--threads",
                "2",
                "--seed",
                "1",
            ]
            .map(String::from),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        train_model(out, &args)
    });
    model.clone()
}
