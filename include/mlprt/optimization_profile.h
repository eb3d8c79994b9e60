#pragma once
/// @file optimization_profile.h
/// The shape range an engine must serve for its dynamic inputs, like TensorRT's
/// IOptimizationProfile: for each dynamic input a min, opt (tuned for) and max shape.

#include <map>
#include <optional>
#include <string>

#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt {

struct ShapeRange {
  Dims min;
  Dims opt;
  Dims max;
  /// True if `dims` has the same rank and min[i] <= dims[i] <= max[i] for every i.
  [[nodiscard]] bool contains(const Dims& dims) const;
};

/// "1x784 .. 32x784 .. 64x784"
[[nodiscard]] std::string to_string(const ShapeRange& range);

class OptimizationProfile {
 public:
  /// Sets the range of one input. Checks ranks agree and min <= opt <= max per dim; the builder
  /// checks the rest against the network.
  Status set_dimensions(const std::string& input_name, const ShapeRange& range);
  [[nodiscard]] std::optional<ShapeRange> get_dimensions(const std::string& input_name) const;
  [[nodiscard]] const std::map<std::string, ShapeRange>& ranges() const noexcept { return m_ranges; }

 private:
  std::map<std::string, ShapeRange> m_ranges;
};

}  // namespace mlprt
