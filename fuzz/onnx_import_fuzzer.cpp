// libFuzzer target for the ONNX importer: bytes -> import_onnx_bytes; when the import succeeds,
// a small fixed-shape profile -> build (optimize + cpu compile) -> load -> one run on zeros.
// Models that would be slow rather than wrong (large constants or inputs) stop after import.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "ir/graph.h"
#include "mlprt/builder.h"
#include "mlprt/engine.h"
#include "mlprt/logger.h"
#include "mlprt/network.h"
#include "onnx/onnx_importer.h"

namespace {

constexpr size_t kMaxConstantBytes = 4u << 20;  // all constants together
constexpr int64_t kMaxInputElements = 1 << 16;  // per input, after dynamic dims are set
constexpr int64_t kDynamicDimSize = 2;

bool small_enough(const mlprt::ir::Graph& graph, std::map<std::string, mlprt::Dims>& shapes) {
  size_t constant_bytes = 0;
  for (const auto& [name, c] : graph.constants) constant_bytes += c.data.size();
  if (constant_bytes > kMaxConstantBytes) return false;
  for (const mlprt::ir::TensorInfo& input : graph.inputs) {
    mlprt::Dims dims;
    int64_t elements = 1;
    for (const mlprt::ir::Dim& d : input.shape) {
      const int64_t size = d.is_static() ? d.value : kDynamicDimSize;
      if (size > kMaxInputElements) return false;
      elements *= std::max<int64_t>(size, 1);
      if (elements > kMaxInputElements) return false;
      dims.push_back(size);
    }
    shapes[input.name] = dims;
  }
  return true;
}

void build_and_run(mlprt::ir::Graph graph, const std::map<std::string, mlprt::Dims>& shapes) {
  mlprt::Network network(std::make_unique<mlprt::ir::Graph>(std::move(graph)));
  mlprt::BuilderConfig config;
  config.backend = "cpu";
  config.optimization_level = 0;  // no tactic timing: the fuzzer exercises import and run
  mlprt::OptimizationProfile profile;
  for (const auto& [name, dims] : shapes) {
    if (!profile.set_dimensions(name, {dims, dims, dims})) return;
  }
  config.profiles.push_back(profile);
  auto plan = mlprt::build_serialized_engine(network, config);
  if (!plan) return;
  auto engine = mlprt::Engine::load(plan->bytes, "fuzz");
  if (!engine) return;
  auto context = (*engine)->create_execution_context();
  if (!context) return;
  std::map<std::string, std::vector<float>> buffers;
  for (const auto& [name, dims] : shapes) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    buffers[name].assign(static_cast<size_t>(n), 0.0f);
    if (!(*context)->set_input_shape(name, dims)) return;
    if (!(*context)->set_tensor_address(name, buffers[name].data())) return;
  }
  (void)(*context)->enqueue();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  mlprt::set_log_severity(mlprt::Severity::kError);
  mlprt::set_log_callback([](mlprt::Severity, std::string_view) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto graph = mlprt::onnx_import::import_onnx_bytes(std::span(data, size), "fuzz.onnx");
  if (!graph) return 0;
  std::map<std::string, mlprt::Dims> shapes;
  if (!small_enough(*graph, shapes)) return 0;
  build_and_run(std::move(*graph), shapes);
  return 0;
}
