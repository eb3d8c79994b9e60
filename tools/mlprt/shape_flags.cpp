#include "shape_flags.h"

#include <map>

#include "cli_common.h"

namespace mlprt::cli {
namespace {

Status usage(std::string message) { return {StatusCode::kInvalidArgument, std::move(message)}; }

Result<std::pair<std::string, Dims>> parse_shape_item(std::string_view flag,
                                                      std::string_view item) {
  std::string_view name;
  std::string_view dims_text;
  if (item.size() >= 2 && item.front() == '\'') {
    size_t close = item.find('\'', 1);
    if (close == std::string_view::npos || close + 1 >= item.size() || item[close + 1] != ':') {
      return usage(cat(flag, ": '", item, "' has an unterminated quoted name; expected ",
                       "'name':dims, e.g. 'input':8x784"));
    }
    name = item.substr(1, close - 1);
    dims_text = item.substr(close + 2);
  } else {
    size_t colon = item.rfind(':');
    if (colon == std::string_view::npos) {
      return usage(cat(flag, ": '", item, "' has no input name; expected name:dims, e.g. ", flag,
                       "=input:8x784"));
    }
    name = item.substr(0, colon);
    dims_text = item.substr(colon + 1);
  }
  if (name.empty()) {
    return usage(cat(flag, ": '", item, "' has an empty input name; expected name:dims, e.g. ",
                     flag, "=input:8x784"));
  }
  Result<Dims> dims = parse_dims(dims_text);
  if (!dims) return usage(cat(flag, ": input '", name, "': ", dims.status().message()));
  return std::pair<std::string, Dims>(std::string(name), std::move(*dims));
}

Result<std::map<std::string, Dims>> parse_occurrence(std::string_view flag, const std::string& text,
                                                     size_t index) {
  Result<ShapeList> list = parse_shape_list(flag, text);
  if (!list) return list.status();
  std::map<std::string, Dims> shapes;
  for (auto& [name, dims] : *list) {
    if (!shapes.emplace(name, dims).second) {
      return usage(cat(flag, " #", index + 1, ": input '", name, "' is given twice"));
    }
  }
  return shapes;
}

}  // namespace

Result<ShapeList> parse_shape_list(std::string_view flag, std::string_view text) {
  ShapeList list;
  // Dims use 'x' here, so a comma always separates inputs.
  for (const std::string& item : split_list(text)) {
    if (item.empty()) {
      return usage(cat(flag, ": '", text, "' has an empty item; expected name:dims[,name:dims]",
                       ", e.g. ", flag, "=input:8x784"));
    }
    Result<std::pair<std::string, Dims>> parsed = parse_shape_item(flag, item);
    if (!parsed) return parsed.status();
    list.push_back(std::move(*parsed));
  }
  return list;
}

Result<std::vector<OptimizationProfile>> profiles_from_flags(const ShapeFlags& flags) {
  std::vector<OptimizationProfile> profiles;
  const bool has_trio =
      !flags.min_shapes.empty() || !flags.opt_shapes.empty() || !flags.max_shapes.empty();
  if (!flags.shapes.empty() && has_trio) {
    return usage(
        "--shapes sets min = opt = max of one profile and cannot be combined with "
        "--minShapes/--optShapes/--maxShapes");
  }
  if (!flags.shapes.empty()) {
    OptimizationProfile profile;
    std::map<std::string, Dims> seen;
    for (size_t i = 0; i < flags.shapes.size(); ++i) {
      Result<std::map<std::string, Dims>> shapes = parse_occurrence("--shapes", flags.shapes[i], i);
      if (!shapes) return shapes.status();
      for (const auto& [name, dims] : *shapes) {
        if (!seen.emplace(name, dims).second) {
          return usage(cat("--shapes: input '", name, "' is given twice"));
        }
        Status status = profile.set_dimensions(name, ShapeRange{dims, dims, dims});
        if (!status) return usage(cat("--shapes: ", status.message()));
      }
    }
    profiles.push_back(std::move(profile));
    return profiles;
  }
  if (!has_trio) return profiles;

  if (flags.min_shapes.size() != flags.opt_shapes.size() ||
      flags.min_shapes.size() != flags.max_shapes.size()) {
    return usage(cat("--minShapes, --optShapes and --maxShapes must be given the same number of ",
                     "times (each trio is one profile), got ", flags.min_shapes.size(), ", ",
                     flags.opt_shapes.size(), " and ", flags.max_shapes.size()));
  }
  for (size_t p = 0; p < flags.min_shapes.size(); ++p) {
    Result<std::map<std::string, Dims>> mins =
        parse_occurrence("--minShapes", flags.min_shapes[p], p);
    if (!mins) return mins.status();
    Result<std::map<std::string, Dims>> opts =
        parse_occurrence("--optShapes", flags.opt_shapes[p], p);
    if (!opts) return opts.status();
    Result<std::map<std::string, Dims>> maxs =
        parse_occurrence("--maxShapes", flags.max_shapes[p], p);
    if (!maxs) return maxs.status();

    std::map<std::string, int> names;
    for (const auto* shapes : {&*mins, &*opts, &*maxs}) {
      for (const auto& entry : *shapes) names[entry.first] = 0;
    }
    OptimizationProfile profile;
    for (const auto& entry : names) {
      const std::string& name = entry.first;
      std::vector<std::string> missing;
      if (!mins->count(name)) missing.emplace_back("--minShapes");
      if (!opts->count(name)) missing.emplace_back("--optShapes");
      if (!maxs->count(name)) missing.emplace_back("--maxShapes");
      if (!missing.empty()) {
        std::string flags_text;
        for (const std::string& flag : missing)
          flags_text += (flags_text.empty() ? "" : ", ") + flag;
        return usage(cat("profile ", p, ": input '", name, "' is missing from occurrence #", p + 1,
                         " of ", flags_text, " (each profile needs min, opt and max for every ",
                         "input it names)"));
      }
      Status status =
          profile.set_dimensions(name, ShapeRange{mins->at(name), opts->at(name), maxs->at(name)});
      if (!status) return usage(cat("profile ", p, ": ", status.message()));
    }
    profiles.push_back(std::move(profile));
  }
  return profiles;
}

}  // namespace mlprt::cli
