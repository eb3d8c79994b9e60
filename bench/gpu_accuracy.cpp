// Top-1 of an mlprt classifier on the GPU, through the public API, for the tutorial's
// "same accuracy as PyTorch" check: builds MODEL.onnx for the cuda backend in PREC, runs the
// whole IMAGES.npy ([N, F] float32) from host memory in one call and compares the argmax of
// each row with LABELS.npy (class ids stored as floats).
// Usage: mlprt_gpu_accuracy MODEL.onnx IMAGES.npy LABELS.npy PREC(fp32|tf32|fp16|bf16)
//   -> one JSON line {"prec", "n", "correct", "top1"}

#include <algorithm>
#include <cstdio>
#include <string>

#include "mlprt/mlprt.h"
#include "npy.h"

namespace {

int fail(const mlprt::Status& status) {
  std::fprintf(stderr, "%s\n", status.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s MODEL.onnx IMAGES.npy LABELS.npy fp32|tf32|fp16|bf16\n", argv[0]);
    return 2;
  }
  const std::string prec = argv[4];
  auto images = mlprt::cli::read_npy(argv[2]);
  if (!images) return fail(images.status());
  auto labels = mlprt::cli::read_npy(argv[3]);
  if (!labels) return fail(labels.status());
  if (images->dims.size() != 2 || labels->values.size() != static_cast<size_t>(images->dims[0])) {
    std::fprintf(stderr, "images must be [N, F] and labels [N]\n");
    return 2;
  }
  const int64_t n = images->dims[0];
  auto network = mlprt::Network::from_onnx_file(argv[1]);
  if (!network) return fail(network.status());
  const mlprt::TensorDesc in = (*network)->inputs().at(0);
  const mlprt::TensorDesc out = (*network)->outputs().at(0);
  mlprt::BuilderConfig config;
  config.backend = "cuda";
  config.allow_tf32 = prec == "tf32";
  config.allow_fp16 = prec == "fp16";
  config.allow_bf16 = prec == "bf16";
  mlprt::OptimizationProfile profile;
  if (auto s = profile.set_dimensions(in.name, {{1, images->dims[1]}, {n, images->dims[1]},
                                                {n, images->dims[1]}});
      !s) {
    return fail(s);
  }
  config.profiles = {profile};
  auto plan = mlprt::build_serialized_engine(**network, config);
  if (!plan) return fail(plan.status());
  auto engine = mlprt::Engine::load(plan->bytes, argv[1]);
  if (!engine) return fail(engine.status());
  auto context = (*engine)->create_execution_context();
  if (!context) return fail(context.status());
  mlprt::ExecutionContext& ctx = **context;
  if (auto s = ctx.set_input_shape(in.name, images->dims); !s) return fail(s);
  if (auto s = ctx.set_tensor_address(in.name, images->values.data()); !s) return fail(s);
  if (auto s = ctx.enqueue(); !s) return fail(s);
  auto view = ctx.output(out.name);
  if (!view) return fail(view.status());
  auto logits = view->as<float>();
  const auto classes = static_cast<int64_t>(logits.size()) / n;
  int64_t correct = 0;
  for (int64_t r = 0; r < n; ++r) {
    const float* row = logits.data() + r * classes;
    const auto best = std::max_element(row, row + classes) - row;
    if (best == static_cast<int64_t>(labels->values[static_cast<size_t>(r)])) ++correct;
  }
  std::printf("{\"prec\": \"%s\", \"n\": %lld, \"correct\": %lld, \"top1\": %.4f}\n", prec.c_str(),
              static_cast<long long>(n), static_cast<long long>(correct),
              100.0 * static_cast<double>(correct) / static_cast<double>(n));
  return 0;
}
