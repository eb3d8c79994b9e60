#pragma once
// Parsing of trtexec-style shape flags: "--shapes=input:8x784,mask:8x10" and the repeatable
// --minShapes/--optShapes/--maxShapes trio, whose i-th occurrences form profile i.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mlprt/optimization_profile.h"
#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt::cli {

/// Input name -> dims, in the order given on the command line.
using ShapeList = std::vector<std::pair<std::string, Dims>>;

/// Parses one flag value "name:8x784[,name2:1x10...]". A name may be single-quoted
/// ('input:0':1x3) and may itself contain ':' (the dims follow the last one). Errors say which
/// flag and which item is wrong; they are usage errors.
[[nodiscard]] Result<ShapeList> parse_shape_list(std::string_view flag, std::string_view text);

/// The raw values of the shape flags of `mlprt build`.
struct ShapeFlags {
  std::vector<std::string> shapes;
  std::vector<std::string> min_shapes;
  std::vector<std::string> opt_shapes;
  std::vector<std::string> max_shapes;
};

/// The builder's profiles from the flags: none (static model), one from --shapes, or one per
/// occurrence of the trio. Every error is a usage error and says which flag, profile and input.
[[nodiscard]] Result<std::vector<OptimizationProfile>> profiles_from_flags(const ShapeFlags& flags);

}  // namespace mlprt::cli
