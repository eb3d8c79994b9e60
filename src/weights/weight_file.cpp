#include "weights/weight_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "common/check.h"
#include "weights/safetensors_file.h"
#include "weights/torch_state_dict.h"

namespace mlprt::weights {

Result<WeightFormat> format_of(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".pth" || ext == ".pt" || ext == ".bin") return WeightFormat::kTorch;
  if (ext == ".safetensors") return WeightFormat::kSafetensors;
  if (ext == ".onnx") return WeightFormat::kOnnx;
  return make_error(StatusCode::kInvalidArgument, "'", path.string(), "': unknown weight file type '", ext,
                    "'; allowed: .pth / .pt (torch.save of a state_dict), .safetensors, .onnx");
}

Result<NamedTensors> read_weight_file(const std::filesystem::path& path) {
  MLPRT_ASSIGN_OR_RETURN(WeightFormat format, format_of(path));
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::kIoError, "cannot open '", path.string(), "': ", std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return make_error(StatusCode::kIoError, "cannot read '", path.string(), "'");
  switch (format) {
    case WeightFormat::kTorch: return read_torch_state_dict(bytes, path.string());
    case WeightFormat::kSafetensors: return read_safetensors(bytes, path.string());
    case WeightFormat::kOnnx: break;
  }
  return make_error(StatusCode::kInvalidArgument, "'", path.string(),
                    "' is an ONNX model: its weights are read with its graph (refit --onnx)");
}

}  // namespace mlprt::weights
