// The cuda engine's I/O types and host paths through the public API: float16 / bfloat16 inputs
// and outputs (--inputIOFormats), the one-graph path for pinned host memory (copies captured
// with the layers), its pipelined form for large batches, small I/O read and written in mapped
// pinned memory and the fallback for pageable memory.
// Skipped where no CUDA device is present.

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>
#include <mutex>

#include "backends/cuda/cuda_common.h"
#include "cpu_test_graphs.h"
#include "cuda_skip.h"
#include "mlprt/mlprt.h"

namespace mlprt::testing {
namespace {

struct IoCase {
  DataType in;
  DataType out;
  bool fp16_layers;
  double tolerance;
};

std::vector<uint16_t> narrow(const std::vector<float>& values, DataType type) {
  std::vector<uint16_t> out(values.size());
  convert_floats(values.data(), DataType::kFloat32, out.data(), type, values.size());
  return out;
}

std::vector<float> widen(const void* data, DataType type, size_t count) {
  std::vector<float> out(count);
  convert_floats(data, type, out.data(), DataType::kFloat32, count);
  return out;
}

std::string describe(const IoCase& c) {
  return std::string(to_string(c.in)) + " in, " + std::string(to_string(c.out)) + " out" +
         (c.fp16_layers ? ", fp16 layers" : ", fp32 layers");
}

// A cuda engine of `graph` with the case's I/O types and one profile for input "x", and a
// context on it (null where a step failed, which the helper reports).
struct IoEngine {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ExecutionContext> context;
};

IoEngine build_io_engine(const ir::Graph& graph, const IoCase& c, const Dims& min, const Dims& opt,
                         const Dims& max) {
  Network network(std::make_unique<ir::Graph>(graph));
  BuilderConfig config;
  config.backend = "cuda";
  config.allow_fp16 = c.fp16_layers;
  config.input_formats = {c.in};
  config.output_formats = {c.out};
  OptimizationProfile profile;
  EXPECT_TRUE(profile.set_dimensions("x", {min, opt, max}).is_ok());
  config.profiles = {profile};
  IoEngine out;
  auto plan = build_serialized_engine(network, config);
  if (!plan.is_ok()) {
    ADD_FAILURE() << plan.status().message();
    return out;
  }
  auto engine = Engine::load(plan->bytes, "io.plan");
  if (!engine.is_ok()) {
    ADD_FAILURE() << engine.status().message();
    return out;
  }
  out.engine = std::move(engine).value();
  auto context = out.engine->create_execution_context();
  if (!context.is_ok()) {
    ADD_FAILURE() << context.status().message();
    return out;
  }
  out.context = std::move(context).value();
  return out;
}

// Input values in the engine's input type: `bytes()` is what the caller hands over, `values`
// what the engine sees (the float32 values rounded to that type).
struct FedInput {
  std::vector<float> values;
  std::vector<uint16_t> packed;  // float16 / bfloat16 inputs
  [[nodiscard]] const void* bytes() const {
    return packed.empty() ? static_cast<const void*>(values.data()) : packed.data();
  }
};

FedInput feed(const HostTensor& input, DataType type) {
  FedInput fed{input.data, {}};
  if (type != DataType::kFloat32) {
    fed.packed = narrow(fed.values, type);
    fed.values = widen(fed.packed.data(), type, fed.packed.size());
  }
  return fed;
}

TEST(CudaIo, NarrowInputsAndOutputsEveryPathAgainstFloat64) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(11);
  const std::string x = maker.input("x", {-1, 96});
  maker.output(maker.dense(maker.dense(x, 96, 64, true, true), 64, 10));
  const ir::Graph graph = maker.graph();
  const std::string out_name = graph.outputs[0].name;
  const IoCase cases[] = {{DataType::kFloat16, DataType::kFloat16, true, 2e-2},
                          {DataType::kFloat16, DataType::kFloat32, false, 1e-5},
                          {DataType::kBFloat16, DataType::kBFloat16, false, 2e-2},
                          {DataType::kFloat32, DataType::kFloat16, true, 2e-2}};
  for (const IoCase& c : cases) {
    SCOPED_TRACE(describe(c));
    const IoEngine io = build_io_engine(graph, c, {1, 96}, {64, 96}, {300, 96});
    ASSERT_NE(io.context, nullptr);
    EXPECT_EQ(io.engine->find_io_tensor("x")->dtype, c.in);
    EXPECT_EQ(io.engine->find_io_tensor(out_name)->dtype, c.out);
    ExecutionContext& ctx = *io.context;
    // Batch 1 and 3 run the fused small-batch kernel where the plan has it, 257 cuBLASLt.
    for (int64_t batch : {1, 3, 257}) {
      SCOPED_TRACE("batch " + std::to_string(batch));
      const FedInput input = feed(random_tensor({batch, 96}, static_cast<unsigned>(batch)), c.in);
      const std::vector<float>& fed = input.values;
      const void* host_in = input.bytes();
      TensorMap ref_inputs{{"x", HostTensor{{batch, 96}, fed}}};
      const std::vector<double> ref = reference(graph, ref_inputs).begin()->second;
      const size_t in_bytes = fed.size() * element_size(c.in);
      const size_t out_bytes = ref.size() * element_size(c.out);
      ASSERT_TRUE(ctx.set_tensor_location(TensorLocation::kHost).is_ok());
      ASSERT_TRUE(ctx.set_input_shape("x", {batch, 96}).is_ok());

      // Pageable memory: staged, enqueue returns when done.
      std::vector<std::byte> pageable_out(out_bytes);
      ASSERT_TRUE(ctx.set_tensor_address("x", const_cast<void*>(host_in)).is_ok());
      ASSERT_TRUE(ctx.set_tensor_address(out_name, pageable_out.data()).is_ok());
      ASSERT_TRUE(ctx.enqueue().is_ok());
      EXPECT_LE(rel_l2(widen(pageable_out.data(), c.out, ref.size()), ref), c.tolerance);

      // Pinned memory on a caller's stream: one graph with the copies; replayed twice with new
      // input values at the same addresses, so the graph must read them afresh.
      backend::cuda::PinnedBuffer pinned_in;
      backend::cuda::PinnedBuffer pinned_out;
      ASSERT_TRUE(pinned_in.reserve(in_bytes, "pinned input").is_ok());
      ASSERT_TRUE(pinned_out.reserve(out_bytes, "pinned output").is_ok());
      cudaStream_t stream = nullptr;
      ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
      ASSERT_TRUE(ctx.set_tensor_address("x", pinned_in.get()).is_ok());
      ASSERT_TRUE(ctx.set_tensor_address(out_name, pinned_out.get()).is_ok());
      std::memset(pinned_in.get(), 0, in_bytes);
      ASSERT_TRUE(ctx.enqueue(stream).is_ok());
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      std::memcpy(pinned_in.get(), host_in, in_bytes);
      ASSERT_TRUE(ctx.enqueue(stream).is_ok());
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      EXPECT_LE(rel_l2(widen(pinned_out.get(), c.out, ref.size()), ref), c.tolerance);

      // Device memory in the I/O types.
      backend::cuda::DeviceBuffer d_in;
      backend::cuda::DeviceBuffer d_out;
      ASSERT_TRUE(d_in.reserve(in_bytes, "device input").is_ok());
      ASSERT_TRUE(d_out.reserve(out_bytes, "device output").is_ok());
      ASSERT_EQ(cudaMemcpy(d_in.get(), host_in, in_bytes, cudaMemcpyHostToDevice), cudaSuccess);
      ASSERT_TRUE(ctx.set_tensor_location(TensorLocation::kDevice).is_ok());
      ASSERT_TRUE(ctx.set_tensor_address("x", d_in.get()).is_ok());
      ASSERT_TRUE(ctx.set_tensor_address(out_name, d_out.get()).is_ok());
      ASSERT_TRUE(ctx.enqueue(stream).is_ok());
      std::vector<std::byte> device_out(out_bytes);
      ASSERT_EQ(cudaMemcpyAsync(device_out.data(), d_out.get(), out_bytes, cudaMemcpyDeviceToHost,
                                stream),
                cudaSuccess);
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      EXPECT_LE(rel_l2(widen(device_out.data(), c.out, ref.size()), ref), c.tolerance);
      cudaStreamDestroy(stream);
    }
  }
}

// Small I/O in mapped pinned memory on layers the fused kernel does not take (K > 1024): copy
// kernels read the input from and write the outputs to the host memory, in every I/O type, with
// and without a CUDA graph, and a replay reads new input values.
TEST(CudaIo, SmallPinnedIoOfUnfusedLayersAgainstFloat64) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(17);
  constexpr int64_t kIn = 1100;
  const std::string x = maker.input("x", {-1, kIn});
  maker.output(maker.dense(maker.dense(x, kIn, 64, true, true), 64, 10));
  const ir::Graph graph = maker.graph();
  const std::string out_name = graph.outputs[0].name;
  const IoCase cases[] = {{DataType::kFloat32, DataType::kFloat32, false, 1e-5},
                          {DataType::kFloat16, DataType::kFloat16, true, 2e-2},
                          {DataType::kBFloat16, DataType::kFloat32, false, 2e-2},
                          {DataType::kFloat32, DataType::kFloat16, true, 2e-2}};
  for (const IoCase& c : cases) {
    SCOPED_TRACE(describe(c));
    const IoEngine io = build_io_engine(graph, c, {1, kIn}, {4, kIn}, {64, kIn});
    ASSERT_NE(io.context, nullptr);
    ExecutionContext& ctx = *io.context;
    ASSERT_TRUE(ctx.set_tensor_location(TensorLocation::kHost).is_ok());
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    for (int64_t batch : {1, 5, 14}) {  // 14 x 1100 floats: just under the 64 KiB limit
      SCOPED_TRACE("batch " + std::to_string(batch));
      const FedInput input =
          feed(random_tensor({batch, kIn}, static_cast<unsigned>(batch + 100)), c.in);
      const std::vector<float>& fed = input.values;
      const void* host_in = input.bytes();
      TensorMap ref_inputs{{"x", HostTensor{{batch, kIn}, fed}}};
      const std::vector<double> ref = reference(graph, ref_inputs).begin()->second;
      ASSERT_EQ(ref.size(), static_cast<size_t>(batch * 10));
      const size_t in_bytes = fed.size() * element_size(c.in);
      const size_t out_bytes = ref.size() * element_size(c.out);
      backend::cuda::PinnedBuffer pinned_in;
      backend::cuda::PinnedBuffer pinned_out;
      ASSERT_TRUE(pinned_in.reserve(in_bytes, "pinned input").is_ok());
      ASSERT_TRUE(pinned_out.reserve(out_bytes, "pinned output").is_ok());
      ASSERT_TRUE(ctx.set_input_shape("x", {batch, kIn}).is_ok());
      ASSERT_TRUE(ctx.set_tensor_address("x", pinned_in.get()).is_ok());
      ASSERT_TRUE(ctx.set_tensor_address(out_name, pinned_out.get()).is_ok());
      for (bool use_graph : {true, false}) {
        SCOPED_TRACE(use_graph ? "CUDA graph" : "no CUDA graph");
        ASSERT_TRUE(ctx.set_use_cuda_graph(use_graph).is_ok());
        std::memset(pinned_in.get(), 0, in_bytes);
        ASSERT_TRUE(ctx.enqueue(stream).is_ok());
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        std::memcpy(pinned_in.get(), host_in, in_bytes);
        std::memset(pinned_out.get(), 0, out_bytes);
        ASSERT_TRUE(ctx.enqueue(stream).is_ok());
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        EXPECT_LE(rel_l2(widen(pinned_out.get(), c.out, ref.size()), ref), c.tolerance);
      }
    }
    cudaStreamDestroy(stream);
  }
}

