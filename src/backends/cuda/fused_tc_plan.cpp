#include "backends/cuda/fused_tc_plan.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <sstream>

#include "backends/cuda/cuda_dense.h"
#include "backends/cuda/cuda_executable.h"
#include "backends/cuda/fused_mlp_f32.h"
#include "backends/cuda/fused_mlp_rr.h"
#include "backends/cuda/fused_mlp_wg.h"
#include "ir/activation.h"
#include "ir/passes/passes.h"
#include "common/check.h"
#include "common/json_integer.h"

namespace mlprt::backend::cuda {
namespace {

std::vector<float> constant_floats(const ir::Graph& graph, const std::string& name) {
  const ir::Constant* c = graph.find_constant(name);
  std::vector<float> values(c == nullptr ? 0 : c->data.size() / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), c->data.data(), values.size() * sizeof(float));
  return values;
}

bool is_view(const std::string& op) {
  return op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze";
}

// Why a chain with a residual layer is not one the register-resident kernel runs, or empty:
// `first_k`, the chain's input width; `widest`, its widest layer.
std::string residual_chain_ineligible(bool fp32_engine, int64_t first_k, int64_t widest) {
  if (fp32_engine) return "a residual layer: the fp32 / tf32 fused kernel adds no residual input";
  if (fused_tc_pad(widest) > kFusedRrMaxWidth) {
    return "a residual layer in a chain wider than " + std::to_string(kFusedRrMaxWidth) +
           " (the register-resident kernel, which adds residual inputs, takes up to that)";
  }
  if (fused_rr_streams_input(first_k, widest)) {
    return "a residual layer in a chain whose " + std::to_string(first_k) +
           "-wide input is wider than its layers (the register-resident kernel streams such an "
           "input and then adds no residual input)";
  }
  return {};
}

}  // namespace

std::string fused_tc_ineligible(const ir::Graph& graph, const LayerPrecisions& precisions,
                                std::vector<const ir::Node*>& chain) {
  chain.clear();
  if (precisions.mixed()) return "the engine mixes precisions (the fused kernel runs one)";
  const bool fp32_engine =
      precisions.base == Precision::kFp32 || precisions.base == Precision::kTf32;
  const int64_t max_width = fp32_engine ? kFusedF32MaxWidth : kFusedTcMaxWidth;
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1) {
    return "the graph has " + std::to_string(graph.inputs.size()) + " inputs and " +
           std::to_string(graph.outputs.size()) + " outputs (the fused kernel takes one of each)";
  }
  std::string current = graph.inputs[0].name;
  int64_t previous_n = -1;
  int64_t first_k = 0;
  int64_t widest = 0;
  size_t dense_count = 0;
  bool residual = false;
  bool takes_activation = false;  // the last Dense has none, and no activation node took its place
  for (const ir::Node& node : graph.nodes) {
    if (node.inputs.empty() || node.inputs[0] != current || node.outputs.size() != 1) {
      return describe(node) + " is not the next link of a single chain from the input";
    }
    const std::optional<ir::ActivationSpec> activation = ir::activation_of(node);
    if (node.op == "Dense") {
      Result<DenseSpec> spec = dense_spec(graph, node);
      if (!spec.is_ok()) return spec.status().message();
      if (spec->transpose_x) return describe(node) + " reads its input transposed";
      if (previous_n >= 0 && previous_n != spec->k) {
        return describe(node) + " takes " + std::to_string(spec->k) +
               " columns after a layer of " + std::to_string(previous_n);
      }
      if (spec->n > max_width) {
        return describe(node) + " is " + std::to_string(spec->n) + " wide; the fused kernel takes" +
               (fp32_engine ? std::string(" (in ") + to_string(precisions.base) + ")" : "") +
               " widths up to " + std::to_string(max_width);
      }
      if (spec->k > (int64_t{1} << 30)) return describe(node) + " has too many input columns";
      if (ir::has_residual(node)) {
        if (node.inputs[3] != node.inputs[0]) {
          return describe(node) + " adds a residual input other than its own input (the fused "
                                  "kernel adds a layer's own input)";
        }
        if (spec->k != spec->n || spec->act.kind != ActKind::kNone) {
          return describe(node) + " adds a residual input to an output of another width or "
                                  "after an activation";
        }
        residual = true;
      }
      if (dense_count == 0) first_k = spec->k;
      widest = std::max(widest, spec->n);
      previous_n = spec->n;
      takes_activation = spec->act.kind == ActKind::kNone;
      ++dense_count;
      chain.push_back(&node);
    } else if (activation && takes_activation && node.inputs.size() == 1) {
      takes_activation = false;
      chain.push_back(&node);
    } else if (!is_view(node.op)) {
      return describe(node) + " is not a Dense layer, a view or the activation of a Dense layer "
                              "without one (the fused kernel runs chains of Dense layers with "
                              "their bias and activation)";
    }
    current = node.outputs[0];
  }
  if (chain.empty()) return "the graph has no Dense layer";
  if (current != graph.outputs[0].name || &graph.nodes.back() != chain.back()) {
    return "the graph's output is not the last Dense layer's";
  }
  if (dense_count > static_cast<size_t>(kFusedTcMaxLayers)) {
    return "the chain has " + std::to_string(dense_count) + " Dense layers; the fused kernel "
           "takes up to " + std::to_string(kFusedTcMaxLayers);
  }
  if (residual) return residual_chain_ineligible(fp32_engine, first_k, widest);
  return {};
}

