#include "backends/cuda/cuda_engine_timing.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/cuda_tactic_timer.h"
#include "common/check.h"
#include "mlprt/tensor.h"

namespace mlprt::backend::cuda {
namespace {

Result<DeviceBuffer> tensor_buffer(const std::string& name, ElemType type,
                                   const ir::ShapeMap& shapes, cudaStream_t stream, bool fill) {
  auto it = shapes.find(name);
  if (it == shapes.end()) {
    return make_error(StatusCode::kInternal, "timing an engine: no shape for tensor '", name, "'");
  }
  MLPRT_ASSIGN_OR_RETURN(const int64_t elements, volume(it->second));
  DeviceBuffer buffer;
  const size_t bytes = static_cast<size_t>(elements) * (type == ElemType::kF32 ? 4 : 2);
  MLPRT_RETURN_IF_ERROR(buffer.reserve(std::max<size_t>(bytes, 16), "engine timing '" + name + "'"));
  if (fill) {
    MLPRT_CUDA_TRY(launch_fill_pattern(buffer.get(), type, elements, 11, stream), "fill");
  }
  return buffer;
}

// FNV-1a, 64 bits: stable across processes and builds, unlike std::hash.
uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

void write_dims(std::ostringstream& os, const std::vector<int64_t>& dims) {
  os << '[';
  for (const int64_t d : dims) os << d << ',';
  os << ']';
}

void write_attribute(std::ostringstream& os, const ir::AttributeValue& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, ir::Constant>) {
          write_dims(os, v.dims);
        } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double> ||
                             std::is_same_v<T, std::string>) {
          os << v;
        } else {
          for (const auto& e : v) os << e << ',';
        }
      },
      value);
}

}  // namespace

std::string engine_timing_key(const ir::Graph& graph, const std::string& blob_text,
                              const ir::ShapeMap& shapes) {
  std::ostringstream os;
  for (const ir::Node& node : graph.nodes) {
    os << node.op << '(';
    for (const std::string& t : node.inputs) os << t << ',';
    os << ")->";
    for (const std::string& t : node.outputs) os << t << ',';
    for (const auto& [key, value] : node.attributes) {
      os << ' ' << key << '=';
      write_attribute(os, value);
    }
    os << ';';
  }
  for (const auto* list : {&graph.inputs, &graph.outputs}) {
    for (const ir::TensorInfo& t : *list) os << t.name << ':' << static_cast<int>(t.dtype) << ';';
  }
  for (const auto& [name, constant] : graph.constants) {
    os << name << ':' << static_cast<int>(constant.dtype);
    write_dims(os, constant.dims);
  }
  for (const auto& [name, dims] : shapes) {
    os << name;
    write_dims(os, dims);
  }
  os << blob_text;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(os.str())));
  return std::string("engine v1 ") + hex;
}

Result<double> time_engine_us(const ir::Graph& graph, const BlobInfo& blob,
                              const ir::ShapeMap& shapes, cudaStream_t stream) {
  MLPRT_ASSIGN_OR_RETURN(auto exe, CudaExecutable::create(graph, blob));
  MLPRT_ASSIGN_OR_RETURN(auto context, exe->create_context());
  MLPRT_RETURN_IF_ERROR(context->set_device_io(true));
  MLPRT_RETURN_IF_ERROR(context->prepare(shapes));
  std::vector<DeviceBuffer> buffers;
  IoBindings io;
  io.device_addresses = true;
  // Device buffers for the inputs (filled) or the outputs, bound by name into `bound`.
  auto bind = [&](const std::vector<size_t>& ids, const std::vector<ElemType>& types, bool fill,
                  auto& bound) -> Status {
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string& name = exe->tensors()[ids[i]].name;
      MLPRT_ASSIGN_OR_RETURN(DeviceBuffer b, tensor_buffer(name, types[i], shapes, stream, fill));
      bound[name] = b.get();
      buffers.push_back(std::move(b));
    }
    return Status::ok();
  };
  MLPRT_RETURN_IF_ERROR(bind(exe->input_ids(), exe->input_types(), true, io.inputs));
  MLPRT_RETURN_IF_ERROR(bind(exe->output_ids(), exe->output_types(), false, io.outputs));
  return time_call_us(stream, [&]() -> Status { return context->execute(io, stream); });
}

}  // namespace mlprt::backend::cuda
