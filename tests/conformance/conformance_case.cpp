#include "conformance_case.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>

#include "ir/evaluator.h"
#include "mlprt/builder.h"
#include "mlprt/engine.h"
#include "mlprt/float16.h"
#include "mlprt/network.h"
#include "onnx/onnx.pb.h"
#include "onnx/onnx_tensor.h"

namespace mlprt::conformance {
namespace {

namespace fs = std::filesystem;

struct DataSet {
  std::string name;
  std::vector<onnx::TensorProto> inputs;   // input_<i>.pb, i = 0, 1, ...
  std::vector<onnx::TensorProto> outputs;  // output_<i>.pb
};

// A failed step: kUnsupported when our code refused the model as unsupported.
struct StepError {
  Outcome outcome = Outcome::kFail;
  std::string reason;
};

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::optional<onnx::TensorProto> read_tensor(const fs::path& path) {
  auto bytes = read_file(path);
  onnx::TensorProto proto;
  if (!bytes || !proto.ParseFromString(*bytes)) return std::nullopt;
  return proto;
}

std::vector<DataSet> read_data_sets(const fs::path& dir, std::string& error) {
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory() && entry.path().filename().string().rfind("test_data_set_", 0) == 0) {
      folders.push_back(entry.path());
    }
  }
  std::sort(folders.begin(), folders.end());
  std::vector<DataSet> sets;
  for (const fs::path& folder : folders) {
    DataSet set;
    set.name = folder.filename().string();
    for (const char* kind : {"input", "output"}) {
      auto& list = std::string(kind) == "input" ? set.inputs : set.outputs;
      for (int i = 0;; ++i) {
        const fs::path file = folder / (std::string(kind) + "_" + std::to_string(i) + ".pb");
        if (!fs::exists(file)) break;
        auto proto = read_tensor(file);
        if (!proto) {
          error = file.string() + " is not a TensorProto";
          return {};
        }
        list.push_back(std::move(*proto));
      }
    }
    sets.push_back(std::move(set));
  }
  if (sets.empty()) error = "no test_data_set_* folder";
  return sets;
}

StepError from_status(const std::string& step, const Status& status) {
  StepError e;
  e.outcome = status.code() == StatusCode::kUnsupported ? Outcome::kUnsupported : Outcome::kFail;
  e.reason = e.outcome == Outcome::kUnsupported
                 ? status.message()
                 : step + " (" + to_string(status.code()) + "): " + status.message();
  return e;
}

std::vector<float> to_floats(const ir::Constant& c) {
  std::vector<float> v(static_cast<size_t>(c.num_elements()));
  if (!v.empty()) std::memcpy(v.data(), c.data.data(), v.size() * sizeof(float));
  return v;
}

// ||got - want|| against the tolerance; NaN in the same places counts as equal.
struct Comparison {
  bool ok = false;
  double rel_l2 = 0.0;
  std::string detail;
};

Comparison compare(std::span<const float> got, const ir::RefTensor& want) {
  Comparison c;
  double diff2 = 0.0;
  double ref2 = 0.0;
  size_t nan_mismatch = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = want.values[i];
    const double g = got[i];
    if (std::isnan(w) || std::isnan(g)) {
      nan_mismatch += std::isnan(w) != std::isnan(g) ? 1 : 0;
      continue;
    }
    if (std::isinf(w) || std::isinf(g)) {
      nan_mismatch += w != g ? 1 : 0;
      continue;
    }
    diff2 += (g - w) * (g - w);
    ref2 += w * w;
  }
  const double diff = std::sqrt(diff2);
  const double ref = std::sqrt(ref2);
  c.rel_l2 = ref > 0 ? diff / ref : diff;
  const double limit = kRelL2 * ref + kAbsFloor * std::sqrt(static_cast<double>(got.size()));
  c.ok = nan_mismatch == 0 && diff <= limit;
  std::ostringstream os;
  os << "rel L2 " << c.rel_l2 << " (|diff| " << diff << " > limit " << limit << ")";
  if (nan_mismatch) os << ", " << nan_mismatch << " NaN/Inf mismatches";
  c.detail = os.str();
  return c;
}

