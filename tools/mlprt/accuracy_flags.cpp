#include "accuracy_flags.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "cli_common.h"
#include "npy.h"

namespace mlprt::cli {
namespace {

// "name:path" (the longest input name that prefixes it) or a bare path (name empty).
Result<std::pair<std::string, std::string>> split_named(const std::string& item,
                                                        const std::vector<std::string>& names) {
  const std::string* best = nullptr;
  for (const std::string& name : names) {
    if (item.size() > name.size() + 1 && item.compare(0, name.size(), name) == 0 &&
        item[name.size()] == ':' && (!best || name.size() > best->size())) {
      best = &name;
    }
  }
  if (best) return std::pair{*best, item.substr(best->size() + 1)};
  const size_t colon = item.find(':');
  if (colon == std::string::npos) return std::pair{std::string(), item};
  return Status(StatusCode::kNotFound,
                cat("--calibrationInputs=", item, ": the network has no input named '",
                    item.substr(0, colon), "'; its inputs are ", quoted_list(names)));
}

}  // namespace

Result<double> parse_accuracy_budget(const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE ||
      !std::isfinite(value) || value <= 0.0) {
    return Status(StatusCode::kInvalidArgument,
                  cat("--accuracyBudget=", text,
                      ": must be a number > 0, the largest relative L2 error of the outputs "
                      "against float64, e.g. --accuracyBudget=1e-3"));
  }
  return value;
}

Status apply_accuracy_flags(const std::string& budget,
                            const std::vector<std::string>& calibration_inputs,
                            const Network& network, BuilderConfig& config) {
  if (budget.empty()) {
    if (!calibration_inputs.empty()) {
      return Status(StatusCode::kInvalidArgument,
                    "--calibrationInputs is used only with --accuracyBudget, e.g. "
                    "--accuracyBudget=1e-3 --calibrationInputs=x.npy");
    }
    return Status::ok();
  }
  Result<double> parsed = parse_accuracy_budget(budget);
  if (!parsed) return parsed.status();
  config.accuracy_budget = *parsed;
  std::vector<std::string> names;
  for (const TensorDesc& desc : network.inputs()) names.push_back(desc.name);
  std::set<std::string> given;
  for (const std::string& value : calibration_inputs) {
    for (const std::string& item : split_list(value)) {
      Result<std::pair<std::string, std::string>> named = split_named(item, names);
      if (!named) return named.status();
      auto [name, path] = std::move(*named);
      if (name.empty()) {
        if (names.size() != 1) {
          return Status(StatusCode::kInvalidArgument,
                        cat("--calibrationInputs=", item, ": the network has ", names.size(),
                            " inputs (", quoted_list(names),
                            "), name each one, e.g. --calibrationInputs=",
                            names.empty() ? "input" : names.front(), ":x.npy"));
        }
        name = names.front();
      }
      if (!given.insert(name).second) {
        return Status(StatusCode::kInvalidArgument,
                      cat("--calibrationInputs: input '", name, "' is given twice"));
      }
      Result<NpyArray> array = read_npy(path);
      if (!array) {
        return Status(array.status().code(),
                      cat("--calibrationInputs: ", array.status().message()));
      }
      const std::string& dtype = array->source_dtype;
      if (dtype.size() < 2 || dtype[1] != 'f') {
        return Status(StatusCode::kInvalidArgument,
                      cat("--calibrationInputs: '", path, "' for input '", name, "' holds ",
                          dtype, " values; give floating-point values (float32, float64 or "
                          "float16)"));
      }
      config.calibration_inputs[name] = CalibrationTensor{array->dims, std::move(array->values)};
      config.calibration_source += (config.calibration_source.empty() ? "" : ",") + name + ":" + path;
    }
  }
  return Status::ok();
}

}  // namespace mlprt::cli
