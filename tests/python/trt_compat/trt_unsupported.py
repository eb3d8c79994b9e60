"""TensorRT calls that mlprt cannot honour must fail loudly, not be ignored.

Each case below is a few lines of an ordinary TensorRT script (INT8 with a calibrator,
plugins, shape-tensor profiles). Run under `import mlprt as trt`, each must raise
mlprt.UnsupportedError, which is also a NotImplementedError, with a message that says mlprt
does not support the feature (it names mlprt, or says 'unsupported' / 'not supported').

    python3 trt_unsupported.py --onnx model.onnx [--case NAME ...]

Prints one PASS/FAIL line per case; exit status 0 when every case passes.
"""

import argparse
import sys
import traceback

import mlprt as trt  # the one line that differs from a TensorRT script: `import tensorrt as trt`

LOGGER = trt.Logger(trt.Logger.ERROR)


def parsed_network(onnx_path):
    builder = trt.Builder(LOGGER)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, LOGGER)
    if not parser.parse_from_file(onnx_path):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"could not parse {onnx_path}: {errors}")
    return builder, network, parser


def int8_flag(onnx_path):
    builder, _, _ = parsed_network(onnx_path)
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.INT8)


def int8_calibrator(onnx_path):
    builder, _, _ = parsed_network(onnx_path)
    config = builder.create_builder_config()

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            return None

        def read_calibration_cache(self):
            return None

        def write_calibration_cache(self, cache):
            pass

    config.int8_calibrator = Calibrator()


def plugin_registry(onnx_path):
    registry = trt.get_plugin_registry()
    registry.plugin_creator_list


def shape_input_profile(onnx_path):
    builder, network, _ = parsed_network(onnx_path)
    profile = builder.create_optimization_profile()
    profile.set_shape_input(network.get_input(0).name, [1], [2], [4])


CASES = {f.__name__: f for f in
         (int8_flag, int8_calibrator, plugin_registry, shape_input_profile)}


def run_case(name, onnx_path):
    """Returns (passed, line)."""
    try:
        CASES[name](onnx_path)
    except Exception as e:  # noqa: BLE001 - the point is to see exactly what was raised
        kind = f"{type(e).__module__}.{type(e).__qualname__}"
        msg = str(e)
        if not isinstance(e, trt.UnsupportedError):
            return False, (f"FAIL {name}: raised {kind}, not mlprt.UnsupportedError: {msg}\n"
                           + traceback.format_exc())
        if not isinstance(e, NotImplementedError):
            return False, f"FAIL {name}: {kind} is not a NotImplementedError: {msg}"
        if "support" not in msg.lower() and "mlprt" not in msg.lower():
            return False, f"FAIL {name}: the message does not say mlprt lacks it: {msg!r}"
        return True, f"PASS {name}: {kind}: {msg}"
    return False, f"FAIL {name}: no error raised"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    args = ap.parse_args()
    failed = 0
    for name in args.case or CASES:
        passed, line = run_case(name, args.onnx)
        print(line)
        failed += not passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
