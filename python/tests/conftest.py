import gzip
import os
import struct
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mlprt_tools import data  # noqa: E402


def write_idx(path, magic, dims, payload, compress=True):
    """Write an idx file by hand: big-endian magic, big-endian dims, raw bytes."""
    raw = struct.pack(">I", magic) + struct.pack(">" + "I" * len(dims), *dims) + bytes(payload)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(raw)


@pytest.fixture
def tiny_dataset(tmp_path):
    """A 3-image 'test' split with known pixels and labels in the Fashion-MNIST file names."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    labels = np.array([9, 0, 4], dtype=np.uint8)
    images_path, labels_path = data.split_paths("test", str(tmp_path))
    write_idx(images_path, data.IMAGE_MAGIC, [3, 28, 28], pixels.tobytes())
    write_idx(labels_path, data.LABEL_MAGIC, [3], labels.tobytes())
    return {"dir": str(tmp_path), "pixels": pixels, "labels": labels,
            "images_path": images_path, "labels_path": labels_path}