std::string fused_layer_ineligible(const ir::Graph& graph, const ir::Node& node,
                                   Precision precision) {
  if (node.op != "Dense") return describe(node) + " is not a Dense layer";
  if (precision != Precision::kFp16 && precision != Precision::kBf16) {
    return describe(node) + " computes in " + to_string(precision) +
           " (the fused layer kernel runs fp16 / bf16)";
  }
  if (ir::has_residual(node)) return describe(node) + " adds a residual input";
  Result<DenseSpec> spec = dense_spec(graph, node, false);
  if (!spec.is_ok()) return spec.status().message();
  if (spec->transpose_x) return describe(node) + " reads its input transposed";
  if (spec->n > kFusedLayerMaxWidth) {
    return describe(node) + " has " + std::to_string(spec->n) + " outputs (the fused layer " +
           "kernel takes up to " + std::to_string(kFusedLayerMaxWidth) + ")";
  }
  if (spec->k > (int64_t{1} << 30)) return describe(node) + " has too many input columns";
  return {};
}

Status make_fused_tc(const ir::Graph& graph, const std::vector<const ir::Node*>& chain,
                     Precision precision, bool pattern, FusedTcParams& params,
                     std::vector<DeviceBuffer>& buffers, cudaStream_t stream) {
  const auto dense_count = static_cast<size_t>(std::count_if(
      chain.begin(), chain.end(), [](const ir::Node* node) { return node->op == "Dense"; }));
  if (dense_count == 0 || dense_count > static_cast<size_t>(kFusedTcMaxLayers) ||
      chain.front()->op != "Dense") {
    return make_error(StatusCode::kInternal, "fused MLP: bad chain of ", chain.size(), " nodes");
  }
  params = FusedTcParams{};
  params.compute = storage_type(precision);
  params.split_tf32 = precision == Precision::kFp32;
  params.num_layers = 0;
  buffers.clear();
  buffers.resize(dense_count * 2);
  for (const ir::Node* link : chain) {
    if (link->op != "Dense") {  // the activation of the Dense before it (fused_tc_ineligible)
      const std::optional<ir::ActivationSpec> activation = ir::activation_of(*link);
      if (!activation) {
        return make_error(StatusCode::kInternal, "fused MLP: ", describe(*link),
                          " is neither a Dense layer nor an activation");
      }
      params.layers[params.num_layers - 1].act = act_params(*activation);
      continue;
    }
    const ir::Node& node = *link;
    const auto i = static_cast<size_t>(params.num_layers++);
    MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, node));
    FusedTcLayer& layer = params.layers[i];
    layer.k = static_cast<int>(spec.k);
    layer.n = static_cast<int>(spec.n);
    layer.k_pad = fused_tc_pad(spec.k);
    layer.n_pad = fused_tc_pad(spec.n);
    layer.act = spec.act;
    layer.residual = ir::has_residual(node);
    params.width_pad = std::max(params.width_pad, layer.n_pad);
    const size_t wt_count = static_cast<size_t>(layer.n_pad) * static_cast<size_t>(layer.k_pad);
    std::vector<float> wt(wt_count, 0.0f);
    std::vector<float> bias(static_cast<size_t>(layer.n_pad), 0.0f);
    if (pattern) {
      // Small deterministic values (tactic timing must not run on zeros).
      for (int64_t n = 0; n < spec.n; ++n) {
        for (int64_t k = 0; k < spec.k; ++k) {
          wt[static_cast<size_t>(n * layer.k_pad + k)] =
              static_cast<float>(((n * 131 + k * 71) % 97) - 48) / (48.0f * 8.0f);
        }
        bias[static_cast<size_t>(n)] = static_cast<float>(n % 7) / 16.0f;
      }
    } else {
      const std::vector<float> w = constant_floats(graph, node.inputs[1]);  // [K, N]
      for (int64_t k = 0; k < spec.k; ++k) {
        for (int64_t n = 0; n < spec.n; ++n) {
          wt[static_cast<size_t>(n * layer.k_pad + k)] = w[static_cast<size_t>(k * spec.n + n)];
        }
      }
      if (spec.has_bias) {
        const std::vector<float> b = constant_floats(graph, node.inputs[2]);
        std::copy(b.begin(), b.end(), bias.begin());
      }
    }
    MLPRT_RETURN_IF_ERROR(
        upload(wt, precision, buffers[2 * i], "fused tensor-core weights of " + describe(node)));
    MLPRT_RETURN_IF_ERROR(
        upload(bias, Precision::kFp32, buffers[2 * i + 1], "fused bias of " + describe(node)));
    layer.weights = buffers[2 * i].get();
    layer.bias = static_cast<const float*>(buffers[2 * i + 1].get());
  }
  if (const int64_t bytes = fused_wg_image_bytes(params); bytes > 0) {
    buffers.emplace_back();
    MLPRT_RETURN_IF_ERROR(buffers.back().reserve(static_cast<size_t>(bytes),
                                                 "fused warpgroup kernel's weight image"));
    MLPRT_CUDA_TRY(fused_wg_make_image(params, buffers.back().get(), stream),
                   "fused warpgroup kernel's weight image");
    params.wg_image = buffers.back().get();
  }
  if (params.compute == ElemType::kF32) {
    if (const char* why = fused_f32_ineligible(params)) {
      return make_error(StatusCode::kUnsupported, why);
    }
  }
  const bool residual = std::any_of(params.layers, params.layers + params.num_layers,
                                    [](const FusedTcLayer& layer) { return layer.residual; });
  if (residual && params.compute != ElemType::kF32) {
    if (const char* why = fused_rr_ineligible(params)) {
      return make_error(StatusCode::kUnsupported, why);
    }
  }
  return Status::ok();
}

