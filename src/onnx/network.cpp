#include "mlprt/network.h"

#include "common/check.h"
#include "ir/graph.h"
#include "onnx/onnx_importer.h"

namespace mlprt {
namespace {

std::vector<TensorDesc> describe(const std::vector<ir::TensorInfo>& tensors, TensorIOMode mode) {
  std::vector<TensorDesc> out;
  out.reserve(tensors.size());
  for (const ir::TensorInfo& t : tensors) out.push_back({t.name, mode, t.dtype, ir::to_dims(t.shape)});
  return out;
}

Result<std::unique_ptr<Network>> wrap(Result<ir::Graph> graph) {
  if (!graph.is_ok()) return graph.status();
  try {
    return std::make_unique<Network>(std::make_unique<ir::Graph>(std::move(graph).value()));
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kInternal, "out of memory while creating the network");
  }
}

}  // namespace

Result<std::unique_ptr<Network>> Network::from_onnx_file(const std::filesystem::path& path) {
  return wrap(onnx_import::import_onnx_file(path));
}

Result<std::unique_ptr<Network>> Network::from_onnx_bytes(std::span<const uint8_t> bytes,
                                                          const std::string& source_name) {
  return wrap(onnx_import::import_onnx_bytes(bytes, source_name));
}

Network::Network(std::unique_ptr<ir::Graph> graph) : m_graph(std::move(graph)) {}

std::unique_ptr<ir::Graph> Network::take_graph() && noexcept { return std::move(m_graph); }
Network::~Network() = default;

const std::string& Network::name() const { return m_graph->name; }

std::vector<TensorDesc> Network::inputs() const {
  return describe(m_graph->inputs, TensorIOMode::kInput);
}

std::vector<TensorDesc> Network::outputs() const {
  return describe(m_graph->outputs, TensorIOMode::kOutput);
}

}  // namespace mlprt
