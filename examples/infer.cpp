// The tutorial's inference steps through mlprt's C++ API:
// load the plan -> create an execution context -> pick a profile -> set the input shape ->
// bind memory -> enqueue -> read the output, which comes back with its real shape.
//
// usage: mlprt_example_infer <plan> <batch> [<input.f32>]
//   <input.f32>: raw little-endian float32, batch x features values (default: all 0.5)
// Prints the output's shape and the top-1 class of every row.

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "mlprt/mlprt.h"

namespace {

int fail(const mlprt::Status& status) {
  std::fprintf(stderr, "error: %s\n", status.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <plan> <batch> [<input.f32>]\n", argv[0]);
    return 2;
  }
  const int64_t batch = std::stoll(argv[2]);

  // 1. Load the engine (checks the plan's format, checksum and hardware).
  auto engine = mlprt::Engine::load_file(argv[1]);
  if (!engine) return fail(engine.status());
  const mlprt::TensorDesc& input = (*engine)->io_tensors().front();
  const mlprt::TensorDesc& output = (*engine)->io_tensors().back();

  // 2. One execution context per thread.
  auto context = (*engine)->create_execution_context();
  if (!context) return fail(context.status());

  // 3. Pick the profile whose range holds our batch, and set the actual input shape.
  mlprt::Dims shape = input.dims;
  shape[0] = batch;
  auto profile = (*engine)->find_profile({{input.name, shape}});
  if (!profile) return fail(profile.status());
  if (auto s = (*context)->set_optimization_profile(*profile); !s) return fail(s);
  if (auto s = (*context)->set_input_shape(input.name, shape); !s) return fail(s);

  // 4. Host buffer for the input (the cpu backend reads host memory directly).
  auto count = mlprt::volume(shape);
  if (!count) return fail(count.status());
  std::vector<float> data(static_cast<size_t>(*count), 0.5f);
  if (argc > 3) {
    std::ifstream in(argv[3], std::ios::binary);
    in.read(reinterpret_cast<char*>(data.data()),
            static_cast<std::streamsize>(data.size() * sizeof(float)));
    if (!in) {
      std::fprintf(stderr, "error: %s does not hold %lld float32 values\n", argv[3],
                   static_cast<long long>(*count));
      return 1;
    }
  }
  if (auto s = (*context)->set_tensor_address(input.name, data.data()); !s) return fail(s);

  // 5. Execute, then read the output with its real shape: no reshaping by hand.
  if (auto s = (*context)->enqueue(); !s) return fail(s);
  auto logits = (*context)->output(output.name);
  if (!logits) return fail(logits.status());
  std::printf("output '%s': %s\n", output.name.c_str(), mlprt::to_string(logits->dims).c_str());
  const auto values = logits->as<float>();
  const int64_t classes = logits->dims.back();
  for (int64_t row = 0; row < logits->dims.front(); ++row) {
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c) {
      if (values[row * classes + c] > values[row * classes + best]) best = c;
    }
    std::printf("%lld%c", static_cast<long long>(best), row + 1 < logits->dims.front() ? ' ' : '\n');
  }
  return 0;
}
