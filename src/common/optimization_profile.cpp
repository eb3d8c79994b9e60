#include "mlprt/optimization_profile.h"

#include "common/check.h"

namespace mlprt {

bool ShapeRange::contains(const Dims& dims) const {
  if (dims.size() != min.size() || dims.size() != max.size()) return false;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < min[i] || dims[i] > max[i]) return false;
  }
  return true;
}

std::string to_string(const ShapeRange& range) {
  if (range.min == range.max) return to_string(range.min);
  return "min " + to_string(range.min) + " opt " + to_string(range.opt) + " max " +
         to_string(range.max);
}

Status OptimizationProfile::set_dimensions(const std::string& input_name, const ShapeRange& range) {
  if (range.min.size() != range.opt.size() || range.min.size() != range.max.size()) {
    return make_error(StatusCode::kInvalidArgument, "profile for input '", input_name,
                      "': min ", to_string(range.min), ", opt ", to_string(range.opt), " and max ",
                      to_string(range.max), " must have the same rank");
  }
  for (size_t i = 0; i < range.min.size(); ++i) {
    if (range.min[i] < 0 || !(range.min[i] <= range.opt[i] && range.opt[i] <= range.max[i])) {
      return make_error(StatusCode::kInvalidArgument, "profile for input '", input_name,
                        "': dimension ", i, " must satisfy 0 <= min <= opt <= max, got min ",
                        to_string(range.min), ", opt ", to_string(range.opt), ", max ",
                        to_string(range.max));
    }
  }
  m_ranges[input_name] = range;
  return Status::ok();
}

std::optional<ShapeRange> OptimizationProfile::get_dimensions(const std::string& input_name) const {
  auto it = m_ranges.find(input_name);
  if (it == m_ranges.end()) return std::nullopt;
  return it->second;
}

}  // namespace mlprt
