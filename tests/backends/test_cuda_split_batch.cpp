// Split batch on the cuda backend (ExecutionContext::set_split_batch): chunks read and write the
// caller's device, pinned or pageable memory at their offsets; a CUDA graph per chunk is kept
// (replayed on later calls), and past 64 chunks per call the chunks launch directly.
// Skipped where no CUDA device is present.

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>

#include "cuda_skip.h"
#include "mlprt/mlprt.h"
#include "test_graphs.h"

namespace mlprt {
namespace {

constexpr int64_t kIn = 12, kHidden = 16, kOut = 5;

std::unique_ptr<Engine> build_cuda_engine(const ir::Graph& graph) {
  BuilderConfig config;
  config.backend = "cuda";
  config.allow_tf32 = false;
  OptimizationProfile chunks, small;
  EXPECT_TRUE(chunks.set_dimensions("input", {{4, kIn}, {16, kIn}, {16, kIn}}).is_ok());
  EXPECT_TRUE(small.set_dimensions("input", {{1, kIn}, {2, kIn}, {3, kIn}}).is_ok());
  config.profiles = {chunks, small};
  auto plan = build_serialized_engine(*test::make_network(graph), config);
  EXPECT_TRUE(plan.is_ok()) << plan.status().message();
  auto engine = Engine::load(plan->bytes, "split_cuda.plan");
  EXPECT_TRUE(engine.is_ok()) << engine.status().message();
  return std::move(engine).value();
}

enum class Memory { kDevice, kPinned, kPageable };

void run_split(Engine& engine, const ir::Graph& graph, Memory memory, int64_t rows) {
  auto context = std::move(engine.create_execution_context()).value();
  ASSERT_TRUE(context->set_split_batch(true).is_ok());
  if (memory == Memory::kDevice) {
    ASSERT_TRUE(context->set_tensor_location(TensorLocation::kDevice).is_ok());
  }
  ASSERT_TRUE(context->set_input_shape("input", {rows, kIn}).is_ok());
  const std::vector<float> x = test::random_input(rows * kIn, static_cast<uint32_t>(rows));
  const size_t in_bytes = x.size() * sizeof(float);
  const size_t out_bytes = static_cast<size_t>(rows * kOut) * sizeof(float);
  std::vector<float> y(static_cast<size_t>(rows * kOut));
  void* in = nullptr;
  void* out = nullptr;
  std::vector<float> pageable_in = x;
  if (memory == Memory::kDevice) {
    ASSERT_EQ(cudaMalloc(&in, in_bytes), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&out, out_bytes), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(in, x.data(), in_bytes, cudaMemcpyHostToDevice), cudaSuccess);
  } else if (memory == Memory::kPinned) {
    ASSERT_EQ(cudaMallocHost(&in, in_bytes), cudaSuccess);
    ASSERT_EQ(cudaMallocHost(&out, out_bytes), cudaSuccess);
    std::memcpy(in, x.data(), in_bytes);
  } else {
    in = pageable_in.data();
    out = y.data();
  }
  ASSERT_TRUE(context->set_tensor_address("input", in).is_ok());
  ASSERT_TRUE(context->set_tensor_address("output", out).is_ok());
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  for (int call = 0; call < 3; ++call) {  // capture, then replay the chunks' graphs
    Status s = context->enqueue(stream);
    ASSERT_TRUE(s.is_ok()) << s.message();
  }
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  if (memory == Memory::kDevice) {
    ASSERT_EQ(cudaMemcpy(y.data(), out, out_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    cudaFree(in);
    cudaFree(out);
  } else if (memory == Memory::kPinned) {
    std::memcpy(y.data(), out, out_bytes);
    cudaFreeHost(in);
    cudaFreeHost(out);
  }
  cudaStreamDestroy(stream);
  EXPECT_LE(test::rel_l2(y, test::reference_output(graph, {rows, kIn}, x)), 1e-5)
      << "rows " << rows << ", memory " << static_cast<int>(memory);
}

TEST(CudaSplitBatch, DevicePinnedAndPageableMemoryMatchFloat64) {
  SKIP_WITHOUT_GPU();
  const ir::Graph graph = test::make_mlp_graph(-1, kIn, kHidden, kOut, 5);
  auto engine = build_cuda_engine(graph);
  for (Memory memory : {Memory::kDevice, Memory::kPinned, Memory::kPageable}) {
    run_split(*engine, graph, memory, 160);  // 10 chunks of 16
    run_split(*engine, graph, memory, 162);  // + a 2-row tail in the small profile
    run_split(*engine, graph, memory, 175);  // + 15 rows: the chunk profile
  }
}

TEST(CudaSplitBatch, MoreChunksThanGraphSlotsLaunchDirectly) {
  SKIP_WITHOUT_GPU();
  const ir::Graph graph = test::make_mlp_graph(-1, kIn, kHidden, kOut, 5);
  auto engine = build_cuda_engine(graph);
  run_split(*engine, graph, Memory::kDevice, 16 * 70 + 1);
}

}  // namespace
}  // namespace mlprt
