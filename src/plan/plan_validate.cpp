#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "plan/plan_metadata.h"

namespace mlprt::plan::detail {
namespace {

// "" if the bytes match dims and dtype; else what differs.
// `with_data` false: dims and dtype only (a metadata-only plan's constants hold no bytes).
std::string check_constant(const std::string& what, const ir::Constant& c, bool with_data) {
  uint64_t expected = element_size(c.dtype);
  if (expected == 0) return what + " has an unknown data type";
  for (int64_t d : c.dims) {
    if (d < 0) return what + " has a negative dimension in " + to_string(c.dims);
    const auto ud = static_cast<uint64_t>(d);
    if (ud != 0 && expected > std::numeric_limits<uint64_t>::max() / ud) {
      return what + " has dims " + to_string(c.dims) + " whose byte size overflows";
    }
    expected *= ud;
  }
  if (with_data && expected != c.data.size()) {
    return what + " holds " + std::to_string(c.data.size()) + " bytes, but dims " +
           to_string(c.dims) + " of " + std::string(to_string(c.dtype)) + " need " +
           std::to_string(expected);
  }
  return "";
}

// The layer ops' attributes have one type each (passes/passes.h); a reader asking for another
// type gets its default, so a plan whose attribute has the wrong type would run a different
// layer silently (found by the plan fuzzer: an int "activation" ran as none).
std::string check_attribute_type(const std::string& what, const std::string& key,
                                 const ir::AttributeValue& value) {
  static const std::map<std::string, size_t, std::less<>> kTypes = {
      {"activation", 2}, {"kind", 2},      {"alpha", 1},       {"beta", 1},
      {"epsilon", 1},    {"axis", 0},      {"log", 0},         {"coerce_2d", 0},
      {"allowzero", 0},  {"transpose_x", 0}, {"axes", 3},      {"shape", 3},
      {"perm", 3},       {"starts", 3},    {"ends", 3},        {"steps", 3},
      {"keepdims", 0},   {"noop_with_empty_axes", 0},          {"transpose_a", 0},
      {"transpose_b", 0}, {"transpose_y", 0}};
  static const char* const kNames[] = {"an int", "a float", "a string", "ints"};
  auto it = kTypes.find(key);
  if (it == kTypes.end()) return "";
  const size_t index = value.index();
  const bool fits = index == it->second || (it->second == 1 && index == 0);  // int as float
  if (fits) return "";
  return what + " attribute '" + key + "' should be " + kNames[it->second];
}

std::string check_shape(const std::string& what, const ir::Shape& shape) {
  for (const ir::Dim& d : shape) {
    if (d.value < -1) {
      return what + " has dimension " + std::to_string(d.value) +
             " (a dim is >= 0, or -1 when dynamic)";
    }
  }
  return "";
}

std::string check_profile(size_t index, const OptimizationProfile& profile,
                          const ir::Graph& graph) {
  for (const auto& [name, range] : profile.ranges()) {
    const std::string what = "profile " + std::to_string(index) + " input '" + name + "'";
    const ir::TensorInfo* input = graph.find_input(name);
    if (input == nullptr) return what + " is not a graph input";
    if (range.min.size() != input->shape.size() || range.opt.size() != input->shape.size() ||
        range.max.size() != input->shape.size()) {
      return what + " has range " + to_string(range) + " but the input's shape is " +
             ir::to_string(input->shape);
    }
    for (size_t i = 0; i < range.min.size(); ++i) {
      if (range.min[i] < 0 || range.min[i] > range.opt[i] || range.opt[i] > range.max[i]) {
        return what + " has range " + to_string(range) + ", not 0 <= min <= opt <= max";
      }
      const ir::Dim& d = input->shape[i];
      if (d.is_static() && (range.min[i] != d.value || range.max[i] != d.value)) {
        return what + " has range " + to_string(range) + " but dimension " + std::to_string(i) +
               " of the input is fixed at " + std::to_string(d.value);
      }
    }
  }
  return "";
}

}  // namespace

std::string find_inconsistency(const Plan& plan, bool with_weight_data) {
  const ir::Graph& g = plan.graph;
  // Every tensor name is defined once: by a graph input, a constant or one node output.
  std::set<std::string> defined;
  for (const ir::TensorInfo& t : g.inputs) {
    if (t.name.empty()) return "a graph input has an empty name";
    if (!defined.insert(t.name).second) return "graph input '" + t.name + "' is listed twice";
    if (auto e = check_shape("graph input '" + t.name + "'", t.shape); !e.empty()) return e;
  }
  for (const auto& [name, c] : g.constants) {
    if (name.empty()) return "a constant has an empty name";
    if (!defined.insert(name).second) return "constant '" + name + "' is also a graph input";
    if (auto e = check_constant("constant '" + name + "'", c, with_weight_data); !e.empty()) return e;
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    const std::string what = "node " + std::to_string(i) + " '" + n.name + "' (" + n.op + ")";
    for (const std::string& in : n.inputs) {
      if (!in.empty() && defined.count(in) == 0) {
        return what + " reads tensor '" + in +
               "', which is not a graph input, a constant or an earlier node's output";
      }
    }
    for (const std::string& out : n.outputs) {
      if (out.empty()) continue;  // an omitted optional output
      if (!defined.insert(out).second) return what + " writes tensor '" + out + "', defined before";
    }
    for (const auto& [key, value] : n.attributes) {
      if (auto e = check_attribute_type(what, key, value); !e.empty()) return e;
      if (const auto* c = std::get_if<ir::Constant>(&value)) {
        if (auto e = check_constant(what + " attribute '" + key + "'", *c, with_weight_data); !e.empty()) return e;
      }
    }
  }
  std::set<std::string> outputs;
  for (const ir::TensorInfo& t : g.outputs) {
    if (defined.count(t.name) == 0) return "graph output '" + t.name + "' is never produced";
    if (!outputs.insert(t.name).second) return "graph output '" + t.name + "' is listed twice";
    if (auto e = check_shape("graph output '" + t.name + "'", t.shape); !e.empty()) return e;
  }
  for (size_t i = 0; i < plan.profiles.size(); ++i) {
    if (auto e = check_profile(i, plan.profiles[i], g); !e.empty()) return e;
  }
  return "";
}

}  // namespace mlprt::plan::detail
