"""Trains a 784-64-10 ReLU net in numpy (plain mini-batch SGD) and writes it as
safetensors with backprop's metadata, so that `backprop eval` can load weights
that backprop never saw. Prints the net's own predictions on the first N test
images for comparison.

usage: numpy_train.py OUT MNIST_DIR N  ->  JSON {"predictions": [...], "accuracy": a}
"""
import json
import sys

import numpy as np
from safetensors.numpy import save_file

from mnist_idx import images, labels


def main():
    out, mnist_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(0)
    x, t = images(mnist_dir, "train")[:10000], labels(mnist_dir, "train")[:10000]
    # PyTorch layout: Linear.weight is (out, in).
    w0 = (rng.standard_normal((64, 784)) * np.sqrt(2 / 784)).astype(np.float32)
    b0 = np.zeros(64, np.float32)
    w2 = (rng.standard_normal((10, 64)) * np.sqrt(2 / 64)).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    lr = np.float32(0.1)
    for _ in range(3):
        order = rng.permutation(len(x))
        for s in range(0, len(x), 100):
            xb, tb = x[order[s : s + 100]], t[order[s : s + 100]]
            h = np.maximum(xb @ w0.T + b0, 0)
            z = h @ w2.T + b2
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(tb)), tb] -= 1
            dz = p / len(tb)
            dh = (dz @ w2) * (h > 0)
            w2 -= lr * dz.T @ h
            b2 -= lr * dz.sum(axis=0)
            w0 -= lr * dh.T @ xb
            b0 -= lr * dh.sum(axis=0)
    spec = {
        "kind": "mlp",
        "input_size": 784,
        "hidden_size_list": [64],
        "output_size": 10,
        "activation": "relu",
        "weight_init_std": "he",
        "weight_decay_lambda": 0.0,
    }
    meta = {
        "format_version": "1",
        "net": json.dumps(spec),
        "dataset": "mnist",
        "classes": "10",
        "input_shape": "[1, 28, 28]",
    }
    save_file({"0.weight": w0, "0.bias": b0, "2.weight": w2, "2.bias": b2}, out, metadata=meta)
    xt, tt = images(mnist_dir, "t10k")[:n], labels(mnist_dir, "t10k")[:n]
    pred = (np.maximum(xt @ w0.T + b0, 0) @ w2.T + b2).argmax(axis=1)
    print(json.dumps({"predictions": pred.tolist(), "accuracy": float((pred == tt).mean())}))


if __name__ == "__main__":
    main()