// The rows of `values` ([rows, width]) at `picks`, as one tensor.
std::vector<float> pick_rows(const std::vector<float>& values, int64_t width,
                             const std::vector<int64_t>& picks) {
  std::vector<float> out;
  for (int64_t r : picks) {
    out.insert(out.end(), values.begin() + r * width, values.begin() + (r + 1) * width);
  }
  return out;
}

// Large pinned batches whose layers take long enough run in row chunks whose copies overlap the
// other chunks' layers (the verbose log says so); the result must not depend on it: rows on both
// sides of every chunk boundary, the shorter last chunk included, with and without a CUDA graph,
// with casts at either end. Rows are independent, so float64 checks a sample of them.
TEST(CudaIo, LargePinnedBatchesRunPipelinedAgainstFloat64) {
  SKIP_WITHOUT_GPU();
  constexpr int64_t kIn = 256;
  constexpr int64_t kOut = 16;
  GraphMaker maker(5);
  const std::string x = maker.input("x", {-1, kIn});
  maker.output(maker.dense(maker.relu(maker.dense(x, kIn, 4096, true, false)), 4096, kOut));
  const ir::Graph graph = maker.graph();
  const std::string out_name = graph.outputs[0].name;
  std::mutex log_mutex;
  std::vector<std::string> pipeline_logs;
  set_log_severity(Severity::kVerbose);
  set_log_callback([&](Severity, std::string_view message) {
    if (message.find("chunks of up to") == std::string_view::npos) return;
    const std::lock_guard<std::mutex> lock(log_mutex);
    pipeline_logs.emplace_back(message);
  });
  const IoCase cases[] = {{DataType::kFloat32, DataType::kFloat32, false, 1e-5},
                          {DataType::kFloat16, DataType::kFloat16, true, 2e-2},
                          {DataType::kFloat32, DataType::kFloat32, true, 2e-2}};
  for (const IoCase& c : cases) {
    SCOPED_TRACE(describe(c));
    const IoEngine io = build_io_engine(graph, c, {1, kIn}, {20003, kIn}, {40000, kIn});
    ASSERT_NE(io.context, nullptr);
    ExecutionContext& ctx = *io.context;
    ASSERT_TRUE(ctx.set_tensor_location(TensorLocation::kHost).is_ok());
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    // 20003 rows: 8 chunks of 2501 and a last one of 2496; 1000 rows: too few to pipeline.
    for (int64_t batch : {20003, 1000}) {
      SCOPED_TRACE("batch " + std::to_string(batch));
      const FedInput input = feed(random_tensor({batch, kIn}, static_cast<unsigned>(batch)), c.in);
      const std::vector<float>& fed = input.values;
      const void* host_in = input.bytes();
      std::vector<int64_t> picks;
      for (int64_t boundary = 0; boundary <= batch; boundary += 2501) {
        for (int64_t r : {boundary - 1, boundary, boundary + 1}) {
          if (r >= 0 && r < batch && (picks.empty() || r > picks.back())) picks.push_back(r);
        }
      }
      if (picks.back() != batch - 1) picks.push_back(batch - 1);
      const auto picked = static_cast<int64_t>(picks.size());
      TensorMap ref_inputs{{"x", HostTensor{{picked, kIn}, pick_rows(fed, kIn, picks)}}};
      const std::vector<double> ref = reference(graph, ref_inputs).begin()->second;
      const size_t in_bytes = fed.size() * element_size(c.in);
      const size_t out_bytes = static_cast<size_t>(batch * kOut) * element_size(c.out);
      backend::cuda::PinnedBuffer pinned_in;
      backend::cuda::PinnedBuffer pinned_out;
      ASSERT_TRUE(pinned_in.reserve(in_bytes, "pinned input").is_ok());
      ASSERT_TRUE(pinned_out.reserve(out_bytes, "pinned output").is_ok());
      std::memcpy(pinned_in.get(), host_in, in_bytes);
      pipeline_logs.clear();
      ASSERT_TRUE(ctx.set_input_shape("x", {batch, kIn}).is_ok());
      ASSERT_TRUE(ctx.set_tensor_address("x", pinned_in.get()).is_ok());
      ASSERT_TRUE(ctx.set_tensor_address(out_name, pinned_out.get()).is_ok());
      for (bool use_graph : {true, false}) {
        SCOPED_TRACE(use_graph ? "CUDA graph" : "no CUDA graph");
        ASSERT_TRUE(ctx.set_use_cuda_graph(use_graph).is_ok());
        for (int replay = 0; replay < 2; ++replay) {
          std::memset(pinned_out.get(), 0, out_bytes);
          ASSERT_TRUE(ctx.enqueue(stream).is_ok());
          ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
          const std::vector<float> out =
              widen(pinned_out.get(), c.out, static_cast<size_t>(batch * kOut));
          EXPECT_LE(rel_l2(pick_rows(out, kOut, picks), ref), c.tolerance);
        }
      }
      {
        const std::lock_guard<std::mutex> lock(log_mutex);
        if (batch == 20003) {
          ASSERT_EQ(pipeline_logs.size(), 1u);
          EXPECT_NE(pipeline_logs[0].find("20003 rows runs in 8 chunks of up to 2501 rows"),
                    std::string::npos)
              << pipeline_logs[0];
        } else {
          EXPECT_TRUE(pipeline_logs.empty());
        }
      }
    }
    cudaStreamDestroy(stream);
  }
  set_log_callback({});
  set_log_severity(Severity::kWarning);
}

