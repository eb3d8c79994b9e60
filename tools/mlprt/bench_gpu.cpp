#include "bench_gpu.h"

#include <cuda_runtime.h>

#include <array>
#include <chrono>
#include <memory>
#include <random>

#include "cli_common.h"
#include "mlprt/float16.h"

namespace mlprt::cli {
namespace {

using Clock = std::chrono::steady_clock;

Status cuda_error(cudaError_t error, const std::string& what) {
  return Status(StatusCode::kInternal,
                cat("bench: ", what, ": ", cudaGetErrorName(error), " (", cudaGetErrorString(error), ")"));
}

#define BENCH_CUDA(expr, what)                          \
  do {                                                  \
    const cudaError_t bench_err_ = (expr);              \
    if (bench_err_ != cudaSuccess) return cuda_error(bench_err_, what); \
  } while (0)

#define BENCH_TRY(expr)                    \
  do {                                     \
    Status bench_status_ = (expr);         \
    if (!bench_status_) return bench_status_; \
  } while (0)

#define BENCH_CONCAT_(a, b) a##b
#define BENCH_CONCAT(a, b) BENCH_CONCAT_(a, b)
#define BENCH_ASSIGN(lhs, expr) BENCH_ASSIGN_(BENCH_CONCAT(bench_result_, __LINE__), lhs, expr)
#define BENCH_ASSIGN_(tmp, lhs, expr) \
  auto tmp = (expr);                  \
  if (!tmp) return tmp.status();      \
  lhs = std::move(*tmp)

struct Binding {
  std::string name;
  size_t bytes = 0;
  void* host = nullptr;    // pinned; only with data transfers
  void* device = nullptr;
};

// One context, its stream, buffers and events. Frees everything it holds.
struct StreamState {
  std::unique_ptr<ExecutionContext> context;
  cudaStream_t stream = nullptr;
  std::array<cudaEvent_t, 4> events{};
  std::vector<Binding> inputs;
  std::vector<Binding> outputs;
  double enqueue_us = 0;

