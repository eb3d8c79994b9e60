#include "backends/cuda/cuda_backend.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "backends/cuda/cublaslt_loader.h"
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_engine_timing.h"
#include "backends/cuda/cuda_executable.h"
#include "backends/cuda/cuda_precisions.h"
#include "backends/cuda/cuda_tactic_timer.h"
#include "backends/cuda/fused_tc_plan.h"
#include "backends/profile_shapes.h"
#include "common/check.h"
#include "common/json_integer.h"
#include "common/log.h"
#include "common/timing_cache.h"

namespace mlprt::backend {
namespace {

using namespace cuda;

constexpr std::string_view kBlobFormat = "mlprt.cuda";
// Version 2: each layer names its "epilogue" ("exact" or "gelu_tanh", the GELU tactic), and a
// tactic's "us" is the whole layer's time. Version 3 (written only for engines whose layers run
// in different precisions) adds "layer_precisions": every non-view layer's precision by name.
// Version 4 (written only when some Dense layer stores its W as [N, K]): layers may carry
// "weights": "nk" (absent: "kn"), and "layer_precisions" is present when the engine is mixed.
// Older readers refuse it, rather than read such a W as [K, N].
constexpr int kBlobVersion = 2;
constexpr int kMixedBlobVersion = 3;
constexpr int kWeightsNkBlobVersion = 4;
constexpr size_t kWorkspaceBytes = size_t{32} << 20;
constexpr int kCandidates = 16;
constexpr int64_t kFusedCandidateRows = 1024;

// One profile's whole-chain candidates at its opt rows (times in us; < 0: not a candidate).
struct ChainCandidates {
  int64_t rows = 0;
  double layers_us = 0.0;  ///< the cuBLASLt layers' (and fused single layers') timings, summed
  double fp32_us = -1.0;   ///< the fp32 fused kernel
  int tc_record = -1;      ///< the profile's FusedTcProfile in FusedTcChoice::profiles
  bool fp32_chosen = false;
};

// A Dense layer's tactics over its row counts, as written to the blob.
struct LayerTuning {
  nlohmann::json tactics = nlohmann::json::array();
  std::map<int64_t, double> us_by_m;
  double total_us = 0.0;
};

struct HardwareParts {
  std::string gpu, sm, cudart, cublaslt;
};

// "<gpu name> sm_<cc> cudart <v> cublasLt <v>"
HardwareParts split_hardware(const std::string& id) {
  HardwareParts parts;
  const size_t sm = id.rfind(" sm_");
  const size_t rt = id.rfind(" cudart ");
  const size_t lt = id.rfind(" cublasLt ");
  if (sm == std::string::npos || rt == std::string::npos || lt == std::string::npos || sm > rt ||
      rt > lt) {
    parts.gpu = id;
    return parts;
  }
  parts.gpu = id.substr(0, sm);
  parts.sm = id.substr(sm + 1, rt - sm - 1);
  parts.cudart = id.substr(rt + 8, lt - rt - 8);
  parts.cublaslt = id.substr(lt + 10);
  return parts;
}

std::string algo_key(const cublasLtMatmulAlgo_t& algo) {
  std::ostringstream os;
  os << std::hex;
  for (uint64_t word : algo.data) os << word << '.';
  return os.str();
}

std::string dense_key(const DenseSpec& spec, Precision precision, int64_t m) {
  std::ostringstream os;
  os << "dense m=" << m << " k=" << spec.k << " n=" << spec.n << ' ' << to_string(precision)
     << (spec.transpose_x ? " xT" : "") << (spec.weights_nk ? " W[N,K]" : "") << ' '
     << describe_epilogue(spec);
  return os.str();
}

class CudaBackend final : public Backend {
 public:
  std::string name() const override { return "cuda"; }

  Status check_available() const override {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return make_error(StatusCode::kUnsupported, "no CUDA device found (cudaGetDeviceCount: ",
                        cudaGetErrorName(err), ": ", cudaGetErrorString(err), ")");
    }
    if (count == 0) return Status(StatusCode::kUnsupported, "no CUDA device found");
    return load_cublaslt();
  }

  std::string hardware_id() const override {
    int device = 0;
    cudaDeviceProp prop{};
    int runtime = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
      cudaGetLastError();
      return "no CUDA device";
    }
    cudaRuntimeGetVersion(&runtime);
    return std::string(prop.name) + " sm_" + std::to_string(prop.major) +
           std::to_string(prop.minor) + " cudart " + std::to_string(runtime) + " cublasLt " +
           std::to_string(cublasLtGetVersion());
  }

  Status check_hardware(const std::string& plan_hardware) const override {
    const std::string here = hardware_id();
    if (plan_hardware == here) return Status::ok();
    const HardwareParts plan = split_hardware(plan_hardware);
    const HardwareParts mine = split_hardware(here);
    std::string differs;
    auto note = [&](const char* what, const std::string& a, const std::string& b) {
      if (a != b) differs += std::string(differs.empty() ? "" : ", ") + what + " " + a + " vs " + b;
    };
    note("GPU", plan.gpu, mine.gpu);
    note("compute capability", plan.sm, mine.sm);
    note("CUDA runtime", plan.cudart, mine.cudart);
    note("cuBLASLt", plan.cublaslt, mine.cublaslt);
    return make_error(StatusCode::kVersionMismatch, "the plan was built for '", plan_hardware,
                      "' but this machine has '", here, "' (", differs,
                      "); its tactics were timed there: rebuild the plan on this machine "
                      "(mlprt build --backend=cuda)");
  }

