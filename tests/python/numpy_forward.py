"""Runs a backprop checkpoint in plain numpy, as a PyTorch user would read it:
module i of an nn.Sequential has i.weight (Linear: (out, in); Conv2d:
(FN, C, FH, FW)) and i.bias, BatchNorm also i.running_mean and i.running_var,
and the architecture is the JSON chain of layers in the safetensors metadata
(`net`: {"input_shape": [...], "layers": [{"type": "Affine", ...}, ...]}).

usage: numpy_forward.py MODEL MNIST_DIR N  ->  JSON {"predictions": [...], ...}
"""
import json
import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from safetensors import safe_open
from safetensors.numpy import load_file

from mnist_idx import images

EPS = np.float32(1e-6)  # BatchNorm's, as backprop's


def windows(x, fh, fw, stride, pad, fill):
    """(N, C, OH, OW, FH, FW) windows of x (N, C, H, W) padded with `fill`."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    return sliding_window_view(x, (fh, fw), axis=(2, 3))[:, :, ::stride, ::stride]


def forward(tensors, spec, x):
    x = x.reshape(len(x), *spec["input_shape"])
    for i, layer in enumerate(spec["layers"]):
        kind = layer["type"]
        if kind == "Affine":  # flattens, as the textbook's Affine
            x = x.reshape(len(x), -1) @ tensors[f"{i}.weight"].T + tensors[f"{i}.bias"]
        elif kind == "Convolution":
            w = tensors[f"{i}.weight"]
            win = windows(x, w.shape[2], w.shape[3], layer.get("stride", 1), layer.get("pad", 0), 0)
            x = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
            x = x + tensors[f"{i}.bias"][:, None, None]
        elif kind == "MaxPooling":
            ph, pw = layer["pool_h"], layer["pool_w"]
            win = windows(x, ph, pw, layer.get("stride") or ph, layer.get("pad", 0), -np.inf)
            x = win.max(axis=(4, 5))
        elif kind == "BatchNorm":  # per value of the flattened input
            shape = x.shape
            flat = x.reshape(len(x), -1)
            mean, var = tensors[f"{i}.running_mean"], tensors[f"{i}.running_var"]
            flat = (flat - mean) / np.sqrt(var + EPS)
            x = (tensors[f"{i}.weight"] * flat + tensors[f"{i}.bias"]).reshape(shape)
        elif kind == "Dropout":
            # The identity at inference with inverted scaling (the default,
            # absent from the metadata), times 1 - ratio with the textbook's.
            if layer.get("scaling") == "textbook":
                x = x * np.float32(1.0 - layer["dropout_ratio"])
        elif kind == "Relu":
            x = np.maximum(x, 0)
        elif kind == "Sigmoid":
            x = 1 / (1 + np.exp(-x))
        elif kind == "Tanh":
            x = np.tanh(x)
        elif kind == "Flatten":
            x = x.reshape(len(x), -1)
        else:
            raise ValueError(f"layer {i}: unknown type {kind}")
        x = x.astype(np.float32)
    return x


def main():
    model, mnist_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with safe_open(model, framework="np") as f:
        meta = f.metadata()
    spec = json.loads(meta["net"])
    tensors = load_file(model)
    assert all(t.dtype == np.float32 for t in tensors.values())
    shapes = {k: list(v.shape) for k, v in tensors.items()}
    x = images(mnist_dir, "t10k")[:n]
    scores = forward(tensors, spec, x)
    print(json.dumps({"predictions": scores.argmax(axis=1).tolist(), "shapes": shapes, "metadata": meta}))


if __name__ == "__main__":
    main()
