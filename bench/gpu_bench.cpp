// GPU latency of mlprt engines through the public API, in the way ../shared/bench/peers.py
// times PyTorch: event-timed median of one inference.
//   mlprt_us      device-resident input and output (the context replays its CUDA graph)
//   mlprt_e2e_us  host to host from pinned memory (H2D + graph + D2H on the caller's stream)
//   bare_graph_us the same kernels captured into the caller's own graph, which is launched as is:
//                 mlprt_us minus this is enqueue's own host work per call
//   gpu_us        per call over 50 enqueues back to back between two events: the GPU's time
//                 for one call once launches overlap (the kernels and the gaps between graphs)
// Usage: mlprt_gpu_bench MODEL.onnx NAME PREC(fp32|tf32|fp16|fp16-f32io) BATCH[,BATCH...]
//   -> JSON lines
// (tf32: fp32 I/O and activations, matmuls on TF32 tensor cores, as JAX's default fp32 runs;
// fp16-f32io: fp16 layers with fp32 I/O, what `mlprt build --fp16` gives without I/O formats)

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mlprt/mlprt.h"

namespace {

#define CHECK_CUDA(expr)                                                                 \
  do {                                                                                   \
    const cudaError_t e_ = (expr);                                                       \
    if (e_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      return 1;                                                                          \
    }                                                                                    \
  } while (0)
#define CHECK_OK(expr)                                                               \
  do {                                                                               \
    const mlprt::Status s_ = (expr);                                                 \
    if (!s_.is_ok()) {                                                               \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, s_.message().c_str()); \
      return 1;                                                                      \
    }                                                                                \
  } while (0)