  Status supports(const ir::Graph& graph, const ir::Node& node) const override {
    static const std::set<std::string, std::less<>> kOps = {
        "Dense",     "Add",        "Binary",  "Relu",    "Activation", "Softmax",
        "LayerNorm", "ScaleShift", "Reshape", "Flatten", "Squeeze",    "Unsqueeze",
        "Transpose", "Slice",      "ReduceMean", "MatMul"};
    if (!kOps.count(node.op)) {
      return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node),
                        ": op is not supported; supported ops: ", kCudaOps);
    }
    for (const std::string& tensor : node.inputs) {
      if (const ir::Constant* c = graph.find_constant(tensor)) {
        if (c->dtype != DataType::kFloat32 && node.op != "Reshape" && node.op != "Squeeze" &&
            node.op != "Unsqueeze") {
          return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node),
                            ": constant '", tensor, "' is ", to_string(c->dtype),
                            "; only float32 is supported");
        }
      }
      if (const ir::TensorInfo* in = graph.find_input(tensor)) {
        MLPRT_RETURN_IF_ERROR(
            io_elem_type(in->dtype, describe(node) + ": input '" + tensor + "'").status());
      }
    }
    if (node.op == "Dense") return dense_spec(graph, node).status();
    if (node.op == "Activation") {
      const std::optional<ir::ActivationSpec> spec = ir::activation_of(node);
      if (!spec) {
        return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node),
                          ": activation kind '", node.get_string("kind", ""), "'; supported: ",
                          ir::kActivationKinds);
      }
      return Status::ok();
    }
    if (node.op == "Reshape" && !node.has_attribute("shape")) {
      return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node),
                        ": needs a constant target shape (attribute 'shape')");
    }
    return Status::ok();
  }

  Result<std::vector<uint8_t>> compile(const ir::Graph& graph,
                                       const std::vector<OptimizationProfile>& profiles,
                                       const BuilderConfig& config) const override {
    MLPRT_RETURN_IF_ERROR(check_available());
    for (const ir::Node& node : graph.nodes) MLPRT_RETURN_IF_ERROR(supports(graph, node));
    Precision precision = Precision::kFp32;
    if (config.allow_fp16) {
      precision = Precision::kFp16;
    } else if (config.allow_bf16) {
      precision = Precision::kBf16;
    } else if (config.allow_tf32) {
      precision = Precision::kTf32;
    }
    MLPRT_ASSIGN_OR_RETURN(const LayerPrecisions precisions,
                           resolve_layer_precisions(graph, config, precision));
    std::vector<OptimizationProfile> points = profiles;
    if (points.empty()) points.emplace_back();
    LtHandle handle;
    MLPRT_RETURN_IF_ERROR(handle.create());
    cudaStream_t stream = nullptr;
    MLPRT_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    const auto start = std::chrono::steady_clock::now();
    detail::TimingCache cache;
    TacticTimer timer;
    timer.hardware = hardware_id();
    Status cache_loaded = Status::ok();
    if (!config.timing_cache_path.empty()) {
      Result<detail::TimingCache> loaded = detail::TimingCache::load(config.timing_cache_path);
      cache_loaded = loaded.status();
      if (loaded.is_ok()) {
        cache = std::move(loaded).value();
        timer.cache = &cache;
      }
    }
    Result<nlohmann::json> layers =
        !cache_loaded.is_ok() ? Result<nlohmann::json>(cache_loaded)
        : config.optimization_level == 0
            ? Result<nlohmann::json>(untuned(graph, precisions))
            : tune(graph, points, precisions, handle.get(), stream, timer);
    cudaStreamDestroy(stream);
    if (!layers.is_ok()) return layers.status();
    detail::log(Severity::kInfo, "cuda backend: tactics: ", timer.timed, " timed, ", timer.cached,
                " from the timing cache, in ",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                " s");
    if (timer.cache != nullptr && cache.modified()) {
      MLPRT_RETURN_IF_ERROR(cache.save(config.timing_cache_path));
    }
    const std::string text =
        layers->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return std::vector<uint8_t>(text.begin(), text.end());
  }

  Result<std::unique_ptr<Executable>> load(const ir::Graph& graph,
                                           std::span<const uint8_t> blob) const override {
    for (const ir::Node& node : graph.nodes) MLPRT_RETURN_IF_ERROR(supports(graph, node));
    MLPRT_ASSIGN_OR_RETURN(BlobInfo info, parse_blob(graph, blob));
    MLPRT_ASSIGN_OR_RETURN(auto exe, CudaExecutable::create(graph, info));
    return std::unique_ptr<Executable>(std::move(exe));
  }

  Result<BlobDescription> describe_blob(const ir::Graph& graph,
                                        std::span<const uint8_t> blob) const override {
    // No device: the blob's choices and the graph's dims say everything inspect shows.
    MLPRT_ASSIGN_OR_RETURN(BlobInfo info, parse_blob(graph, blob));
    MLPRT_ASSIGN_OR_RETURN(auto exe, CudaExecutable::create(graph, info, true));
    return BlobDescription{exe->layer_precisions(), exe->tactic_notes()};
  }

  static Result<BlobInfo> parse_blob(const ir::Graph& graph, std::span<const uint8_t> blob) {
    BlobInfo info;
    try {
      const nlohmann::json json = nlohmann::json::parse(blob.begin(), blob.end());
      if (!json.is_object() || json.value("format", "") != kBlobFormat) {
        return make_error(StatusCode::kCorruptData, "cuda backend: the plan's backend section for '",
                          graph.name, "' is not a cuda backend blob");
      }
      const int version = json_integer<int>(json.at("version"));
      if (version != kBlobVersion && version != kMixedBlobVersion &&
          version != kWeightsNkBlobVersion) {
        return make_error(StatusCode::kVersionMismatch, "cuda backend: the plan for '",
                          graph.name, "' has cuda blob version ", version,
                          "; this build reads version ", kBlobVersion, " (", kMixedBlobVersion,
                          " for engines whose layers run in different precisions, ",
                          kWeightsNkBlobVersion, " with weights stored [N, K]) only (version "
                          "2 records each Dense layer's epilogue tactic): rebuild "
                          "the plan with this mlprt (mlprt build --backend=cuda)");
      }
      MLPRT_ASSIGN_OR_RETURN(info.precision, parse_precision(json.at("precision").get<std::string>()));
      if (version == kMixedBlobVersion ||
          (version == kWeightsNkBlobVersion && json.contains("layer_precisions"))) {
        for (const auto& [node, text] : json.at("layer_precisions").items()) {
          MLPRT_ASSIGN_OR_RETURN(info.layer_precision[node],
                                 parse_precision(text.get<std::string>()));
        }
        if (info.layer_precision.empty()) {
          return make_error(StatusCode::kCorruptData, "cuda backend: the plan for '", graph.name,
                            "' has cuda blob version 3 with no layer precisions");
        }
      }
      info.workspace_bytes = json_integer<size_t>(json.at("workspace_bytes"));
      info.fused_max_rows = json_integer<int64_t>(json.at("fused_max_rows"));
      if (json.contains("fused_tc")) {
        MLPRT_ASSIGN_OR_RETURN(info.fused_tc, FusedTcChoice::from_json(json.at("fused_tc")));
      }
      for (const nlohmann::json& layer : json.at("layers")) {
        const std::string node = layer.at("node").get<std::string>();
        const std::string epilogue = layer.at("epilogue").get<std::string>();
        if (epilogue == "gelu_tanh") {
          info.gelu_tanh_layers.insert(node);
        } else if (epilogue != "exact") {
          return make_error(StatusCode::kCorruptData, "cuda backend: layer '", node,
                            "' of the plan for '", graph.name, "' has epilogue '", epilogue,
                            "'; allowed: exact, gelu_tanh");
        }
        const std::string weights = layer.value("weights", std::string("kn"));
        if (weights == "nk") {
          info.weights_nk_layers.insert(node);
        } else if (weights != "kn") {
          return make_error(StatusCode::kCorruptData, "cuda backend: layer '", node,
                            "' of the plan for '", graph.name, "' has weights '", weights,
                            "'; allowed: kn, nk");
        }
        const std::string kernel = layer.value("kernel", std::string("cublaslt"));
        if (kernel != "cublaslt" && kernel != "fused_tc") {
          return make_error(StatusCode::kCorruptData, "cuda backend: layer '", node,
                            "' of the plan for '", graph.name, "' has kernel '", kernel,
                            "'; allowed: cublaslt, fused_tc");
        }
        if (layer.contains("fused_us")) {
          FusedLayerChoice choice;
          choice.chosen = kernel == "fused_tc";
          choice.fused_us = layer.at("fused_us").get<double>();
          choice.cublaslt_us = layer.at("cublaslt_us").get<double>();
          info.fused_layers[node] = choice;
        } else if (kernel == "fused_tc") {
          return make_error(StatusCode::kCorruptData, "cuda backend: layer '", node,
                            "' of the plan for '", graph.name,
                            "' runs on the fused kernel but has no \"fused_us\"");
        }
        auto& tuned = info.tuned[node];
        for (const nlohmann::json& t : layer.at("tactics")) {
          TunedAlgo algo;
          algo.m = json_integer<int64_t>(t.at("m"));
          algo.us = t.at("us").get<double>();
          algo.candidates = json_integer<int>(t.at("candidates"));
          const auto words = json_integers<uint64_t>(t.at("algo"));
          if (words.size() != std::size(algo.algo.data)) {
            return make_error(StatusCode::kCorruptData, "cuda backend: tactic of layer '",
                              node, "' has ", words.size(),
                              " words; expected ", std::size(algo.algo.data));
          }
          std::copy(words.begin(), words.end(), algo.algo.data);
          tuned.push_back(algo);
        }
      }
    } catch (const nlohmann::json::exception& e) {
      return make_error(StatusCode::kCorruptData, "cuda backend: the plan's cuda section for '",
                        graph.name, "' is not valid: ", e.what());
    }
    return info;
  }

  std::vector<std::string> blob_layer_precisions(const ir::Graph& graph,
                                                 std::span<const uint8_t> blob) const override {
    // Every layer runs in the blob's one precision (tf32 is fp32 storage).
    const nlohmann::json json = nlohmann::json::parse(blob.begin(), blob.end(), nullptr, false);
    if (!json.is_object() || !json.contains("format") || json.at("format") != kBlobFormat ||
        !json.contains("precision") || !json.at("precision").is_string()) {
      return {};
    }
    std::string precision = json.at("precision").get<std::string>();
    if (precision == "tf32") precision = "fp32";
    return std::vector<std::string>(graph.nodes.size(), precision);
  }

 private:
  // One Dense layer's fastest cuBLASLt algorithm at each row count in `ms`, with its activation
  // as `spec` says; each tactic's time is the layer's (matmul plus our activation kernel when
  // the epilogue does not compute it).
  Result<LayerTuning> tune_dense(const ir::Node& node, const DenseSpec& spec,
                                 const std::vector<int64_t>& ms, Precision precision,
                                 cublasLtHandle_t handle, cudaStream_t stream,
                                 const DeviceBuffer& workspace, TacticTimer& timer) const {
    LayerTuning tuning;
    const ElemType type = storage_type(precision);
    const size_t es = storage_size(precision);
    const ElemType out_type = spec.out_f32 ? ElemType::kF32 : type;
    const size_t out_es = spec.out_f32 ? 4 : es;
    for (int64_t m : ms) {
      DeviceBuffer xb, wb, bb, yb;
      MLPRT_RETURN_IF_ERROR(xb.reserve(static_cast<size_t>(m * spec.k) * es, "tactic X"));
      MLPRT_RETURN_IF_ERROR(wb.reserve(static_cast<size_t>(spec.k * spec.n) * es, "tactic W"));
      MLPRT_RETURN_IF_ERROR(bb.reserve(static_cast<size_t>(spec.n) * out_es, "tactic bias"));
      MLPRT_RETURN_IF_ERROR(yb.reserve(static_cast<size_t>(m * spec.n) * out_es, "tactic Y"));
      MLPRT_CUDA_TRY(launch_fill_pattern(xb.get(), type, m * spec.k, 1, stream), "fill");
      MLPRT_CUDA_TRY(launch_fill_pattern(wb.get(), type, spec.k * spec.n, 2, stream), "fill");
      MLPRT_CUDA_TRY(launch_fill_pattern(bb.get(), out_type, spec.n, 3, stream), "fill");
      MLPRT_ASSIGN_OR_RETURN(MatmulPlan plan, MatmulPlan::create(spec, precision, m, bb.get()));
      MLPRT_ASSIGN_OR_RETURN(auto candidates,
                             plan.candidates(handle, kWorkspaceBytes, kCandidates));
      double best_us = 1e30;
      cublasLtMatmulAlgo_t best{};
      for (const cublasLtMatmulAlgo_t& algo : candidates) {
        if (!plan.check(handle, algo, kWorkspaceBytes).is_ok()) continue;
        const std::string what = dense_key(spec, precision, m) + " | " + algo_key(algo);
        Result<double> us = timer.time(what, stream, [&]() -> Status {
          MLPRT_CUBLAS_TRY(plan.run(handle, algo, xb.get(), wb.get(), yb.get(), workspace.get(),
                                    kWorkspaceBytes, stream),
                           "cublasLtMatmul");
          return Status::ok();
        });
        if (us.is_ok() && *us < best_us) {
          best_us = *us;
          best = algo;
        }
      }
      if (best_us >= 1e30) {
        return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node),
                          ": no cuBLASLt candidate ran for M=", m, " in ", to_string(precision),
                          " with the ", describe_epilogue(spec));
      }
      double kernel_us = 0.0;
      if (!spec.lt_activation) {
        const std::string what = dense_key(spec, precision, m) + " | our activation kernel";
        MLPRT_ASSIGN_OR_RETURN(kernel_us, timer.time(what, stream, [&]() -> Status {
                                 MLPRT_CUDA_TRY(launch_activation(yb.get(), yb.get(), out_type,
                                                                  spec.act, m * spec.n, stream),
                                                "activation kernel");
                                 return Status::ok();
                               }));
      }
      detail::log(Severity::kVerbose, "cuda backend: ", describe(node), " M=", m, " ",
                  to_string(precision), " ", describe_epilogue(spec), ": ", describe_algo(best),
                  " at ", best_us, " us + kernel ", kernel_us, " us (", candidates.size(),
                  " candidates)");
      tuning.us_by_m[m] = best_us + kernel_us;
      tuning.total_us += best_us + kernel_us;
      tuning.tactics.push_back(
          {{"m", m},
           {"us", best_us + kernel_us},
           {"candidates", candidates.size()},
           {"algo", std::vector<uint64_t>(std::begin(best.data), std::end(best.data))}});
    }
    return tuning;
  }

  // Builder optimization level 0: nothing timed; every Dense layer runs cuBLASLt's first
  // heuristic candidate for its M (chosen when a context prepares it) and the exact epilogue.
  nlohmann::json untuned(const ir::Graph& graph, const LayerPrecisions& precisions) const {
    nlohmann::json layers = nlohmann::json::array();
    for (const ir::Node& node : graph.nodes) {
      if (node.op != "Dense") continue;
      layers.push_back({{"node", node.name}, {"epilogue", "exact"},
                        {"tactics", nlohmann::json::array()}});
    }
    FusedTcChoice fused_tc;
    std::vector<const ir::Node*> chain;
    fused_tc.reason = fused_tc_ineligible(graph, precisions, chain);
    fused_tc.eligible = fused_tc.reason.empty();
    if (fused_tc.eligible) fused_tc.reason = "builder optimization level 0 times no tactic";
    return blob_json(precisions, 0, std::move(layers), &fused_tc);
  }

  // The blob: version 2 for a single-precision engine (as before per-layer precisions), 3 with
  // every layer's precision for a mixed one.
  nlohmann::json blob_json(const LayerPrecisions& precisions, int64_t fused_max_rows,
                           nlohmann::json layers, const FusedTcChoice* fused_tc = nullptr) const {
    nlohmann::json blob{{"format", kBlobFormat},
                        {"version", precisions.mixed() ? kMixedBlobVersion : kBlobVersion},
                        {"hardware", hardware_id()},
                        {"precision", to_string(precisions.base)},
                        {"workspace_bytes", kWorkspaceBytes},
                        {"fused_max_rows", fused_max_rows},
                        {"layers", std::move(layers)}};
    if (fused_tc != nullptr) blob["fused_tc"] = fused_tc->to_json();
    for (const nlohmann::json& layer : blob["layers"]) {
      if (layer.contains("weights")) blob["version"] = kWeightsNkBlobVersion;
    }
    if (precisions.mixed()) {
      nlohmann::json by_node = nlohmann::json::object();
      for (const auto& [node, p] : precisions.by_node) by_node[node] = to_string(p);
      blob["layer_precisions"] = std::move(by_node);
    }
    return blob;
  }

  Result<nlohmann::json> tune(const ir::Graph& graph, const std::vector<OptimizationProfile>& points,
                              const LayerPrecisions& precisions, cublasLtHandle_t handle,
                              cudaStream_t stream, TacticTimer& timer) const {
    DeviceBuffer workspace;
    MLPRT_RETURN_IF_ERROR(workspace.reserve(kWorkspaceBytes, "tactic timing workspace"));
    std::vector<const ir::Node*> chain;
    // The fused kernel computes in fp32: it stands in for single-precision engines only.
    const bool fusable = !precisions.mixed() && fusable_chain(graph, chain);
    // Each Dense layer's row count at every profile's opt shape.
    std::map<std::string, std::vector<int64_t>> rows_of;
    std::vector<std::vector<std::pair<const ir::Node*, int64_t>>> profile_rows(points.size());
    for (size_t p = 0; p < points.size(); ++p) {
      MLPRT_ASSIGN_OR_RETURN(ir::ShapeMap inputs, opt_input_shapes(graph, points[p], p));
      MLPRT_ASSIGN_OR_RETURN(ir::ShapeMap shapes, ir::infer_shapes(graph, inputs));
      for (const ir::Node& node : graph.nodes) {
        if (node.op != "Dense") continue;
        MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, node));
        const Dims& x = shapes.at(node.inputs[0]);
        MLPRT_ASSIGN_OR_RETURN(int64_t elements, volume(x));
        const int64_t m = spec.transpose_x ? x[1] : elements / spec.k;
        profile_rows[p].emplace_back(&node, m);
        std::vector<int64_t>& ms = rows_of[node.name];
        if (m > 0 && std::find(ms.begin(), ms.end(), m) == ms.end()) ms.push_back(m);
      }
    }
    std::map<std::string, std::map<int64_t, double>> layer_us;
    nlohmann::json layers = nlohmann::json::array();
    for (const ir::Node& node : graph.nodes) {
      if (node.op != "Dense") continue;
      MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, node));
      spec.out_f32 = dense_writes_f32(graph, node, precisions);
      const Precision precision = precisions.of(node.name);
      const std::vector<int64_t>& ms = rows_of[node.name];
      MLPRT_ASSIGN_OR_RETURN(LayerTuning chosen,
                             tune_dense(node, spec, ms, precision, handle, stream, workspace, timer));
      std::string epilogue = "exact";
      if (gelu_tanh_tactic_allowed(spec, precision) && !ms.empty()) {
        DenseSpec tanh_spec = spec;
        tanh_spec.gelu_tanh_epilogue = true;
        tanh_spec.lt_activation = true;
        Result<LayerTuning> fused =
            tune_dense(node, tanh_spec, ms, precision, handle, stream, workspace, timer);
        detail::log(Severity::kVerbose, "cuda backend: ", describe(node), ": gelu_erf as ",
                    describe_epilogue(spec), " ", chosen.total_us, " us, as ",
                    describe_epilogue(tanh_spec), " ",
                    fused.is_ok() ? std::to_string(fused->total_us) + " us"
                                  : fused.status().message());
        if (fused.is_ok() && fused->total_us < chosen.total_us) {
          chosen = std::move(fused).value();
          epilogue = "gelu_tanh";
        }
      }
      bool weights_nk = false;
      if (weights_nk_tactic_allowed(precision) && !ms.empty()) {
        DenseSpec nk_spec = spec;
        nk_spec.weights_nk = true;
        if (epilogue == "gelu_tanh") {
          nk_spec.gelu_tanh_epilogue = true;
          nk_spec.lt_activation = true;
        }
        Result<LayerTuning> nk =
            tune_dense(node, nk_spec, ms, precision, handle, stream, workspace, timer);
        detail::log(Severity::kVerbose, "cuda backend: ", describe(node), ": W [K, N] ",
                    chosen.total_us, " us, W [N, K] ",
                    nk.is_ok() ? std::to_string(nk->total_us) + " us" : nk.status().message());
        if (nk.is_ok() && nk->total_us < chosen.total_us) {
          chosen = std::move(nk).value();
          weights_nk = true;
        }
      }
      layer_us[node.name] = chosen.us_by_m;
      nlohmann::json record{{"node", node.name}, {"epilogue", epilogue}, {"tactics", chosen.tactics}};
      if (weights_nk) record["weights"] = "nk";
      // A narrow layer may run alone on the fused kernel (its cuBLASLt tactics stay recorded).
      if (!ms.empty() && fused_layer_ineligible(graph, node, precision).empty()) {
        MLPRT_ASSIGN_OR_RETURN(const auto fused_by_m,
                               time_fused_layer(graph, node, precision, spec.out_f32, ms, stream,
                                                timer));
        double fused_total = 0.0;
        for (const auto& [m, us] : fused_by_m) fused_total += us;
        const bool take = fused_total < chosen.total_us;
        detail::log(Severity::kVerbose, "cuda backend: ", describe(node), ": fused layer kernel ",
                    fused_total, " us vs cuBLASLt ", chosen.total_us, " us");
        record["kernel"] = take ? "fused_tc" : "cublaslt";
        record["fused_us"] = fused_total;
        record["cublaslt_us"] = chosen.total_us;
        if (take) layer_us[node.name] = fused_by_m;
      }
      layers.push_back(std::move(record));
    }
    FusedTcChoice fused_tc;
    std::vector<const ir::Node*> tc_chain;
    fused_tc.reason = fused_tc_ineligible(graph, precisions, tc_chain);
    fused_tc.eligible = fused_tc.reason.empty();
    FusedTcParams tc_params;
    std::vector<DeviceBuffer> tc_buffers;
    if (fused_tc.eligible) {
      Status made =
          make_fused_tc(graph, tc_chain, precisions.base, true, tc_params, tc_buffers, stream);
      if (made.code() == StatusCode::kUnsupported) {
        fused_tc.eligible = false;
        fused_tc.reason = made.message();
      } else {
        MLPRT_RETURN_IF_ERROR(made);
      }
    }
    // Per profile: each eligible kernel timed alone (for the record and the log), then each
    // candidate engine timed whole (confirm_chain_choices), which decides.
    std::vector<ChainCandidates> candidates(profile_rows.size());
    for (size_t p = 0; p < profile_rows.size(); ++p) {
      const auto& rows = profile_rows[p];
      if (rows.empty() || rows.front().second <= 0) continue;
      ChainCandidates& c = candidates[p];
      c.rows = rows.front().second;
      for (const auto& [node, m] : rows) {
        if (m > 0) c.layers_us += layer_us[node->name][m];
      }
      double unfused_us = c.layers_us;
      if (fusable && c.rows <= kFusedCandidateRows) {
        MLPRT_ASSIGN_OR_RETURN(c.fp32_us, time_fused(graph, chain, c.rows, stream, timer));
        detail::log(Severity::kVerbose, "cuda backend: fused MLP kernel at M=", c.rows, ": ",
                    c.fp32_us, " us vs cuBLASLt layers ", c.layers_us, " us");
        unfused_us = std::min(unfused_us, c.fp32_us);
      }
      if (fused_tc.eligible) {
        FusedTcProfile record;
        record.profile = static_cast<int>(p);
        record.rows_opt = c.rows;
        MLPRT_ASSIGN_OR_RETURN(record.rows_min, first_dense_rows(graph, points[p], p, false));
        MLPRT_ASSIGN_OR_RETURN(record.rows_max, first_dense_rows(graph, points[p], p, true));
        MLPRT_ASSIGN_OR_RETURN(record.fused_us,
                               time_fused_tc(graph, tc_params, c.rows, stream, timer));
        detail::log(Severity::kVerbose, "cuda backend: fused tensor-core MLP at M=", c.rows,
                    ": ", record.fused_us, " us vs unfused ", unfused_us, " us");
        c.tc_record = static_cast<int>(fused_tc.profiles.size());
        fused_tc.profiles.push_back(record);
      }
    }
    MLPRT_RETURN_IF_ERROR(confirm_chain_choices(graph, points, precisions, layers, fused_tc,
                                                candidates, stream, timer));
    int64_t fused_max_rows = 0;
    for (const ChainCandidates& c : candidates) {
      if (c.fp32_chosen) fused_max_rows = std::max(fused_max_rows, c.rows);
    }
    return blob_json(precisions, fused_max_rows, std::move(layers), &fused_tc);
  }

  // Kernel times add up separately launched calls: a layer chain's launch gaps in a graph, and
  // how a kernel's cost falls at a few rows, are not in them (seed fp32 at 32 rows: the fp32 fused
  // kernel timed 7.98 us against 9.23 for the two layers, and ran 1 us slower in the engine's
  // graph). So where a profile has more than one candidate (cuBLASLt layers, the fp32 fused
  // kernel, the tensor-core one), each candidate engine is timed whole at the profile's opt
  // shapes, as users run it, and the fastest is chosen; the profile's record takes those times.
  Status confirm_chain_choices(const ir::Graph& graph, const std::vector<OptimizationProfile>& points,
                               const LayerPrecisions& precisions, const nlohmann::json& layers,
                               FusedTcChoice& fused_tc, std::vector<ChainCandidates>& candidates,
                               cudaStream_t stream, TacticTimer& timer) const {
    FusedTcChoice none = fused_tc;
    for (FusedTcProfile& record : none.profiles) record.chosen = false;
    std::optional<BlobInfo> base;
    for (size_t p = 0; p < candidates.size(); ++p) {
      ChainCandidates& c = candidates[p];
      if (c.rows <= 0 || (c.fp32_us < 0.0 && c.tc_record < 0)) continue;
      if (!base) {
        const std::string text = blob_json(precisions, 0, layers, &none).dump();
        MLPRT_ASSIGN_OR_RETURN(
            base, parse_blob(graph, std::span(reinterpret_cast<const uint8_t*>(text.data()),
                                              text.size())));
      }
      MLPRT_ASSIGN_OR_RETURN(ir::ShapeMap inputs, opt_input_shapes(graph, points[p], p));
      MLPRT_ASSIGN_OR_RETURN(ir::ShapeMap shapes, ir::infer_shapes(graph, inputs));
      enum Kind { kLayers, kFp32, kTc };
      auto time_candidate = [&](Kind kind) -> Result<double> {
        BlobInfo info = *base;
        FusedTcChoice tc = none;
        if (kind == kFp32) info.fused_max_rows = c.rows;
        if (kind == kTc) {
          info.fused_tc.profiles[c.tc_record].chosen = true;
          tc.profiles[c.tc_record].chosen = true;
        }
        const std::string text =
            blob_json(precisions, info.fused_max_rows, layers, &tc).dump();
        return timer.cached_or(engine_timing_key(graph, text, shapes), [&] {
          return time_engine_us(graph, info, shapes, stream);
        });
      };
      MLPRT_ASSIGN_OR_RETURN(const double layers_us, time_candidate(kLayers));
      double fp32_us = -1.0;
      double tc_us = -1.0;
      if (c.fp32_us >= 0.0) {
        MLPRT_ASSIGN_OR_RETURN(fp32_us, time_candidate(kFp32));
      }
      if (c.tc_record >= 0) {
        MLPRT_ASSIGN_OR_RETURN(tc_us, time_candidate(kTc));
      }
      const double unfused_us = fp32_us >= 0.0 ? std::min(layers_us, fp32_us) : layers_us;
      c.fp32_chosen = fp32_us >= 0.0 && fp32_us < layers_us;
      if (c.tc_record >= 0) {
        FusedTcProfile& record = fused_tc.profiles[c.tc_record];
        record.fused_us = tc_us;
        record.layers_us = unfused_us;
        record.chosen = tc_us < unfused_us;
        if (record.chosen) c.fp32_chosen = false;
      }
      detail::log(Severity::kVerbose, "cuda backend: profile ", p, " at M=", c.rows,
                  ", whole engine: cuBLASLt layers ", layers_us, " us",
                  fp32_us >= 0.0 ? ", fp32 fused " + std::to_string(fp32_us) + " us" : "",
                  tc_us >= 0.0 ? ", tensor-core fused " + std::to_string(tc_us) + " us" : "");
    }
    return Status::ok();
  }

  // The first Dense layer's row count with every input at its profile's min (or max) shape.
  static Result<int64_t> first_dense_rows(const ir::Graph& graph, const OptimizationProfile& profile,
                                          size_t index, bool max) {
    OptimizationProfile at;
    for (const auto& [name, range] : profile.ranges()) {
      const Dims& dims = max ? range.max : range.min;
      MLPRT_RETURN_IF_ERROR(at.set_dimensions(name, ShapeRange{dims, dims, dims}));
    }
    MLPRT_ASSIGN_OR_RETURN(ir::ShapeMap inputs, opt_input_shapes(graph, at, index));
    MLPRT_ASSIGN_OR_RETURN(ir::ShapeMap shapes, ir::infer_shapes(graph, inputs));
    for (const ir::Node& node : graph.nodes) {
      if (node.op != "Dense") continue;
      MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, node));
      MLPRT_ASSIGN_OR_RETURN(int64_t elements, volume(shapes.at(node.inputs[0])));
      return elements / spec.k;
    }
    return int64_t{0};
  }

  // The fused tensor-core MLP at `rows` rows, reading and writing the graph's I/O types.
  Result<double> time_fused_tc(const ir::Graph& graph, const FusedTcParams& params, int64_t rows,
                               cudaStream_t stream, TacticTimer& timer) const {
    MLPRT_ASSIGN_OR_RETURN(const ElemType in_type,
                           io_elem_type(graph.inputs[0].dtype, "graph input"));
    MLPRT_ASSIGN_OR_RETURN(const ElemType out_type,
                           io_elem_type(graph.outputs[0].dtype, "graph output"));
    return time_fused_io(params, in_type, out_type, rows, stream, timer);
  }

  // Dense `node` alone on the fused kernel at each of `ms` rows (its input in the layer's
  // storage type, its output as the layer writes it).
  Result<std::map<int64_t, double>> time_fused_layer(const ir::Graph& graph, const ir::Node& node,
                                                     Precision precision, bool out_f32,
                                                     const std::vector<int64_t>& ms,
                                                     cudaStream_t stream,
                                                     TacticTimer& timer) const {
    FusedTcParams params;
    std::vector<DeviceBuffer> buffers;
    MLPRT_RETURN_IF_ERROR(make_fused_tc(graph, {&node}, precision, true, params, buffers, stream));
    const ElemType type = storage_type(precision);
    std::map<int64_t, double> us;
    for (const int64_t m : ms) {
      MLPRT_ASSIGN_OR_RETURN(us[m], time_fused_io(params, type, out_f32 ? ElemType::kF32 : type,
                                                  m, stream, timer));
    }
    return us;
  }

  Result<double> time_fused_io(const FusedTcParams& params, ElemType in_type, ElemType out_type,
                               int64_t rows, cudaStream_t stream, TacticTimer& timer) const {
    std::ostringstream what;
    const char* math = params.compute == ElemType::kBF16 ? " bf16"
                       : params.compute == ElemType::kF16  ? " fp16"
                       : params.split_tf32                 ? " 3xtf32"
                                                           : " tf32";
    what << "fused tc mlp v1 rows=" << rows << math
         << " io=" << static_cast<int>(in_type) << '/' << static_cast<int>(out_type);
    for (int l = 0; l < params.num_layers; ++l) {
      what << ' ' << params.layers[l].k << 'x' << params.layers[l].n << "+act"
           << static_cast<int>(params.layers[l].act.kind)
           << (params.layers[l].residual ? "+residual" : "");
    }
    const size_t in_es = in_type == ElemType::kF32 ? 4 : 2;
    const size_t out_es = out_type == ElemType::kF32 ? 4 : 2;
    DeviceBuffer x, y;
    const int64_t k0 = params.layers[0].k;
    const int64_t n_last = params.layers[params.num_layers - 1].n;
    MLPRT_RETURN_IF_ERROR(x.reserve(static_cast<size_t>(rows * k0) * in_es, "fused tactic X"));
    MLPRT_RETURN_IF_ERROR(y.reserve(static_cast<size_t>(rows * n_last) * out_es, "fused tactic Y"));
    MLPRT_CUDA_TRY(launch_fill_pattern(x.get(), in_type, rows * k0, 9, stream), "fill");
    return timer.time(what.str(), stream, [&]() -> Status {
      MLPRT_CUDA_TRY(launch_fused_tc(params, x.get(), in_type, y.get(), out_type, rows, stream),
                     "fused tensor-core MLP kernel");
      return Status::ok();
    });
  }

  Result<double> time_fused(const ir::Graph& graph, const std::vector<const ir::Node*>& chain,
                            int64_t rows, cudaStream_t stream, TacticTimer& timer) const {
    std::ostringstream what;
    what << "fused mlp rows=" << rows;
    for (const ir::Node* node : chain) {
      MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, *node));
      what << ' ' << spec.k << 'x' << spec.n << (spec.act.kind == ActKind::kRelu ? "+relu" : "");
    }
    if (timer.cache != nullptr) {
      if (std::optional<double> us = timer.cache->find(timer.key_of(what.str()))) {
        ++timer.cached;
        return *us;
      }
    }
    std::vector<DeviceBuffer> buffers(chain.size() * 2);
    FusedMlpParams params;
    params.num_layers = static_cast<int>(chain.size());
    for (size_t i = 0; i < chain.size(); ++i) {
      MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, *chain[i]));
      MLPRT_RETURN_IF_ERROR(buffers[2 * i].reserve(static_cast<size_t>(spec.k * spec.n) * 4, "W"));
      MLPRT_RETURN_IF_ERROR(buffers[2 * i + 1].reserve(static_cast<size_t>(spec.n) * 4, "B"));
      MLPRT_CUDA_TRY(launch_fill_pattern(buffers[2 * i].get(), ElemType::kF32, spec.k * spec.n,
                                         static_cast<uint32_t>(i), stream),
                     "fill");
      MLPRT_CUDA_TRY(launch_fill_pattern(buffers[2 * i + 1].get(), ElemType::kF32, spec.n, 7, stream),
                     "fill");
      params.layers[i] = {static_cast<const float*>(buffers[2 * i].get()),
                          static_cast<const float*>(buffers[2 * i + 1].get()),
                          static_cast<int>(spec.k), static_cast<int>(spec.n),
                          spec.act.kind == ActKind::kRelu ? 1 : 0};
    }
    DeviceBuffer x, y;
    MLPRT_RETURN_IF_ERROR(x.reserve(static_cast<size_t>(rows * params.layers[0].k) * 4, "X"));
    MLPRT_RETURN_IF_ERROR(
        y.reserve(static_cast<size_t>(rows * params.layers[chain.size() - 1].n) * 4, "Y"));
    MLPRT_CUDA_TRY(launch_fill_pattern(x.get(), ElemType::kF32, rows * params.layers[0].k, 9, stream),
                   "fill");
    return timer.time(what.str(), stream, [&]() -> Status {
      MLPRT_CUDA_TRY(launch_fused_mlp(params, x.get(), ElemType::kF32, y.get(), ElemType::kF32,
                                      rows, stream),
                     "fused MLP kernel");
      return Status::ok();
    });
  }
};

}  // namespace

const Backend& cuda_backend() {
  static const CudaBackend backend;
  return backend;
}

Status select_cuda_device(int index) {
  int count = 0;
  MLPRT_CUDA_TRY(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (index < 0 || index >= count) {
    return make_error(StatusCode::kOutOfRange, "device ", index, " does not exist: this machine has ",
                      count, " CUDA device(s)");
  }
  MLPRT_CUDA_TRY(cudaSetDevice(index), "cudaSetDevice(" + std::to_string(index) + ")");
  return Status::ok();
}

DeviceMemoryUsage cuda_device_memory() { return cuda::device_memory_held(); }

}  // namespace mlprt::backend
