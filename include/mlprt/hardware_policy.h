#pragma once
/// @file hardware_policy.h
/// What loading a plan does when it was built for other hardware (another CPU instruction set,
/// another GPU, CUDA runtime or cuBLASLt) or for a backend this machine cannot run.
///
/// A plan embeds its optimized graph, its weights and its build settings, so only the backend's
/// part (the timed tactics) is tied to the hardware; that part can be redone here ("re-tuned")
/// in about the time of a build's tactic timing, without the ONNX model.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mlprt/builder.h"
#include "mlprt/status.h"

namespace mlprt {

enum class HardwareMismatchPolicy {
  /// The default. A plan whose hardware differs from this machine's is re-tuned for it at load:
  /// the plan's backend compiles its graph again with the recorded build settings (profiles,
  /// precisions, constraints, threads, optimization level; no timing cache is read or written);
  /// a WARNING says what differed and how long it took. Precisions this machine lacks degrade as
  /// under precision constraints 'prefer' (a WARNING per layer); a plan built with constraints
  /// 'obey' fails, naming the layer. A plan whose backend cannot run here fails, naming the
  /// 'fallback' policy.
  kRetune,
  /// A plan must have been built for exactly this machine's hardware (its hardware id equals
  /// this machine's); anything else is refused with kHardwareMismatch, saying what differs.
  kRefuse,
  /// As kRetune, and a plan whose backend cannot run here (a cuda plan on a machine without a
  /// GPU) runs on the first other backend that can, compiled from the plan's graph; a WARNING
  /// says which backend runs it and why.
  kFallback,
};

/// "retune", "refuse", "fallback".
[[nodiscard]] std::string_view to_string(HardwareMismatchPolicy policy);
/// Reads "retune" | "refuse" | "fallback"; kInvalidArgument naming the allowed values otherwise.
[[nodiscard]] Result<HardwareMismatchPolicy> parse_hardware_mismatch_policy(std::string_view text);

/// Options of Engine::load / Engine::load_file.
struct EngineLoadOptions {
  HardwareMismatchPolicy hardware_mismatch = HardwareMismatchPolicy::kRetune;
};

/// What retune_serialized_engine did.
struct RetunedEngine {
  SerializedEngine engine;   ///< the re-tuned plan (bytes, summary, seconds it took)
  std::string from_backend;  ///< the plan's backend and hardware before
  std::string from_hardware;
  bool hardware_matched = false;  ///< the plan was already built for this machine
};

/// Re-tunes a plan for this machine and returns the new plan's bytes (`mlprt retune`): same
/// graph, weights, profiles and build settings; the backend part compiled here, the hardware
/// field naming this machine. Done even where the hardware already matches (the tactics are
/// timed again: an equivalent plan). `policy` kFallback lets a plan whose backend cannot run
/// here be re-targeted to another backend; kRefuse is refused (it would never re-tune).
[[nodiscard]] Result<RetunedEngine> retune_serialized_engine(
    std::span<const uint8_t> plan, const std::string& source_name,
    HardwareMismatchPolicy policy = HardwareMismatchPolicy::kRetune);

}  // namespace mlprt
