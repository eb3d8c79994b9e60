#!/usr/bin/env bash
# The whole tutorial workflow on the CPU: install, build, train, export, build a static and a
# dynamic engine (profiles 1/32/64 and 65/128/256), run the test set through them at several
# batch sizes, print accuracy beside PyTorch's and the latency per batch size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh

step() { printf '\n== %s\n' "$*"; }
py=/usr/bin/python3
export PYTHONPATH=$PWD/python
work=work
mkdir -p "$work"

step "build mlprt"
cmake --preset release > /dev/null
cmake --build --preset release -j "$(nproc)" --target mlprt_cli
mlprt=build/release/tools/mlprt/mlprt

step "train the MLP 784 -> 32 -> ReLU -> 10 on Fashion-MNIST"
$py -m mlprt_tools.train --out "$work/model.pth"

step "export ONNX, static batch and dynamic batch"
static_batch=1
$py -m mlprt_tools.export --pth "$work/model.pth" --batch "$static_batch" \
  --static "$work/model_static.onnx" --dynamic "$work/model_dynamic.onnx"

step "build the static engine"
$mlprt build --onnx="$work/model_static.onnx" --saveEngine="$work/static.plan"

step "build the dynamic engine: profile 0 = 1/32/64, profile 1 = 65/128/256"
$mlprt build --onnx="$work/model_dynamic.onnx" --saveEngine="$work/dynamic.plan" \
  --minShapes=input:1x784 --optShapes=input:32x784 --maxShapes=input:64x784 \
  --minShapes=input:65x784 --optShapes=input:128x784 --maxShapes=input:256x784

step "inspect the dynamic engine"
$mlprt inspect --loadEngine="$work/dynamic.plan"

step "run the test set through the engines"
$py -m mlprt_tools.data --export-npy "$work" --pth "$work/model.pth"
$py scripts/demo_report.py --mlprt "$mlprt" --pth "$work/model.pth" \
  --images "$work/test_images.npy" --labels "$work/test_labels.npy" \
  --static-plan "$work/static.plan" --static-batch "$static_batch" \
  --dynamic-plan "$work/dynamic.plan" --batches 1,32,64,128,256 --workdir "$work"
