#pragma once
// Dense layers on oneDNN matmul: primitive creation and weight packing, done once at load.
//
// Each layer runs one of several tactics, chosen by the builder's timing (cpu_tuner.h):
//  * a runtime-M primitive (M = DNNL_RUNTIME_DIM_VAL, oneDNN's gemm:jit), correct for every
//    row count M; every layer has one, it serves the M that no fixed tactic was chosen for.
//  * for an M recorded at a profile's opt shape, optionally a fixed-M primitive with its
//    weights packed at load either in the blocked layout it prefers (brgemm) or kept plain.
//  * for an M recorded at a profile's opt shape, optionally a row split: the M rows cut into
//    one block per thread, each block run by a fixed-M primitive planned for one thread, all in
//    one OpenMP region (oneDNN runs single-threaded inside a parallel region).
// Each tactic runs in fp32 or bf16 (bf16 weights and src, f32 accumulation, bias and dst; the
// src is converted into a per-context buffer first, with AVX-512 BF16 instructions), with the
// activation fused as the matmul's post-op or run as a separate pass (unfused).
// Variants live in the Executable and are shared by every context; only src/dst/scratchpad
// memory objects are per context.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/cpu/cpu_f32_gemm.h"
#include "backends/cpu/cpu_fp16_gemm.h"
#include "ir/activation.h"
#include "ir/graph.h"
#include "mlprt/status.h"

namespace mlprt::backend::cpu {

/// "node 'fc1' (Dense)"
std::string describe(const ir::Node& node);
/// A Status for a oneDNN failure while handling `node`.
Status dnnl_failure(const ir::Node& node, const char* doing, const dnnl::error& e);

struct DenseSpec {
  int64_t k = 0;
  int64_t n = 0;
  bool transpose_x = false;
  ir::ActivationSpec activation;  ///< epilogue, one of ir::dense_fusable's kinds
  bool has_bias = false;
};

/// Checks the node's weights/bias/attributes and returns its sizes. `with_data` false: the
/// constants' dims and dtypes only (a plan's metadata, whose constants hold no bytes).
Result<DenseSpec> dense_spec(const ir::Graph& graph, const ir::Node& node, bool with_data = true);

/// kFp16: our own AVX-512 FP16 kernel (cpu_fp16_gemm.h), not oneDNN; its activation always
/// runs as a separate pass after it.
enum class DensePrecision { kFp32, kBf16, kFp16 };
enum class WeightLayout { kPacked, kPlain };
/// Who runs an fp32 tactic: a oneDNN matmul primitive, or our own AVX-512 kernel
/// (cpu_f32_gemm.h: any M, so also the runtime-M tactic; weights in its 16-column panels, bias
/// and activation in its store, `layout` unused). fp16 is always our kernel, whatever this says.
enum class DenseKernel { kOneDnn, kMlprt };

/// One implementation choice of a Dense layer.
struct DenseTactic {
  int64_t m = -1;  ///< -1: runtime M, serves every M
  DensePrecision precision = DensePrecision::kFp32;
  WeightLayout layout = WeightLayout::kPacked;  ///< fixed M only; runtime M takes oneDNN's
  /// Fixed M only: 1 makes oneDNN plan the primitive for one thread (no OpenMP region, which
  /// wins on small layers); 0 plans it for the engine's thread count. Row split: the number of
  /// row blocks (threads) it was built for.
  int threads = 0;
  /// Fixed M only: rows split over `threads` blocks, each a 1-thread primitive, in one region.
  bool row_split = false;
  /// The activation as the matmul's post-op (true) or as a separate pass after it.
  bool fused = true;
  DenseKernel kernel = DenseKernel::kOneDnn;
};

/// Rows [begin, end) of one block.
struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;
};
/// Most row blocks (threads) a split runs with.
constexpr int kMaxRowBlocks = 64;
/// `rows` cut into min(threads, rows, kMaxRowBlocks) blocks whose sizes differ by at most one.
std::vector<RowRange> split_rows(int64_t rows, int threads);

const char* precision_name(DensePrecision precision);
const char* layout_name(WeightLayout layout);
const char* kernel_name(DenseKernel kernel);
/// "fp32 fixed-M packed", "bf16 runtime-M", "fp32 fixed-M packed row-split x2 unfused",
/// "fp32 fixed-M mlprt-panels 1-thread"
std::string describe(const DenseTactic& tactic);

/// X as oneDNN sees it: [M, K] (row-major, or column-major for transpose_x). `m` may be
/// DNNL_RUNTIME_DIM_VAL.
dnnl::memory::desc dense_src_desc(const DenseSpec& spec, int64_t m);
/// Y: [M, N] row-major, f32 (or bf16 for a bf16 handoff).
dnnl::memory::desc dense_dst_desc(const DenseSpec& spec, int64_t m, bool bf16 = false);

/// A bf16 handoff between two Dense layers that run in bf16 only: the producer's matmul writes
/// its output in bf16 and the consumer's reads it as is, with no fp32 round trip in between
/// (the values are the ones the consumer's own conversion would have made: oneDNN rounds the
/// fp32 accumulator plus bias and activation to nearest even).
struct DenseHandoff {
  bool src_bf16 = false;  ///< X arrives in bf16, plain [M, K]
  bool dst_bf16 = false;  ///< Y is written in bf16, plain [M, N]
};

/// Matmul primitive descriptor for the tactic, user scratchpad.
Result<dnnl::matmul::primitive_desc> make_dense_pd(const dnnl::engine& engine,
                                                   const ir::Node& node, const DenseSpec& spec,
                                                   const DenseTactic& tactic,
                                                   bool dst_bf16 = false);