bool FusedTcChoice::runs_fused(int64_t rows) const {
  if (!eligible) return false;
  for (const FusedTcProfile& p : profiles) {
    if (p.chosen && rows >= p.rows_min && rows <= p.rows_max) return true;
  }
  return false;
}

nlohmann::json FusedTcChoice::to_json() const {
  nlohmann::json j{{"eligible", eligible}};
  if (!reason.empty()) j["reason"] = reason;
  nlohmann::json list = nlohmann::json::array();
  for (const FusedTcProfile& p : profiles) {
    list.push_back({{"profile", p.profile},
                    {"rows_min", p.rows_min},
                    {"rows_opt", p.rows_opt},
                    {"rows_max", p.rows_max},
                    {"fused_us", p.fused_us},
                    {"unfused_us", p.layers_us},
                    {"chosen", p.chosen}});
  }
  j["profiles"] = std::move(list);
  return j;
}

Result<FusedTcChoice> FusedTcChoice::from_json(const nlohmann::json& json) {
  FusedTcChoice choice;
  try {
    choice.eligible = json.at("eligible").get<bool>();
    if (json.contains("reason")) choice.reason = json.at("reason").get<std::string>();
    for (const nlohmann::json& p : json.at("profiles")) {
      FusedTcProfile profile;
      profile.profile = json_integer<int>(p.at("profile"));
      profile.rows_min = json_integer<int64_t>(p.at("rows_min"));
      profile.rows_opt = json_integer<int64_t>(p.at("rows_opt"));
      profile.rows_max = json_integer<int64_t>(p.at("rows_max"));
      profile.fused_us = p.at("fused_us").get<double>();
      profile.layers_us = p.at("unfused_us").get<double>();
      profile.chosen = p.at("chosen").get<bool>();
      if (profile.rows_min < 0 || profile.rows_min > profile.rows_max) {
        return make_error(StatusCode::kCorruptData, "cuda backend: fused_tc profile ",
                          profile.profile, " has rows ", profile.rows_min, "..",
                          profile.rows_max);
      }
      choice.profiles.push_back(profile);
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(StatusCode::kCorruptData, "cuda backend: the plan's \"fused_tc\" record is "
                      "not valid: ", e.what());
  }
  return choice;
}

std::vector<std::string> FusedTcChoice::describe() const {
  std::vector<std::string> lines;
  if (!eligible) {
    lines.push_back("fused tensor-core MLP: not eligible: " + reason);
    return lines;
  }
  if (profiles.empty()) {
    lines.push_back("fused tensor-core MLP: eligible, not timed" +
                    (reason.empty() ? std::string() : " (" + reason + ")"));
  }
  for (const FusedTcProfile& p : profiles) {
    std::ostringstream os;
    os << "fused tensor-core MLP: profile " << p.profile << " (rows " << p.rows_min << ".."
       << p.rows_max << ", timed at " << p.rows_opt << "): "
       << (p.chosen ? "chosen, " : "not chosen, ") << p.fused_us << " us fused vs "
       << p.layers_us << " us unfused (whole engines)";
    lines.push_back(os.str());
  }
  return lines;
}

}  // namespace mlprt::backend::cuda