template <typename Fn>
double median_us(cudaStream_t stream, int iterations, Fn&& fn) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < 10; ++i) fn();
  cudaStreamSynchronize(stream);
  std::vector<double> times;
  for (int i = 0; i < iterations; ++i) {
    cudaEventRecord(start, stream);
    fn();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(static_cast<double>(ms) * 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int run(const std::string& path, const std::string& name, const std::string& prec, int64_t batch) {
  auto network = mlprt::Network::from_onnx_file(path);
  CHECK_OK(network.status());
  const mlprt::TensorDesc in = (*network)->inputs().at(0);
  const mlprt::TensorDesc out = (*network)->outputs().at(0);
  const int64_t features = in.dims.at(1);
  mlprt::BuilderConfig config;
  config.backend = "cuda";
  config.allow_fp16 = prec == "fp16" || prec == "fp16-f32io";
  config.allow_tf32 = prec == "tf32";
  // As peers.py feeds its fp16 models: fp16 tensors in and out (trtexec --inputIOFormats=fp16).
  const mlprt::DataType io_type = prec == "fp16" ? mlprt::DataType::kFloat16 : mlprt::DataType::kFloat32;
  config.input_formats = {io_type};
  config.output_formats = {io_type};
  mlprt::OptimizationProfile profile;
  CHECK_OK(profile.set_dimensions(in.name, {{1, features}, {batch, features}, {batch, features}}));
  config.profiles = {profile};
  auto plan = mlprt::build_serialized_engine(**network, config);
  CHECK_OK(plan.status());
  auto engine = mlprt::Engine::load(plan->bytes, name);
  CHECK_OK(engine.status());
  auto ctx_or = (*engine)->create_execution_context();
  CHECK_OK(ctx_or.status());
  mlprt::ExecutionContext& ctx = **ctx_or;
  CHECK_OK(ctx.set_tensor_location(mlprt::TensorLocation::kDevice));
  CHECK_OK(ctx.set_input_shape(in.name, {batch, features}));
  auto out_dims = ctx.tensor_shape(out.name);
  CHECK_OK(out_dims.status());
  const size_t in_n = static_cast<size_t>(batch * features);
  const size_t out_n = static_cast<size_t>(*mlprt::volume(*out_dims));
  std::vector<float> host(in_n);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  for (float& v : host) v = dist(rng);
  const size_t esize = mlprt::element_size(io_type);
  void *d_in, *d_out, *h_in, *h_out;
  CHECK_CUDA(cudaMalloc(&d_in, in_n * esize));
  CHECK_CUDA(cudaMalloc(&d_out, out_n * esize));
  CHECK_CUDA(cudaMallocHost(&h_in, in_n * esize));
  CHECK_CUDA(cudaMallocHost(&h_out, out_n * esize));
  mlprt::convert_floats(host.data(), mlprt::DataType::kFloat32, h_in, io_type, in_n);
  CHECK_CUDA(cudaMemcpy(d_in, h_in, in_n * esize, cudaMemcpyHostToDevice));
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CHECK_OK(ctx.set_tensor_address(in.name, d_in));
  CHECK_OK(ctx.set_tensor_address(out.name, d_out));
  const int64_t work = batch * static_cast<int64_t>((*engine)->info().weight_bytes / 4);
  const int iterations = static_cast<int>(std::clamp<int64_t>(200000000000LL / std::max<int64_t>(work, 1), 20, 2000));
  bool failed = false;
  const double device_us = median_us(stream, iterations, [&] { failed |= !ctx.enqueue(stream).is_ok(); });
  // In the caller's capture the context puts its kernels in directly (no graph of its own).
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  failed |= !ctx.enqueue(stream).is_ok();
  CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  const double bare_graph_us = median_us(stream, iterations, [&] { failed |= cudaGraphLaunch(exec, stream) != cudaSuccess; });
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  constexpr int kBackToBack = 50;
  const double gpu_us = median_us(stream, std::max(5, iterations / kBackToBack), [&] {
                          for (int i = 0; i < kBackToBack; ++i) failed |= !ctx.enqueue(stream).is_ok();
                        }) / kBackToBack;
  CHECK_OK(ctx.set_tensor_location(mlprt::TensorLocation::kHost));
  CHECK_OK(ctx.set_tensor_address(in.name, h_in));
  CHECK_OK(ctx.set_tensor_address(out.name, h_out));
  const double e2e_us = median_us(stream, iterations, [&] { failed |= !ctx.enqueue(stream).is_ok(); });
  CHECK_CUDA(cudaStreamSynchronize(stream));
  if (failed) {
    std::fprintf(stderr, "enqueue failed\n");
    return 1;
  }
  std::string precisions;
  for (const mlprt::LayerInfo& layer : (*engine)->info().layers) precisions += layer.precision + " | ";
  // Whether the build chose the fused tensor-core MLP for the whole network, and for how many
  // layers alone (inspect's tactic lines say it).
  bool fused_tc = false;
  int fused_layers = 0;
  for (const std::string& line : (*engine)->info().tactics) {
    const bool chosen = line.find(": chosen,") != std::string::npos;
    fused_tc |= chosen && line.rfind("fused tensor-core MLP:", 0) == 0;
    fused_layers += chosen && line.rfind("fused tensor-core layer ", 0) == 0 ? 1 : 0;
    precisions += line + " | ";
  }
  std::printf("{\"model\": \"%s\", \"prec\": \"%s\", \"batch\": %lld, \"mlprt_us\": %.3f, "
              "\"mlprt_e2e_us\": %.3f, \"bare_graph_us\": %.3f, \"gpu_us\": %.3f, "
              "\"iterations\": %d, \"fused_tc\": %s, "
              "\"fused_layers\": %d}\n",
              name.c_str(), prec.c_str(), static_cast<long long>(batch), device_us, e2e_us,
              bare_graph_us, gpu_us, iterations, fused_tc ? "true" : "false", fused_layers);
  std::fprintf(stderr, "# %s %s %lld: %s\n", name.c_str(), prec.c_str(), static_cast<long long>(batch),
               precisions.c_str());
  std::fflush(stdout);
  cudaStreamDestroy(stream);
  cudaFree(d_in);
  cudaFree(d_out);
  cudaFreeHost(h_in);
  cudaFreeHost(h_out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string prec = argc == 5 ? argv[3] : "";
  if (prec != "fp32" && prec != "tf32" && prec != "fp16" && prec != "fp16-f32io") {
    std::fprintf(stderr, "usage: %s MODEL.onnx NAME fp32|tf32|fp16|fp16-f32io BATCH[,BATCH...]\n",
                 argv[0]);
    return 2;
  }
  std::stringstream batches(argv[4]);
  std::string item;
  int rc = 0;
  while (std::getline(batches, item, ',')) rc |= run(argv[1], argv[2], prec, std::stoll(item));
  return rc;
}
