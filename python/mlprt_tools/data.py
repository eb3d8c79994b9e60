"""Fashion-MNIST from Debian's dataset-fashion-mnist: idx .gz reader, preprocessing, .npy export.

    python3 -m mlprt_tools.data --export-npy work     # work/test_images.npy, work/test_labels.npy
    python3 -m mlprt_tools.data --export-npy work --split train --limit 1000
"""

import argparse
import gzip
import os
import struct
import sys

import numpy as np

from .atomic import save_npy

DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"
DATA_DIR_ENV = "MLPRT_FASHION_MNIST_DIR"
INSTALL_HINT = "install it with: sudo apt-get install dataset-fashion-mnist"

IMAGE_MAGIC = 0x00000803  # unsigned byte, 3 dims
LABEL_MAGIC = 0x00000801  # unsigned byte, 1 dim
IMAGE_ROWS = 28
IMAGE_COLS = 28
INPUT_SIZE = IMAGE_ROWS * IMAGE_COLS
NUM_CLASSES = 10
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

SPLIT_PREFIX = {"train": "train", "test": "t10k"}

# The engine must be fed exactly what the model saw: this dict is saved in every .pth.
DEFAULT_PREPROCESS = {
    "source": "Fashion-MNIST idx, 28x28 uint8 pixels",
    "layout": "row-major 28x28 pixels flattened to 784; input shape [batch, 784]",
    "dtype": "float32",
    "scale": 1.0 / 255.0,
    "offset": 0.0,
    "formula": "x = pixel * scale + offset",
}


class DatasetError(RuntimeError):
    """A dataset file is missing or malformed; the message names the file."""


def data_dir():
    return os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR)


def split_paths(split, directory=None):
    """Return (images_path, labels_path) of a split ("train" or "test")."""
    if split not in SPLIT_PREFIX:
        raise ValueError(f"unknown split '{split}': allowed are {sorted(SPLIT_PREFIX)}")
    directory = directory or data_dir()
    prefix = SPLIT_PREFIX[split]
    return (os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"),
            os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"))


def _read_bytes(path):
    if not os.path.exists(path):
        raise DatasetError(f"{path}: file not found; Fashion-MNIST comes from Debian's "
                           f"dataset-fashion-mnist package, {INSTALL_HINT} "
                           f"(or set {DATA_DIR_ENV} to a folder holding the idx .gz files)")
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path}: not a readable gzip file ({e}); the file is damaged, "
                           f"reinstall it: sudo apt-get install --reinstall dataset-fashion-mnist")


def read_idx(path, expected_magic):
    """Read one idx file as a uint8 array, checking its magic number and its size."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DatasetError(f"{path}: {len(raw)} bytes, too short for an idx header")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != expected_magic:
        raise DatasetError(f"{path}: magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                           f"(idx, unsigned bytes, {expected_magic & 0xFF} dims)")
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DatasetError(f"{path}: {len(raw)} bytes, too short for an idx header of "
                           f"{ndim} dims ({header_size} bytes)")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header_size])
    expected = header_size + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise DatasetError(f"{path}: {len(raw)} bytes, but the header's dims {list(dims)} "
                           f"need {expected} bytes (file truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def preprocess_images(pixels, preprocess=None):
    """uint8 pixels [N, 28, 28] or [N, 784] -> float32 [N, 784] as the model expects."""
    preprocess = preprocess or DEFAULT_PREPROCESS
    flat = np.asarray(pixels).reshape(len(pixels), -1)
    x = flat.astype(np.float32) * np.float32(preprocess["scale"]) + np.float32(preprocess["offset"])
    return np.ascontiguousarray(x, dtype=np.float32)


def load_split(split, directory=None, preprocess=None, limit=None):
    """Return (images float32 [N, 784], labels int64 [N]) of a split."""
    images_path, labels_path = split_paths(split, directory)
    pixels = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC)
    if pixels.shape[1:] != (IMAGE_ROWS, IMAGE_COLS):
        raise DatasetError(f"{images_path}: images of {list(pixels.shape[1:])} pixels, "
                           f"expected [{IMAGE_ROWS}, {IMAGE_COLS}]")
    if len(pixels) != len(labels):
        raise DatasetError(f"{images_path} holds {len(pixels)} images but {labels_path} "
                           f"holds {len(labels)} labels")
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise DatasetError(f"{labels_path}: label {int(labels.max())} out of range "
                           f"0..{NUM_CLASSES - 1}")
    if limit is not None:
        pixels, labels = pixels[:limit], labels[:limit]
    return preprocess_images(pixels, preprocess), labels.astype(np.int64)


def export_npy(out_dir, split="test", directory=None, limit=None, preprocess=None):
    """Write <out_dir>/<split>_images.npy (float32 [N, 784]) and <split>_labels.npy (int64)."""
    images, labels = load_split(split, directory, preprocess, limit)
    images_out = os.path.join(out_dir, f"{split}_images.npy")
    labels_out = os.path.join(out_dir, f"{split}_labels.npy")
    save_npy(images_out, images)
    save_npy(labels_out, labels)
    return images_out, labels_out, images.shape


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m mlprt_tools.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export-npy", metavar="DIR", required=True,
                        help="folder for <split>_images.npy and <split>_labels.npy, e.g. work")
    parser.add_argument("--split", choices=sorted(SPLIT_PREFIX), default="test")
    parser.add_argument("--limit", type=int, default=None, help="keep the first N images")
    parser.add_argument("--pth", default=None,
                        help="take the preprocessing from this checkpoint, e.g. work/model.pth")
    parser.add_argument("--data-dir", default=None,
                        help=f"idx .gz folder (default ${DATA_DIR_ENV} or {DEFAULT_DATA_DIR})")
    args = parser.parse_args(argv)
    try:
        preprocess = None
        if args.pth:
            from .model import load_checkpoint
            preprocess = load_checkpoint(args.pth)["preprocess"]
        images_out, labels_out, shape = export_npy(args.export_npy, args.split, args.data_dir,
                                                   args.limit, preprocess)
    except (DatasetError, ValueError, OSError) as e:
        print(f"mlprt_tools.data: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {images_out} (float32 {list(shape)}) and {labels_out} (int64 [{shape[0]}])")
    return 0


if __name__ == "__main__":
    sys.exit(main())
