#pragma once
// One ONNX backend-test directory (model.onnx + test_data_set_*/{input,output}_*.pb) run through
// import -> cpu build -> run, compared with the stored outputs.

#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace mlprt::conformance {

enum class Outcome { kPass, kFail, kUnsupported };

struct CaseResult {
  std::string suite;              ///< "node", "pytorch-converted", "pytorch-operator"
  std::string name;               ///< directory name, e.g. "test_gemm_alpha"
  std::vector<std::string> ops;   ///< distinct op types of the model's nodes, sorted
  Outcome outcome = Outcome::kFail;
  std::string reason;             ///< why it failed or is unsupported; empty on pass
  std::string mode;               ///< "runtime inputs" or "weights frozen" (what passed)
  double worst_rel_l2 = 0.0;      ///< over every output of every data set (pass and fail)
  int data_sets = 0;
};

/// Outputs agree when ||got - want||_2 <= kRelL2 * ||want||_2 + kAbsFloor * sqrt(n): rel L2 with
/// an absolute floor (RMS 1e-6) so that all-zero or near-zero expected outputs can pass.
inline constexpr double kRelL2 = 1e-5;
inline constexpr double kAbsFloor = 1e-6;

/// Runs one test directory. Never throws; every problem becomes a kFail or kUnsupported reason.
CaseResult run_case(const std::filesystem::path& dir, const std::string& suite);

}  // namespace mlprt::conformance
