"""What the PyTorch side shares: finding and reading MNIST as `backprop` does,
the median, and the one JSON line per workload that `backprop bench --json`
prints too (see ../README.md for the workloads).
"""
import gzip
import json
import os
import resource
import struct

import numpy as np


def mnist_dir():
    """The folder `backprop` reads MNIST from (src/data/sources.rs): $BACKPROP_DATA/mnist,
    else the download cache ($BACKPROP_CACHE, $XDG_CACHE_HOME/backprop or
    ~/.cache/backprop, then mnist/). `compare` runs `backprop bench` first, which
    downloads the files there when they are missing."""
    data = os.environ.get("BACKPROP_DATA")
    if data and os.path.isdir(os.path.join(data, "mnist")):
        return os.path.join(data, "mnist")
    cache = os.environ.get("BACKPROP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "backprop")
    return os.path.join(cache, "mnist")


def _read_idx(folder, name):
    gz = os.path.join(folder, name)
    # Compressed or not, as backprop accepts both.
    path, opener = (gz, gzip.open) if os.path.exists(gz) else (gz[: -len(".gz")], open)
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise SystemExit(f"{path} is not an IDX file of bytes")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist():
    """(x_train, t_train, x_test, t_test): x float32 of shape (N, 784), pixel / 255;
    t int64 labels."""
    d = mnist_dir()
    if not os.path.isdir(d):
        raise SystemExit(f"no MNIST in {d}: run `backprop bench w1` once (it downloads it), "
                         "or set BACKPROP_DATA to a folder holding mnist/")
    x = [_read_idx(d, f"{s}-images-idx3-ubyte.gz") for s in ("train", "t10k")]
    t = [_read_idx(d, f"{s}-labels-idx1-ubyte.gz") for s in ("train", "t10k")]
    x = [(v.reshape(len(v), -1).astype(np.float32) / np.float32(255.0)) for v in x]
    return x[0], t[0].astype(np.int64), x[1], t[1].astype(np.int64)


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def max_rss_mib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def report(**fields):
    """One JSON line with the fields of `backprop bench --json` (BenchResult)."""
    fields["max_rss_mib"] = round(max_rss_mib(), 1)
    print(json.dumps(fields), flush=True)
