#pragma once
// Refit of a plan: new weights in, a plan out that is byte-identical to a fresh build of the same
// model with those weights (same backend blob: the tactics are kept). Works on the plan alone
// (no backend, no device): the plan's refit record holds the graph before the passes, so the
// passes run again on the new weights (re-deriving folded BatchNorms, transposes, biases) and
// the result must match the plan's graph in everything but the constants' values.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plan/plan.h"
#include "refit/refit_record.h"
#include "weights/named_tensors.h"

namespace mlprt::refit {

class PlanRefitter {
 public:
  /// kUnsupported (rebuild with this mlprt) when the plan has no refit record.
  static Result<PlanRefitter> create(plan::Plan plan, std::string plan_source);

  /// Refittable weights by their ONNX (initializer) names, sorted.
  [[nodiscard]] std::vector<std::string> all_weights() const;
  /// Those not set yet.
  [[nodiscard]] std::vector<std::string> missing_weights() const;
  /// Torch name -> initializer, for the weights the exporter renamed.
  [[nodiscard]] const std::map<std::string, Alias>& aliases() const { return m_record.aliases; }

  /// One weight by ONNX name or torch name (transposed where the exporter transposed it).
  /// Returns "" when taken, else the problem (unknown name, dtype, shape) in one line.
  std::string set_named(const std::string& name, const ir::Constant& value);
  /// Every tensor of a weight file (.pth / .safetensors), which must supply every weight; the
  /// error lists every missing, unknown and mismatched name. Nothing is taken on error.
  Status set_all(const weights::NamedTensors& tensors, const std::string& source);
  /// An ONNX model of the same structure (checked: every difference listed); its graph's name,
  /// producer and source go into the refitted plan, as a fresh build of it would record.
  Status set_all_from_onnx(const ir::Graph& imported);

  /// The refitted plan. Errors list every missing weight, or say how the new weights changed
  /// the optimized graph (then the plan must be rebuilt).
  [[nodiscard]] Result<plan::Plan> refit() const;

  [[nodiscard]] const plan::Plan& plan() const { return m_plan; }

 private:
  PlanRefitter(plan::Plan plan, std::string source, RefitRecord record)
      : m_plan(std::move(plan)), m_source(std::move(source)), m_record(std::move(record)) {}
  [[nodiscard]] std::string describe(const std::string& initializer) const;
  Status problems(const std::string& from, const std::vector<std::string>& lines) const;

  plan::Plan m_plan;
  std::string m_source;
  RefitRecord m_record;
  std::map<std::string, ir::Constant> m_values;  ///< by initializer name
  struct Header {
    std::string name, source, producer;
    int64_t ir_version = 0;
  };
  std::optional<Header> m_header;  ///< from set_all_from_onnx
};

}  // namespace mlprt::refit
