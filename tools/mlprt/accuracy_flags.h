#pragma once
// `mlprt build --accuracyBudget=<rel L2> [--calibrationInputs=x.npy | name:x.npy,...]`.

#include <string>
#include <vector>

#include "mlprt/builder_config.h"
#include "mlprt/network.h"
#include "mlprt/status.h"

namespace mlprt::cli {

/// Sets config.accuracy_budget and the calibration inputs from the flags' values (as given;
/// empty: not given). Errors are usage errors (a bad budget) or input errors (a calibration
/// file missing, unreadable, of a non-float dtype, for an unknown input).
Status apply_accuracy_flags(const std::string& budget,
                            const std::vector<std::string>& calibration_inputs,
                            const Network& network, BuilderConfig& config);

/// Whether `text` is a finite number > 0 (the budget's only valid values).
Result<double> parse_accuracy_budget(const std::string& text);

}  // namespace mlprt::cli
