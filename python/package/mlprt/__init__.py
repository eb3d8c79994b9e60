"""mlprt: an inference runtime for multi-layer perceptrons.

The C++ engine, its builder and its ONNX importer, for Python. Names follow TensorRT's Python
API, so a TensorRT script runs with ``import mlprt as trt``; ``infer`` is mlprt's own short way:

    import mlprt
    engine = mlprt.Engine.load_file("model.plan")
    logits = engine.infer({"input": x})["output"]      # x: numpy, torch (CPU/GPU), DLPack

Building (as TensorRT):

    logger = mlprt.Logger(mlprt.Logger.INFO)
    builder = mlprt.Builder(logger)
    network = builder.create_network()
    parser = mlprt.OnnxParser(network, logger)
    parser.parse_from_file("model_dynamic.onnx")
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 784), (32, 784), (64, 784))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)

Every error is an ``mlprt.Error`` (subclasses: ShapeError, ModelError, PlanError,
UnsupportedError, InvalidArgumentError, NotFoundError, IoError) with mlprt's message.
"""

import math as _math

from ._mlprt import *  # noqa: F401,F403  (the bindings: one file per C++ header)
from ._mlprt import (DataType, ICudaEngine, IExecutionContext, INetworkDefinition,
                     UnsupportedError, __version__)

# mlprt's own names for the classes TensorRT calls I*.
Engine = ICudaEngine
ExecutionContext = IExecutionContext
Network = INetworkDefinition

# TensorRT's module-level dtype aliases.
float32 = DataType.FLOAT
float16 = DataType.HALF
bfloat16 = DataType.BF16
float64 = DataType.DOUBLE
int64 = DataType.INT64
int32 = DataType.INT32
int8 = DataType.INT8
uint8 = DataType.UINT8
bool = DataType.BOOL  # noqa: A001  (TensorRT's name)

_NUMPY_NAMES = {
    DataType.FLOAT: "float32", DataType.HALF: "float16", DataType.DOUBLE: "float64",
    DataType.INT64: "int64", DataType.INT32: "int32", DataType.INT8: "int8",
    DataType.UINT8: "uint8", DataType.BOOL: "bool",
}
_ITEMSIZE = {DataType.FLOAT: 4, DataType.HALF: 2, DataType.BF16: 2, DataType.DOUBLE: 8,
             DataType.INT64: 8, DataType.INT32: 4, DataType.INT8: 1, DataType.UINT8: 1,
             DataType.BOOL: 1}
DataType.itemsize = property(lambda self: _ITEMSIZE[self], doc="Bytes per element.")


def nptype(dtype):
    """The numpy type of an mlprt.DataType (TypeError for bfloat16, which numpy lacks)."""
    import numpy as np
    name = _NUMPY_NAMES.get(dtype)
    if name is None:
        raise TypeError(f"{dtype} has no numpy type")
    return np.dtype(name).type


def volume(shape):
    """Number of elements of a shape (tuple, list, torch.Size); -1 dims give a negative count,
    as TensorRT's volume does."""
    return _math.prod(int(d) for d in shape)


def _unsupported(message):
    error = UnsupportedError(message)
    error.code = "unsupported"
    return error


def get_plugin_registry():
    """Plugins are not supported: mlprt runs the ops its importer knows."""
    raise _unsupported("plugins: mlprt has no plugin registry; every op is built in "
                       "(see tests/conformance/results.md)")


def init_libnvinfer_plugins(*args, **kwargs):
    """Accepted for TensorRT scripts that call it whatever their model: mlprt has no plugins
    (every op is built in), so it registers nothing, warns, and returns True."""
    import warnings
    warnings.warn("init_libnvinfer_plugins: mlprt has no plugins; nothing to register",
                  stacklevel=2)
    return True


class _Int8Calibrator:
    """INT8 calibration is not supported: mlprt has no INT8 kernels. Build with FP16, BF16 or
    TF32 instead."""

    def __init__(self, *args, **kwargs):
        raise _unsupported(f"{type(self).__name__}: mlprt has no INT8 kernels or calibration; "
                           "build with BuilderFlag.FP16, BF16 or TF32")


class IInt8Calibrator(_Int8Calibrator):
    __doc__ = _Int8Calibrator.__doc__


class IInt8EntropyCalibrator(IInt8Calibrator):
    __doc__ = _Int8Calibrator.__doc__


class IInt8EntropyCalibrator2(IInt8Calibrator):
    __doc__ = _Int8Calibrator.__doc__


class IInt8MinMaxCalibrator(IInt8Calibrator):
    __doc__ = _Int8Calibrator.__doc__


class IInt8LegacyCalibrator(IInt8Calibrator):
    __doc__ = _Int8Calibrator.__doc__
