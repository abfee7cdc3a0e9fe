"""Reads the MNIST IDX files (gzipped, as backprop keeps them) with numpy alone."""
import gzip

import numpy as np


def read(path, magic):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    header = np.frombuffer(data[: 4 + 4 * dims], dtype=">u4")
    assert header[0] == magic, f"{path}: magic {header[0]}, expected {magic}"
    return np.frombuffer(data[4 + 4 * dims :], dtype=np.uint8).reshape(header[1:])


def images(mnist_dir, split):
    """(n, 784) float32 inputs as backprop feeds them: pixel / 255."""
    x = read(f"{mnist_dir}/{split}-images-idx3-ubyte.gz", 2051)
    return x.reshape(len(x), -1).astype(np.float32) / np.float32(255.0)


def labels(mnist_dir, split):
    return read(f"{mnist_dir}/{split}-labels-idx1-ubyte.gz", 2049).astype(np.int64)