  StreamState() = default;
  StreamState(const StreamState&) = delete;
  StreamState& operator=(const StreamState&) = delete;
  ~StreamState() {
    if (stream) cudaStreamSynchronize(stream);
    for (auto* list : {&inputs, &outputs}) {
      for (Binding& b : *list) {
        if (b.host) cudaFreeHost(b.host);
        if (b.device) cudaFree(b.device);
      }
    }
    for (cudaEvent_t e : events) {
      if (e) cudaEventDestroy(e);
    }
    if (stream) cudaStreamDestroy(stream);
  }
};

size_t bytes_of(const Dims& dims, DataType type) {
  size_t n = 1;
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  return std::max<size_t>(n * element_size(type), 16);
}

// `bytes` of uniform [-1, 1) values in `type`.
std::vector<std::byte> random_values(size_t bytes, DataType type, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(bytes / element_size(type));
  for (float& v : values) v = uniform(rng);
  std::vector<std::byte> packed(bytes);
  convert_floats(values.data(), DataType::kFloat32, packed.data(), type, values.size());
  return packed;
}

Status allocate(Binding& b, bool transfers) {
  BENCH_CUDA(cudaMalloc(&b.device, b.bytes), "device buffer of '" + b.name + "'");
  if (transfers) BENCH_CUDA(cudaMallocHost(&b.host, b.bytes), "pinned buffer of '" + b.name + "'");
  return Status::ok();
}

Status set_up(StreamState& st, const Engine& engine, int profile,
              const std::map<std::string, Dims>& shapes, const GpuBenchOptions& options,
              unsigned seed) {
  const bool transfers = !options.no_data_transfers;
  BENCH_ASSIGN(st.context, engine.create_execution_context());
  ExecutionContext& ctx = *st.context;
  BENCH_TRY(ctx.set_optimization_profile(profile));
  BENCH_TRY(ctx.set_tensor_location(TensorLocation::kDevice));
  BENCH_TRY(ctx.set_use_cuda_graph(options.use_cuda_graph));
  if (options.split_batch) BENCH_TRY(ctx.set_split_batch(true));
  BENCH_CUDA(cudaStreamCreateWithFlags(&st.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  for (cudaEvent_t& e : st.events) BENCH_CUDA(cudaEventCreate(&e), "cudaEventCreate");
  std::mt19937 rng(seed);
  for (const auto& [name, dims] : shapes) {
    BENCH_TRY(ctx.set_input_shape(name, dims));
    const DataType type = engine.find_io_tensor(name)->dtype;
    st.inputs.push_back(Binding{name, bytes_of(dims, type)});  // owned before allocating
    Binding& b = st.inputs.back();
    BENCH_TRY(allocate(b, transfers));
    const std::vector<std::byte> packed = random_values(b.bytes, type, rng);
    if (b.host) std::copy(packed.begin(), packed.end(), static_cast<std::byte*>(b.host));
    BENCH_CUDA(cudaMemcpy(b.device, packed.data(), b.bytes, cudaMemcpyHostToDevice),
               "first copy of '" + name + "'");
    BENCH_TRY(ctx.set_tensor_address(name, b.device));
  }
  for (const TensorDesc& t : engine.io_tensors()) {
    if (t.mode != TensorIOMode::kOutput) continue;
    BENCH_ASSIGN(const Dims dims, ctx.tensor_shape(t.name));
    st.outputs.push_back(Binding{t.name, bytes_of(dims, t.dtype)});
    Binding& b = st.outputs.back();
    BENCH_TRY(allocate(b, transfers));
    BENCH_TRY(ctx.set_tensor_address(t.name, b.device));
  }
  return Status::ok();
}

Status issue(StreamState& st, bool transfers) {
  BENCH_CUDA(cudaEventRecord(st.events[0], st.stream), "cudaEventRecord");
  for (const Binding& b : st.inputs) {
    if (transfers) {
      BENCH_CUDA(cudaMemcpyAsync(b.device, b.host, b.bytes, cudaMemcpyHostToDevice, st.stream),
                 "copy of '" + b.name + "' to the device");
    }
  }
  BENCH_CUDA(cudaEventRecord(st.events[1], st.stream), "cudaEventRecord");
  const auto t0 = Clock::now();
  BENCH_TRY(st.context->enqueue(st.stream));
  st.enqueue_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  BENCH_CUDA(cudaEventRecord(st.events[2], st.stream), "cudaEventRecord");
  for (const Binding& b : st.outputs) {
    if (transfers) {
      BENCH_CUDA(cudaMemcpyAsync(b.host, b.device, b.bytes, cudaMemcpyDeviceToHost, st.stream),
                 "copy of '" + b.name + "' to the host");
    }
  }
  BENCH_CUDA(cudaEventRecord(st.events[3], st.stream), "cudaEventRecord");
  return Status::ok();
}

Result<GpuIteration> collect(StreamState& st, int index) {
  BENCH_CUDA(cudaEventSynchronize(st.events[3]), "inference on stream " + std::to_string(index));
  std::array<float, 3> ms{};
  for (size_t i = 0; i < 3; ++i) {
    BENCH_CUDA(cudaEventElapsedTime(&ms[i], st.events[i], st.events[i + 1]), "cudaEventElapsedTime");
  }
  GpuIteration it;
  it.stream = index;
  it.h2d_us = ms[0] * 1e3;
  it.compute_us = ms[1] * 1e3;
  it.d2h_us = ms[2] * 1e3;
  it.latency_us = it.h2d_us + it.compute_us + it.d2h_us;
  it.enqueue_us = st.enqueue_us;
  return it;
}

// The library's host path: pinned host buffers bound to a context left at TensorLocation::kHost.
Status run_host_path(const Engine& engine, int profile, const std::map<std::string, Dims>& shapes,
                     const GpuBenchOptions& options, GpuBenchResult& result) {
  StreamState st;
  BENCH_ASSIGN(st.context, engine.create_execution_context());
  ExecutionContext& ctx = *st.context;
  BENCH_TRY(ctx.set_optimization_profile(profile));
  BENCH_TRY(ctx.set_use_cuda_graph(options.use_cuda_graph));
  if (options.split_batch) BENCH_TRY(ctx.set_split_batch(true));
  BENCH_CUDA(cudaStreamCreateWithFlags(&st.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  for (cudaEvent_t& e : st.events) BENCH_CUDA(cudaEventCreate(&e), "cudaEventCreate");
  std::mt19937 rng(7);
  for (const auto& [name, dims] : shapes) {
    BENCH_TRY(ctx.set_input_shape(name, dims));
    const DataType type = engine.find_io_tensor(name)->dtype;
    st.inputs.push_back(Binding{name, bytes_of(dims, type)});
    Binding& b = st.inputs.back();
    BENCH_CUDA(cudaMallocHost(&b.host, b.bytes), "pinned buffer of '" + name + "'");
    const std::vector<std::byte> packed = random_values(b.bytes, type, rng);
    std::copy(packed.begin(), packed.end(), static_cast<std::byte*>(b.host));
    BENCH_TRY(ctx.set_tensor_address(name, b.host));
  }
  for (const TensorDesc& t : engine.io_tensors()) {
    if (t.mode != TensorIOMode::kOutput) continue;
    BENCH_ASSIGN(const Dims dims, ctx.tensor_shape(t.name));
    st.outputs.push_back(Binding{t.name, bytes_of(dims, t.dtype)});
    Binding& b = st.outputs.back();
    BENCH_CUDA(cudaMallocHost(&b.host, b.bytes), "pinned buffer of '" + t.name + "'");
    BENCH_TRY(ctx.set_tensor_address(t.name, b.host));
  }
  auto once = [&](bool record) -> Status {
    const auto t0 = Clock::now();
    BENCH_CUDA(cudaEventRecord(st.events[0], st.stream), "cudaEventRecord");
    BENCH_TRY(ctx.enqueue(st.stream));
    BENCH_CUDA(cudaEventRecord(st.events[1], st.stream), "cudaEventRecord");
    BENCH_CUDA(cudaEventSynchronize(st.events[1]), "host-path inference");
    const double wall_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    if (!record) return Status::ok();
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, st.events[0], st.events[1]), "cudaEventElapsedTime");
    result.host_path_us.push_back(ms * 1e3);
    result.host_path_wall_us.push_back(wall_us);
    return Status::ok();
  };
  const auto warm_until = Clock::now() + std::chrono::milliseconds(options.warm_up_ms);
  do {
    BENCH_TRY(once(false));
  } while (Clock::now() < warm_until);
  const auto end = Clock::now() + std::chrono::duration<double>(options.duration_s);
  while (result.host_path_us.size() < static_cast<size_t>(options.iterations) ||
         Clock::now() < end) {
    BENCH_TRY(once(true));
  }
  return Status::ok();
}

}  // namespace

Result<GpuBenchResult> run_gpu_bench(const Engine& engine, int profile,
                                     const std::map<std::string, Dims>& shapes,
                                     const GpuBenchOptions& options) {
  const bool transfers = !options.no_data_transfers;
  std::vector<std::unique_ptr<StreamState>> streams;
  for (int s = 0; s < options.streams; ++s) {
    streams.push_back(std::make_unique<StreamState>());
    BENCH_TRY(set_up(*streams.back(), engine, profile, shapes, options,
                     static_cast<unsigned>(42 + s))
                  .with_context("stream " + std::to_string(s)));
  }
  auto round = [&](std::vector<GpuIteration>* out, double start_ms) -> Status {
    for (auto& st : streams) BENCH_TRY(issue(*st, transfers));
    for (size_t s = 0; s < streams.size(); ++s) {
      BENCH_ASSIGN(GpuIteration it, collect(*streams[s], static_cast<int>(s)));
      it.start_ms = start_ms;
      if (out) out->push_back(it);
    }
    return Status::ok();
  };
  const auto warm_until = Clock::now() + std::chrono::milliseconds(options.warm_up_ms);
  do {
    BENCH_TRY(round(nullptr, 0));
  } while (Clock::now() < warm_until);

  GpuBenchResult result;
  const auto begin = Clock::now();
  const auto min_end = begin + std::chrono::duration<double>(options.duration_s);
  auto now = begin;
  const size_t wanted = static_cast<size_t>(options.iterations) * streams.size();
  while (result.iterations.size() < wanted || now < min_end) {
    BENCH_TRY(
        round(&result.iterations, std::chrono::duration<double, std::milli>(now - begin).count()));
    now = Clock::now();
  }
  result.walltime_s = std::chrono::duration<double>(now - begin).count();
  streams.clear();
  if (transfers) {
    BENCH_TRY(run_host_path(engine, profile, shapes, options, result)
                  .with_context("host path (pinned host buffers bound to the context)"));
  }
  return result;
}

}  // namespace mlprt::cli
