#!/usr/bin/env bash
# The whole tutorial workflow on the CPU: install (Debian packages, then the Python package mlprt
# into .venv/), train, export, build a static and a dynamic engine (profiles 1/32/64 and
# 65/128/256) with mlprt's Python API, run the test set through them at several batch sizes,
# print accuracy beside PyTorch's and the latency per batch size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh

step() { printf '\n== %s\n' "$*"; }
export PYTHONPATH=$PWD/python
work=work
mkdir -p "$work"

step "build and install the Python package mlprt into .venv (pip install .)"
scripts/install_python.sh
py=.venv/bin/python

step "train the MLP 784 -> 32 -> ReLU -> 10 on Fashion-MNIST"
$py -m mlprt_tools.train --out "$work/model.pth"

step "export ONNX, static batch and dynamic batch"
static_batch=1
$py -m mlprt_tools.export --pth "$work/model.pth" --batch "$static_batch" \
  --static "$work/model_static.onnx" --dynamic "$work/model_dynamic.onnx"

step "build the engines with mlprt's Python API: static, and dynamic with profile 0 = 1/32/64, profile 1 = 65/128/256"
$py scripts/demo_build.py --static-onnx "$work/model_static.onnx" --static-plan "$work/static.plan" \
  --static-batch "$static_batch" --dynamic-onnx "$work/model_dynamic.onnx" \
  --dynamic-plan "$work/dynamic.plan" --timing-cache "$work/timing_cache.json"

step "run the test set through the engines (execution context, infer on torch tensors)"
$py -m mlprt_tools.data --export-npy "$work" --pth "$work/model.pth"
$py scripts/demo_report.py --pth "$work/model.pth" \
  --images "$work/test_images.npy" --labels "$work/test_labels.npy" \
  --static-plan "$work/static.plan" --static-batch "$static_batch" \
  --dynamic-plan "$work/dynamic.plan" --batches 1,32,64,128,256
