#pragma once
// Reads named weights from a file, by its contents: a torch.save zip (.pth / .pt), a
// .safetensors file, or an ONNX model's initializers.

#include <filesystem>

#include "mlprt/status.h"
#include "weights/named_tensors.h"

namespace mlprt::weights {

enum class WeightFormat { kTorch, kSafetensors, kOnnx };

/// .pth / .pt / .bin: torch; .safetensors; .onnx. Others are refused, listing these.
Result<WeightFormat> format_of(const std::filesystem::path& path);

/// A .pth or .safetensors file (not ONNX: its graph matters, see refit/plan_refitter.h).
Result<NamedTensors> read_weight_file(const std::filesystem::path& path);

}  // namespace mlprt::weights
