#pragma once
// The plan's "refit" record: what a refit needs to re-derive the optimized graph's constants
// from new weights without the original model (docs/plan-format.md, key "refit").
//
// It holds the imported graph before the passes (the skeleton): its nodes, I/O and constants,
// with data only for the constants that are not weights (shape constants, scalars the patterns
// match on); the weights keep their name, dtype and dims. And the torch names of weights the
// exporter renamed (torch 1.x MatMul exports read a transposed Linear weight from
// "onnx::MatMul_12"; dynamo exports from "val_0").

#include <map>
#include <set>
#include <string>

#include "ir/graph.h"
#include "mlprt/status.h"

namespace mlprt::refit {

/// A name users know a weight by, and how it maps onto the initializer the graph reads.
struct Alias {
  std::string initializer;
  bool transpose = false;  ///< the initializer is the 2-D transpose of the named tensor
  friend bool operator==(const Alias&, const Alias&) = default;
};

struct RefitRecord {
  /// The imported graph; constants named in `weights` have empty data. Its source is not
  /// recorded (the plan's graph has it).
  ir::Graph skeleton;
  std::set<std::string> weights;  ///< refittable constants: float initializers of rank >= 1
  std::map<std::string, Alias> aliases;  ///< torch name -> initializer
};

/// True for the constants a refit replaces: floating point of rank >= 1.
bool is_weight(const ir::Constant& constant);

/// The record of an imported (not yet optimized) graph.
RefitRecord make_refit_record(const ir::Graph& imported);

/// Compact JSON, keys sorted: the same record always gives the same text.
std::string encode_refit_record(const RefitRecord& record);
/// Every field and size checked; errors are kCorruptData naming `plan_source`.
Result<RefitRecord> decode_refit_record(const std::string& json, const std::string& plan_source);

/// Every way `other` differs from `expected` in structure (nodes, I/O, the non-weight constants'
/// values, the weights' names / dtypes / dims), one line each; empty when they match.
std::vector<std::string> compare_skeletons(const RefitRecord& expected, const RefitRecord& other);

/// Attribute equality (NaN equals NaN; tensors by dtype, dims and bytes).
bool same_attribute(const ir::AttributeValue& a, const ir::AttributeValue& b);

}  // namespace mlprt::refit
