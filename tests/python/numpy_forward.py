"""Runs a backprop checkpoint in plain numpy, as a PyTorch user would read it:
module i of an nn.Sequential has i.weight (out, in) and i.bias, and the
architecture is JSON in the safetensors metadata.

usage: numpy_forward.py MODEL MNIST_DIR N  ->  JSON {"predictions": [...], ...}
"""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

from mnist_idx import images

ACTIVATIONS = {
    "relu": lambda v: np.maximum(v, 0),
    "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "tanh": np.tanh,
}


def forward(tensors, spec, x):
    assert spec["kind"] == "mlp", spec["kind"]
    assert not spec.get("use_batchnorm"), "this reader covers the MLP without BatchNorm"
    act = ACTIVATIONS[spec["activation"]]
    # Dropout, if any, follows each activation: the identity at inference with
    # inverted scaling (the default, absent from the metadata), times
    # 1 - ratio with the textbook's.
    keep = 1.0
    if spec.get("dropout_scaling") == "textbook":
        keep = 1.0 - spec.get("dropout_ratio", 0.0)
    # Linear modules in order; activations (and Dropout) only shift the numbering.
    linear = sorted(int(k.split(".")[0]) for k in tensors if k.endswith(".weight"))
    for n, i in enumerate(linear):
        w, b = tensors[f"{i}.weight"], tensors[f"{i}.bias"]
        x = x @ w.T + b
        if n + 1 < len(linear):
            x = act(x) * np.float32(keep)
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