class CaseRunner {
 public:
  CaseRunner(const fs::path& dir, const onnx::ModelProto& model) : m_dir(dir), m_model(model) {
    std::set<std::string> initializers;
    for (const auto& t : model.graph().initializer()) initializers.insert(t.name());
    for (const auto& in : model.graph().input()) {
      if (!initializers.count(in.name())) m_runtime_inputs.push_back(in.name());
    }
  }

  // Runs one data set; `freeze_weights` turns float inputs after the first into initializers.
  std::optional<StepError> run(const DataSet& set, bool freeze_weights, double& worst) const {
    if (set.inputs.size() != m_runtime_inputs.size()) {
      return StepError{Outcome::kFail, set.name + " has " + std::to_string(set.inputs.size()) +
                                           " inputs, the model " +
                                           std::to_string(m_runtime_inputs.size())};
    }
    for (const auto& in : m_model.graph().input()) {
      if (!in.type().has_tensor_type()) {
        return StepError{Outcome::kUnsupported,
                         "graph input '" + in.name() +
                             "' is not a tensor (sequence, optional or map); mlprt's inputs are "
                             "tensors"};
      }
    }
    onnx::ModelProto model = m_model;
    std::map<std::string, ir::Constant> runtime;
    for (size_t i = 0; i < set.inputs.size(); ++i) {
      const std::string& name = m_runtime_inputs[i];
      const onnx::TensorProto& proto = set.inputs[i];
      // Our graph inputs are float32 only: other dtypes (shapes, axes, ...) become initializers.
      const bool is_float = proto.data_type() == onnx::TensorProto_DataType_FLOAT;
      if (!is_float || (freeze_weights && i > 0)) {
        onnx::TensorProto* init = model.mutable_graph()->add_initializer();
        *init = proto;
        init->set_name(name);
        continue;
      }
      auto c = onnx_import::convert_tensor(proto, set.name + " input " + name);
      if (!c) return from_status("reading the input", c.status());
      runtime.emplace(name, std::move(*c));
    }
    const std::string bytes = model.SerializeAsString();
    const std::string source = m_dir.string() + "/model.onnx";
    auto network = Network::from_onnx_bytes(
        std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), source);
    if (!network) return from_status("import", network.status());

    BuilderConfig config;
    config.backend = "cpu";
    if (!runtime.empty()) {
      OptimizationProfile profile;
      for (const auto& [name, c] : runtime) {
        Status s = profile.set_dimensions(name, {c.dims, c.dims, c.dims});
        if (!s) return from_status("profile", s);
      }
      config.profiles.push_back(profile);
    }
    auto plan = build_serialized_engine(**network, config);
    if (!plan) return from_status("build", plan.status());
    auto engine = Engine::load(plan->bytes, source);
    if (!engine) return from_status("engine load", engine.status());
    auto context = (*engine)->create_execution_context();
    if (!context) return from_status("context", context.status());
    std::map<std::string, std::vector<float>> buffers;
    for (const auto& [name, c] : runtime) {
      buffers[name] = to_floats(c);
      if (buffers[name].empty()) buffers[name].resize(1);  // an empty tensor still needs an address
      Status s = (*context)->set_input_shape(name, c.dims);
      if (s) s = (*context)->set_tensor_address(name, buffers[name].data());
      if (!s) return from_status("set input '" + name + "'", s);
    }
    Status s = (*context)->enqueue();
    if (!s) return from_status("enqueue", s);

