"""PyTorch's predictions for a .pth, and how an engine's outputs compare with them.

    python3 -m mlprt_tools.predict --pth work/model.pth --images work/test_images.npy \\
        --labels work/test_labels.npy [--logits work/torch_logits.npy] \\
        [--compare work/engine_b32.npy ...] [--require-top1-match] [--json]

Prints PyTorch's accuracy and, for each --compare file (logits from the engine, shape [N, classes]),
its accuracy, how many images have the same top-1 class as PyTorch, and the max abs difference.
With --require-top1-match the exit status is 1 when any compared file disagrees on any image.
"""

import argparse
import json
import sys

import numpy as np
import torch

from .atomic import save_npy
from .model import CheckpointError, load_model

BATCH = 4096


def torch_logits(model, images):
    """float32 logits [N, classes] of ``model`` (eval mode) on float32 images [N, ...]."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), BATCH):
            outputs.append(model(torch.from_numpy(images[start:start + BATCH])).numpy())
    if not outputs:
        return np.zeros((0, model[-1].out_features), dtype=np.float32)
    return np.concatenate(outputs)


def accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, axis=1) == labels)) if len(labels) else 0.0


def compare_logits(reference, other, labels=None):
    """Top-1 agreement of ``other`` with ``reference`` and the indices where they differ."""
    if other.shape != reference.shape:
        raise ValueError(f"logits of shape {list(other.shape)}, PyTorch's are "
                         f"{list(reference.shape)}")
    ref_top1, other_top1 = reference.argmax(axis=1), other.argmax(axis=1)
    mismatches = np.nonzero(ref_top1 != other_top1)[0]
    result = {
        "count": int(len(reference)),
        "top1_agree": int(len(reference) - len(mismatches)),
        "mismatch_indices": [int(i) for i in mismatches[:20]],
        "max_abs_diff": float(np.max(np.abs(other.astype(np.float64) - reference)))
        if reference.size else 0.0,
    }
    if labels is not None:
        result["accuracy"] = accuracy(other, labels)
    return result


def _load_npy(path, what):
    try:
        return np.load(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the {what} .npy ({e})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m mlprt_tools.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pth", required=True, help="checkpoint, e.g. work/model.pth")
    parser.add_argument("--images", required=True, help="float32 [N, 784] .npy from mlprt_tools.data")
    parser.add_argument("--labels", default=None, help="int64 [N] .npy; enables accuracy")
    parser.add_argument("--logits", default=None, help="write PyTorch's float32 logits here")
    parser.add_argument("--compare", action="append", default=[], metavar="LOGITS_NPY",
                        help="engine output to compare with PyTorch's, repeatable")
    parser.add_argument("--require-top1-match", action="store_true",
                        help="exit 1 unless every --compare file has PyTorch's top-1 everywhere")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)
    try:
        model, _ = load_model(args.pth)
        images = _load_npy(args.images, "images")
        labels = _load_npy(args.labels, "labels") if args.labels else None
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{args.images} holds {len(images)} images but {args.labels} holds "
                             f"{len(labels)} labels")
        logits = torch_logits(model, images)
        if args.logits:
            save_npy(args.logits, logits)
        report = {"pytorch": {"count": int(len(images))}, "compare": {}}
        if labels is not None:
            report["pytorch"]["accuracy"] = accuracy(logits, labels)
        for path in args.compare:
            other = _load_npy(path, "engine output")
            try:
                report["compare"][path] = compare_logits(logits, other, labels)
            except ValueError as e:
                raise ValueError(f"{path}: {e}")
    except (CheckpointError, ValueError, OSError, RuntimeError) as e:
        print(f"mlprt_tools.predict: error: {e}", file=sys.stderr)
        return 1

    if args.json:
        print(json.dumps(report))
    else:
        if labels is not None:
            print(f"pytorch: accuracy {100 * report['pytorch']['accuracy']:.2f}% "
                  f"on {len(images)} images")
        for path, r in report["compare"].items():
            acc = f"accuracy {100 * r['accuracy']:.2f}%, " if "accuracy" in r else ""
            where = (f", first mismatches at {r['mismatch_indices']}"
                     if r["mismatch_indices"] else "")
            print(f"{path}: {acc}top-1 agrees with PyTorch on {r['top1_agree']}/{r['count']} "
                  f"images, max abs diff {r['max_abs_diff']:.3e}{where}")
    if args.require_top1_match and any(r["top1_agree"] != r["count"]
                                       for r in report["compare"].values()):
        print("mlprt_tools.predict: error: an engine output disagrees with PyTorch's top-1",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
