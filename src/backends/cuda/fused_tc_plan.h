#pragma once
// The fused tensor-core MLP (fused_mlp_tc.h) as a tactic of the cuda backend: which graphs it
// can run (and why not, for inspect), its device weights, and the choice the build recorded
// per optimization profile (blob key "fused_tc", see docs/plan-format.md).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_precisions.h"
#include "backends/cuda/fused_mlp_tc.h"
#include "ir/graph.h"

namespace mlprt::backend::cuda {

/// Empty when the graph is a chain input -> Dense -> ... -> Dense -> output (views between
/// them allowed) that the fused kernel runs in `precisions`; else why not, e.g. "layer 'fc1'
/// is 1024 wide; the fused kernel takes widths up to 256". `chain` gets the Dense nodes, and
/// after a Dense with no activation the activation node that follows it (as ResMLP's
/// relu(fc(h) + h) leaves it: a residual Dense keeps its activation apart). A residual Dense
/// must add its own input, in fp16 / bf16, in a chain at most 128 wide that does not stream its
/// input (the register-resident kernel's limits).
std::string fused_tc_ineligible(const ir::Graph& graph, const LayerPrecisions& precisions,
                                std::vector<const ir::Node*>& chain);

/// The kernel's parameters for `chain` in `precision` with its weights on the device in
/// `buffers`: the graph's weights, or (`pattern`) deterministic values for timing. kUnsupported
/// (the reason alone as its message) when this GPU cannot run the fp32 / tf32 kernel on them.
Status make_fused_tc(const ir::Graph& graph, const std::vector<const ir::Node*>& chain,
                     Precision precision, bool pattern, FusedTcParams& params,
                     std::vector<DeviceBuffer>& buffers, cudaStream_t stream);

/// Widest output a single Dense layer may have to run on the fused kernel as its own tactic
/// (a narrow head after a wide layer, e.g. 1024 -> 10, where cuBLASLt's tiles are mostly idle).
inline constexpr int64_t kFusedLayerMaxWidth = 64;

/// Empty when Dense `node` can run alone on the fused kernel in `precision` (fp16 / bf16, no
/// residual, input not transposed, at most kFusedLayerMaxWidth outputs); else why not.
std::string fused_layer_ineligible(const ir::Graph& graph, const ir::Node& node,
                                   Precision precision);

/// The build's per-layer decision for an eligible Dense layer: the fused kernel against its
/// cuBLASLt tactic, summed over the profiles' opt rows (layer record keys "kernel", "fused_us",
/// "cublaslt_us").
struct FusedLayerChoice {
  bool chosen = false;
  double fused_us = 0.0;
  double cublaslt_us = 0.0;
};

/// One profile's decision: the fused kernel against the cuBLASLt layers at its opt rows.
struct FusedTcProfile {
  int profile = 0;
  int64_t rows_min = 0;
  int64_t rows_opt = 0;
  int64_t rows_max = 0;
  /// Whole-engine times at rows_opt, one call per graph launch (see confirm_chain_choices).
  double fused_us = 0.0;
  double layers_us = 0.0;  ///< the unfused path (cuBLASLt layers, or the fp32 fused kernel)
  bool chosen = false;
};

/// What the build recorded; absent from older plans (never fused there).
struct FusedTcChoice {
  bool eligible = false;
  std::string reason;  ///< why not eligible, or why not tuned
  std::vector<FusedTcProfile> profiles;

  /// Whether a run of `rows` rows takes the fused kernel: inside the row range of a profile
  /// whose build chose it.
  [[nodiscard]] bool runs_fused(int64_t rows) const;
  [[nodiscard]] nlohmann::json to_json() const;
  static Result<FusedTcChoice> from_json(const nlohmann::json& json);
  /// Lines for inspect: "fused tensor-core MLP: profile 0 (rows 1..4096, opt 1024): chosen,
  /// 8.1 us vs 20.3 us unfused (whole engines)" or "fused tensor-core MLP: not eligible: <reason>".
  [[nodiscard]] std::vector<std::string> describe() const;
};

}  // namespace mlprt::backend::cuda