    const auto& outputs = m_model.graph().output();
    if (static_cast<size_t>(outputs.size()) != set.outputs.size()) {
      return StepError{Outcome::kFail, set.name + " has " + std::to_string(set.outputs.size()) +
                                           " outputs, the model " +
                                           std::to_string(outputs.size())};
    }
    for (int i = 0; i < outputs.size(); ++i) {
      const std::string& name = outputs[i].name();
      auto want_c = onnx_import::convert_tensor(set.outputs[static_cast<size_t>(i)], name);
      if (!want_c) return from_status("reading the expected output", want_c.status());
      const ir::RefTensor want = ir::to_ref_tensor(*want_c);
      auto got = (*context)->output(name);
      if (!got) return from_status("output '" + name + "'", got.status());
      if (!is_io_float_type(got->dtype)) {
        return StepError{Outcome::kFail, "output '" + name + "' is " +
                                             std::string(to_string(got->dtype))};
      }
      if (got->dims != want.dims) {
        return StepError{Outcome::kFail, set.name + ": output '" + name + "' has shape " +
                                             to_string(got->dims) + ", expected " +
                                             to_string(want.dims)};
      }
      // float16 / bfloat16 outputs widen exactly.
      std::vector<float> values(want.values.size());
      convert_floats(got->data, got->dtype, values.data(), DataType::kFloat32, values.size());
      const Comparison cmp = compare(values, want);
      worst = std::max(worst, cmp.rel_l2);
      if (!cmp.ok) {
        return StepError{Outcome::kFail,
                         set.name + ": output '" + name + "' differs: " + cmp.detail};
      }
    }
    return std::nullopt;
  }

  [[nodiscard]] size_t float_runtime_inputs(const DataSet& set) const {
    size_t n = 0;
    for (const auto& t : set.inputs) n += t.data_type() == onnx::TensorProto_DataType_FLOAT;
    return n;
  }

 private:
  fs::path m_dir;
  const onnx::ModelProto& m_model;
  std::vector<std::string> m_runtime_inputs;
};

}  // namespace

CaseResult run_case(const fs::path& dir, const std::string& suite) {
  CaseResult result;
  result.suite = suite;
  result.name = dir.filename().string();
  try {
    auto bytes = read_file(dir / "model.onnx");
    onnx::ModelProto model;
    if (!bytes || !model.ParseFromString(*bytes)) {
      result.reason = "model.onnx cannot be read or parsed";
      return result;
    }
    std::set<std::string> ops;
    for (const auto& node : model.graph().node()) ops.insert(node.op_type());
    result.ops.assign(ops.begin(), ops.end());

    std::string error;
    const std::vector<DataSet> sets = read_data_sets(dir, error);
    if (sets.empty()) {
      result.reason = error;
      return result;
    }
    result.data_sets = static_cast<int>(sets.size());
    const CaseRunner runner(dir, model);
    // Mode 1: every float input is a runtime input. Mode 2 (when mode 1 is refused and there
    // are weights to freeze): float inputs after the first become initializers, as an exported
    // MLP's weights are.
    for (const bool freeze : {false, true}) {
      if (freeze && runner.float_runtime_inputs(sets.front()) < 2) break;
      std::optional<StepError> error_here;
      double worst = 0.0;
      for (const DataSet& set : sets) {
        error_here = runner.run(set, freeze, worst);
        if (error_here) break;
      }
      result.worst_rel_l2 = worst;
      if (!error_here) {
        result.outcome = Outcome::kPass;
        result.reason.clear();
        result.mode = freeze ? "weights frozen" : "runtime inputs";
        return result;
      }
      // A numeric mismatch is a real failure: never retried in another mode.
      const bool mismatch = error_here->reason.find(" differs: ") != std::string::npos;
      result.outcome = error_here->outcome;
      result.reason = error_here->reason;
      result.mode = freeze ? "weights frozen" : "runtime inputs";
      if (mismatch) return result;
    }
  } catch (const std::exception& e) {
    result.outcome = Outcome::kFail;
    result.reason = std::string("exception: ") + e.what();
  }
  return result;
}

}  // namespace mlprt::conformance
