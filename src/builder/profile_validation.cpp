#include "builder/profile_validation.h"

#include <unistd.h>

#include <sstream>

#include "common/check.h"
#include "ir/shape_inference.h"

namespace mlprt::builder {
namespace {

bool is_dynamic(const ir::TensorInfo& input) {
  for (const ir::Dim& d : input.shape) {
    if (!d.is_static()) return true;
  }
  return false;
}

std::string input_names(const ir::Graph& graph) {
  std::string out;
  for (const ir::TensorInfo& input : graph.inputs) out += (out.empty() ? "" : ", ") + input.name;
  return out;
}

Status check_range(const ir::TensorInfo& input, const ShapeRange& range, size_t profile) {
  const std::string where = "profile " + std::to_string(profile) + ", input '" + input.name + "'";
  for (const Dims* dims : {&range.min, &range.opt, &range.max}) {
    if (dims->size() != input.shape.size()) {
      return make_error(StatusCode::kInvalidArgument, where, ": shape ", to_string(*dims),
                        " has rank ", dims->size(), " but the model's input is ",
                        ir::to_string(input.shape), " (rank ", input.shape.size(), ")");
    }
  }
  for (size_t i = 0; i < input.shape.size(); ++i) {
    if (!(range.min[i] <= range.opt[i] && range.opt[i] <= range.max[i])) {
      return make_error(StatusCode::kInvalidArgument, where, ": dimension ", i,
                        " must satisfy min <= opt <= max, got min ", to_string(range.min),
                        ", opt ", to_string(range.opt), ", max ", to_string(range.max));
    }
    const ir::Dim& d = input.shape[i];
    if (d.is_static() && (range.min[i] != d.value || range.max[i] != d.value)) {
      return make_error(StatusCode::kInvalidArgument, where, ": dimension ", i, " is fixed to ",
                        d.value, " in the model (", ir::to_string(input.shape),
                        ") but the profile gives min ", to_string(range.min), " max ",
                        to_string(range.max));
    }
  }
  return Status::ok();
}

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return UINT64_MAX;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

// Every tensor of the graph at these shapes must fit in this machine's memory, with room to
// spare: a profile whose max shape cannot run here is an error at build time, not at run time.
Status check_memory(const ir::Graph& graph, const ir::ShapeMap& shapes) {
  const uint64_t limit = physical_memory_bytes();
  for (const auto& [name, dims] : shapes) {
    if (graph.is_constant(name)) continue;
    MLPRT_ASSIGN_OR_RETURN(int64_t n, volume(dims));
    const long double bytes = static_cast<long double>(n) * 4.0L;
    if (bytes > static_cast<long double>(limit) / 2) {
      return make_error(StatusCode::kInvalidArgument, "tensor '", name, "' of shape ",
                        to_string(dims), " needs ", static_cast<double>(bytes / (1ull << 30)), " GiB as float32",
                        ", more than half of this machine's memory (",
                        static_cast<double>(limit) / (1ull << 30),
                        " GiB): lower the profile's max shape");
    }
  }
  return Status::ok();
}

}  // namespace

Result<std::vector<OptimizationProfile>> resolve_profiles(const ir::Graph& graph,
                                                          const BuilderConfig& config) {
  std::vector<OptimizationProfile> profiles = config.profiles;
  if (profiles.empty()) {
    for (const ir::TensorInfo& input : graph.inputs) {
      if (is_dynamic(input)) {
        return make_error(StatusCode::kInvalidArgument, "input '", input.name, "' has shape ",
                          ir::to_string(input.shape),
                          " with dynamic dimensions: give its shape with --shapes=", input.name,
                          ":<dims> or an optimization profile with --minShapes/--optShapes/"
                          "--maxShapes");
      }
    }
    profiles.emplace_back();
  }
  for (size_t p = 0; p < profiles.size(); ++p) {
    for (const auto& [name, range] : profiles[p].ranges()) {
      if (!graph.find_input(name)) {
        return make_error(StatusCode::kInvalidArgument, "profile ", p, " gives a shape for '",
                          name, "', which is not an input of the model; its inputs are: ",
                          input_names(graph));
      }
    }
    for (const ir::TensorInfo& input : graph.inputs) {
      auto range = profiles[p].get_dimensions(input.name);
      if (!range) {
        if (is_dynamic(input)) {
          return make_error(StatusCode::kInvalidArgument, "profile ", p,
                            " does not cover dynamic input '", input.name, "' (",
                            ir::to_string(input.shape),
                            "): give min, opt and max shapes for it in every profile");
        }
        Dims dims = ir::to_dims(input.shape);
        MLPRT_RETURN_IF_ERROR(profiles[p].set_dimensions(input.name, {dims, dims, dims}));
        continue;
      }
      MLPRT_RETURN_IF_ERROR(check_range(input, *range, p));
    }
  }
  return profiles;
}

Status check_profile_shapes(const ir::Graph& graph,
                            const std::vector<OptimizationProfile>& profiles) {
  for (size_t p = 0; p < profiles.size(); ++p) {
    const char* names[] = {"min", "opt", "max"};
    for (int which = 0; which < 3; ++which) {
      ir::ShapeMap shapes;
      for (const auto& [name, range] : profiles[p].ranges()) {
        shapes[name] = which == 0 ? range.min : which == 1 ? range.opt : range.max;
      }
      const std::string where =
          "profile " + std::to_string(p) + " at its " + names[which] + " shapes";
      auto inferred = ir::infer_shapes(graph, shapes);
      if (!inferred.is_ok()) return inferred.status().with_context(where);
      MLPRT_RETURN_IF_ERROR(check_memory(graph, *inferred).with_context(where));
    }
  }
  return Status::ok();
}

}  // namespace mlprt::builder