// A small fp32 MLP on device I/O with its float64 reference: the context has the batch's shape
// and the input, uploaded, bound; the outputs are the test's.
struct DeviceIoRun {
  ir::Graph graph;
  std::string out_name;
  std::vector<double> ref;
  IoEngine io;
  backend::cuda::DeviceBuffer in;
};

void start_device_io(int64_t batch, DeviceIoRun& run) {
  GraphMaker maker(23);
  const std::string x = maker.input("x", {-1, 48});
  maker.output(maker.dense(maker.dense(x, 48, 32, true, true), 32, 6));
  run.graph = maker.graph();
  run.out_name = run.graph.outputs[0].name;
  const HostTensor input = random_tensor({batch, 48}, 7);
  run.ref = reference(run.graph, {{"x", input}}).begin()->second;
  run.io = build_io_engine(run.graph, {DataType::kFloat32, DataType::kFloat32, false, 1e-5},
                           {1, 48}, {batch, 48}, {16, 48});
  ASSERT_NE(run.io.context, nullptr);
  ExecutionContext& ctx = *run.io.context;
  ASSERT_TRUE(ctx.set_tensor_location(TensorLocation::kDevice).is_ok());
  ASSERT_TRUE(ctx.set_input_shape("x", {batch, 48}).is_ok());
  const size_t bytes = input.data.size() * sizeof(float);
  ASSERT_TRUE(run.in.reserve(bytes, "input").is_ok());
  ASSERT_EQ(cudaMemcpy(run.in.get(), input.data.data(), bytes, cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_TRUE(ctx.set_tensor_address("x", run.in.get()).is_ok());
}

std::vector<float> read_device(const void* device, size_t count) {
  std::vector<float> host(count);
  EXPECT_EQ(cudaMemcpy(host.data(), device, count * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  return host;
}

// Frameworks' allocators hand out alternating buffers: the context keeps a graph per address set
// (the 4 most recently used), so the pattern below hits, misses and evicts; every result is
// checked.
TEST(CudaIo, AlternatingDeviceOutputBuffersAgainstFloat64) {
  SKIP_WITHOUT_GPU();
  DeviceIoRun run;
  ASSERT_NO_FATAL_FAILURE(start_device_io(5, run));
  ExecutionContext& ctx = *run.io.context;
  const size_t out_bytes = run.ref.size() * sizeof(float);
  std::vector<backend::cuda::DeviceBuffer> outs(6);
  for (auto& out : outs) ASSERT_TRUE(out.reserve(out_bytes, "output").is_ok());
  for (int which : {0, 1, 0, 1, 2, 3, 4, 5, 0, 1, 5}) {
    SCOPED_TRACE("output buffer " + std::to_string(which));
    ASSERT_EQ(cudaMemset(outs[which].get(), 0, out_bytes), cudaSuccess);
    ASSERT_TRUE(ctx.set_tensor_address(run.out_name, outs[which].get()).is_ok());
    ASSERT_TRUE(ctx.enqueue(nullptr).is_ok());
    EXPECT_LE(rel_l2(read_device(outs[which].get(), run.ref.size()), run.ref), 1e-5);
  }
}

// enqueue inside the caller's own stream capture: the layers go into the caller's graph (a
// graph launch cannot be captured); replaying it refills a cleared output.
TEST(CudaIo, EnqueueCapturedInTheCallersGraphAgainstFloat64) {
  SKIP_WITHOUT_GPU();
  DeviceIoRun run;
  ASSERT_NO_FATAL_FAILURE(start_device_io(3, run));
  ExecutionContext& ctx = *run.io.context;
  const std::vector<double>& ref = run.ref;
  backend::cuda::DeviceBuffer out;
  ASSERT_TRUE(out.reserve(ref.size() * sizeof(float), "output").is_ok());
  ASSERT_TRUE(ctx.set_tensor_address(run.out_name, out.get()).is_ok());
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_TRUE(ctx.enqueue(stream).is_ok());  // warm-up: the context's own graph exists now
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  const Status captured = ctx.enqueue(stream);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_TRUE(captured.is_ok()) << captured.message();
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaMemset(out.get(), 0, ref.size() * sizeof(float)), cudaSuccess);  // replay refills
  ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_LE(rel_l2(read_device(out.get(), ref.size()), ref), 1e-5);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace mlprt::testing
