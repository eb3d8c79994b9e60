#pragma once
// Running a Dense layer in one context: whole (one primitive call on the context's stream) or
// row split (one call per row block, each on its own thread's stream and scratchpad, either in
// an OpenMP region of its own or in the caller's region, see cpu_chain.h). Memory objects and
// buffers are made in prepare(); run() does not allocate.

#include <array>
#include <cstdint>
#include <vector>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "backends/cpu/cpu_dense.h"
#include "mlprt/status.h"

namespace mlprt::backend::cpu {

/// One thread's stream and scratchpad for row-split runs.
struct ThreadResources {
  dnnl::stream stream;
  dnnl::memory scratchpad;
};

/// Per-thread resources of one context, shared by its row-split layers (which run one at a time).
class ThreadPoolResources {
 public:
  /// At least `threads` entries, each scratchpad at least `scratchpad_bytes`.
  Status reserve(const dnnl::engine& engine, int threads, size_t scratchpad_bytes);
  [[nodiscard]] ThreadResources& at(size_t t) { return m_threads[t]; }

 private:
  std::vector<ThreadResources> m_threads;
  size_t m_scratchpad_bytes = 0;
};

class DenseRun {
 public:
  /// Whole: all `m` rows in one call of `layer.variant_for(m)` on `stream` with `scratchpad`.
  Status prepare_whole(const dnnl::engine& engine, const std::string& name,
                       const DenseLayer& layer, int64_t m, const dnnl::stream& stream,
                       void* scratchpad);
  /// Row blocks: one call per range (Dense rows), each with a primitive planned for one thread
  /// (`block_variant_for`), thread t on `pool.at(t)`.
  Status prepare_blocks(const dnnl::engine& engine, const std::string& name,
                        const DenseLayer& layer, const std::vector<RowRange>& ranges,
                        ThreadPoolResources& pool);

  /// Runs every call: whole, or the blocks in an OpenMP region of one thread per block.
  /// `residual` (null: none): a tensor of y's shape added to each call's rows after its product.
  Status run(const float* x, float* y, const float* residual = nullptr);
  /// Runs block `t` only (the caller is thread t of its own region). x, y, residual: the whole
  /// tensors.
  Status run_block(size_t t, const float* x, float* y, const float* residual = nullptr);

  [[nodiscard]] int64_t rows() const noexcept { return m_rows; }
  [[nodiscard]] size_t blocks() const noexcept { return m_calls.size(); }
  [[nodiscard]] bool whole() const noexcept { return m_whole; }

 private:
  struct Call {
    size_t variant = 0;
    RowRange rows;
    bool bf16 = false;
    bool fp16 = false;     ///< our fp16 kernel, not a oneDNN primitive
    bool f32 = false;      ///< our fp32 kernel (bias and activation in its store)
    const float* bias = nullptr;  ///< our fp32 kernel: the layer's bias (null: none)
    int kernel_threads = 1;  ///< our kernels: 1 runs on the calling thread; 0: OpenMP's count then
    bool unfused = false;  ///< the activation runs after the matmul
    int64_t src_elem = 4;  ///< bytes per X element as the caller passes it (2: bf16 handoff)
    int64_t dst_elem = 4;  ///< bytes per Y element written (2: bf16 handoff)
    dnnl_stream_t stream = nullptr;
    dnnl::memory src;
    dnnl::memory src_low;  ///< bf16 / fp16 copy of the block's rows
    dnnl::memory dst;
    dnnl::memory scratchpad;
    std::array<dnnl_exec_arg_t, 5> args{};
    int nargs = 0;
  };
  Status make_call(const dnnl::engine& engine, size_t variant, RowRange rows,
                   const dnnl::stream& stream, void* scratchpad, Call& call);
  Status run_call(Call& call, const float* x, const float* residual, float* y);
  Status run_product(Call& call, const float* x, float* y);

  const DenseLayer* m_layer = nullptr;
  std::string m_name;
  std::vector<Call> m_calls;
  int64_t m_rows = -1;
  bool m_whole = true;
};

}  // namespace mlprt::backend::cpu
