"""Export a trained .pth to ONNX, static and dynamic batch, and check both against PyTorch.

    python3 -m mlprt_tools.export --pth work/model.pth \\
        --static work/model_static.onnx --dynamic work/model_dynamic.onnx [--batch 1] [--opset 13]

The model is rebuilt from the checkpoint's own arch. Each file is checked with onnx.checker and
run with the float64 reference (mlprt_tools.reference) on real test images; the maximum absolute
difference to PyTorch's float32 output is printed, and a difference above the tolerance fails.
"""

import argparse
import sys
import warnings

import numpy as np
import onnx
import torch

from . import data
from .atomic import atomic_path
from .model import CheckpointError, load_model
from .reference import OnnxReferenceError, run_onnx_float64

INPUT_NAME = "input"
OUTPUT_NAME = "output"
BATCH_DIM_NAME = "batch"
MIN_OPSET = 11
MAX_OPSET = 17  # the newest torch 1.13 exports
# PyTorch computes in float32; against float64 only float32 rounding should remain.
MAX_REL_L2 = 1e-5
DYNAMIC_CHECK_IMAGES = 1000


class ExportError(RuntimeError):
    """Export produced a model that fails the checker or disagrees with PyTorch."""


def export_onnx(model, path, input_size, batch, opset, dynamic, label=None):
    """torch.onnx.export to ``path`` (not atomic: callers write a temp file), then onnx.checker."""
    dummy = torch.zeros(batch, input_size, dtype=torch.float32)
    dynamic_axes = ({INPUT_NAME: {0: BATCH_DIM_NAME}, OUTPUT_NAME: {0: BATCH_DIM_NAME}}
                    if dynamic else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's exporter warns about things we do not use
        torch.onnx.export(model, dummy, path, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=opset,
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"{label or path}: onnx.checker rejected the exported model: {e}")


def rel_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.asarray(actual, dtype=np.float64) - expected
    return float(np.linalg.norm(diff) / max(np.linalg.norm(expected), np.finfo(np.float64).tiny))


def compare_with_torch(model, path, images, label=None):
    """Run ``path`` in float64 and ``model`` in float32 on ``images``; returns a stats dict."""
    label = label or path
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    actual = run_onnx_float64(path, {INPUT_NAME: images})[OUTPUT_NAME]
    if actual.shape != expected.shape:
        raise ExportError(f"{label}: output shape {list(actual.shape)}, PyTorch gives "
                          f"{list(expected.shape)}")
    stats = {
        "images": len(images),
        "max_abs_diff": float(np.max(np.abs(actual - expected))) if actual.size else 0.0,
        "rel_l2": rel_l2(expected, actual),
        "top1_agree": int(np.sum(actual.argmax(axis=1) == expected.argmax(axis=1))),
    }
    if not stats["rel_l2"] <= MAX_REL_L2:
        raise ExportError(f"{label}: differs from PyTorch on {len(images)} test images: rel L2 "
                          f"{stats['rel_l2']:.3e} > {MAX_REL_L2:.0e}, max abs diff "
                          f"{stats['max_abs_diff']:.3e}")
    return stats


def export_checkpoint(pth, static_path, dynamic_path, batch=1, opset=13, data_dir=None, log=print):
    """Export one or both files from ``pth`` and check each; returns {path: stats}."""
    model, checkpoint = load_model(pth)
    arch = checkpoint["arch"]
    images, _ = data.load_split("test", data_dir, checkpoint["preprocess"],
                                limit=max(batch, DYNAMIC_CHECK_IMAGES))
    if images.shape[1] != arch["input_size"]:
        raise ExportError(f"{pth}: model input size {arch['input_size']} but the test images have "
                          f"{images.shape[1]} values")
    results = {}
    for path, dynamic in ((static_path, False), (dynamic_path, True)):
        if not path:
            continue
        check_images = images if dynamic else images[:batch]
        with atomic_path(path) as tmp:  # a model that fails a check is never left at ``path``
            export_onnx(model, tmp, arch["input_size"], batch, opset, dynamic, label=path)
            stats = compare_with_torch(model, tmp, check_images, label=path)
        results[path] = stats
        kind = f"dynamic batch '{BATCH_DIM_NAME}'" if dynamic else f"static batch {batch}"
        log(f"wrote {path} ({kind}, opset {opset}): checker ok; vs PyTorch on {stats['images']} "
            f"test images: max abs diff {stats['max_abs_diff']:.3e}, rel L2 {stats['rel_l2']:.3e}, "
            f"top-1 agrees {stats['top1_agree']}/{stats['images']}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m mlprt_tools.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pth", required=True,
                        help="checkpoint from mlprt_tools.train, e.g. work/model.pth")
    parser.add_argument("--static", default=None,
                        help="static-batch ONNX to write, e.g. work/model_static.onnx")
    parser.add_argument("--dynamic", default=None,
                        help="dynamic-batch ONNX to write, e.g. work/model_dynamic.onnx")
    parser.add_argument("--batch", type=int, default=1, help="batch of the static file (default 1)")
    parser.add_argument("--opset", type=int, default=13, help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET}")
    parser.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST idx .gz files")
    args = parser.parse_args(argv)
    if not args.static and not args.dynamic:
        parser.error("give --static PATH, --dynamic PATH or both")
    if args.batch < 1:
        parser.error(f"--batch must be >= 1, got {args.batch}")
    if not MIN_OPSET <= args.opset <= MAX_OPSET:
        parser.error(f"--opset {args.opset}: allowed are {MIN_OPSET}..{MAX_OPSET}")
    try:
        export_checkpoint(args.pth, args.static, args.dynamic, args.batch, args.opset,
                          args.data_dir)
    except (CheckpointError, ExportError, OnnxReferenceError, data.DatasetError, OSError) as e:
        print(f"mlprt_tools.export: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
