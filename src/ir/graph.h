#pragma once
// mlprt's graph IR: named tensors with dtypes and (possibly symbolic) shapes, nodes, constants.
//
// The importer produces ONNX-semantics nodes ("Gemm", "MatMul", "Add", ...). The passes rewrite
// them into the small set of layer ops that backends and the runtime implement (see
// kLayerOps in passes/passes.h). The same structure is serialized into the plan.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mlprt/tensor.h"

namespace mlprt::ir {

/// One dimension: a known size (value >= 0) or a symbolic one (value == -1, symbol may name it,
/// e.g. "batch"; an empty symbol is an anonymous unknown).
struct Dim {
  int64_t value = -1;
  std::string symbol;
  [[nodiscard]] bool is_static() const noexcept { return value >= 0; }
  friend bool operator==(const Dim&, const Dim&) = default;
};
using Shape = std::vector<Dim>;

/// Public Dims (-1 = dynamic) from an IR shape, and back.
Dims to_dims(const Shape& shape);
Shape from_dims(const Dims& dims);
std::string to_string(const Shape& shape);  // "batchx784"
using mlprt::to_string;                     // Dims, DataType: not hidden by the above

struct TensorInfo {
  std::string name;
  DataType dtype = DataType::kFloat32;
  Shape shape;
};

/// A constant tensor (initializer, folded Constant, packed weight). Row-major, dense.
struct Constant {
  DataType dtype = DataType::kFloat32;
  Dims dims;
  std::vector<std::byte> data;
  [[nodiscard]] int64_t num_elements() const;
  /// Values converted to double (for folding and reference evaluation).
  [[nodiscard]] std::vector<double> to_doubles() const;
  /// Element i (row-major) converted to double, without converting the rest.
  [[nodiscard]] double value_at(size_t i) const;
  [[nodiscard]] std::vector<int64_t> to_int64s() const;
  static Constant from_floats(Dims dims, const std::vector<float>& values);
  static Constant from_int64s(Dims dims, const std::vector<int64_t>& values);
};

using AttributeValue = std::variant<int64_t, double, std::string, std::vector<int64_t>,
                                    std::vector<double>, std::vector<std::string>, Constant>;

struct Node {
  std::string name;
  std::string op;  ///< ONNX op type before the passes; layer op after them
  std::vector<std::string> inputs;   ///< "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::map<std::string, AttributeValue> attributes;

  [[nodiscard]] bool has_attribute(const std::string& key) const;
  [[nodiscard]] int64_t get_int(const std::string& key, int64_t fallback) const;
  [[nodiscard]] double get_float(const std::string& key, double fallback) const;
  [[nodiscard]] std::string get_string(const std::string& key, const std::string& fallback) const;
  [[nodiscard]] std::vector<int64_t> get_ints(const std::string& key) const;  // empty if absent
};

struct Graph {
  std::string name;
  std::string source;         ///< file it came from, for messages
  int64_t opset = 0;          ///< default-domain opset
  int64_t ir_version = 0;
  std::string producer;       ///< e.g. "pytorch 1.13.1"
  /// kFloat16 / kBFloat16 for a strongly typed model (its float initializers or I/O have that
  /// type; the builder runs its layers in it); kFloat32 otherwise. Build-time only: plans keep
  /// each layer's chosen precision instead.
  DataType model_precision = DataType::kFloat32;
  std::vector<TensorInfo> inputs;   ///< runtime inputs only (never initializers)
  std::vector<TensorInfo> outputs;
  std::map<std::string, Constant> constants;  ///< initializers and folded values by tensor name
  std::vector<Node> nodes;                    ///< topologically sorted

  [[nodiscard]] bool is_constant(const std::string& tensor) const {
    return constants.count(tensor) != 0;
  }
  [[nodiscard]] const Constant* find_constant(const std::string& tensor) const;
  [[nodiscard]] const TensorInfo* find_input(const std::string& tensor) const;
  /// Index of the node producing `tensor`, or nullopt for graph inputs and constants.
  [[nodiscard]] std::optional<size_t> producer_of(const std::string& tensor) const;
  /// Number of node inputs and graph outputs that read `tensor`.
  [[nodiscard]] size_t use_count(const std::string& tensor) const;
};

}  // namespace mlprt::ir
