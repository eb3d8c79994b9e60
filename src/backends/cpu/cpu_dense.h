#pragma once
// Dense layers on oneDNN matmul: primitive creation and weight packing, done once at load.
//
// Each layer runs one of several tactics, chosen by the builder's timing (cpu_tuner.h):
//  * a runtime-M primitive (M = DNNL_RUNTIME_DIM_VAL, oneDNN's gemm:jit), correct for every
//    row count M; every layer has one, it serves the M that no fixed tactic was chosen for.
//  * for an M recorded at a profile's opt shape, optionally a fixed-M primitive with its
//    weights packed at load either in the blocked layout it prefers (brgemm) or kept plain.
// Each tactic runs in fp32 or bf16 (bf16 weights and src, f32 accumulation, bias and dst; the
// src is converted by a oneDNN reorder into a per-context buffer first).
// Variants live in the Executable and are shared by every context; only src/dst/scratchpad
// memory objects are per context.

#include <cstdint>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

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

/// Checks the node's weights/bias/attributes and returns its sizes.
Result<DenseSpec> dense_spec(const ir::Graph& graph, const ir::Node& node);

enum class DensePrecision { kFp32, kBf16 };
enum class WeightLayout { kPacked, kPlain };

/// One implementation choice of a Dense layer.
struct DenseTactic {
  int64_t m = -1;  ///< -1: runtime M, serves every M
  DensePrecision precision = DensePrecision::kFp32;
  WeightLayout layout = WeightLayout::kPacked;  ///< fixed M only; runtime M takes oneDNN's
  /// Fixed M only: 1 makes oneDNN plan the primitive for one thread (no OpenMP region, which
  /// wins on small layers); 0 plans it for the engine's thread count.
  int threads = 0;
};

const char* precision_name(DensePrecision precision);
const char* layout_name(WeightLayout layout);
/// "fp32 fixed-M packed", "bf16 runtime-M"
std::string describe(const DenseTactic& tactic);

/// X as oneDNN sees it: [M, K] (row-major, or column-major for transpose_x). `m` may be
/// DNNL_RUNTIME_DIM_VAL.
dnnl::memory::desc dense_src_desc(const DenseSpec& spec, int64_t m);
dnnl::memory::desc dense_dst_desc(const DenseSpec& spec, int64_t m);

/// Matmul primitive descriptor for the tactic, user scratchpad.
Result<dnnl::matmul::primitive_desc> make_dense_pd(const dnnl::engine& engine,
                                                   const ir::Node& node, const DenseSpec& spec,
                                                   const DenseTactic& tactic);

struct DenseVariant {
  int64_t fixed_m = -1;  ///< -1: runtime M, serves every M
  DenseTactic tactic;
  dnnl::matmul primitive;
  dnnl::memory weights;  ///< packed once, in the layout `primitive` wants
  dnnl::memory::desc scratchpad_desc;
  std::string impl;  ///< oneDNN's implementation name, e.g. "brg:avx512_core"
};

struct DenseLayer {
  DenseSpec spec;
  dnnl::memory bias;  ///< null when the layer has no bias
  std::vector<DenseVariant> variants;  ///< [0]: runtime M; then one per fixed M

  /// Index into `variants` of the primitive used for `m` rows.
  [[nodiscard]] size_t variant_for(int64_t m) const;
};

/// X (f32, as dense_src_desc lays it out for `m` rows) -> plain [m, K] bf16, round to nearest
/// even, on the calling thread: a oneDNN reorder here would wake a second OpenMP thread for a
/// few microseconds of work, which costs whole scheduler ticks on a busy machine.
void convert_src_to_bf16(const DenseSpec& spec, int64_t m, const float* x, uint16_t* out);

/// Creates one variant: its primitive and its packed weights.
Result<DenseVariant> make_dense_variant(const dnnl::engine& engine, dnnl::stream& stream,
                                        const ir::Graph& graph, const ir::Node& node,
                                        const DenseSpec& spec, const DenseTactic& tactic);

/// Creates the primitives and packs the weights: `tactics` must start with the runtime-M one;
/// the others are fixed-M, one per distinct M.
Result<DenseLayer> make_dense_layer(const dnnl::engine& engine, const ir::Graph& graph,
                                    const ir::Node& node, const std::vector<DenseTactic>& tactics);

}  // namespace mlprt::backend::cpu
