//! What happens when training goes wrong: a loss that diverges, a process
//! killed mid-epoch, and whether the same seed gives the same run.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use backprop::checkpoint;
use common::{Mnist, TempDir, backprop, metrics_without_timings, stderr, stdout};

/// Every weight and buffer of the model in `dir`, as bits.
fn weights(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let (net, _) = checkpoint::load::<f32>(&dir.join("model.safetensors")).expect("model loads");
    let mut out: Vec<(String, Vec<u32>)> = net
        .params()
        .iter()
        .map(|p| (p.name.clone(), bits(p.value.data())))
        .collect();
    for (i, layer) in net.layers.iter().enumerate() {
        for (name, t) in layer.buffers() {
            out.push((format!("{i}.{name}"), bits(t.data())));
        }
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn train(out: &Path, args: &[&str]) -> std::process::Output {
    backprop()
        .arg("train")
        .args(args)
        .args(["--no-progress", "--out"])
        .arg(out)
        .output()
        .expect("backprop runs")
}

/// `backprop train --resume DIR ARGS`.
fn resume(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut c = backprop();
    c.arg("train")
        .arg("--resume")
        .arg(dir)
        .args(args)
        .arg("--no-progress");
    c
}

#[test]
fn a_diverging_run_stops_with_a_clear_message_and_keeps_its_last_good_checkpoint() {
    let mnist = Mnist::get().args();
    let cases = [
        ("spiral", vec!["--dataset", "spiral"]),
        ("mnist", mnist.iter().map(String::as_str).collect()),
    ];
    for (name, data) in cases {
        let dir = TempDir::new(&format!("diverge-{name}"));
        let mut args = data.clone();
        args.extend(["--lr", "1e6", "--epochs", "3"]);
        let o = train(dir.path(), &args);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));
        let e = stderr(&o);
        assert_eq!(e.lines().count(), 1, "{name}: one line, got\n{e}");
        assert!(!e.contains("panicked"), "{e}");
        for needle in [
            "error: training diverged in epoch 1, iteration ",
            "the loss became",
            "learning rate is likely too high (--lr 1000000)",
            "The last good checkpoint (the initial weights) is kept in",
        ] {
            assert!(e.contains(needle), "{name}: missing {needle:?} in\n{e}");
        }
        // The checkpoint on disk is the good one: finite weights, epoch 0.
        let (net, info) = checkpoint::load::<f32>(&dir.join("model.safetensors")).unwrap();
        assert_eq!(info.epoch, 0);
        for p in net.params() {
            assert!(p.value.data().iter().all(|v| v.is_finite()), "{}", p.name);
        }
        assert!(metrics_without_timings(dir.path()).is_empty());
    }
}

/// Waits until `metrics.jsonl` in `dir` has `lines` lines.
fn wait_for_epochs(dir: &Path, lines: usize, child: &mut std::process::Child) {
    let start = Instant::now();
    while metrics_without_timings(dir).len() < lines {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("training ended ({status}) before epoch {lines}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no epoch {lines} after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The epoch `train --resume` says it continues after.
fn resumed_after(o: &std::process::Output) -> usize {
    let text = stdout(o);
    let line = text
        .lines()
        .find(|l| l.starts_with("resuming "))
        .unwrap_or_else(|| panic!("no 'resuming' line in\n{text}{}", stderr(o)));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_run_killed_mid_epoch_resumes_and_ends_as_an_uninterrupted_run() {
    let mnist = Mnist::get();
    // On the sample's 10,000 images a wider net keeps an epoch long enough
    // (about 0.1 s) for the kills to land inside one.
    let hidden = match mnist {
        Mnist::Full(_) => "100,100",
        Mnist::Sample => "500,500",
    };
    let data = mnist.args();
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    let args = [
        &data[..],
        &[
            "--hidden",
            hidden,
            "--epochs",
            "6",
            "--threads",
            "2",
            "--seed",
            "7",
            // The rate changes every step, so a resume must pick the schedule up
            // exactly where the kill left it.
            "--lr-schedule",
            "cosine",
        ],
    ]
    .concat();
    let straight = TempDir::new("straight");
    let o = train(straight.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));

    let killed = TempDir::new("killed");
    // Kill at different points: a few ms into epoch 2 of the first run, then
    // further into epoch 4 of a resumed run.
    for (epochs_done, delay_ms) in [(1, 30), (3, 90)] {
        let mut command = if epochs_done == 1 {
            let mut c = backprop();
            c.arg("train")
                .args(&args)
                .args(["--no-progress", "--out"])
                .arg(killed.path());
            c
        } else {
            resume(killed.path(), &[])
        };
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_epochs(killed.path(), epochs_done, &mut child);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let logged = metrics_without_timings(killed.path()).len();
        // Whatever moment the kill hit, both files are whole.
        assert!(checkpoint::load::<f32>(&killed.join("model.safetensors")).is_ok());
        assert!(checkpoint::read_train_state(killed.path()).is_ok());

        // A resume told to stop at once says where it would continue.
        let o = resume(killed.path(), &["--epochs", "0"]).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let from = resumed_after(&o);
        eprintln!(
            "killed {delay_ms} ms after epoch {epochs_done} was logged: {logged} epoch(s) logged, resumed after {from}"
        );
        // Only the epoch under way is lost: every logged epoch has its checkpoint.
        assert!(
            from >= logged,
            "killed with {logged} epochs logged, resumed after {from}"
        );
    }
    let o = resume(killed.path(), &[]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(resumed_after(&o) >= 3);

    // The same seed and threads: the interrupted run ends bit for bit where the
    // uninterrupted one does, metrics and weights alike.
    let m = metrics_without_timings(killed.path());
    assert_eq!(m.len(), 6);
    assert_eq!(m, metrics_without_timings(straight.path()));
    assert_eq!(weights(killed.path()), weights(straight.path()));
}

#[test]
fn the_same_seed_and_threads_give_bit_identical_runs() {
    let mut cases: Vec<Vec<String>> = vec![
        // Every source of randomness at once: shuffles, Dropout masks per
        // replica, BatchNorm statistics averaged across replicas, Adam.
        "--dataset spiral --hidden 50,50 --batchnorm --dropout 0.2 --optimizer adam --lr 0.01 --epochs 4 --threads 2",
    ]
    .into_iter()
    .map(|a| a.split(' ').map(String::from).collect())
    .collect();
    let mut a: Vec<String> =
        "--train-size 10000 --hidden 100,100 --batchnorm --dropout 0.1 --optimizer adam --lr 0.001 --epochs 2 --threads 2"
            .split(' ')
            .map(String::from)
            .collect();
    a.extend(Mnist::get().args());
    cases.push(a);
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (a, b) = (TempDir::new("same-a"), TempDir::new("same-b"));
        for dir in [&a, &b] {
            let o = train(dir.path(), &args);
            assert!(o.status.success(), "{}", stderr(&o));
        }
        assert!(!metrics_without_timings(a.path()).is_empty());
        assert_eq!(
            metrics_without_timings(a.path()),
            metrics_without_timings(b.path()),
            "{args:?}"
        );
        assert_eq!(weights(a.path()), weights(b.path()), "{args:?}");
    }
}
