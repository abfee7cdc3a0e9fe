"""The driver of `compare` (which makes the venv and builds backprop first):
PyTorch and `backprop bench` on the same workloads, alternating in one run.

usage: python compare.py --bin target/release/backprop [w1|w1-adam|w2|w3|w3-classifier|w4|w5|all] [ROUNDS]
                         [--threads 2] [--out benches/results/DATE.json]

Each round runs both sides once per workload (backprop first in odd rounds,
PyTorch first in even ones, so a slow drift favours neither). A round's ratio
is backprop's figure over PyTorch's; the tables give the median of the rounds.
While each side runs, /proc/stat says how much CPU the whole machine used;
minus what the side itself (and this script) used, that is what other
processes took: `other_cores`, 0 on a quiet machine, 1 when another program
kept one core busy. Everything goes into one JSON file, and
`backprop bench chart` draws it beside it (DATE.png, DATE.svg).
"""
import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

import common

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKLOADS = {
    # name: (what it is, unit, higher is better, epochs passed to both sides)
    "w1": ("W1: 784-100x5-10 MLP, SGD + weight decay", "s/epoch", False, 4),
    "w1-adam": ("W1-adam: the same MLP with Adam", "s/epoch", False, 4),
    "w2": ("W2: SimpleConvNet, Adam", "s/epoch", False, 3),
    "w3": ("W3: W1 inference", "images/s", True, 1),
    "w3-classifier": ("W3 through backprop's Classifier (the embedding API)", "images/s", True, 1),
    "w4": ("W4: DeepConvNet, Adam", "s/epoch", False, 1),
    "w5": ("W5: DeepConvNet inference", "images/s", True, 1),
}
# Workloads whose PyTorch side is another's: the same work through another API of backprop.
PYTORCH_SIDE = {"w3-classifier": "w3"}
_HZ = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """CPU seconds the machine has spent busy since boot, all CPUs together;
    steal (time the hypervisor gave to other guests) counts as busy."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
    return (user + nice + system + irq + softirq + steal) / _HZ


def own_seconds():
    """CPU seconds of this script and of the children it has waited for."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def run_side(cmd, workload, env):
    """Runs one side; returns its JSON result with `wall_s` and `other_cores`."""
    t0, busy0, own0 = time.perf_counter(), machine_busy_seconds(), own_seconds()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    other = (machine_busy_seconds() - busy0) - (own_seconds() - own0)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"{' '.join(cmd)} failed: {tail}")
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    result = next((r for r in lines if r.get("workload") == workload), None)
    if result is None:
        raise SystemExit(f"{' '.join(cmd)} printed no result for {workload}")
    result["wall_s"] = round(wall, 3)
    result["other_cores"] = round(max(0.0, other) / wall, 3)
    return result


def figure(result, higher_is_better):
    return result["images_per_second"] if higher_is_better else result["seconds_per_epoch"]


