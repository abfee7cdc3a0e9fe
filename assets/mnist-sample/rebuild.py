#!/usr/bin/env python3
"""Rebuilds the built-in MNIST sample from the four standard MNIST files.

    python3 assets/mnist-sample/rebuild.py SRC_DIR [OUT_DIR]

SRC_DIR holds train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (gzipped or plain).
OUT_DIR defaults to this script's folder. The sample is the first 10,000
training examples, in their original order, written as an IDX file with the
count in the header changed and nothing else, and the whole test set of
10,000; all four gzipped deterministically (level 9, no file name, modification time 0), so the
output is byte for byte the committed files; the script checks them against
SHA256SUMS beside it and exits 1 on a mismatch.
"""
import gzip
import hashlib
import os
import struct
import sys

TRAIN, TEST = 10_000, 10_000
# Each standard file, its count in the sample, and the SHA-256 of its
# decompressed content (the same sums src/data/sources.rs checks downloads by).
FILES = [
    ("train-images-idx3-ubyte.gz", TRAIN,
     "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ("train-labels-idx1-ubyte.gz", TRAIN,
     "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ("t10k-images-idx3-ubyte.gz", TEST,
     "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ("t10k-labels-idx1-ubyte.gz", TEST,
     "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
]


def read_idx(path):
    plain = path[: -len(".gz")]
    if not os.path.exists(path) and os.path.exists(plain):
        path = plain
    with open(path, "rb") as f:
        raw = f.read()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def cut(idx, n):
    """The first n examples of an unsigned-byte IDX array."""
    zero, code, ndim = struct.unpack(">HBB", idx[:4])
    if zero != 0 or code != 0x08:
        sys.exit("not an unsigned-byte IDX file")
    dims = list(struct.unpack(f">{ndim}I", idx[4 : 4 + 4 * ndim]))
    if dims[0] < n:
        sys.exit(f"expected at least {n} examples, found {dims[0]}")
    per_example = 1
    for d in dims[1:]:
        per_example *= d
    header = idx[:4] + struct.pack(f">{ndim}I", n, *dims[1:])
    body = idx[4 + 4 * ndim :][: n * per_example]
    return header + body


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) == 3 else here
    os.makedirs(out, exist_ok=True)
    expected = {}
    with open(os.path.join(here, "SHA256SUMS")) as f:
        for line in f:
            digest, name = line.split()
            expected[name] = digest
    ok = True
    for name, n, source_digest in FILES:
        idx = read_idx(os.path.join(src, name))
        if hashlib.sha256(idx).hexdigest() != source_digest:
            sys.exit(f"{os.path.join(src, name)} is not the standard MNIST file")
        data = gzip.compress(cut(idx, n), 9, mtime=0)
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        digest = hashlib.sha256(data).hexdigest()
        same = expected.get(name) == digest
        ok &= same
        print(f"{digest}  {name}  {'ok' if same else 'DIFFERS from SHA256SUMS'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
