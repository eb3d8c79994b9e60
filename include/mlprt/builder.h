#pragma once
/// @file builder.h
/// Network + BuilderConfig -> serialized engine (a plan), like TensorRT's
/// IBuilder::buildSerializedNetwork. Runs the optimization passes, validates the profiles against
/// the network, lets the backend choose its kernels, and serializes everything.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mlprt/builder_config.h"
#include "mlprt/network.h"
#include "mlprt/status.h"

namespace mlprt {

struct SerializedEngine {
  std::vector<uint8_t> bytes;  ///< the plan file's contents
  std::string summary;         ///< one line: backend, profiles, layers, weights size
  double build_seconds = 0.0;
};

/// Builds a plan. Stateless and thread-safe.
[[nodiscard]] Result<SerializedEngine> build_serialized_engine(const Network& network,
                                                               const BuilderConfig& config);
/// The same, consuming `network`: the build takes the network's weights instead of copying
/// them, so it does not hold them twice (the CLI builds this way). With an accuracy budget,
/// which builds several times, the network is kept until the build ends.
[[nodiscard]] Result<SerializedEngine> build_serialized_engine(std::unique_ptr<Network> network,
                                                               const BuilderConfig& config);

/// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename), so a
/// failed write never leaves a partial or stale file behind.
[[nodiscard]] Status write_file_atomic(const std::filesystem::path& path,
                                       std::span<const uint8_t> bytes);

}  // namespace mlprt