def command_output(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip() or None
    except OSError:
        return None


def machine(threads):
    import numpy
    import psutil
    import torch

    with open("/proc/cpuinfo") as f:
        info = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
    info = {k.strip(): v.strip() for k, v in info.items()}
    commit = command_output(["git", "rev-parse", "--short", "HEAD"])
    if commit and command_output(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " (with uncommitted changes)"
    return {
        "cpu": info.get("model name"),
        "cpu_family_model": f"{info.get('cpu family')}/{info.get('model')}",
        "avx512": "avx512f" in info.get("flags", "").split(),
        "cores": psutil.cpu_count(logical=False),
        "logical_cpus": psutil.cpu_count(logical=True),
        "threads": threads,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "rustc": command_output(["rustc", "--version"]),
        "backprop_commit": commit,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_mkldnn": torch.backends.mkldnn.is_available(),
        "numpy": numpy.__version__,
        "psutil": psutil.__version__,
    }


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", nargs="?", default="all", choices=list(WORKLOADS) + ["all"])
    ap.add_argument("rounds", nargs="?", type=int, default=3)
    ap.add_argument("--bin", required=True, help="the backprop binary")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="results file (default benches/results/DATE.json)")
    a = ap.parse_args()
    if a.rounds < 1:
        raise SystemExit("ROUNDS must be at least 1")
    workloads = list(WORKLOADS) if a.workload == "all" else [a.workload]
    started = datetime.datetime.now(datetime.timezone.utc)
    out = a.out or os.path.join(ROOT, "benches", "results", started.strftime("%Y-%m-%d") + ".json")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    ours = lambda w: [a.bin, "bench", w, "--epochs", str(WORKLOADS[w][3]), "--threads", str(a.threads), "--json"]
    theirs = lambda w: [sys.executable, os.path.join(HERE, "bench.py"), PYTORCH_SIDE.get(w, w),
                        "--epochs", str(WORKLOADS[w][3]), "--threads", str(a.threads)]
    command = f"benches/pytorch/compare {a.workload} {a.rounds}"
    command += f" --threads {a.threads}" * (a.threads != 2) + (f" --out {a.out}" if a.out else "")
    # Before the run: the commit is the one just built.
    machine_info = machine(a.threads)
    load_start = loadavg()
    t0, busy0, own0 = time.perf_counter(), machine_busy_seconds(), own_seconds()
    rounds = {w: [] for w in workloads}
    for r in range(a.rounds):
        for w in workloads:
            sides = [("backprop", ours(w)), ("pytorch", theirs(w))]
            if r % 2:
                sides.reverse()
            done = {}
            for side, cmd in sides:
                done[side] = run_side(cmd, PYTORCH_SIDE.get(w, w) if side == "pytorch" else w, env)
                print(f"round {r + 1}/{a.rounds} {w:8} {side:8} {figure(done[side], WORKLOADS[w][2]):10.4g} "
                      f"{WORKLOADS[w][1]:8} other processes {done[side]['other_cores']:.2f} cores",
                      file=sys.stderr, flush=True)
            rounds[w].append(done)
    wall = time.perf_counter() - t0
    other_cores = max(0.0, (machine_busy_seconds() - busy0) - (own_seconds() - own0)) / wall

    summary = []
    for w in workloads:
        label, unit, higher, _ = WORKLOADS[w]
        ratios = [figure(d["backprop"], higher) / figure(d["pytorch"], higher) for d in rounds[w]]
        # How many times PyTorch's speed: above 1, backprop is faster.
        speedups = [x if higher else 1 / x for x in ratios]
        summary.append({
            "workload": w, "label": label, "unit": unit, "higher_is_better": higher,
            "pytorch": common.median([figure(d["pytorch"], higher) for d in rounds[w]]),
            "backprop": common.median([figure(d["backprop"], higher) for d in rounds[w]]),
            "ratio": common.median(ratios),
            "speedup": common.median(speedups), "speedup_min": min(speedups), "speedup_max": max(speedups),
            "other_cores_max": max(d[s]["other_cores"] for d in rounds[w] for s in d),
            # Peak resident memory of each side's process, in MiB.
            "pytorch_max_rss_mib": common.median([d["pytorch"]["max_rss_mib"] for d in rounds[w]]),
            "backprop_max_rss_mib": common.median([d["backprop"]["max_rss_mib"] or 0 for d in rounds[w]]),
            "rounds": rounds[w],
        })
    results = {
        "date": started.isoformat(timespec="seconds"),
        "command": command,
        "rounds": a.rounds,
        "machine": machine_info,
        "load": {"other_cores_mean": round(other_cores, 3), "wall_s": round(wall, 1),
                 "loadavg_start": load_start, "loadavg_end": loadavg()},
        "workloads": summary,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    chart = subprocess.run([a.bin, "bench", "chart", out], capture_output=True, text=True)
    if chart.returncode != 0:
        raise SystemExit(f"wrote {out}, but the chart failed: {chart.stderr.strip()}")
    print(markdown(results, out))
    print(chart.stdout.strip(), file=sys.stderr)


def number(x, unit):
    return f"{x / 1000:.0f}k" if unit == "images/s" and x >= 10_000 else f"{x:.4g}"


def markdown(results, out):
    """The README's table, chart and machine line."""
    m, load = results["machine"], results["load"]
    rel = os.path.relpath(os.path.splitext(os.path.abspath(out))[0], ROOT)
    lines = [
        f"| workload | PyTorch | backprop | backprop / PyTorch | speed vs PyTorch |",
        "|---|--:|--:|--:|--:|",
    ]
    for s in results["workloads"]:
        lines.append(f"| {s['label']}, {s['unit']} | {number(s['pytorch'], s['unit'])} | "
                     f"{number(s['backprop'], s['unit'])} | {s['ratio']:.2f} | "
                     f"{s['speedup']:.2f}x [{s['speedup_min']:.2f}-{s['speedup_max']:.2f}] |")
    memory = "; ".join(f"{s['workload'].upper()} {s['backprop_max_rss_mib']:.0f} MiB against {s['pytorch_max_rss_mib']:.0f}"
                       for s in results["workloads"] if s["workload"] in ("w1", "w4"))
    if memory:
        lines += ["", f"Peak memory of the process, backprop against PyTorch: {memory}."]
    rounds = "one round" if results["rounds"] == 1 else f"medians of {results['rounds']} rounds [lowest-highest]"
    lines += [
        "",
        f"![backprop's speed relative to PyTorch per workload]({rel}.svg)",
        "",
        f"`{results['command']}`, {results['date'][:10]}: "
        f"{m['cpu']}, {m['cores']} cores, {m['threads']} threads; PyTorch {m['torch']}, numpy {m['numpy']}, "
        f"{m['rustc']}; {rounds}. Other processes took "
        f"{load['other_cores_mean']:.2f} cores on average while it ran (at most "
        f"{max(s['other_cores_max'] for s in results['workloads']):.2f} during one side's run); "
        f"all figures in `{rel}.json`.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
