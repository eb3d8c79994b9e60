#!/usr/bin/env python3
"""PyTorch's top-1 of the tutorial checkpoint on the GPU in fp32 and fp16, the side of the
"same accuracy as PyTorch" check that mlprt_gpu_accuracy is compared with.

    PYTHONPATH=python python3 bench/torch_accuracy.py MODEL.pth IMAGES.npy LABELS.npy
"""
import json
import sys

import numpy as np
import torch

from mlprt_tools.model import load_model


def main():
    model, _ = load_model(sys.argv[1])
    images = torch.from_numpy(np.load(sys.argv[2])).cuda()
    labels = torch.from_numpy(np.load(sys.argv[3]).astype(np.int64)).cuda()
    out = {}
    with torch.no_grad():
        for prec, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
            m = model.cuda().to(dtype)
            logits = m(images.to(dtype))
            correct = int((logits.argmax(dim=1) == labels).sum())
            out[prec] = {"n": len(labels), "correct": correct, "top1": 100.0 * correct / len(labels)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
