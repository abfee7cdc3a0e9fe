"""Per-shape convolution timing: PyTorch's conv2d beside backprop's Convolution.

usage: python benches/conv_shapes.py [--bin target/release/backprop] [--rounds 3] [--threads 2]

The shapes come from `backprop bench conv --json` (src/bench/convolutions.rs),
which also times our side. Rounds alternate the two, and the table gives the
median of each: forward (inference) and forward + backward on a batch of 100,
in milliseconds, and ours / PyTorch's (below 1 is faster), with our
textbook im2col path beside them. The input gradient is computed where the
shape says so (not for a first layer, as in training).
Needs torch (../shared/peers/compare installs it into
~/.cache/backprop-peers/venv).
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F


def ours(binary, threads):
    out = subprocess.run([binary, "bench", "conv", "--json", "--threads", str(threads)],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def time_ms(run, rounds=9):
    run()
    t0 = time.perf_counter()
    run()
    reps = max(1, int(0.02 / max(time.perf_counter() - t0, 1e-6)) + 1)
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            run()
        samples.append((time.perf_counter() - t0) * 1e3 / reps)
    return statistics.median(samples)


def torch_shape(s):
    torch.manual_seed(0)
    w = (torch.rand(s["filters"], s["c"], s["kernel"], s["kernel"]) - 0.5) * 0.2
    b = (torch.rand(s["filters"]) - 0.5) * 0.2
    x = torch.rand(s["batch"], s["c"], s["h"], s["w"]) * 2 - 1
    w.requires_grad_(True)
    b.requires_grad_(True)
    x.requires_grad_(s["input_grad"])
    conv = lambda: F.conv2d(x, w, b, stride=s["stride"], padding=s["pad"])
    dout = torch.rand_like(conv().detach()) * 2 - 1

    def forward():
        with torch.inference_mode():
            conv()

    def forward_backward():
        w.grad = b.grad = x.grad = None
        conv().backward(dout)

    return time_ms(forward), time_ms(forward_backward)


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    ap.add_argument("--bin", default=os.path.join(target, "release", "backprop"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = {}
    for _ in range(a.rounds):
        for o in ours(a.bin, a.threads):
            r = rows.setdefault(o["name"], {"shape": o, "ours": [], "torch": []})
            r["ours"].append((o["forward_ms"], o["forward_backward_ms"], o["im2col_forward_backward_ms"]))
            r["torch"].append(torch_shape(o))
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"batch 100, {a.threads} threads, median of {a.rounds} rounds, load average {load}")
    print("| shape | PyTorch fwd ms | ours fwd ms | ratio | PyTorch fwd+bwd ms | ours fwd+bwd ms | ratio | im2col fwd+bwd ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        med = lambda v, i: statistics.median(x[i] for x in v)
        tf, tb = med(r["torch"], 0), med(r["torch"], 1)
        of, ob, oi = med(r["ours"], 0), med(r["ours"], 1), med(r["ours"], 2)
        print(f"| {name} | {tf:.3f} | {of:.3f} | {of / tf:.2f} | {tb:.3f} | {ob:.3f} | {ob / tb:.2f} | {oi:.3f} |")


if __name__ == "__main__":
    main()
