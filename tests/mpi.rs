//! `backprop` under `mpirun` (feature `mpi`): K ranks against one process of
//! as many threads, resume, errors that end the job, the shared search.
//! Each job runs on this machine over shared memory and over TCP on the
//! loopback interface, and is killed if it outlasts [`TIMEOUT`].
#![cfg(feature = "mpi")]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use backprop::checkpoint;

mod common;
use common::{TempDir, metrics_without_timings};

/// Far more than any job here needs (seconds); a job still running then
/// hangs, and fails the test.
const TIMEOUT: Duration = Duration::from_secs(120);

/// How the ranks talk: Open MPI's shared-memory transport, or TCP restricted
/// to the loopback interface (as between machines).
#[derive(Clone, Copy, Debug)]
enum Transport {
    SharedMemory,
    Tcp,
}

const TRANSPORTS: [Transport; 2] = [Transport::SharedMemory, Transport::Tcp];

fn backprop() -> Command {
    let mut cmd = common::backprop();
    cmd.env("BACKPROP_DATA", "/nonexistent");
    cmd
}

fn mpirun(ranks: usize, transport: Transport) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "--bind-to",
        "none",
    ]);
    match transport {
        Transport::SharedMemory => cmd.args(["--mca", "btl", "self,vader"]),
        Transport::Tcp => cmd.args([
            "--mca",
            "btl",
            "self,tcp",
            "--mca",
            "btl_tcp_if_include",
            "lo",
        ]),
    };
    cmd.args(["-np", &ranks.to_string()])
        .arg(env!("CARGO_BIN_EXE_backprop"))
        .env("BACKPROP_DATA", "/nonexistent");
    cmd
}

/// Runs `cmd` to its end, or kills it after [`TIMEOUT`] and fails.
fn run(mut cmd: Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun runs (apt-get install openmpi-bin)");
    let id = child.id();
    let started = Instant::now();
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match waited.recv_timeout(TIMEOUT) {
        Ok(output) => output.expect("the job ran"),
        Err(_) => {
            // mpirun takes its ranks with it.
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
            panic!("{cmd:?} still ran after {:?}: a hang", started.elapsed());
        }
    }
}