/// Weights in a blocked layout, packed from the plan graph's plain copy the first time a
/// context prepares a call that reads them (ExecutionContext shape setting may allocate;
/// enqueue never does), so that an engine holds only the packed copies its contexts use: a
/// profile whose tactic packs costs nothing until a context runs at its opt M. Shared by the
/// variants that want the same layout; thread-safe.
class LazyPackedWeights {
 public:
  LazyPackedWeights(dnnl::engine engine, const float* plain, int64_t k, int64_t n,
                    dnnl::memory::desc layout)
      : m_engine(std::move(engine)), m_plain(plain), m_k(k), m_n(n), m_layout(std::move(layout)) {}
  /// The packed memory, packing it on the first call.
  Result<dnnl::memory> get() const;
  [[nodiscard]] const dnnl::memory::desc& layout() const noexcept { return m_layout; }
  [[nodiscard]] bool packed() const noexcept;

 private:
  dnnl::engine m_engine;
  const float* m_plain;  ///< [K, N] row-major f32, owned by the plan graph (outlives this)
  int64_t m_k;
  int64_t m_n;
  dnnl::memory::desc m_layout;
  mutable std::mutex m_mutex;
  mutable dnnl::memory m_packed;
};

struct DenseVariant {
  int64_t fixed_m = -1;  ///< -1: runtime M, serves every M
  DenseTactic tactic;    ///< a row split's blocks: the 1-thread fixed-M tactic of the block
  bool block = false;    ///< made for the row blocks of a row-split tactic only
  dnnl::matmul primitive;  ///< null for our kernels (fp16, fp32 kMlprt)
  /// The weights as stored (f32 [K, N] row-major: the plan graph's copy, in place), when the
  /// primitive reads that layout; otherwise null and `packed` packs them on first use.
  dnnl::memory weights;
  std::shared_ptr<const LazyPackedWeights> packed;
  std::shared_ptr<const Fp16Weights> fp16_weights;  ///< fp16 tactics only
  std::shared_ptr<const F32Weights> f32_weights;    ///< fp32 kMlprt tactics only
  dnnl::memory::desc scratchpad_desc;
  std::string impl;  ///< oneDNN's implementation name, e.g. "brg:avx512_core"
};

struct DenseLayer {
  DenseSpec spec;
  dnnl::memory bias;  ///< null when the layer has no bias
  std::vector<DenseVariant> variants;  ///< [0]: runtime M; then one per fixed M and block size
  std::vector<DenseTactic> splits;     ///< the row-split tactics, one per M at most
  DenseHandoff handoff;                ///< bf16 in / out (every variant is bf16 then)

  /// Index into `variants` of the primitive used for `m` rows run whole.
  [[nodiscard]] size_t variant_for(int64_t m) const;
  /// Index of a primitive planned for one thread for an `m`-row block (runtime M if none).
  [[nodiscard]] size_t block_variant_for(int64_t m) const;
  /// The row-split tactic chosen for `m` rows, or null.
  [[nodiscard]] const DenseTactic* split_for(int64_t m) const;
};

/// X (f32, as dense_src_desc lays it out for `m` rows) -> plain [m, K] bf16, round to nearest
/// even, on the calling thread: a oneDNN reorder here would wake a second OpenMP thread for a
/// few microseconds of work, which costs whole scheduler ticks on a busy machine. Uses
/// AVX-512 BF16 (vcvtne2ps2bf16, 32 values an instruction; it reads denormals as zero) where
/// the CPU has it: the scalar loop took 16 us of a 28 us bf16 layer at 64x784.
void convert_src_to_bf16(const DenseSpec& spec, int64_t m, const float* x, uint16_t* out);

/// Creates one variant: its primitive and its packed weights. Where one of `shared` (the
/// layer's variants made so far) holds the weights in the layout this one wants, they are
/// shared, not packed again.
/// `describe_only`: the primitive descriptor's implementation name only (inspect): no
/// primitive, no weights read or packed.
Result<DenseVariant> make_dense_variant(const dnnl::engine& engine, dnnl::stream& stream,
                                        const ir::Graph& graph, const ir::Node& node,
                                        const DenseSpec& spec, const DenseTactic& tactic,
                                        const std::vector<DenseVariant>* shared = nullptr,
                                        bool describe_only = false, bool dst_bf16 = false);

/// Creates the primitives and packs the weights: `tactics` must start with the runtime-M one
/// (unless `require_runtime` is false: the tuner times one tactic alone); the others are
/// fixed-M, one per distinct M. A row-split tactic adds one 1-thread variant per block size.
/// `describe_only`: the variants' tactics and implementation names only (see
/// make_dense_variant); the graph's constants need no data. `shared`: variants of other layers
/// of the same node (the tuner's candidates) whose packed weights this one may share.
/// `handoff`: bf16 input / output (every tactic must then be bf16, with a fused activation).
Result<DenseLayer> make_dense_layer(const dnnl::engine& engine, const ir::Graph& graph,
                                    const ir::Node& node, const std::vector<DenseTactic>& tactics,
                                    bool require_runtime = true, bool describe_only = false,
                                    const std::vector<DenseVariant>* shared = nullptr,
                                    DenseHandoff handoff = {});

/// Whether `tactics` (a layer's runtime-M, fixed-M and row-split ones) may take part in a bf16
/// handoff: every one bf16, with the activation fused (an unfused activation runs in fp32 on Y).
bool tactics_allow_handoff(const DenseSpec& spec, const std::vector<DenseTactic>& tactics);

}  // namespace mlprt::backend::cpu
