// tensor.h: DataType and TensorIOMode, with TensorRT's Python member names.
#include "bindings.h"
#include "io_mode.h"

namespace mlprt::python {

void bind_tensor(nb::module_& m) {
  nb::enum_<DataType>(m, "DataType", nb::is_arithmetic(),
                      "Element type of a tensor. TensorRT's names; `mlprt.float32` etc. are "
                      "aliases, `mlprt.nptype(t)` the numpy type.")
      .value("FLOAT", DataType::kFloat32, "32-bit IEEE float")
      .value("HALF", DataType::kFloat16, "16-bit IEEE float")
      .value("BF16", DataType::kBFloat16, "bfloat16 (8-bit exponent, 7-bit mantissa)")
      .value("DOUBLE", DataType::kFloat64, "64-bit IEEE float (graph constants, references)")
      .value("INT64", DataType::kInt64)
      .value("INT32", DataType::kInt32)
      .value("INT8", DataType::kInt8)
      .value("UINT8", DataType::kUInt8)
      .value("BOOL", DataType::kBool);
  nb::enum_<IOMode>(m, "TensorIOMode", nb::is_arithmetic(),
                    "Whether an engine's tensor is an input or an output.")
      .value("NONE", IOMode::kNone, "not an I/O tensor of the engine")
      .value("INPUT", IOMode::kInput)
      .value("OUTPUT", IOMode::kOutput);
}

}  // namespace mlprt::python