fn succeeded(cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A short training run on the generated spiral, with Dropout (generators
/// per replica) and an uneven split of the batch of 31 rows.
fn train_args(out: &Path, threads: usize, epochs: usize) -> Vec<String> {
    [
        "train",
        "--dataset",
        "spiral",
        "--hidden",
        "20,20",
        "--dropout",
        "0.1",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "31",
        "--seed",
        "5",
        "--no-progress",
    ]
    .map(String::from)
    .into_iter()
    .chain([
        "--threads".into(),
        threads.to_string(),
        "--epochs".into(),
        epochs.to_string(),
        "--out".into(),
        out.display().to_string(),
    ])
    .collect()
}

/// The weights of the run in `dir`, as bits.
fn weights(dir: &Path) -> Vec<u32> {
    let (net, _) = checkpoint::load::<f32>(&dir.join(checkpoint::MODEL_FILE)).unwrap();
    net.params()
        .iter()
        .flat_map(|p| p.value.data().iter().map(|v| v.to_bits()))
        .collect()
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn ranks_train_bit_for_bit_as_one_process_of_as_many_threads() {
    let tmp = TempDir::new("mpi-same");
    for (ranks, threads) in [(2, 1), (3, 1), (2, 2)] {
        let one = tmp.path().join(format!("one-{ranks}x{threads}"));
        let mut cmd = backprop();
        cmd.args(train_args(&one, ranks * threads, 3));
        succeeded(cmd);
        for transport in TRANSPORTS {
            let job = tmp
                .path()
                .join(format!("job-{ranks}x{threads}-{transport:?}"));
            let mut cmd = mpirun(ranks, transport);
            cmd.args(train_args(&job, threads, 3));
            let out = succeeded(cmd);
            let what = format!("{ranks} ranks x {threads} thread(s) over {transport:?}");
            assert_eq!(weights(&job), weights(&one), "{what}: other weights");
            assert_eq!(
                metrics_without_timings(&job),
                metrics_without_timings(&one),
                "{what}: other losses or accuracies"
            );
            let s = summary(&job);
            assert_eq!(s["ranks"], ranks, "{what}");
            assert_eq!(s["config"]["threads"], threads, "{what}");
            // Rank 0 alone prints: one line per epoch.
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                stdout.matches("epoch   1/3").count(),
                1,
                "{what}:\n{stdout}"
            );
            assert!(stdout.contains(&format!("{ranks} ranks x {threads} thread(s)")));
        }
    }
}

#[test]
fn a_job_resumes_bit_for_bit_and_refuses_another_shape() {
    let tmp = TempDir::new("mpi-resume");
    for transport in TRANSPORTS {
        let whole = tmp.path().join(format!("whole-{transport:?}"));
        let mut cmd = mpirun(2, transport);
        cmd.args(train_args(&whole, 2, 4));
        succeeded(cmd);

        let halves = tmp.path().join(format!("halves-{transport:?}"));
        let mut cmd = mpirun(2, transport);
        cmd.args(train_args(&halves, 2, 2));
        succeeded(cmd);
        let mut cmd = mpirun(2, transport);
        cmd.args(["train", "--no-progress", "--epochs", "4", "--resume"])
            .arg(&halves);
        succeeded(cmd);
        assert_eq!(weights(&halves), weights(&whole), "{transport:?}");
        assert_eq!(
            metrics_without_timings(&halves),
            metrics_without_timings(&whole),
            "{transport:?}"
        );

        let mut cmd = mpirun(3, transport);
        cmd.args(["train", "--no-progress", "--epochs", "6", "--resume"])
            .arg(&halves);
        let out = run(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains(
                "saved by 2 MPI ranks x 2 thread(s), this run has 3 MPI ranks x 2 thread(s)"
            ) && stderr.contains("mpirun -np 2"),
            "{stderr}"
        );
    }
}

#[test]
fn bad_data_or_a_diverged_loss_ends_the_job_with_one_line() {
    let tmp = TempDir::new("mpi-errors");
    for transport in TRANSPORTS {
        for ranks in [2, 3] {
            let mut cmd = mpirun(ranks, transport);
            cmd.args(["train", "--dataset", "idx", "--data", "/nonexistent/digits"])
                .arg("--out")
                .arg(tmp.path().join("bad"));
            let out = run(cmd);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{stderr}");
            let ours: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(ours.len(), 1, "{stderr}");
            assert!(ours[0].contains("/nonexistent/digits"), "{stderr}");

            let mut cmd = mpirun(ranks, transport);
            let mut args = train_args(&tmp.path().join("diverged"), 1, 2);
            let lr = args.iter().position(|a| a == "--lr").unwrap();
            args[lr + 1] = "1e30".into();
            cmd.args(args);
            let out = run(cmd);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{stderr}");
            let ours: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(ours.len(), 1, "{stderr}");
            assert!(ours[0].contains("training diverged"), "{stderr}");
        }
    }
}

#[test]
fn a_rank_that_alone_fails_ends_the_job() {
    let tmp = TempDir::new("mpi-alone");
    let run_dir = tmp.path().join("run");
    for transport in TRANSPORTS {
        // Rank 1 reads another data set than rank 0 (a bad path on one
        // machine): it fails while rank 0 waits for it in a collective.
        // Then ranks that run different thread counts: refused.
        let bad_data =
            ["train", "--dataset", "idx", "--data", "/nonexistent/digits"].map(String::from);
        for (second, says) in [
            (bad_data.to_vec(), "rank 1 of 2: "),
            (train_args(&run_dir, 2, 2), "--threads"),
        ] {
            let mut cmd = mpirun(1, transport);
            cmd.args(train_args(&run_dir, 1, 2))
                .args([":", "-np", "1", env!("CARGO_BIN_EXE_backprop")])
                .args(second);
            let out = run(cmd);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{stderr}");
            let ours: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(ours.len(), 1, "{stderr}");
            assert!(ours[0].contains(says), "{stderr}");
        }
    }
}

#[test]
fn ranks_share_the_search_and_rank_0_writes_what_one_process_writes() {
    let tmp = TempDir::new("mpi-search");
    let args = |out: &Path| {
        let out = out.display().to_string();
        [
            "experiment",
            "hyperparameter-search",
            "--quick",
            "--threads",
            "1",
            "--seed",
            "3",
        ]
        .map(String::from)
        .into_iter()
        .chain(["--no-progress".into(), "--out".into(), out])
        .collect::<Vec<_>>()
    };
    let one = tmp.join("one");
    let mut cmd = backprop();
    cmd.args(args(&one));
    let single = succeeded(cmd);
    let file = "hyperparameter-search.jsonl";
    let want = std::fs::read_to_string(one.join(file)).unwrap();
    assert_eq!(want.lines().count(), 10);
    for (ranks, transport) in [(2, Transport::SharedMemory), (3, Transport::Tcp)] {
        let job = tmp.join(&format!("job-{ranks}"));
        let mut cmd = mpirun(ranks, transport);
        cmd.args(args(&job));
        let out = succeeded(cmd);
        let got = std::fs::read_to_string(job.join(file)).unwrap();
        assert_eq!(got, want, "{ranks} ranks over {transport:?}");
        // The same ranking table, printed once.
        let table = |o: &Output| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.lines()
                .skip_while(|l| !l.contains("rank"))
                .take(11)
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(table(&out), table(&single));
        assert!(!table(&out).is_empty());
    }
}
