#!/usr/bin/env python3
"""The demo's engine step, with mlprt's Python API in TensorRT's words: parse each ONNX file,
build a static engine and a dynamic one with two optimization profiles (1/32/64, 65/128/256),
share one timing cache, write the plans, and print what each engine holds."""
import argparse
import json
import os
import sys

import mlprt


def build(onnx_path, plan_path, profiles, cache, logger):
    builder = mlprt.Builder(logger)
    network = builder.create_network(1 << int(mlprt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = mlprt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        sys.exit("demo: " + "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    config.set_timing_cache(cache, ignore_mismatch=False)
    name = network.get_input(0).name
    for lo, opt, hi in profiles:
        profile = builder.create_optimization_profile()
        profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    tmp = plan_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(plan)
    os.replace(tmp, plan_path)
    return plan


def describe(label, plan):
    engine = mlprt.Runtime(mlprt.Logger()).deserialize_cuda_engine(plan)
    info = json.loads(engine.to_json())
    print(f"{label}: {engine.backend} engine, {len(bytes(plan))} bytes, precision {engine.precision}")
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        print(f"  {engine.get_tensor_mode(name).name.lower():<6} {name}: "
              f"{engine.get_tensor_dtype(name).name} {engine.get_tensor_shape(name)}")
    for p in range(engine.num_optimization_profiles):
        lo, opt, hi = engine.get_tensor_profile_shape(engine.get_tensor_name(0), p)
        print(f"  profile {p}: min {lo} opt {opt} max {hi}")
    for layer in info.get("layers", []):
        print(f"  layer {layer.get('name')}: {layer.get('type')} {layer.get('detail', '')} "
              f"[{layer.get('precision')}]")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--static-onnx", required=True)
    parser.add_argument("--static-plan", required=True)
    parser.add_argument("--static-batch", type=int, required=True)
    parser.add_argument("--dynamic-onnx", required=True)
    parser.add_argument("--dynamic-plan", required=True)
    parser.add_argument("--timing-cache", required=True)
    args = parser.parse_args()

    logger = mlprt.Logger(mlprt.Logger.WARNING)
    config = mlprt.Builder(logger).create_builder_config()
    saved = open(args.timing_cache, "rb").read() if os.path.exists(args.timing_cache) else b""
    cache = config.create_timing_cache(saved)
    static = build(args.static_onnx, args.static_plan, [], cache, logger)
    dynamic = build(args.dynamic_onnx, args.dynamic_plan,
                    [((1, 784), (32, 784), (64, 784)), ((65, 784), (128, 784), (256, 784))],
                    cache, logger)
    tmp = args.timing_cache + ".tmp"
    with open(tmp, "wb") as f:
        f.write(cache.serialize())
    os.replace(tmp, args.timing_cache)
    describe(f"static engine ({args.static_plan})", static)
    describe(f"dynamic engine ({args.dynamic_plan})", dynamic)


if __name__ == "__main__":
    main()
