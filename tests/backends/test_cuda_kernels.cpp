// The cuda backend's element-wise launchers called directly: element counts past 2^31 (int64
// indexing, capped grids) and an effective-bandwidth report of the kernels that sit between
// cuBLASLt calls. Skipped, saying why, where no CUDA device is present (CI).

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <iostream>
#include <vector>

#include "backends/cuda/cuda_kernels.h"
#include "ir/activation.h"

namespace mlprt::testing {
namespace {

using backend::cuda::ActKind;
using backend::cuda::ActParams;
using backend::cuda::ElemType;

#define SKIP_WITHOUT_GPU()                                                       \
  int device_count_ = 0;                                                         \
  const cudaError_t device_error_ = cudaGetDeviceCount(&device_count_);          \
  if (device_error_ != cudaSuccess || device_count_ == 0) {                      \
    cudaGetLastError();                                                          \
    GTEST_SKIP() << "no CUDA device: "                                           \
                 << (device_error_ != cudaSuccess ? cudaGetErrorString(device_error_) \
                                                  : "no CUDA device found");     \
  }

// 2^31 + 7 fp16 elements (4 GiB): negated in place by the packed kernel (8 halves a pack, 7 in
// the tail), then elements 1.. negated back by the scalar kernel (a 2-byte offset pointer).
// Every element is checked, those past 2^31 included.
TEST(CudaKernels, ElementCountsPastInt32) {
  SKIP_WITHOUT_GPU();
  const int64_t n = (int64_t{1} << 31) + 7;
  const size_t bytes = static_cast<size_t>(n) * 2;
  void* buffer = nullptr;
  if (cudaMalloc(&buffer, bytes) != cudaSuccess) {
    cudaGetLastError();
    GTEST_SKIP() << "needs " << bytes << " bytes of device memory";
  }
  ASSERT_EQ(cudaMemset(buffer, 0x3c, bytes), cudaSuccess);  // every half 0x3c3c (1.0586)
  const ActParams neg{ActKind::kNeg, 0.0f, 0.0f};
  ASSERT_EQ(backend::cuda::launch_activation(buffer, buffer, ElemType::kF16, neg, n, nullptr),
            cudaSuccess);
  auto* shifted = static_cast<__half*>(buffer) + 1;
  ASSERT_EQ(backend::cuda::launch_activation(shifted, shifted, ElemType::kF16, neg, n - 1, nullptr),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const int64_t chunk = int64_t{1} << 26;
  std::vector<uint16_t> host(static_cast<size_t>(chunk));
  int64_t wrong = 0;
  int64_t first_wrong = -1;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t count = std::min(chunk, n - begin);
    ASSERT_EQ(cudaMemcpy(host.data(), static_cast<uint16_t*>(buffer) + begin,
                         static_cast<size_t>(count) * 2, cudaMemcpyDeviceToHost),
              cudaSuccess);
    for (int64_t i = 0; i < count; ++i) {
      const uint16_t expected = begin + i == 0 ? 0xbc3c : 0x3c3c;
      if (host[static_cast<size_t>(i)] != expected) {
        if (first_wrong < 0) first_wrong = begin + i;
        ++wrong;
      }
    }
  }
  cudaFree(buffer);
  EXPECT_EQ(wrong, 0) << "first wrong element " << first_wrong << " of " << n;
}

// Times `launch` (20 runs after 3 warm-up) and returns microseconds per run.
template <typename Fn>
double time_us(Fn&& launch) {
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(launch(), cudaSuccess);
  cudaEventRecord(start, nullptr);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(launch(), cudaSuccess);
  cudaEventRecord(stop, nullptr);
  EXPECT_EQ(cudaEventSynchronize(stop), cudaSuccess);
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return static_cast<double>(ms) * 1000.0 / 20.0;
}

// peers.py's 'wide' at batch 4096 in fp16: GELU on [4096, 4096] in place (the Dense epilogue
// kernel), the fp32 -> fp16 input cast of [4096, 1024] and a bias-row add. Prints the
// effective bandwidth (bytes read + written per second) and checks a sample of the GELU.
TEST(CudaKernels, ElementwiseBandwidthReport) {
  SKIP_WITHOUT_GPU();
  const int64_t n = int64_t{4096} * 4096;
  std::vector<__half> host(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    host[static_cast<size_t>(i)] = __float2half_rn(static_cast<float>(i % 2001 - 1000) / 250.0f);
  }
  void* x = nullptr;
  void* y = nullptr;
  void* row = nullptr;
  ASSERT_EQ(cudaMalloc(&x, static_cast<size_t>(n) * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&y, static_cast<size_t>(n) * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&row, 4096 * 2), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(y, host.data(), static_cast<size_t>(n) * 2, cudaMemcpyHostToDevice),
            cudaSuccess);
  const ActParams gelu{ActKind::kGeluErf, 0.0f, 0.0f};
  // One run on the known values first, for the check.
  ASSERT_EQ(backend::cuda::launch_activation(y, y, ElemType::kF16, gelu, n, nullptr), cudaSuccess);
  std::vector<__half> result(static_cast<size_t>(n));
  ASSERT_EQ(cudaMemcpy(result.data(), y, static_cast<size_t>(n) * 2, cudaMemcpyDeviceToHost),
            cudaSuccess);
  double worst = 0.0;
  for (int64_t i = 0; i < n; i += 997) {
    const double in = __half2float(host[static_cast<size_t>(i)]);
    const double want = ir::apply_activation(ir::ActivationKind::kGeluErf, in, 0.0, 0.0);
    const double got = __half2float(result[static_cast<size_t>(i)]);
    worst = std::max(worst, std::fabs(got - want) / std::max(std::fabs(want), 1.0));
  }
  EXPECT_LE(worst, 1.0 / 1024.0) << "fp16 GELU off by more than an ulp";
  const double gelu_us = time_us([&] {
    return backend::cuda::launch_activation(y, y, ElemType::kF16, gelu, n, nullptr);
  });
  const int64_t cast_n = int64_t{4096} * 1024;
  const double cast_us = time_us([&] {
    return backend::cuda::launch_cast(x, ElemType::kF32, y, ElemType::kF16, cast_n, nullptr);
  });
  backend::cuda::BroadcastShape shape;
  shape.rank = 2;
  shape.dims[0] = 4096;
  shape.dims[1] = 4096;
  shape.stride_a[0] = 4096;
  shape.stride_a[1] = 1;
  shape.stride_b[1] = 1;  // [4096] bias row
  const double add_us = time_us([&] {
    return backend::cuda::launch_binary(y, row, y, ElemType::kF16, backend::cuda::BinaryOp::kAdd,
                                        shape, n, nullptr);
  });
  auto gbps = [](double bytes, double us) { return bytes / us / 1e3; };
  std::cout << "[ bandwidth ] fp16 gelu_erf 4096x4096 in place: " << gelu_us << " us, "
            << gbps(static_cast<double>(n) * 4, gelu_us) << " GB/s\n"
            << "[ bandwidth ] cast fp32->fp16 4096x1024: " << cast_us << " us, "
            << gbps(static_cast<double>(cast_n) * 6, cast_us) << " GB/s\n"
            << "[ bandwidth ] fp16 add bias row 4096x4096: " << add_us << " us, "
            << gbps(static_cast<double>(n) * 4, add_us) << " GB/s\n";
  cudaFree(x);
  cudaFree(y);
  cudaFree(row);
}

}  // namespace
}  // namespace mlprt::testing
