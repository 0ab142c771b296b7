"""Fashion-MNIST from Debian's dataset-fashion-mnist (official idx files, MIT licence)."""
import gzip
import os
import struct

import numpy as np

ROOT = "/usr/share/datasets/fashion-mnist"


def _read_idx(path):
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found: install it with 'apt-get install -y dataset-fashion-mnist'")
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(os.path.join(ROOT, f"{prefix}-images-idx3-ubyte.gz"))
    labels = _read_idx(os.path.join(ROOT, f"{prefix}-labels-idx1-ubyte.gz"))
    return images, labels
