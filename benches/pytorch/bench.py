"""`backprop bench` in PyTorch: the workloads of ../README.md, on the CPU in
float32, measured as src/bench/mod.rs measures them.

usage: python bench.py w1|w1-adam|w2|w3|w4|w5 [--epochs 4] [--threads 2] [--seed 0]

Prints one JSON line with the fields of `backprop bench W --json`:
seconds_per_epoch (training) or images_per_second (inference), the timed
samples, the thread count, peak memory.
"""
import argparse
import itertools
import time

import torch
import torch.nn.functional as F

import common
from nets import DeepConvNet, MultiLayerNet, SimpleConvNet

WORKLOADS = ["w1", "w1-adam", "w2", "w3", "w4", "w5"]
BATCH = 100


def step(net, opt, x, t, idx):
    """One training step on the examples `idx`: gather, forward, backward, update."""
    loss = F.cross_entropy(net(x.index_select(0, idx)), t.index_select(0, idx))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def adam(net):
    # eps as backprop's Adam (the textbook's 1e-7; PyTorch's default is 1e-8).
    return torch.optim.Adam(net.parameters(), lr=0.001, eps=1e-7)


def train_workload(name, data, epochs):
    """W1, W1-adam, W2: `epochs` epochs of 600 batches, each timed; the median
    of epochs 2..N; the test accuracy afterwards (not timed)."""
    x, t, x_test, t_test = data
    if name == "w2":
        net = SimpleConvNet()
        x, x_test = x.view(-1, 1, 28, 28), x_test.view(-1, 1, 28, 28)
        opt = adam(net)
    elif name == "w1":
        net = MultiLayerNet()
        # The textbook's 0.5 * lambda * sum(W^2) in the loss adds lambda * W to
        # each weight's gradient; PyTorch's weight_decay does exactly that, on
        # the weights only, faster than autograd through the extra loss term.
        opt = torch.optim.SGD([{"params": net.weights(), "weight_decay": 0.1},
                               {"params": [a.bias for a in net.affines], "weight_decay": 0.0}], lr=0.01)
    else:
        net = MultiLayerNet()
        opt = adam(net)
    net.train()
    samples = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(x))
        for s in range(0, len(x), BATCH):
            step(net, opt, x, t, order[s:s + BATCH])
        samples.append(time.perf_counter() - t0)
    timed = samples[1:] if len(samples) > 1 else samples
    net.eval()
    classes = predict_classes(net, x_test)
    return dict(seconds_per_epoch=common.median(timed),
                test_accuracy=float((classes == t_test).float().mean()), samples=samples)


def predict_classes(net, x, batch=1000):
    with torch.inference_mode():
        return torch.cat([net(x[s:s + batch]).argmax(1) for s in range(0, len(x), batch)])


def inference_workload(name, data):
    """W3 (the W1 net, 2 warm-up and 20 timed passes) or W5 (DeepConvNet, 1 and
    5): a fresh net's forward pass and argmax over the 10,000 test images in
    batches of 1,000; images per second of the median pass."""
    x = data[2]
    if name == "w5":
        net, warm_up, passes = DeepConvNet(), 1, 5
        x = x.view(-1, 1, 28, 28)
    else:
        net, warm_up, passes = MultiLayerNet(), 2, 20
    net.eval()
    for _ in range(warm_up):
        predict_classes(net, x)
    samples = []
    for _ in range(passes):
        t0 = time.perf_counter()
        predict_classes(net, x)
        samples.append(time.perf_counter() - t0)
    return dict(images_per_second=len(x) / common.median(samples), samples=samples)


def deep_cnn_workload(data, rounds, warm_up=10, timed=200):
    """W4: DeepConvNet training steps on consecutive batches of one shuffled
    training set; 10 untimed, then `rounds` rounds of 200, each scaled to the
    600 batches of an epoch; the median round."""
    x, t = data[0].view(-1, 1, 28, 28), data[1]
    net = DeepConvNet().train()
    opt = adam(net)
    order = torch.randperm(len(x))
    batches = itertools.cycle(order.split(BATCH))
    for idx in itertools.islice(batches, warm_up):
        step(net, opt, x, t, idx)
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for idx in itertools.islice(batches, timed):
            step(net, opt, x, t, idx)
        samples.append((time.perf_counter() - t0) / timed * (len(x) // BATCH))
    return dict(seconds_per_epoch=common.median(samples), samples=samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=WORKLOADS)
    ap.add_argument("--epochs", type=int, default=4,
                    help="training epochs; the median is of epochs 2..N (w4: rounds of 200 batches)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x, t, x_test, t_test = (torch.from_numpy(v) for v in common.load_mnist())
    data = (x, t, x_test, t_test)
    if a.workload in ("w1", "w1-adam", "w2"):
        result = train_workload(a.workload, data, a.epochs)
    elif a.workload == "w4":
        result = deep_cnn_workload(data, a.epochs)
    else:
        result = inference_workload(a.workload, data)
    common.report(workload=a.workload, **result, threads=torch.get_num_threads(), torch=torch.__version__)


if __name__ == "__main__":
    main()
