#include "ir/split.h"

#include <numeric>
#include <string>

#include "common/check.h"

namespace mlprt::ir {
namespace {

std::string describe_split(const Node& node) { return "node '" + node.name + "' (Split)"; }

}  // namespace

Result<std::vector<int64_t>> split_sizes(const Node& node, int64_t axis_size,
                                         const std::optional<std::vector<int64_t>>& given) {
  const auto parts = static_cast<int64_t>(node.outputs.size());
  const bool has_input = node.inputs.size() > 1 && !node.inputs[1].empty();
  std::optional<std::vector<int64_t>> sizes;
  if (node.has_attribute("split")) sizes = node.get_ints("split");
  if (has_input) {
    if (!given) {
      return make_error(StatusCode::kUnsupported, describe_split(node), ": split sizes '",
                        node.inputs[1],
                        "' are computed at run time and could not be folded at build time; "
                        "only constant (or build-time computable) sizes are supported");
    }
    sizes = *given;
  }
  const std::string axis = std::to_string(node.get_int("axis", 0));
  if (sizes) {
    if (node.has_attribute("num_outputs")) {
      return make_error(StatusCode::kInvalidArgument, describe_split(node),
                        ": has both split sizes and num_outputs; give one of them");
    }
    if (static_cast<int64_t>(sizes->size()) != parts) {
      return make_error(StatusCode::kInvalidArgument, describe_split(node), ": gives ",
                        sizes->size(), " split sizes for ", parts,
                        " outputs; one size per output is needed");
    }
    for (int64_t s : *sizes) {
      if (s < 0) {
        return make_error(StatusCode::kInvalidArgument, describe_split(node), ": split size ", s,
                          " is negative; sizes must be >= 0");
      }
    }
    const int64_t sum = std::accumulate(sizes->begin(), sizes->end(), int64_t{0});
    if (axis_size >= 0 && sum != axis_size) {
      return make_error(StatusCode::kInvalidArgument, describe_split(node),
                        ": split sizes sum to ", sum, " but axis ", axis, " of input '",
                        node.inputs[0], "' has size ", axis_size, "; they must sum to it");
    }
    return *sizes;
  }
  const int64_t n = node.get_int("num_outputs", parts);
  if (n != parts) {
    return make_error(StatusCode::kInvalidArgument, describe_split(node), ": num_outputs is ", n,
                      " but the node has ", parts, " outputs; they must agree");
  }
  if (n <= 0) {
    return make_error(StatusCode::kInvalidArgument, describe_split(node), ": has no outputs");
  }
  if (axis_size < 0) {
    return make_error(StatusCode::kUnsupported, describe_split(node), ": axis ", axis,
                      " of input '", node.inputs[0],
                      "' has a size not known at build time; a Split without explicit sizes "
                      "(num_outputs or equal parts) is supported on axes of a fixed size only");
  }
  if (!node.has_attribute("num_outputs")) {
    if (axis_size % n != 0) {
      return make_error(StatusCode::kInvalidArgument, describe_split(node), ": axis ", axis,
                        " of input '", node.inputs[0], "' has size ", axis_size,
                        ", which does not split into ", n,
                        " equal parts; give split sizes (or num_outputs, opset 18)");
    }
    return std::vector<int64_t>(static_cast<size_t>(n), axis_size / n);
  }
  const int64_t chunk = (axis_size + n - 1) / n;
  const int64_t last = axis_size - chunk * (n - 1);
  if (last < 0) {
    return make_error(StatusCode::kInvalidArgument, describe_split(node), ": axis ", axis,
                      " of input '", node.inputs[0], "' has size ", axis_size,
                      ", too small for num_outputs ", n, " parts of ", chunk,
                      " (the last part would have ", last, " elements)");
  }
  std::vector<int64_t> out(static_cast<size_t>(n), chunk);
  out.back() = last;
  return out;
}

std::vector<Node> split_to_slices(const Node& split, const std::vector<int64_t>& sizes) {
  std::vector<Node> slices;
  const int64_t axis = split.get_int("axis", 0);
  int64_t start = 0;
  for (size_t i = 0; i < split.outputs.size() && i < sizes.size(); ++i) {
    const int64_t end = start + sizes[i];
    if (!split.outputs[i].empty()) {
      Node slice;
      slice.name = split.name + "_" + std::to_string(i);
      slice.op = "Slice";
      slice.inputs = {split.inputs[0]};
      slice.outputs = {split.outputs[i]};
      slice.attributes["starts"] = std::vector<int64_t>{start};
      slice.attributes["ends"] = std::vector<int64_t>{end};
      slice.attributes["axes"] = std::vector<int64_t>{axis};
      slices.push_back(std::move(slice));
    }
    start = end;
  }
  return slices;
}

}  // namespace mlprt::ir
