#include "runtime/retune.h"

#include <chrono>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "backends/registry.h"
#include "builder/precision_requests.h"
#include "common/check.h"
#include "common/json_integer.h"
#include "common/log.h"
#include "mlprt/version.h"

namespace mlprt {
namespace detail {
namespace {

constexpr std::string_view kPolicies = "retune, refuse, fallback";

std::string seconds_text(double seconds) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(seconds < 10 ? 3 : 1) << seconds << " s";
  return os.str();
}

std::string rebuild_hint(const std::string& source) {
  return "rebuild it on this machine with `mlprt build --onnx=<model> --saveEngine=" + source + "`";
}

// "fp32+bf16" -> {"fp32", "bf16"}; "" -> {}.
std::set<std::string> precision_set(const std::string& text) {
  std::set<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('+', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) out.insert(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

std::string joined(const std::set<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += '+';
    out += n;
  }
  return out;
}

// The precisions below fp32 that `plan` permitted or asked `node` for, when the plan's own blob
// cannot say which one the layer ran in.
std::set<std::string> permitted_lower(const plan::Plan& plan, const BuilderConfig& config,
                                      const ir::Node& node) {
  std::set<std::string> out = precision_set(plan.precision);
  if (config.precision_constraints != "none") {
    auto it = config.layer_precisions.find(node.name);
    if (it == config.layer_precisions.end()) it = config.layer_precisions.find("*");
    if (it != config.layer_precisions.end()) out = {it->second};
  }
  out.erase("fp32");
  out.erase("tf32");  // a math mode, not a storage precision: no layer "runs in" it visibly
  return out;
}

// A WARNING per layer that ran (or may have run) in a precision it does not run in here.
void log_degraded_layers(const plan::Plan& before, const std::vector<std::string>& old_per_layer,
                         const plan::Plan& after, const backend::Backend& target,
                         const BuilderConfig& config) {
  const std::vector<std::string> new_per_layer =
      target.blob_layer_precisions(after.graph, after.backend_blob);
  std::set<std::string> used_here;
  for (const std::string& p : new_per_layer) {
    for (const std::string& one : precision_set(p)) used_here.insert(one);
  }
  for (size_t i = 0; i < after.graph.nodes.size(); ++i) {
    const ir::Node& node = after.graph.nodes[i];
    const bool known = i < old_per_layer.size() && !old_per_layer[i].empty();
    const std::set<std::string> old_set =
        known ? precision_set(old_per_layer[i]) : permitted_lower(before, config, node);
    const std::set<std::string> new_set =
        i < new_per_layer.size() ? precision_set(new_per_layer[i]) : std::set<std::string>{};
    std::set<std::string> lost;
    for (const std::string& p : old_set) {
      if (p != "fp32" && !new_set.count(p)) lost.insert(p);
    }
    if (lost.empty() || new_set.empty()) continue;
    std::string why;
    for (const std::string& p : lost) {
      why += (why.empty() ? "" : "; ") + p +
             (used_here.count(p)
                  ? " was timed slower here"
                  : " is not available on " + target.name() + " (" + after.hardware + ")");
    }
    log(Severity::kWarning, "layer '", node.name, "' (", node.op, "): ",
        known ? "ran in " + joined(old_set) + " in the plan"
              : "the plan permitted " + joined(old_set) +
                    " (its per-layer choice is not readable "
                    "here)",
        " (", before.backend, ", ", before.hardware, "); runs in ", joined(new_set),
        " here, as precision constraints 'prefer' would: ", why);
  }
}

Result<const backend::Backend*> fallback_backend(const plan::Plan& plan, const std::string& source,
                                                 const std::string& why_not) {
  std::string reasons;
  for (const std::string& name : backend::backend_names()) {
    if (name == plan.backend) continue;
    MLPRT_ASSIGN_OR_RETURN(const backend::Backend* other, backend::find_backend(name));
    const Status available = other->check_available();
    if (available.is_ok()) return other;
    reasons += "; " + name + ": " + available.message();
  }
  return make_error(StatusCode::kUnsupported, "plan '", source, "' needs the ", plan.backend,
                    " backend, which cannot run here (", why_not,
                    "), and no other backend can run it (hardware-mismatch policy 'fallback')",
                    reasons);
}

Result<std::vector<uint8_t>> retune_in_place(plan::Plan& plan, const std::string& source,
                                             const backend::Backend& target) {
  MLPRT_ASSIGN_OR_RETURN(BuilderConfig config, recorded_build_config(plan, source));
  const std::string context = "plan '" + source + "' (built for " + plan.backend + ", " +
                              plan.hardware + ") cannot be re-tuned for " + target.name() + " (" +
                              target.hardware_id() + ")";
  for (const ir::Node& node : plan.graph.nodes) {
    MLPRT_RETURN_IF_ERROR(target.supports(plan.graph, node).with_context(context));
  }
  plan::Plan before_meta;  // the plan's header fields as built, for the degrade messages
  before_meta.format_version = plan.format_version;
  before_meta.producer_version = plan.producer_version;
  before_meta.backend = plan.backend;
  before_meta.hardware = plan.hardware;
  before_meta.precision = plan.precision;
  before_meta.build_config_json = plan.build_config_json;
  const backend::Backend* original = nullptr;
  if (auto found = backend::find_backend(plan.backend); found.is_ok()) original = *found;
  const std::vector<std::string> old_per_layer =
      original ? original->blob_layer_precisions(plan.graph, plan.backend_blob)
               : std::vector<std::string>{};

  Result<std::vector<uint8_t>> blob = target.compile(plan.graph, plan.profiles, config);
  if (!blob) return blob.status().with_context(context);

  nlohmann::json recorded = nlohmann::json::parse(plan.build_config_json, nullptr, false);
  recorded["retuned_from"] = {{"backend", plan.backend},
                              {"hardware", plan.hardware},
                              {"producer_version", plan.producer_version}};
  plan.build_config_json = recorded.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  plan.backend_blob = std::move(blob).value();
  plan.backend = target.name();
  plan.hardware = target.hardware_id();
  plan.producer_version = kVersionString;
  log_degraded_layers(before_meta, old_per_layer, plan, target, config);
  return plan::serialize_plan(plan);
}

}  // namespace

Result<BuilderConfig> recorded_build_config(const plan::Plan& plan, const std::string& source) {
  const std::string rebuild = "; it cannot be re-tuned: " + rebuild_hint(source);
  const nlohmann::json json = nlohmann::json::parse(plan.build_config_json, nullptr, false);
  if (!json.is_object()) {
    return make_error(StatusCode::kUnsupported, "plan '", source,
                      "' does not record its build settings as a JSON object (build_config_json)",
                      rebuild);
  }
  BuilderConfig config;
  try {
    auto need = [&](const char* key) -> const nlohmann::json& {
      if (!json.contains(key)) {
        throw std::out_of_range(std::string("plan '") + source + "' (built by mlprt " +
                                plan.producer_version + ") does not record the build setting '" +
                                key + "'" + rebuild);
      }
      return json.at(key);
    };
    config.allow_fp16 = need("fp16").get<bool>();
    config.allow_bf16 = need("bf16").get<bool>();
    config.allow_tf32 = need("tf32").get<bool>();
    config.precision_constraints = need("precision_constraints").get<std::string>();
    config.layer_precisions = need("layer_precisions").get<std::map<std::string, std::string>>();
    config.num_threads = json_integer<int>(need("threads"));
    config.optimization_level = json_integer<int>(need("optimization_level"));
  } catch (const std::out_of_range& e) {
    return Status(StatusCode::kUnsupported, e.what());
  } catch (const nlohmann::json::exception& e) {
    return make_error(StatusCode::kCorruptData, "plan '", source,
                      "': a recorded build setting has the wrong type (", e.what(), ")", rebuild);
  }
  if (config.num_threads < 0 || config.optimization_level < 0 || config.optimization_level > 5) {
    return make_error(StatusCode::kCorruptData, "plan '", source, "' records threads ",
                      config.num_threads, " and optimization level ", config.optimization_level,
                      "; allowed: threads >= 0, level 0..5", rebuild);
  }
  MLPRT_RETURN_IF_ERROR(builder::check_precision_requests(plan.graph, config)
                            .with_context("plan '" + source + "': its recorded build settings"));
  config.timing_cache_path.clear();  // a re-tune never reads or writes a timing cache
  return config;
}

Result<Resolution> resolve_for_this_machine(plan::Plan& plan, const std::string& source,
                                            HardwareMismatchPolicy policy, bool always) {
  Resolution out;
  out.from_backend = plan.backend;
  out.from_hardware = plan.hardware;
  const std::string policy_name(to_string(policy));
  if (always && policy == HardwareMismatchPolicy::kRefuse) {
    return make_error(StatusCode::kInvalidArgument,
                      "the hardware-mismatch policy 'refuse' never "
                      "re-tunes; allowed for a re-tune: retune, fallback");
  }

  // 1. The plan's backend: compiled in and usable here, or a fallback.
  Status unusable = Status::ok();
  auto found = backend::find_backend(plan.backend);
  if (!found.is_ok()) {
    unusable = found.status();
  } else {
    out.backend = *found;
    unusable = out.backend->check_available();
  }
  bool fell_back = false;
  if (!unusable.is_ok()) {
    if (policy != HardwareMismatchPolicy::kFallback) {
      std::string hint = policy == HardwareMismatchPolicy::kRetune
                             ? "; re-tuning needs the plan's backend: load it with the 'fallback' "
                               "hardware-mismatch policy (--hardwareMismatch=fallback) to run it "
                               "on another backend, or " +
                                   rebuild_hint(source)
                             : "; " + rebuild_hint(source);
      return Status(found.is_ok() ? StatusCode::kUnsupported : found.status().code(),
                    "plan '" + source + "' was built for the " + plan.backend + " backend (" +
                        plan.hardware + "), which cannot run here: " + unusable.message() +
                        " (hardware-mismatch policy '" + policy_name + "')" + hint);
    }
    MLPRT_ASSIGN_OR_RETURN(out.backend, fallback_backend(plan, source, unusable.message()));
    fell_back = true;
  }

  // 2. The hardware: the plan's tactics were timed on exactly this hardware, or not.
  const std::string here = out.backend->hardware_id();
  if (!fell_back && plan.hardware == here && !always) return out;
  if (!fell_back && policy == HardwareMismatchPolicy::kRefuse) {
    const Status runs = out.backend->check_hardware(plan.hardware);
    return Status(
        StatusCode::kHardwareMismatch,
        "plan '" + source + "' was built for " + plan.backend + " on '" + plan.hardware +
            "', this machine is '" + here + "'" +
            (runs.is_ok() ? " (its kernels would run here, but its tactics were timed "
                            "on the other hardware)"
                          : " (it cannot run here as it is)") +
            "; the hardware-mismatch policy 'refuse' refuses it: " + rebuild_hint(source) +
            ", or load it with --hardwareMismatch=retune to re-tune it at load");
  }
  std::string reason;
  if (fell_back) {
    reason = "it was built for the " + plan.backend + " backend (" + plan.hardware +
             "), which cannot run here (" + unusable.message() +
             "); hardware-mismatch policy 'fallback': it runs on the " + out.backend->name() +
             " backend (" + here + ")";
  } else if (plan.hardware == here) {
    reason = "it was built for this machine's hardware (" + here + ") already; re-tuned anyway";
  } else {
    const Status runs = out.backend->check_hardware(plan.hardware);
    reason = "it was built for " + plan.backend + " on '" + plan.hardware + "', this machine is '" +
             here + "' (" +
             (runs.is_ok() ? "its kernels would run here, but its tactics were timed there"
                           : "it cannot run here as it is") +
             ")";
  }

  const auto start = std::chrono::steady_clock::now();
  MLPRT_ASSIGN_OR_RETURN(out.bytes, retune_in_place(plan, source, *out.backend));
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.retuned = true;
  log(always ? Severity::kInfo : Severity::kWarning, "plan '", source, "': ", reason,
      "; re-tuned for ", out.backend->name(), " (", here,
      ") from its graph and recorded build settings in ", seconds_text(out.seconds),
      always || fell_back
          ? ""
          : " (hardware-mismatch policy '" + policy_name +
                "'; --hardwareMismatch=refuse refuses instead; `mlprt retune` saves a "
                "re-tuned plan)");
  return out;
}

}  // namespace detail

std::string_view to_string(HardwareMismatchPolicy policy) {
  switch (policy) {
    case HardwareMismatchPolicy::kRetune:
      return "retune";
    case HardwareMismatchPolicy::kRefuse:
      return "refuse";
    case HardwareMismatchPolicy::kFallback:
      return "fallback";
  }
  return "retune";
}

Result<HardwareMismatchPolicy> parse_hardware_mismatch_policy(std::string_view text) {
  for (HardwareMismatchPolicy p : {HardwareMismatchPolicy::kRetune, HardwareMismatchPolicy::kRefuse,
                                   HardwareMismatchPolicy::kFallback}) {
    if (text == to_string(p)) return p;
  }
  return make_error(StatusCode::kInvalidArgument, "hardware-mismatch policy '", text,
                    "' is not known; allowed: ", detail::kPolicies);
}

Result<RetunedEngine> retune_serialized_engine(std::span<const uint8_t> bytes,
                                               const std::string& source_name,
                                               HardwareMismatchPolicy policy) {
  MLPRT_ASSIGN_OR_RETURN(plan::Plan plan, plan::deserialize_plan(bytes, source_name));
  MLPRT_ASSIGN_OR_RETURN(detail::Resolution resolved,
                         detail::resolve_for_this_machine(plan, source_name, policy, true));
  RetunedEngine out;
  out.from_backend = resolved.from_backend;
  out.from_hardware = resolved.from_hardware;
  out.hardware_matched =
      resolved.from_backend == plan.backend && resolved.from_hardware == plan.hardware;
  out.engine.bytes = std::move(resolved.bytes);
  out.engine.build_seconds = resolved.seconds;
  out.engine.summary = plan.backend + " engine (" + plan.hardware + ", " + plan.precision +
                       "): re-tuned from " + resolved.from_backend + " (" + resolved.from_hardware +
                       ")";
  return out;
}

}  // namespace mlprt
