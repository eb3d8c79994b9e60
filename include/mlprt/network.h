#pragma once
/// @file network.h
/// A model imported into mlprt's graph IR, ready to be built into an engine.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt {

namespace ir {
struct Graph;
}

/// Owns an imported graph. Not copyable; not thread-safe to mutate, safe to read from threads.
class Network {
 public:
  /// Parses an ONNX model file. Errors name the node, op and opset at fault.
  static Result<std::unique_ptr<Network>> from_onnx_file(const std::filesystem::path& path);
  /// Parses an in-memory ONNX model; `source_name` is used in messages.
  static Result<std::unique_ptr<Network>> from_onnx_bytes(std::span<const uint8_t> bytes,
                                                          const std::string& source_name);

  explicit Network(std::unique_ptr<ir::Graph> graph);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  [[nodiscard]] const std::string& name() const;
  /// Graph inputs (not initializers), dynamic dims as -1.
  [[nodiscard]] std::vector<TensorDesc> inputs() const;
  [[nodiscard]] std::vector<TensorDesc> outputs() const;

  /// The IR; for mlprt's own stages.
  [[nodiscard]] const ir::Graph& graph() const noexcept { return *m_graph; }
  /// Hands the IR over (for a build that consumes the network); the network is then empty
  /// and may only be destroyed.
  [[nodiscard]] std::unique_ptr<ir::Graph> take_graph() && noexcept;

 private:
  std::unique_ptr<ir::Graph> m_graph;
};

}  // namespace mlprt
