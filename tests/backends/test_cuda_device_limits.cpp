// The cached per-device limits that launches size themselves by (device_limits.h) against what
// the runtime reports for the current device.

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "backends/cuda/device_limits.h"
#include "cuda_skip.h"

namespace mlprt {
namespace {

using backend::cuda::current_compute_capability;
using backend::cuda::current_max_block_smem;
using backend::cuda::current_sm_count;
using backend::cuda::current_sm_smem;

TEST(CudaDeviceLimits, MatchTheDeviceProperties) {
  SKIP_WITHOUT_GPU();
  int device = -1;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, device), cudaSuccess);
  for (int call = 0; call < 2; ++call) {  // the first call asks the device, the second the cache
    EXPECT_EQ(current_compute_capability(), prop.major * 10 + prop.minor) << "call " << call;
    EXPECT_EQ(current_sm_count(), prop.multiProcessorCount) << "call " << call;
    EXPECT_EQ(current_sm_smem(), static_cast<int>(prop.sharedMemPerMultiprocessor));
    EXPECT_EQ(current_max_block_smem(), static_cast<int>(prop.sharedMemPerBlockOptin));
  }
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
}  // namespace mlprt
